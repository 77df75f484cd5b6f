// SPDX-License-Identifier: MIT
// src/ioctl facade: the kernel ABI (structs, numbers, flags), the Syscalls seam and its real
// implementation. Layers above import from here, never from the files behind it.
//
// Not public API for library users (package export "./ioctl" exists for tools and tests; it may
// change without a major version bump).
export * from './ioc.js';
export * from './kdev.js';
export * from './dm-ioctl.js';
export * from './loop.js';
export * from './fs.js';
export * from './stat.js';
export * from './poll.js';
export * from './mount.js';
export * from './flock.js';
export * from './fcntl.js';
export * from './errors.js';
export type { IoctlArg, StatResult, Syscalls } from './syscalls.js';
export { realSyscalls } from './real-syscalls.js';
export { libc, libcLoaded, type Libc, type LibcCall, type SysResult } from './libc.js';
export {
  U64,
  U64_MAX,
  CharArray,
  Pad,
  align8,
  charArray,
  decodeStruct,
  defineStruct,
  fieldOffset,
  encodeCString,
  encodeStruct,
  pad,
  readCString,
  u64,
} from './layout.js';
