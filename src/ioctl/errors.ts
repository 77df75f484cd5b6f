// SPDX-License-Identifier: MIT
// IoctlError: a failed libc call (ioctl, open, stat…) with its errno, shaped like Node's SystemError.
import { getSystemErrorMap } from 'node:util';
import { DevmapperError, errnoName } from '../errors.js';

/** The libc calls made through the Syscalls seam. */
export type SyscallName =
  | 'open'
  | 'close'
  | 'ioctl'
  | 'fstat'
  | 'stat'
  | 'lstat'
  | 'semget'
  | 'semctl'
  | 'semop'
  | 'statx'
  | 'mknod'
  | 'unlink'
  | 'rename'
  | 'mkdir'
  | 'mount'
  | 'umount2'
  | 'fsync'
  | 'poll'
  | 'flock'
  | 'lseek';

/**
 * Decoded `struct dm_ioctl` fields recorded with a failed dm request (set by the dm layer). Only
 * what helps a human or a retry decision; `dev` is the kernel (huge) encoding.
 */
export interface DmHeaderSnapshot {
  readonly name: string;
  readonly uuid: string;
  readonly flags: number;
  readonly event_nr: number;
  readonly dev: bigint;
  readonly version?: readonly [number, number, number];
  readonly data_size?: number;
  readonly data_start?: number;
  readonly target_count?: number;
  readonly open_count?: number;
}

/** Constructor options of {@link IoctlError}. */
export interface IoctlErrorOptions {
  /** The libc function that failed. */
  readonly syscall: SyscallName;
  /** Positive errno, read right after the call. */
  readonly errno: number;
  /** C name of the ioctl request ('DM_DEV_REMOVE', 'LOOP_CONFIGURE'), for syscall 'ioctl'. */
  readonly request?: string;
  readonly fd?: number;
  /** Path argument (open, stat, mknod, unlink, mkdir, mount target…). */
  readonly path?: string;
  /** Second path (rename destination, mount target when path is the source). */
  readonly dest?: string;
  /** dm header as sent (see DmControl). */
  readonly header?: DmHeaderSnapshot;
  readonly cause?: unknown;
}

// strerror(3) wording for the errnos this library meets; Node's own map (libuv wording) otherwise.
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EINTR: 'interrupted system call',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  ENOTBLK: 'block device required',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ENOTTY: 'inappropriate ioctl for device',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENOSYS: 'function not implemented',
  ENODATA: 'no data available',
  EOVERFLOW: 'value too large for defined data type',
  EILSEQ: 'invalid or incomplete multibyte or wide character',
  EOPNOTSUPP: 'operation not supported',
};

/** Human text for an errno ('device or resource busy'). */
export function errnoDescription(errno: number): string {
  const name = errnoName(errno);
  const known = STRERROR[name];
  if (known) return known;
  try {
    return getSystemErrorMap().get(-Math.abs(errno))?.[1] ?? 'unknown error';
  } catch {
    return 'unknown error';
  }
}

function describe(o: IoctlErrorOptions): string {
  const what = o.syscall === 'ioctl' ? `ioctl ${o.request ?? '?'}` : o.syscall;
  const where = [o.path !== undefined ? `'${o.path}'` : '', o.dest !== undefined ? `-> '${o.dest}'` : '']
    .filter(Boolean)
    .join(' ');
  const ctx: string[] = [];
  if (o.header) {
    if (o.header.name) ctx.push(`name=${o.header.name}`);
    if (o.header.uuid) ctx.push(`uuid=${o.header.uuid}`);
    if (!o.header.name && !o.header.uuid && o.header.dev) ctx.push(`dev=0x${o.header.dev.toString(16)}`);
  }
  return (
    `${what}${where ? ' ' + where : ''} failed: ${errnoName(o.errno)} (${errnoDescription(o.errno)})` +
    (ctx.length ? ` [${ctx.join(' ')}]` : '')
  );
}

/**
 * A libc call failed. Field names follow Node's SystemError: `errno` is **positive** (Node's own
 * errors use negative numbers; the kernel ABI and this library use positive), `code` is the
 * symbolic name ('EBUSY'), `syscall` the libc function.
 *
 * Message: `ioctl DM_DEV_REMOVE failed: EBUSY (device or resource busy) [name=foo]`.
 *
 * Upper layers translate the errnos they understand into domain errors that keep this one as
 * `cause`; everything else propagates as IoctlError. Test with `errnoCode(err) === 'EBUSY'`.
 */
export class IoctlError extends DevmapperError {
  override readonly name = 'IoctlError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: SyscallName;
  readonly request?: string;
  readonly fd?: number;
  readonly path?: string;
  readonly dest?: string;
  /** dm header sent with the failed request, when the dm layer recorded one. */
  readonly header?: DmHeaderSnapshot;

  constructor(options: IoctlErrorOptions) {
    super(describe(options), options.cause === undefined ? undefined : { cause: options.cause });
    this.errno = Math.abs(options.errno);
    this.code = errnoName(this.errno);
    this.syscall = options.syscall;
    if (options.request !== undefined) this.request = options.request;
    if (options.fd !== undefined) this.fd = options.fd;
    if (options.path !== undefined) this.path = options.path;
    if (options.dest !== undefined) this.dest = options.dest;
    if (options.header !== undefined) this.header = options.header;
  }

  /** The options this error was built from. */
  toOptions(): IoctlErrorOptions {
    const o: { -readonly [K in keyof IoctlErrorOptions]: IoctlErrorOptions[K] } = { syscall: this.syscall, errno: this.errno };
    if (this.request !== undefined) o.request = this.request;
    if (this.fd !== undefined) o.fd = this.fd;
    if (this.path !== undefined) o.path = this.path;
    if (this.dest !== undefined) o.dest = this.dest;
    if (this.header !== undefined) o.header = this.header;
    if (this.cause !== undefined) o.cause = this.cause;
    return o;
  }

  /**
   * A copy of this error carrying a dm header snapshot (and its name/uuid in the message). The
   * stack frames of the original are kept, so the trace still points at the failing call.
   */
  withHeader(header: DmHeaderSnapshot): IoctlError {
    const e = new IoctlError({ ...this.toOptions(), header });
    const frames = this.stack?.split('\n').slice(1) ?? [];
    if (frames.length) e.stack = `${e.name}: ${e.message}\n${frames.join('\n')}`;
    return e;
  }
}

/**
 * The batched-ioctl worker (batch-worker.ts) cannot run a batch: it was closed, it could not start
 * (koffi failed to load in the thread), or it died. Which steps ran is unknown only in the last
 * case; `cause` is the worker's error, when there is one.
 */
export class BatchWorkerError extends DevmapperError {
  override readonly name = 'BatchWorkerError';
  readonly code = 'EBATCHWORKER';
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`ioctl batch worker: ${reason}`, options);
  }
}
