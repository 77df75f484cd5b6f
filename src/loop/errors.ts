// SPDX-License-Identifier: MIT
// Domain errors of the loop layer: backing-file problems caught before any ioctl, and the few loop
// errnos this layer understands (EBUSY after retries, ENXIO, EEXIST/ENODEV on loop-control).
// Everything else propagates unchanged as the IoctlError raised by src/ioctl.
import { DevmapperError } from '../errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../ioctl/index.js';

/** Base of every loop-layer error. `cause` keeps the lower-level error (IoctlError or a Node fs error). */
export abstract class LoopError extends DevmapperError {}

/** The backing file does not exist (stat/open gave ENOENT or ENOTDIR). Raised before any ioctl. */
export class BackingFileNotFoundError extends LoopError {
  override readonly name = 'BackingFileNotFoundError';
  readonly code = 'EBACKINGNOTFOUND';
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super(`backing file ${path} does not exist`, options);
    this.path = path;
  }
}

/**
 * The backing file is not something a loop device (or a sparse file) can use: a directory, a FIFO,
 * a socket, a character device… `fileType` says what it is. Raised before any ioctl.
 */
export class BackingFileNotRegularError extends LoopError {
  override readonly name = 'BackingFileNotRegularError';
  readonly code = 'EBACKINGNOTREGULAR';
  readonly path: string;
  readonly fileType: string;
  constructor(path: string, fileType: string, expected: string, options?: { cause?: unknown }) {
    super(`backing file ${path} is a ${fileType}, expected ${expected}`, options);
    this.path = path;
    this.fileType = fileType;
  }
}

/**
 * The backing file is a symbolic link and the caller asked not to follow links (`noFollow`):
 * opening it with O_NOFOLLOW failed with ELOOP, or lstat showed a link. Raised before the file is
 * created, grown or bound, so the link's target is untouched.
 */
export class BackingFileLinkError extends LoopError {
  override readonly name = 'BackingFileLinkError';
  readonly code = 'EBACKINGLINK';
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super(`backing file ${path} is a symbolic link; refusing to follow it`, options);
    this.path = path;
  }
}

/**
 * A read-write attach of a backing file that cannot be opened for writing (EACCES, EROFS, EPERM,
 * ETXTBSY). Raised before any ioctl, so no loop device is consumed. Attach with `readOnly: true`
 * to use such a file.
 */
export class BackingFileReadOnlyError extends LoopError {
  override readonly name = 'BackingFileReadOnlyError';
  readonly code = 'EBACKINGREADONLY';
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super(`backing file ${path} cannot be opened for writing; attach it with readOnly: true`, options);
    this.path = path;
  }
}

/**
 * Every attach attempt lost the LOOP_CTL_GET_FREE → LOOP_CONFIGURE race (EBUSY: another process
 * bound the free device first), or the kernel kept answering EAGAIN. `attempts` is how many
 * devices were tried.
 */
export class LoopDeviceBusyError extends LoopError {
  override readonly name = 'LoopDeviceBusyError';
  readonly code = 'ELOOPBUSY';
  readonly attempts: number;
  readonly device: string | undefined;
  constructor(attempts: number, device?: string, options?: { cause?: unknown }) {
    super(
      device === undefined
        ? `could not bind a free loop device after ${attempts} attempt(s): every device was taken first`
        : `loop device ${device} is busy after ${attempts} attempt(s)`,
      options,
    );
    this.attempts = attempts;
    this.device = device;
  }
}

/** The loop device has no backing file bound (ENXIO from LOOP_GET_STATUS64, LOOP_CLR_FD, …). */
export class LoopNotBoundError extends LoopError {
  override readonly name = 'LoopNotBoundError';
  readonly code = 'ELOOPNOTBOUND';
  readonly device: string;
  constructor(device: string, options?: { cause?: unknown }) {
    super(`loop device ${device} is not bound to a backing file`, options);
    this.device = device;
  }
}

/** No loop device with that index exists (ENODEV from LOOP_CTL_REMOVE, ENOENT opening /dev/loopN). */
export class LoopDeviceNotFoundError extends LoopError {
  override readonly name = 'LoopDeviceNotFoundError';
  readonly code = 'ELOOPNOTFOUND';
  readonly device: string;
  constructor(device: string, options?: { cause?: unknown }) {
    super(`loop device ${device} does not exist`, options);
    this.device = device;
  }
}

/**
 * The path names something that is not a loop device (a character device such as /dev/null, a
 * regular file, another block device): refused from fstat(2) before any LOOP_* ioctl, which the
 * kernel would answer with ENOTTY, or pass to another driver.
 */
