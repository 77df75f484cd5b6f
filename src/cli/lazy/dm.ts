// SPDX-License-Identifier: MIT
// What real-deps.ts loads with import() for deps.dm(): DmControl alone. A dynamic import of the
// layer's index.js would keep every export of src/dm in the CLI bundle's chunk (an import()
// namespace cannot be tree-shaken); through this module the chunk holds only what DmControl needs.
export { DmControl } from '../../dm/index.js';
