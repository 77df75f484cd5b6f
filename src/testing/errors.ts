// SPDX-License-Identifier: MIT
// Errors of the fake kernel: kernel errnos shaped exactly like the real seam's IoctlError, the
// SimulatedCrash a crash-point sweep stops on, FakeIoError for fake-level block I/O, and (re-exported
// from the dm layer, where the log decoder lives) WriteLogCorruptError.
import { constants as osConstants } from 'node:os';
import { IoctlError, type IoctlErrorOptions, type SyscallName } from '../ioctl/index.js';

/** Errno names the fake kernel returns. */
export type Errno =
  | 'EPERM'
  | 'ENOENT'
  | 'EINTR'
  | 'EIO'
  | 'ENXIO'
  | 'EBADF'
  | 'EAGAIN'
  | 'ENOMEM'
  | 'EACCES'
  | 'EFAULT'
  | 'ENOTBLK'
  | 'EBUSY'
  | 'EEXIST'
  | 'ENODEV'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'EINVAL'
  | 'ENOTTY'
  | 'ENOSPC'
  | 'EROFS'
  | 'ENOSYS'
  | 'ENODATA'
  | 'EOVERFLOW'
  | 'EILSEQ'
  | 'EOPNOTSUPP'
  | 'ENOTEMPTY';

/** Positive errno number of a name ('EBUSY' → 16), from Node's table for this platform. */
export function errnoNumber(code: string): number {
  const n = (osConstants.errno as Record<string, number | undefined>)[code];
  if (n === undefined) throw new RangeError(`unknown errno name ${code}`);
  return n;
}

/**
 * A failure inside the fake kernel. Thrown by handlers and turned into the seam's IoctlError
 * (with syscall, fd, path and request name) at the syscall boundary.
 */
export class KernelErrno extends Error {
  readonly code: string;
  constructor(code: Errno | string, why?: string) {
    super(why ? `${code}: ${why}` : code);
    this.code = code;
  }
}

/** Shorthand: `throw kerr('ENXIO', 'no such device')`. */
export function kerr(code: Errno | string, why?: string): KernelErrno {
  return new KernelErrno(code, why);
}

/** The IoctlError the real seam would throw for `code`. */
export function seamError(code: string, ctx: Omit<IoctlErrorOptions, 'errno'> & { syscall: SyscallName }): IoctlError {
  return new IoctlError({ ...ctx, errno: errnoNumber(code) });
}

/**
 * Thrown by every syscall once a crash point armed with {@link FakeKernel.crashAfter} is reached:
 * the process is "dead" from that call on. Kernel state stays as it was (the kernel survives a
 * process crash), so a sweep can build a new DeviceSet on the same FakeKernel and check recovery.
 * Deliberately not an IoctlError/DevmapperError, so code that maps errnos cannot mistake it.
 */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
  /** 0-based index of the syscall the crash happened at (see FakeKernel.callCount). */
  readonly callIndex: number;
  /** 'before': the call did nothing; 'after': the kernel carried it out, the caller never learned. */
  readonly when: 'before' | 'after';
  constructor(callIndex: number, when: 'before' | 'after', what: string) {
    super(`simulated crash at syscall #${callIndex} (${when} ${what})`);
    this.callIndex = callIndex;
    this.when = when;
  }
}

/**
 * A fake-level block write that the device refused, as the writer of the real device would see
 * it: ENOSPC from a thin device whose pool is out of data space (error_if_no_space; with
 * queue_if_no_space the real kernel would hold the write until `no_space_timeout` and then fail
 * it with EIO — `queued` is true then), EIO for writes past the end or to a failed pool.
 */
export class FakeIoError extends Error {
  override readonly name = 'FakeIoError';
  readonly code: 'ENOSPC' | 'EIO';
  readonly queued: boolean;
  constructor(code: 'ENOSPC' | 'EIO', message: string, queued = false) {
    super(message);
    this.code = code;
    this.queued = queued;
  }
}

export { WriteLogCorruptError, type WriteLogProblem } from '../dm/index.js';
