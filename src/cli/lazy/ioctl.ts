// SPDX-License-Identifier: MIT
// What real-deps.ts loads with import() for deps.umount(): realSyscalls alone (see lazy/dm.ts).
export { realSyscalls } from '../../ioctl/index.js';
