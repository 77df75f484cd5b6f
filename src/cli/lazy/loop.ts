// SPDX-License-Identifier: MIT
// What real-deps.ts loads with import() for deps.loop(): LoopControl alone (see lazy/dm.ts).
export { LoopControl } from '../../loop/index.js';
