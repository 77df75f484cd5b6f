// SPDX-License-Identifier: MIT
// Thin-pool domain errors and the errno → domain translation for pool messages (drivers/md/dm-thin.c).
import { DevmapperError, errnoName } from '../errors.js';
import type { ThinPoolStatus } from './pool-status.js';

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
 * The errno code of an error, duck-typed so that this layer does not depend on
 * the ioctl layer's IoctlError: a string `code` like `'EEXIST'` wins, else a
 * numeric `errno` (positive, or negative as in Node's SystemError) is named.
 * @internal
 */
export function errnoCodeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
  if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0) return errnoName(errno);
  return undefined;
}

/** Extra facts the caller may have when translating a message failure. */
export interface MapThinMessageErrorContext {
  /** dm name of the pool. */
  readonly pool?: string;
  /**
   * A pool status read after the failure. With it, EOPNOTSUPP is told apart
   * into failed / needs-check / read-only; without it, read-only is assumed.
   */
  readonly status?: ThinPoolStatus;
}

/** Decimal id at `index` in a message's words, if it is one. */
function idArg(words: readonly string[], index: number): number | undefined {
  const w = words[index];
  return w !== undefined && /^\d+$/.test(w) ? Number(w) : undefined;
}

/**
 * Translates the error of a failed pool message (DM_TARGET_MSG) into a thin
 * domain error, keeping the original as `cause`. Errors this layer does not
 * understand are returned unchanged, so callers can always `throw map(...)`.
 *
 * | errno | message | result |
 * |---|---|---|
 * | EEXIST | create_thin, create_snap | {@link ThinIdInUseError} (new id) |
 * | ENODATA | delete | {@link ThinIdNotFoundError} (that id) |
 * | ENODATA | create_snap | {@link ThinIdNotFoundError} (the *origin* id) |
 * | EBUSY | delete | {@link ThinDeviceBusyError} |
 * | EOPNOTSUPP | any | {@link PoolFailedError} / {@link PoolNeedsCheckError} / {@link PoolReadOnlyError}, from `context.status` |
 * | ENOSPC | any | {@link PoolOutOfMetadataSpaceError} |
 *
 * Errnos per drivers/md/dm-thin.c pool_message() and dm-thin-metadata.c
 * (EEXIST from __create_thin/__create_snap, ENODATA from the btree lookup).
 * EINVAL is deliberately left alone: it covers both a set_transaction_id
 * mismatch and malformed messages, which a string alone cannot tell apart.
 */
export function mapThinMessageError(err: unknown, message: string, context: MapThinMessageErrorContext = {}): unknown {
  const code = errnoCodeOf(err);
  if (code === undefined) return err;
  const words = message.trim().split(/\s+/);
  const verb = words[0]?.toLowerCase();
  const base = { pool: context.pool, message };
  const opts = { cause: err };

  switch (code) {
    case 'EEXIST':
      if (verb === 'create_thin' || verb === 'create_snap') {
        return new ThinIdInUseError({ ...base, devId: idArg(words, 1) }, opts);
      }
      return err;
    case 'ENODATA':
      if (verb === 'delete') return new ThinIdNotFoundError({ ...base, devId: idArg(words, 1) }, opts);
      // create_snap <new> <origin>: the new id cannot be "missing", so the lookup that failed is the origin's.
      if (verb === 'create_snap') return new ThinIdNotFoundError({ ...base, devId: idArg(words, 2) }, opts);
      return err;
    case 'EBUSY':
      if (verb === 'delete') return new ThinDeviceBusyError({ ...base, devId: idArg(words, 1) }, opts);
      return err;
    case 'EOPNOTSUPP': {
      // The kernel refuses every message outside PM_WRITE with EOPNOTSUPP; the
      // status tells which non-writable mode the pool is in.
      const s = context.status;
      if (s && s.kind !== 'working') return new PoolFailedError(base, opts);
      if (s?.needsCheck) return new PoolNeedsCheckError(base, opts);
      return new PoolReadOnlyError(base, opts);
    }
    case 'ENOSPC':
      return new PoolOutOfMetadataSpaceError(base, opts);
    default:
      return err;
  }
}

/**
 * Translates a failed DM_DEV_REMOVE of the pool device: EBUSY means thin
 * devices still hold it open → {@link PoolBusyError}. Anything else is returned unchanged.
 */
export function mapPoolRemoveError(err: unknown, context: { readonly pool?: string } = {}): unknown {
  return errnoCodeOf(err) === 'EBUSY' ? new PoolBusyError({ pool: context.pool }, { cause: err }) : err;
}
