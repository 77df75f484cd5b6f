// SPDX-License-Identifier: MIT
// Domain errors of the dm layer: the few errnos this layer understands, translated.
// Everything else propagates unchanged as the IoctlError raised by src/ioctl.
import { DevmapperError } from '../errors.js';

/** Base of every dm-layer error. `cause` keeps the lower-level error (usually an IoctlError). */
export abstract class DmError extends DevmapperError {}

/**
 * How the device was named when the lookup failed. Exactly one of the three is set, mirroring the
 * kernel's own lookup order in `drivers/md/dm-ioctl.c` (`__find_device_hash_cell`: uuid, then
 * name, then dev).
 */
export interface DeviceIdent {
  readonly name?: string;
  readonly uuid?: string;
  readonly dev?: { readonly major: number; readonly minor: number };
}

/** Human-readable form of a {@link DeviceIdent} for error messages. */
export function describeIdent(id: DeviceIdent): string {
  if (id.uuid !== undefined) return `uuid '${id.uuid}'`;
  if (id.name !== undefined) return `'${id.name}'`;
  if (id.dev !== undefined) return `${id.dev.major}:${id.dev.minor}`;
  return '(unnamed device)';
}

/**
 * The kernel has no device with that name / uuid / number. Raised for ENXIO on a command that looks
 * a device up (every command except CREATE, LIST_DEVICES, LIST_VERSIONS and REMOVE_ALL); the kernel
 * uses ENXIO, not ENOENT, for "no such mapped device" (`dm-ioctl.c`, `find_device`).
 * `cause` is the original IoctlError.
 */
export class DeviceNotFoundError extends DmError {
  override readonly name = 'DeviceNotFoundError';
  readonly code = 'EDEVICENOTFOUND';
  readonly device: DeviceIdent;
  constructor(device: DeviceIdent, options?: { cause?: unknown }) {
    super(`device-mapper device ${describeIdent(device)} does not exist`, options);
    this.device = device;
  }
}

/**
 * DM_DEV_CREATE (or a rename) failed with EBUSY: the name or the uuid is already taken, or the
 * requested persistent minor is in use. The kernel reports a taken name or uuid as EBUSY
 * (`dm_hash_insert`, `dm_hash_rename`) without saying which, and a taken minor as ENXIO
 * (`dm_create` when `alloc_dev` fails); DmControl maps both here.
 */
export class DeviceExistsError extends DmError {
  override readonly name = 'DeviceExistsError';
  readonly code = 'EDMDEVICEEXISTS';
  readonly device: DeviceIdent;
  constructor(device: DeviceIdent, options?: { cause?: unknown }) {
    super(
      `device-mapper device ${describeIdent(device)} cannot be created: the name, uuid or minor is already in use`,
      options,
    );
    this.device = device;
  }
}

/**
 * DM_DEV_REMOVE kept failing with EBUSY (the device is open) after the bounded retry policy ran out.
 * `attempts` is how many DM_DEV_REMOVE calls were made.
 */
export class DeviceBusyError extends DmError {
  override readonly name = 'DeviceBusyError';
  readonly code = 'EDEVICEBUSY';
  readonly device: DeviceIdent;
  readonly attempts: number;
  constructor(device: DeviceIdent, attempts: number, options?: { cause?: unknown }) {
    super(
      `device-mapper device ${describeIdent(device)} is still in use after ${attempts} remove attempt(s)`,
      options,
    );
    this.device = device;
    this.attempts = attempts;
  }
}

/**
 * The device-mapper driver is not available: opening the control node gave ENODEV (no dm driver in
 * the kernel and the `dm-mod` module could not be loaded), or the node could not be created.
 */
export class DmUnavailableError extends DmError {
  override readonly name = 'DmUnavailableError';
  readonly code = 'EDMUNAVAILABLE';
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`device-mapper is not available (${path}): ${reason}`, options);
    this.path = path;
  }
}

/** A `/dev/mapper/NAME` node could not be managed, e.g. a non-block file is in the way. */
export class DeviceNodeError extends DmError {
  override readonly name = 'DeviceNodeError';
  readonly code = 'EDEVICENODE';
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot manage device node ${path}: ${reason}`, options);
    this.path = path;
  }
}

/** What is wrong with a dm-log-writes log ({@link WriteLogCorruptError.problem}). */
export type WriteLogProblem =
  /** The log ends inside the super block, an entry header or an entry's data. */
  | 'truncated'
  /** The super block's magic is not LOG_WRITES_MAGIC. */
  | 'bad-magic'
  /** The super block's version is not LOG_WRITES_VERSION (1). */
  | 'bad-version'
  /** The super block's sector size is not a power of two in 512..65536. */
  | 'bad-sector-size'
  /** An entry header the kernel cannot have written (all zero, unknown flags, non-zero padding…). */
  | 'bad-entry'
  /** An entry's sector range does not fit a 2^53-byte device (no replay could address it). */
  | 'out-of-range';

/**
 * A dm-log-writes log that the kernel cannot have written as it is (drivers/md/dm-log-writes.c):
 * found by decodeLogWritesLog (and the fault kit's readWriteLog / replayLog, before anything is
 * written to a replay target).
 */
export class WriteLogCorruptError extends DmError {
  override readonly name = 'WriteLogCorruptError';
  readonly code = 'EWRITELOGCORRUPT';
  readonly problem: WriteLogProblem;
  /** The 0-based entry the problem is in; undefined for the super block. */
  readonly entry: number | undefined;
  /** Byte offset in the log where the faulty structure starts. */
  readonly offset: bigint;
  constructor(problem: WriteLogProblem, message: string, where: { entry?: number; offset?: bigint } = {}) {
    super(`dm-log-writes log: ${String(message)}`);
    this.problem = problem;
    this.entry = where.entry;
    this.offset = where.offset ?? 0n;
  }
}
