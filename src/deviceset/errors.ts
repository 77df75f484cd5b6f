// SPDX-License-Identifier: MIT
// Errors of the DeviceSet layer: its foundations (metadata store, id allocation, paths) and its
// operations (Docker's DeviceSet messages, with stable codes).
import { join } from 'node:path';
import { DevmapperError, formatProblems, type ValidationProblem } from '../errors.js';

/**
 * Base of the DeviceSet layer's errors. Each subclass has a stable `code`; `cause` keeps the
 * lower error.
 */
export abstract class DeviceSetError extends DevmapperError {}

/**
 * A metadata file could not be read back: not JSON, not a valid record, a record whose hash
 * does not match its file name, an unexpected file, or a format version newer than ours.
 * Never ignored: loading stops so that nothing acts on a half-known state.
 */
export class MetadataCorruptError extends DeviceSetError {
  override readonly name = 'MetadataCorruptError';
  readonly code = 'EMETADATACORRUPT';
  /** Absolute path of the offending file. */
  readonly file: string;
  readonly problems: readonly ValidationProblem[];
  constructor(file: string, problems: readonly ValidationProblem[], options?: { cause?: unknown }) {
    super(`corrupt metadata file ${file}: ${formatProblems(problems)}`, options);
    this.file = file;
    this.problems = problems;
  }
}

/** Every one of the 2^24 thin device ids is in use. */
export class DeviceIdsExhaustedError extends DeviceSetError {
  override readonly name = 'DeviceIdsExhaustedError';
  readonly code = 'EDEVICEIDSEXHAUSTED';
  constructor() {
    super('unable to find a free device id: all 16777216 thin device ids are in use');
  }
}

/** What {@link UnsafePathError} found at the path. */
export type UnsafePathReason = 'symlink' | 'not-directory' | 'not-regular' | 'owner' | 'mode';

/**
 * A path under a DeviceSet root (the root itself, `devicemapper/`, `metadata/`, `mnt/`, the
 * loopback files, the records) is not what this DeviceSet would have made: a symbolic link, the
 * wrong kind of file, a directory owned by another user, or one that group or others may write.
 * Raised before anything is read, created, grown or bound through it: a link's target is never
 * touched.
 */
export class UnsafePathError extends DeviceSetError {
  override readonly name = 'UnsafePathError';
  readonly code = 'EUNSAFEPATH';
  constructor(
    /** The offending path. */
    readonly path: string,
    readonly reason: UnsafePathReason,
    /** What was found, e.g. "a symbolic link", "a directory owned by uid 1000". */
    readonly found: string,
    /** What is required instead. */
    readonly expected: string,
    options?: { cause?: unknown },
  ) {
    super(`unsafe path ${path}: found ${found}, expected ${expected}`, options);
  }
}

const show = (hash: string): string => (hash === '' ? 'base device' : `device ${hash}`);

/** No record for this hash ("Unknown device"). */
export class UnknownDeviceError extends DeviceSetError {
  override readonly name = 'UnknownDeviceError';
  readonly code = 'EUNKNOWNDEVICE';
  constructor(readonly hash: string) {
    super(`unknown device: ${show(hash)} has no record in this DeviceSet`);
  }
}

/** addDevice with a hash that already has a record (deleted ones included). */
export class DeviceAlreadyExistsError extends DeviceSetError {
  override readonly name = 'DeviceAlreadyExistsError';
  readonly code = 'EDEVICEEXISTS';
  constructor(readonly hash: string, readonly deleted: boolean) {
    super(`${show(hash)} already exists${deleted ? ' (marked for deferred deletion, which has not finished yet)' : ''}`);
  }
}

/** The device is marked for deferred deletion and cannot be used, mounted or snapshotted. */
export class DeviceMarkedDeletedError extends DeviceSetError {
  override readonly name = 'DeviceMarkedDeletedError';
  readonly code = 'EDEVICEDELETED';
  constructor(readonly hash: string, action: string) {
    super(`cannot ${action} ${show(hash)}: it is marked for deferred deletion`);
  }
}

