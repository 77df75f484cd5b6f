// SPDX-License-Identifier: MIT
// The QEMU test substrate: boot a throwaway guest with real device-mapper and run one command.
// Independent of the rest of devmapper (no koffi, no other src/ layer).
export { runInVm, shQuote, guestCommandScript, GUEST_PATH, DEFAULT_GUEST_MODULES, TIMEOUT_EXIT_CODE, NO_STATUS_EXIT_CODE } from './runner.js';
export type { RunInVmOptions, RunInVmResult } from './runner.js';
export { selectKernel, listKernels, fetchKernelPackage, resolvePackageName, compareKernelVersions } from './kernel.js';
export type { KernelSpec, KernelSearchOptions } from './kernel.js';
export { buildInitramfs, INIT_SCRIPT, INITRAMFS_MODULES, isStaticElf } from './initramfs.js';
export type { Initramfs, InitramfsOptions } from './initramfs.js';
export { encodeCpio, decodeCpio, cpio, CPIO_NEWC_MAGIC, CPIO_NEWC_HEADER_SIZE, CPIO_TRAILER } from './cpio.js';
export type { CpioEntry, DecodedCpioEntry } from './cpio.js';
export { parseModulesDep, parseModulesBuiltin, resolveLoadOrder, moduleName } from './modules.js';
export type { ModuleDep } from './modules.js';