export class NotALoopDeviceError extends LoopError {
  override readonly name = 'NotALoopDeviceError';
  readonly code = 'ENOTLOOPDEVICE';
  readonly device: string;
  /** What it is instead: `character device 1:3`, `block device 8:0`, `regular file`. */
  readonly actual: string;
  constructor(device: string, actual: string, options?: { cause?: unknown }) {
    super(`${device} is not a loop device (it is a ${actual})`, options);
    this.device = device;
    this.actual = actual;
  }
}

/** LOOP_CTL_ADD of an index that already exists (EEXIST). */
export class LoopDeviceExistsError extends LoopError {
  override readonly name = 'LoopDeviceExistsError';
  readonly code = 'ELOOPEXISTS';
  readonly index: number;
  constructor(index: number, options?: { cause?: unknown }) {
    super(`loop device loop${index} already exists`, options);
    this.index = index;
  }
}

/** LOOP_CTL_REMOVE of a device that is bound or open (EBUSY). */
export class LoopDeviceInUseError extends LoopError {
  override readonly name = 'LoopDeviceInUseError';
  readonly code = 'ELOOPINUSE';
  readonly index: number;
  constructor(index: number, options?: { cause?: unknown }) {
    super(`loop device loop${index} is bound or open and cannot be removed`, options);
    this.index = index;
  }
}

/** The loop driver is missing: /dev/loop-control does not exist or answers ENODEV. */
export class LoopUnsupportedError extends LoopError {
  override readonly name = 'LoopUnsupportedError';
  readonly code = 'ELOOPUNSUPPORTED';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`loop devices are not available: ${detail}`, options);
  }
}

/**
 * ensureSparseFile was asked for a size smaller than the file already has. Files are never
 * shrunk (that would destroy data at the end of a pool's data or metadata device).
 */
export class SparseFileShrinkError extends LoopError {
  override readonly name = 'SparseFileShrinkError';
  readonly code = 'ESPARSESHRINK';
  readonly path: string;
  readonly currentSize: bigint;
  readonly requestedSize: bigint;
  constructor(path: string, currentSize: bigint, requestedSize: bigint, options?: { cause?: unknown }) {
    super(
      `refusing to shrink ${path} from ${currentSize} to ${requestedSize} bytes (files are only ever grown)`,
      options,
    );
    this.path = path;
    this.currentSize = currentSize;
    this.requestedSize = requestedSize;
  }
}

/**
 * ensureSparseFile's ftruncate answered EFBIG: the file system holding the file cannot have a file
 * that large (inode_newsize_ok refuses a size over the super block's s_maxbytes, fs/attr.c; ext4
 * with 4K blocks stops at 16T). A file the call created is removed again.
 */
export class SparseFileTooLargeError extends LoopError {
  override readonly name = 'SparseFileTooLargeError';
  readonly code = 'ESPARSETOOLARGE';
  readonly path: string;
  readonly requestedSize: bigint;
  constructor(path: string, requestedSize: bigint, options?: { cause?: unknown }) {
    super(`the file system holding ${path} cannot hold a ${requestedSize}-byte file (EFBIG); choose a smaller size`, options);
    this.path = path;
    this.requestedSize = requestedSize;
  }
}

/** Human name of the S_IFMT bits of a st_mode, for error messages. */
export function fileTypeName(mode: number): string {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'regular file';
    case S_IFDIR:
      return 'directory';
    case S_IFBLK:
      return 'block device';
    case S_IFCHR:
      return 'character device';
    case S_IFIFO:
      return 'FIFO';
    case S_IFSOCK:
      return 'socket';
    case S_IFLNK:
      return 'symbolic link';
    default:
      return 'file of unknown type';
  }
}

/**
 * The caller's AbortSignal fired during a loop-layer operation (attach's retry loop, a sparse
 * file's creation, a chunked discard). What the call had made was undone first: a device it bound
 * is cleared, a file it created is removed. `cause` is the signal's reason.
 */
export class LoopAbortedError extends LoopError {
  override readonly name = 'LoopAbortedError';
  readonly code = 'ELOOPABORTED';
  readonly operation: string;
  constructor(operation: string, options?: { cause?: unknown }) {
    super(`${operation} was aborted`, options);
    this.operation = operation;
  }
}

/** Throws {@link LoopAbortedError} when `signal` has fired. */
export function checkLoopAbort(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) throw new LoopAbortedError(operation, { cause: signal.reason });
}
