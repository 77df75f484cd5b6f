// SPDX-License-Identifier: MIT
// The kernel seam. Every layer above src/ioctl reaches the kernel only through a `Syscalls`
// object, so an in-process fake kernel (devmapper/testing) can stand in for the real one.
import type { IoctlBatcher } from './batch.js';
import type { SemOp } from './sem.js';

/** What stat(2)/fstat(2) report that this library needs. Device numbers are glibc dev_t values. */
export interface StatResult {
  /** st_dev: the device holding the file. */
  readonly dev: bigint;
  /** st_ino. */
  readonly ino: bigint;
  /** st_rdev: the device a block/char special file stands for (0 for regular files). */
  readonly rdev: bigint;
  /** st_mode, including the S_IFMT type bits. */
  readonly mode: number;
  /** st_size in bytes. */
  readonly size: bigint;
  /** st_blocks: 512-byte blocks allocated. */
  readonly blocks: bigint;
}

/**
 * The third argument of ioctl(2): a buffer the kernel reads and/or writes (passed by pointer),
 * or an integer passed by value (loop fds, LOOP_CTL_* indexes, LOOP_SET_DIRECT_IO's 0/1).
 */
export type IoctlArg = Buffer | number | bigint;

/**
 * The libc calls this library makes. Every method throws an `IoctlError` (src/ioctl/errors.ts)
 * on failure, carrying the errno read immediately after the call. `requestName` is the C name of
 * the ioctl request ('DM_DEV_REMOVE', 'LOOP_CONFIGURE'…), recorded in errors.
 *
 * Each call that can block in the kernel also has an `…Async` form that runs on a worker thread,
 * so the event loop keeps turning while the kernel waits (a flushing suspend, DM_DEV_WAIT, a slow
 * remove, LOOP_CLR_FD, a thin message that commits metadata).
 */
export interface Syscalls {
  /** open(2). Returns the fd. `mode` only matters with O_CREAT. */
  open(path: string, flags: number, mode?: number): number;
  /** close(2). */
  close(fd: number): void;
  /** ioctl(2). Returns the non-negative result (LOOP_CTL_GET_FREE returns an index). */
  ioctl(fd: number, request: number, arg: IoctlArg, requestName: string): number;
  /** ioctl(2) on a worker thread. */
  ioctlAsync(fd: number, request: number, arg: IoctlArg, requestName: string): Promise<number>;
  /** fstat(2). */
  fstat(fd: number): StatResult;
  /** stat(2) (follows symlinks). */
  stat(path: string): StatResult;
  /**
   * stat(2) on a worker thread. Optional: for a file on a filesystem that can make stat wait (a
   * network filesystem, a stalled disk), e.g. a loop device's backing file. Callers fall back to
   * {@link stat} on a seam without it.
   */
  statAsync?(path: string): Promise<StatResult>;
  /** lstat(2): like stat, but a final symlink is reported itself (S_IFLNK), not followed. */
  lstat(path: string): StatResult;
  /**
   * System V semaphores, for udev cookies (src/dm/udev-cookie.ts). Optional: a seam without them
   * (the FakeKernel, a user's own) makes DmControl wait for udev by watching /dev/mapper instead.
   */
  readonly sysv?: SysvSemaphores;
  /** mknod(2). `dev` is a glibc dev_t (makedev). */
  mknod(path: string, mode: number, dev: bigint): void;
  /** unlink(2). */
  unlink(path: string): void;
  /** rename(2). */
  rename(from: string, to: string): void;
  /** mkdir(2). */
  mkdir(path: string, mode: number): void;
  /** fsync(2). */
  fsync(fd: number): void;
  /**
   * lseek(2) (`whence`: SEEK_SET, SEEK_END… from fcntl.ts). Returns the resulting offset.
   * Optional: the kernel log cursor (src/deviceset/kernel-log.ts) uses it to jump past the records
   * of /dev/kmsg in one call, and reads them one by one on a seam without it. The fd is a real
   * one (opened with node:fs), so only the real seam has it; the FakeKernel does not.
   */
  lseek?(fd: number, offset: bigint, whence: number): number;
  /**
   * flock(2) (`operation`: LOCK_SH/LOCK_EX/LOCK_UN, optionally | LOCK_NB; flock.ts). With
   * LOCK_NB a conflicting lock fails with EWOULDBLOCK (= EAGAIN on Linux, code 'EAGAIN').
   */
  flock(fd: number, operation: number): void;
  /** mount(2) on a worker thread (mounting can wait on I/O). */
  mountAsync(source: string, target: string, fstype: string, flags: bigint, data: string | null): Promise<void>;
  /** umount2(2) on a worker thread. */
  umount2Async(target: string, flags: number): Promise<void>;
  /** poll(2) on one fd, on a worker thread. Returns revents, or 0 on timeout. */
  pollAsync(fd: number, events: number, timeoutMs: number): Promise<number>;
  /**
   * Optional: a runner for sequences of ioctls that answers once per sequence (batch.ts). The
   * caller owns it and closes it. Without this method callers make one call per ioctl. The real
   * seam returns a worker-thread batcher (batch-worker.ts); the FakeKernel runs batches inline.
   */
  openBatch?(): IoctlBatcher;
}

/** The System V semaphore calls (sem.ts has the flags). Failures throw IoctlError. */
export interface SysvSemaphores {
  /** semget(2): the set's id. */
  semget(key: number, nsems: number, flags: number): number;
  /** semctl(2) with an int argument (SETVAL's value); returns the call's result (GETVAL's value). */
  semctl(semid: number, semnum: number, cmd: number, val?: number): number;
  /** semop(2). */
  semop(semid: number, ops: readonly SemOp[]): void;
}