/** The device's record is faulty (recovery could not tell what happened to it). */
export class DeviceFaultyError extends DeviceSetError {
  override readonly name = 'DeviceFaultyError';
  readonly code = 'EDEVICEFAULTY';
  constructor(readonly hash: string, reason: string | undefined) {
    super(`${show(hash)} is faulty${reason ? ` (${reason})` : ''}: delete it and create it again`);
  }
}

/** A size below what is allowed (a container smaller than its image, a base shrink). */
export class DeviceSizeError extends DeviceSetError {
  override readonly name = 'DeviceSizeError';
  readonly code = 'EDEVICESIZE';
  constructor(message: string, readonly requested: bigint, readonly minimum: bigint) {
    super(message);
  }
}

/** dm.min_free_space would be violated by a new snapshot. */
export class PoolFreeSpaceError extends DeviceSetError {
  override readonly name = 'PoolFreeSpaceError';
  readonly code = 'EPOOLFREESPACE';
  constructor(readonly what: 'data' | 'metadata', readonly freeBlocks: bigint, readonly requiredBlocks: bigint) {
    super(
      `thin pool has ${freeBlocks} free ${what} blocks, which is less than the minimum required ${requiredBlocks} free ${what} blocks; ` +
        'create more free space in the thin pool or lower dm.min_free_space',
    );
  }
}

/** dm.thinpooldev names a device that is missing or not a thin pool, or a pool we may not take over. */
export class ThinPoolOwnershipError extends DeviceSetError {
  override readonly name = 'ThinPoolOwnershipError';
  readonly code = 'ETHINPOOLOWNERSHIP';
  constructor(readonly pool: string, reason: string, options?: { cause?: unknown }) {
    super(`thin pool ${pool}: ${reason}`, options);
  }
}

/**
 * A pool's backing file is already bound to a loop device that a live device-mapper device uses
 * (another pool over the same data/metadata, e.g. after the root changed identity): building a
 * second pool over the same thin metadata would corrupt it.
 */
export class BackingFileInUseError extends DeviceSetError {
  override readonly name = 'BackingFileInUseError';
  readonly code = 'EBACKINGFILEINUSE';
  constructor(readonly file: string, readonly loopDevices: readonly string[], readonly holders: readonly string[]) {
    super(
      `${file} is bound to ${loopDevices.join(', ')}, which the live device-mapper device(s) ${holders.join(', ')} use: ` +
        'refusing to build a second pool over the same files; shut the other pool down first (or remove it with dmsetup after checking it is not in use)',
    );
  }
}

/**
 * The pool's backing files or metadata are gone while records of its devices exist: the files
 * were deleted or replaced, or the metadata was zeroed. Nothing is created over them.
 */
export class BackingFilesLostError extends DeviceSetError {
  override readonly name = 'BackingFilesLostError';
  readonly code = 'EBACKINGLOST';
  constructor(readonly pool: string, reason: string) {
    super(`thin pool ${pool}: ${reason}`);
  }
}

/** The base device's filesystem UUID is not the one recorded: another pool or metadata dir. */
export class BaseUuidMismatchError extends DeviceSetError {
  override readonly name = 'BaseUuidMismatchError';
  readonly code = 'EBASEUUIDMISMATCH';
  constructor(readonly current: string, readonly stored: string) {
    super(
      `current base device UUID ${current} does not match the stored UUID ${stored}: ` +
        'possibly a different thin pool than last time, or its metadata was replaced',
    );
  }
}

/** The device is mounted (by this DeviceSet) and the operation needs it unmounted. */
export class DeviceInUseError extends DeviceSetError {
  override readonly name = 'DeviceInUseError';
  readonly code = 'EDEVICEINUSE';
  constructor(readonly hash: string, reason: string) {
    super(`${show(hash)} is in use: ${reason}`);
  }
}

/**
 * mount(2) failed; says why (errno), with what, and what the kernel logged about the device
 * meanwhile (the filesystem's own explanation, which the errno does not carry).
 */
