// SPDX-License-Identifier: MIT
// open(2) flags that Node's fs.constants lacks (include/uapi/asm-generic/fcntl.h; x86_64 and
// arm64 use the generic values).

/** `O_CLOEXEC` (02000000): the fd is closed across execve, so a spawned mkfs does not inherit it. */
export const O_CLOEXEC = 0o2000000;
