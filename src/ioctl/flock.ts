// SPDX-License-Identifier: MIT
// flock(2) operations, include/uapi/asm-generic/fcntl.h (the same on every Linux architecture).
// Kernel side: fs/locks.c (SYSCALL_DEFINE2(flock), flock_lock_inode). A flock lock belongs to
// the open file description: every fd dup'ed or inherited from the one that took it shares it,
// and it is dropped when the last of them is closed (locks_remove_file from __fput), so also
// when the owning process dies. Another open() of the same file, even in the same process,
// conflicts with it.

/** Shared lock. */
export const LOCK_SH = 1;
/** Exclusive lock. */
export const LOCK_EX = 2;
/** Or'ed with LOCK_SH/LOCK_EX: fail with EWOULDBLOCK (= EAGAIN) instead of waiting. */
export const LOCK_NB = 4;
/** Unlock. */
export const LOCK_UN = 8;
