// SPDX-License-Identifier: MIT
// Errors of the thin layer: pool and thin-device states the kernel reports (drivers/md/dm-thin.c),
// metadata-device checks, transaction ids, resize refusals and "that device is not what you said
// it is". The errno → error translation lives in errno-map.ts; this file imports no sibling.
import { DevmapperError } from '../errors.js';

/** Where a thin error happened; every field is optional because callers know different things. */
export interface ThinErrorContext {
  /** dm name of the pool device. */
  readonly pool?: string;
  /** Thin device id the operation was about. */
  readonly devId?: number;
  /** The exact message string sent to the pool, when the error came from DM_TARGET_MSG. */
  readonly message?: string;
}

/**
 * Base of the thin-layer errors. Each subclass has a stable `code`; `cause`
 * keeps the lower-level error (usually the dm layer's IoctlError).
 */
export abstract class ThinError extends DevmapperError {
  readonly pool: string | undefined;
  readonly devId: number | undefined;
  readonly thinMessage: string | undefined;
  constructor(text: string, context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(text, options);
    this.pool = context.pool;
    this.devId = context.devId;
    this.thinMessage = context.message;
  }
}

const onPool = (c: ThinErrorContext): string => (c.pool ? ` in pool ${c.pool}` : '');
const poolName = (c: ThinErrorContext): string => (c.pool ? `pool ${c.pool}` : 'thin pool');

/** `create_thin` / `create_snap` with an id that already exists in the pool metadata (EEXIST). */
export class ThinIdInUseError extends ThinError {
  override readonly name = 'ThinIdInUseError';
  readonly code = 'ETHINIDINUSE';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`thin device id ${context.devId ?? '?'} is already in use${onPool(context)}`, context, options);
  }
}

/**
 * A thin id that the pool metadata does not know (ENODATA): `delete` of a
 * missing id, `create_snap` from a missing origin, or loading a `thin` target
 * for an id that was never created.
 */
export class ThinIdNotFoundError extends ThinError {
  override readonly name = 'ThinIdNotFoundError';
  readonly code = 'ETHINIDNOTFOUND';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`thin device id ${context.devId ?? '?'} does not exist${onPool(context)}`, context, options);
  }
}

/** `delete` of a thin device that is still open/active (EBUSY). Deactivate it first. */
export class ThinDeviceBusyError extends ThinError {
  override readonly name = 'ThinDeviceBusyError';
  readonly code = 'ETHINBUSY';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`thin device id ${context.devId ?? '?'} is active${onPool(context)}`, context, options);
  }
}

/**
 * The pool has no free data blocks: status mode `out_of_data_space`. Writes
 * queue (for `no_space_timeout` seconds, default 60) or fail with
 * `error_if_no_space`; the fix is to grow the data device and reload the pool.
 */
export class PoolOutOfDataSpaceError extends ThinError {
  override readonly name = 'PoolOutOfDataSpaceError';
  readonly code = 'EPOOLNODATASPACE';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`${poolName(context)} is out of data space`, context, options);
  }
}

/**
 * A metadata operation hit ENOSPC. Pool messages only ever allocate *metadata*
 * blocks (create_snap shares data blocks), so ENOSPC from a message means the
 * metadata device is full; the kernel then switches the pool to read-only and
 * sets needs_check (thin-provisioning.rst, "Metadata space").
 */
export class PoolOutOfMetadataSpaceError extends ThinError {
  override readonly name = 'PoolOutOfMetadataSpaceError';
  readonly code = 'EPOOLNOMETASPACE';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`${poolName(context)} is out of metadata space`, context, options);
  }
}

/**
 * The pool is read-only (status mode `ro`; also after running out of metadata
 * space). Every pool message then fails EOPNOTSUPP (pool_message() in dm-thin.c).
 */
export class PoolReadOnlyError extends ThinError {
  override readonly name = 'PoolReadOnlyError';
  readonly code = 'EPOOLREADONLY';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`${poolName(context)} is read-only`, context, options);
  }
}

/** Metadata is flagged `needs_check`: run thin_check/thin_repair before using the pool read-write. */
export class PoolNeedsCheckError extends ThinError {
  override readonly name = 'PoolNeedsCheckError';
  readonly code = 'EPOOLNEEDSCHECK';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`${poolName(context)} metadata needs checking (thin_check)`, context, options);
  }
}

/** The pool is in fail mode (status `Fail`) or its metadata cannot be read (status `Error`). */
export class PoolFailedError extends ThinError {
  override readonly name = 'PoolFailedError';
  readonly code = 'EPOOLFAILED';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`${poolName(context)} has failed`, context, options);
  }
}

/** Removing the pool while thin devices still hold it open (EBUSY on DM_DEV_REMOVE). */
export class PoolBusyError extends ThinError {
  override readonly name = 'PoolBusyError';
  readonly code = 'EPOOLBUSY';
  constructor(context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(`${poolName(context)} is busy: thin devices are still active`, context, options);
  }
}

