// SPDX-License-Identifier: MIT
// The real kernel behind the Syscalls seam: libc.ts calls, failures turned into IoctlError.
import type { IoctlBatcher } from './batch.js';
import { BatchWorker } from './batch-worker.js';
import { ioctlChannel, type IoctlChannelMessage } from './diagnostics.js';
import { IoctlError, type SyscallName } from './errors.js';
import { libc, type SysResult } from './libc.js';
import { AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, STATX_SIZE, statResultFromStatx } from './stat.js';
import { encodePollFd, pollFdRevents } from './poll.js';
import { encodeSembufs, type SemOp } from './sem.js';
import type { IoctlArg, StatResult, Syscalls, SysvSemaphores } from './syscalls.js';

interface Ctx {
  request?: string;
  fd?: number;
  path?: string;
  dest?: string;
}

function check(syscall: SyscallName, r: SysResult, ctx: Ctx = {}): number {
  if (r.rc < 0) {
    // errno 0 with rc < 0 would be a koffi/libc contract violation; report it rather than hide it.
    throw new IoctlError({ syscall, errno: r.errno || 0, ...ctx });
  }
  return r.rc;
}

function publishIoctl(request: string, fd: number, async: boolean, t0: number, r: SysResult): void {
  const message: IoctlChannelMessage = { request, fd, async, durationMs: performance.now() - t0, errno: r.rc < 0 ? r.errno || 0 : 0 };
  ioctlChannel.publish(message);
}

function ioctlArgs(arg: IoctlArg): { ptr: Buffer | null; int: number | bigint | undefined } {
  return Buffer.isBuffer(arg) ? { ptr: arg, int: undefined } : { ptr: null, int: arg };
}

/**
 * statx(2)'s output buffer, one per thread (module instance) and reused: stat/fstat/lstat fill it
 * in a synchronous libc call and decode it into a fresh StatResult before returning, with no JS
 * in between, so no two calls can interleave on it. It needs no zeroing: on success the kernel
 * copies a whole, zero-initialised struct statx (fs/stat.c cp_statx: `memset(&tmp, 0,
 * sizeof(tmp))`, then `copy_to_user(buffer, &tmp, sizeof(tmp))`), and on failure nothing is
 * decoded. (A zeroed Buffer.alloc per call was a fresh ArrayBuffer each time: four per loop attach.)
 */
const statxOut = Buffer.alloc(STATX_SIZE);

const realSysv: SysvSemaphores = {
  semget(key: number, nsems: number, flags: number): number {
    return check('semget', libc().semget(key, nsems, flags));
  },
  semctl(semid: number, semnum: number, cmd: number, val = 0): number {
    return check('semctl', libc().semctl(semid, semnum, cmd, val));
  },
  semop(semid: number, ops: readonly SemOp[]): void {
    check('semop', libc().semop(semid, encodeSembufs(ops), ops.length));
  },
};

class RealSyscalls implements Syscalls {
  readonly sysv = realSysv;
  open(path: string, flags: number, mode = 0): number {
    return check('open', libc().open(path, flags, mode), { path });
  }
  close(fd: number): void {
    check('close', libc().close(fd), { fd });
  }
  ioctl(fd: number, request: number, arg: IoctlArg, requestName: string): number {
    const { ptr, int } = ioctlArgs(arg);
    const traced = ioctlChannel.hasSubscribers;
    const t0 = traced ? performance.now() : 0;
    const r = int === undefined ? libc().ioctlPtr(fd, request, ptr) : libc().ioctlInt(fd, request, int);
    if (traced) publishIoctl(requestName, fd, false, t0, r);
    return check('ioctl', r, { fd, request: requestName });
  }
  async ioctlAsync(fd: number, request: number, arg: IoctlArg, requestName: string): Promise<number> {
    const { ptr, int } = ioctlArgs(arg);
    const traced = ioctlChannel.hasSubscribers;
    const t0 = traced ? performance.now() : 0;
    const r = int === undefined ? await libc().ioctlPtr.async(fd, request, ptr) : await libc().ioctlInt.async(fd, request, int);
    if (traced) publishIoctl(requestName, fd, true, t0, r);
    return check('ioctl', r, { fd, request: requestName });
  }
  fstat(fd: number): StatResult {
    check('fstat', libc().statx(fd, '', AT_EMPTY_PATH, STATX_BASIC_STATS, statxOut), { fd });
    return statResultFromStatx(statxOut);
  }
  stat(path: string): StatResult {
    check('stat', libc().statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, statxOut), { path });
    return statResultFromStatx(statxOut);
  }
  async statAsync(path: string): Promise<StatResult> {
    // Its own buffer: concurrent statx calls on the worker must not share the synchronous one.
    const buf = Buffer.alloc(STATX_SIZE);
    check('stat', await libc().statx.async(AT_FDCWD, path, 0, STATX_BASIC_STATS, buf), { path });
    return statResultFromStatx(buf);
  }
  lstat(path: string): StatResult {
    check('lstat', libc().statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, statxOut), { path });
    return statResultFromStatx(statxOut);
  }
  mknod(path: string, mode: number, dev: bigint): void {
    check('mknod', libc().mknod(path, mode, dev), { path });
  }
  unlink(path: string): void {
    check('unlink', libc().unlink(path), { path });
  }
  rename(from: string, to: string): void {
    check('rename', libc().rename(from, to), { path: from, dest: to });
  }
  mkdir(path: string, mode: number): void {
    check('mkdir', libc().mkdir(path, mode), { path });
  }
  fsync(fd: number): void {
    check('fsync', libc().fsync(fd), { fd });
  }
  lseek(fd: number, offset: bigint, whence: number): number {
    return check('lseek', libc().lseek(fd, offset, whence), { fd });
  }
  flock(fd: number, operation: number): void {
    check('flock', libc().flock(fd, operation), { fd });
  }
  async mountAsync(source: string, target: string, fstype: string, flags: bigint, data: string | null): Promise<void> {
    check('mount', await libc().mount.async(source, target, fstype, flags, data), { path: source, dest: target });
  }
  async umount2Async(target: string, flags: number): Promise<void> {
    check('umount2', await libc().umount2.async(target, flags), { path: target });
  }
  async pollAsync(fd: number, events: number, timeoutMs: number): Promise<number> {
    const fds = encodePollFd(fd, events);
    const n = check('poll', await libc().poll.async(fds, 1, timeoutMs), { fd });
    return n === 0 ? 0 : pollFdRevents(fds);
  }
  openBatch(): IoctlBatcher {
    return new BatchWorker();
  }
}

let instance: Syscalls | undefined;

/**
 * The real `Syscalls` (a lazy singleton). Creating it loads nothing; koffi and libc are loaded by
 * the first call. Upper layers take a `Syscalls` parameter defaulting to this.
 */
export function realSyscalls(): Syscalls {
  instance ??= new RealSyscalls();
  return instance;
}