export class MountFailedError extends DeviceSetError {
  override readonly name = 'MountFailedError';
  readonly code = 'EMOUNTFAILED';
  /** Kernel log lines written during the mount about this device (or the last few); may be empty. */
  readonly kernelLog: readonly string[];
  constructor(
    readonly hash: string,
    readonly device: string,
    readonly mountPoint: string,
    readonly fstype: string,
    readonly data: string,
    reason: string,
    options?: { cause?: unknown; kernelLog?: readonly string[] },
  ) {
    const log = options?.kernelLog ?? [];
    const tail = log.length > 0 ? `; kernel log: ${log.join(' | ')}` : '';
    super(`mounting ${show(hash)} (${device}, ${fstype}, options "${data}") on ${mountPoint} failed: ${reason}${tail}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kernelLog = log;
  }
}

/** An external filesystem tool (mkfs, blkid, resize2fs, xfs_growfs, tune2fs) failed. */
export class ExternalToolError extends DeviceSetError {
  override readonly name = 'ExternalToolError';
  readonly code = 'EEXTERNALTOOL';
  constructor(readonly command: readonly string[], readonly exitCode: number | null, readonly stderr: string, options?: { cause?: unknown }) {
    super(`${command.join(' ')} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim().slice(-600) || 'no output'}`, options);
  }
}

/**
 * The caller's AbortSignal fired. The step that was running when it fired was finished or undone
 * (the journal closes every step it opens), children it started were killed, and nothing after it
 * was started. `cause` is the signal's reason.
 */
export class OperationAbortedError extends DeviceSetError {
  override readonly name = 'OperationAbortedError';
  readonly code = 'EABORTED';
  constructor(readonly operation: string, options?: { cause?: unknown }) {
    super(`${operation} was aborted`, options);
  }
}

/** The DeviceSet was shut down (or is shutting down). */
export class DeviceSetClosedError extends DeviceSetError {
  override readonly name = 'DeviceSetClosedError';
  readonly code = 'EDEVICESETCLOSED';
  constructor() {
    super('this DeviceSet has been shut down');
  }
}

/** A capability the options ask for is missing on this kernel (deferred removal, xfs retries). */
export class DeviceSetUnsupportedError extends DeviceSetError {
  override readonly name = 'DeviceSetUnsupportedError';
  readonly code = 'EDEVICESETUNSUPPORTED';
  constructor(message: string) {
    super(message);
  }
}

/** The unknown filesystem found on a device (no ext4/xfs magic). */
export class UnknownFilesystemError extends DeviceSetError {
  override readonly name = 'UnknownFilesystemError';
  readonly code = 'EUNKNOWNFS';
  constructor(readonly device: string) {
    super(`unknown filesystem type on ${device} (neither ext4 nor xfs magic found)`);
  }
}

/** Name of the lock file inside the root (root-lock.ts; named here for DeviceSetLockedError's message). */
export const LOCK_FILE = 'devmapper.lock';

/** Another process (or another DeviceSet of this one) already has the root open. */
export class DeviceSetLockedError extends DeviceSetError {
  override readonly name = 'DeviceSetLockedError';
  readonly code = 'EDEVICESETLOCKED';
  readonly root: string;
  /** The holder's pid as it recorded it in the lock file; null when unknown (not written yet). */
  readonly pid: number | null;
  constructor(root: string, pid: number | null, options?: { cause?: unknown }) {
    const who = pid === null ? 'another process (pid not known)' : `process ${pid}${pid === process.pid ? ' (this process)' : ''}`;
    super(
      `${root} is in use by ${who}, which holds the lock on ${join(root, LOCK_FILE)}: ` +
        `only one DeviceSet may open a root at a time; shut the other one down first`,
      options,
    );
    this.root = root;
    this.pid = pid;
  }
}

/** `<root>/devmapper.lock` is something we must not lock: a symlink, not a regular file, or not ours. */
export class LockFileError extends DeviceSetError {
  override readonly name = 'LockFileError';
  readonly code = 'ELOCKFILE';
  readonly path: string;
  readonly reason: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`refusing the root lock ${path}: it ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}
