// SPDX-License-Identifier: MIT
// Errors of the stateful thin layer (ThinPool / ThinDevice): metadata-device checks, transaction
// ids, resize refusals and "that device is not what you said it is".
import { DevmapperError } from '../errors.js';
import { ThinError, type ThinErrorContext } from './errors.js';

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
 * devices) or fail to validate garbage (protocol-facts §4.6), so we refuse before loading.
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
export class UnexpectedTargetError extends DevmapperError {
  override readonly name = 'UnexpectedTargetError';
  readonly code = 'EUNEXPECTEDTARGET';
  readonly device: string;
  readonly expected: string;
  readonly found: readonly string[];
  constructor(device: string, expected: string, found: readonly string[], options?: { cause?: unknown }) {
    const what = found.length === 0 ? 'no live table' : `target(s) ${found.join(', ')}`;
    super(`dm device '${device}' is not a single ${expected} target: it has ${what}`, options);
    this.device = device;
    this.expected = expected;
    this.found = found;
  }
}

/**
 * A block device given to the thin layer is held exclusively by someone else (mounted, used by
 * another dm table or pool): opening it with O_EXCL failed with EBUSY.
 */
export class BlockDeviceBusyError extends DevmapperError {
  override readonly name = 'BlockDeviceBusyError';
  readonly code = 'EBLOCKDEVBUSY';
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super(`block device ${path} is in use (mounted, or held by a dm table or pool)`, options);
    this.path = path;
  }
}
