// SPDX-License-Identifier: MIT
// open(2) flags that Node's fs.constants lacks (include/uapi/asm-generic/fcntl.h; x86_64 and
// arm64 use the generic values), and lseek(2)'s whence values (include/uapi/linux/fs.h).

/** `O_CLOEXEC` (02000000): the fd is closed across execve, so a spawned mkfs does not inherit it. */
export const O_CLOEXEC = 0o2000000;

/**
 * lseek(2) `SEEK_END` (2): the offset is relative to the end. On /dev/kmsg (offset 0 only) it puts
 * the reader after the newest record (Documentation/ABI/testing/dev-kmsg; kernel/printk/printk.c
 * devkmsg_llseek).
 */
export const SEEK_END = 2;
