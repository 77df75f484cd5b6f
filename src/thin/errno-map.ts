// SPDX-License-Identifier: MIT
// errno → thin error: what a failed pool message (DM_TARGET_MSG) or pool removal means, per
// drivers/md/dm-thin.c pool_message() and dm-thin-metadata.c. Kept apart from the classes in
// errors.ts, so that errors.ts imports nothing of this layer (pool-status.ts imports errors.ts).
import { errnoCode } from '../errors.js';
import {
  PoolBusyError,
  PoolFailedError,
  PoolNeedsCheckError,
  PoolOutOfMetadataSpaceError,
  PoolReadOnlyError,
  ThinDeviceBusyError,
  ThinIdInUseError,
  ThinIdNotFoundError,
} from './errors.js';
import type { ThinPoolStatus } from './pool-status.js';

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
 * domain error, keeping the original as `cause`. The errno is read with
 * `errnoCode`, so a wrapping error is looked through. Errors this layer does not
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
  const code = errnoCode(err);
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
  return errnoCode(err) === 'EBUSY' ? new PoolBusyError({ pool: context.pool }, { cause: err }) : err;
}