/**
 * `set_transaction_id <old> <new>` was refused because the pool's transaction id is not `old`.
 * The kernel answers a plain EINVAL (the same errno as a malformed message), so this is only
 * raised after re-reading the pool status and seeing that the id really differs.
 */
export class TransactionIdMismatchError extends ThinError {
  override readonly name = 'TransactionIdMismatchError';
  readonly code = 'ETHINTRANSACTIONID';
  /** The `old` value the caller passed. */
  readonly expected: bigint;
  /** The transaction id the pool reported right after the failure. */
  readonly actual: bigint;
  constructor(expected: bigint, actual: bigint, context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(
      `transaction id of ${context.pool ? `pool ${context.pool}` : 'the thin pool'} is ${actual}, not ${expected}`,
      context,
      options,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * A new pool was asked for (`metadata: 'new'`) but the first 4 KiB of the metadata device are
 * not zero. The kernel would either reuse stale thin metadata (silently resurrecting old thin
 * devices) or fail to validate garbage: __open_or_format_metadata() in
 * drivers/md/dm-thin-metadata.c formats only a block 0 that is all zeroes, and otherwise opens and
 * checks the superblock it finds. So we refuse before loading.
 * Zero the block yourself, pass `zeroMetadata: true`, or pass `metadata: 'reuse'`.
 */
export class PoolMetadataNotEmptyError extends ThinError {
  override readonly name = 'PoolMetadataNotEmptyError';
  readonly code = 'EPOOLMETANOTEMPTY';
  readonly metadataDev: string;
  constructor(metadataDev: string, context: ThinErrorContext = {}, options?: { cause?: unknown }) {
    super(
      `metadata device ${metadataDev} is not blank (its first 4 KiB are not zero); ` +
        "refusing to create a new pool over it (use zeroMetadata: true or metadata: 'reuse')",
      context,
      options,
    );
    this.metadataDev = metadataDev;
  }
}

/**
 * `metadata: 'reuse'` over a metadata device that holds no usable thin-pool superblock: block 0
 * is all zero (the kernel would format fresh metadata, which is not a reuse), it lacks the thin
 * superblock magic, or it records a different data block size (the kernel refuses that with
 * EINVAL). `reason` says which.
 */
export class PoolMetadataMismatchError extends ThinError {
  override readonly name = 'PoolMetadataMismatchError';
  readonly code = 'EPOOLMETAMISMATCH';
  readonly metadataDev: string;
  readonly reason: 'blank' | 'not-thin-metadata' | 'data-block-size';
  constructor(
    metadataDev: string,
    reason: 'blank' | 'not-thin-metadata' | 'data-block-size',
    detail: string,
    context: ThinErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(`metadata device ${metadataDev} cannot be reused: ${detail}`, context, options);
    this.metadataDev = metadataDev;
    this.reason = reason;
  }
}

/**
 * A pool resize that would shrink the data or metadata device. dm-thin never shrinks (the
 * constructor/preresume refuse a smaller size with EINVAL); we refuse before any ioctl.
 */
export class PoolShrinkError extends ThinError {
  override readonly name = 'PoolShrinkError';
  readonly code = 'EPOOLSHRINK';
  readonly device: 'data' | 'metadata';
  /** Current size in sectors. */
  readonly currentSectors: bigint;
  /** Requested (or found) size in sectors. */
  readonly requestedSectors: bigint;
  constructor(
    device: 'data' | 'metadata',
    currentSectors: bigint,
    requestedSectors: bigint,
    context: ThinErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(
      `${context.pool ? `pool ${context.pool}` : 'thin pool'}: cannot shrink the ${device} device ` +
        `from ${currentSectors} to ${requestedSectors} sectors (dm-thin only grows)`,
      context,
      options,
    );
    this.device = device;
    this.currentSectors = currentSectors;
    this.requestedSectors = requestedSectors;
  }
}

/**
 * A dm device that was opened as a thin-pool (or thin) has some other table: no live table, more
 * than one target, or another target type.
 */
export class UnexpectedTargetError extends ThinError {
  override readonly name = 'UnexpectedTargetError';
  readonly code = 'EUNEXPECTEDTARGET';
  readonly device: string;
  readonly expected: string;
  readonly found: readonly string[];
  constructor(device: string, expected: string, found: readonly string[], options?: { cause?: unknown }) {
    const what = found.length === 0 ? 'no live table' : `target(s) ${found.join(', ')}`;
    super(`dm device '${device}' is not a single ${expected} target: it has ${what}`, {}, options);
    this.device = device;
    this.expected = expected;
    this.found = found;
  }
}

/**
 * A block device given to the thin layer is held exclusively by someone else (mounted, used by
 * another dm table or pool): opening it with O_EXCL failed with EBUSY.
 */
export class BlockDeviceBusyError extends ThinError {
  override readonly name = 'BlockDeviceBusyError';
  readonly code = 'EBLOCKDEVBUSY';
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super(`block device ${path} is in use (mounted, or held by a dm table or pool)`, {}, options);
    this.path = path;
  }
}
