// SPDX-License-Identifier: MIT
// thin-pool INFO status line → typed variants (pool_status(), STATUSTYPE_INFO, in drivers/md/dm-thin.c).
import { KernelOutputError } from '../errors.js';
import {
  PoolFailedError,
  PoolNeedsCheckError,
  PoolOutOfDataSpaceError,
  PoolReadOnlyError,
  type ThinError,
} from './errors.js';
import { parseU64 } from './u64.js';

/** Pool mode as printed in field 5. `ro` is also what an out-of-*metadata*-space pool reports. */
export type ThinPoolMode = 'rw' | 'ro' | 'out_of_data_space';
/** Discard handling as printed in field 6 (`ignore_discard` is missing from the kernel doc but printed). */
export type ThinPoolDiscard = 'discard_passdown' | 'no_discard_passdown' | 'ignore_discard';
/** What happens to writes when data space runs out, field 7. */
export type ThinPoolNoSpacePolicy = 'error_if_no_space' | 'queue_if_no_space';

/** A pool that answered its status normally. Block counts are u64, hence bigint. */
export interface ThinPoolWorkingStatus {
  readonly kind: 'working';
  /** Field 1: the 64-bit transaction id set by `set_transaction_id`. */
  readonly transactionId: bigint;
  /** Field 2: used/total 4 KiB metadata blocks; "used" includes the kernel's hidden reserve. */
  readonly usedMetadataBlocks: bigint;
  readonly totalMetadataBlocks: bigint;
  /** Field 3: used/total data blocks (in units of the pool's data block size). */
  readonly usedDataBlocks: bigint;
  readonly totalDataBlocks: bigint;
  /** Field 4: root block of the metadata snapshot held by `reserve_metadata_snap`, or null (`-`). */
  readonly heldMetadataRoot: bigint | null;
  readonly mode: ThinPoolMode;
  readonly discardPassdown: ThinPoolDiscard;
  readonly noSpacePolicy: ThinPoolNoSpacePolicy;
  /** Field 8; `false` when an older kernel does not print it. */
  readonly needsCheck: boolean;
  /** Field 9, in metadata blocks; `null` when an older kernel does not print it. */
  readonly metadataLowWatermark: bigint | null;
}

/** The pool is in fail mode: the whole line is `Fail`. */
export interface ThinPoolFailStatus {
  readonly kind: 'fail';
}
/** A metadata query failed while building the status: the line is (or ends in) `Error`. */
export interface ThinPoolErrorStatus {
  readonly kind: 'error';
}

/** Parsed thin-pool status. Switch on `kind`. */
export type ThinPoolStatus = ThinPoolWorkingStatus | ThinPoolFailStatus | ThinPoolErrorStatus;

const MODES: readonly ThinPoolMode[] = ['rw', 'ro', 'out_of_data_space'];
const DISCARDS: readonly ThinPoolDiscard[] = ['discard_passdown', 'no_discard_passdown', 'ignore_discard'];
const POLICIES: readonly ThinPoolNoSpacePolicy[] = ['error_if_no_space', 'queue_if_no_space'];

/*
 * Fields every supported kernel prints: 1–7. Fields 8 (`needs_check`) and 9
 * (metadata low watermark) were appended by later kernels, so they are
 * optional here (pool_status() in drivers/md/dm-thin.c prints them last); which release
 * added each is not verified.
 * Kernels old enough to lack fields 5–7 (before the mode/discard/no-space
 * reporting) are not supported and give a KernelOutputError.
 */

function badField(line: string, index: number, what: string, raw: string | undefined, expected: string): KernelOutputError {
  const got = raw === undefined ? 'nothing' : JSON.stringify(raw);
  return new KernelOutputError(`thin-pool status field ${index} (${what}): got ${got}, expected ${expected}`, line);
}

function u64Field(line: string, words: readonly string[], index: number, what: string): bigint {
  const raw = words[index - 1];
  const n = parseU64(raw);
  if (n === undefined) throw badField(line, index, what, raw, 'an unsigned 64-bit decimal');
  return n;
}

function ratioField(line: string, words: readonly string[], index: number, what: string): [bigint, bigint] {
  const raw = words[index - 1];
  const parts = raw?.split('/');
  const used = parseU64(parts?.[0]);
  const total = parseU64(parts?.[1]);
  if (parts?.length !== 2 || used === undefined || total === undefined) {
    throw badField(line, index, what, raw, '"<used>/<total>" unsigned decimals');
  }
  return [used, total];
}

function enumField<T extends string>(line: string, words: readonly string[], index: number, what: string, allowed: readonly T[]): T {
  const raw = words[index - 1];
  if (raw === undefined || !(allowed as readonly string[]).includes(raw)) {
    throw badField(line, index, what, raw, allowed.join(' | '));
  }
  return raw as T;
}

/**
 * Parses a thin-pool INFO status line (the params part, after
 * `<start> <length> thin-pool`). Fields, space-separated with a trailing space:
 *
 * `<transaction id> <used>/<total meta> <used>/<total data> <held root|-> <mode>
 *  <discard> <no-space policy> <needs_check|-> <metadata low watermark> `
 *
 * Special forms: `Fail` (pool in fail mode) and `Error` (a metadata query
 * failed; the kernel may already have emitted part of the line, so any line
 * whose last word is `Error` counts). Leading/trailing blanks are ignored;
 * fields beyond the ninth, which a future kernel might append, are ignored too.
 * Reading status without DM_NOFLUSH_FLAG makes the kernel commit metadata first.
 *
 * @throws KernelOutputError naming the 1-based field index, the raw value and
 *   what was expected; never any other exception.
 * @example parseThinPoolStatus('0 1/1024 0/8192 - rw discard_passdown queue_if_no_space - 1024 ')
 */
export function parseThinPoolStatus(line: string): ThinPoolStatus {
  const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 1 && words[0] === 'Fail') return { kind: 'fail' };
  if (words.length > 0 && words[words.length - 1] === 'Error') return { kind: 'error' };
  // Fields are checked in order, so a short line reports its first missing
  // field ("got nothing") and a garbled one its first bad field.
  const transactionId = u64Field(line, words, 1, 'transaction id');
  const [usedMetadataBlocks, totalMetadataBlocks] = ratioField(line, words, 2, 'metadata blocks');
  const [usedDataBlocks, totalDataBlocks] = ratioField(line, words, 3, 'data blocks');
  // The kernel prints `-` when no metadata snapshot is held (root block 0 means "none").
  const heldMetadataRoot = words[3] === '-' ? null : u64Field(line, words, 4, 'held metadata root');
  const mode = enumField(line, words, 5, 'mode', MODES);
  const discardPassdown = enumField(line, words, 6, 'discard', DISCARDS);
  const noSpacePolicy = enumField(line, words, 7, 'no-space policy', POLICIES);

  let needsCheck = false;
  const nc = words[7];
  if (nc !== undefined) {
    if (nc !== 'needs_check' && nc !== '-') throw badField(line, 8, 'needs_check', nc, 'needs_check | -');
    needsCheck = nc === 'needs_check';
  }
  const metadataLowWatermark = words[8] === undefined ? null : u64Field(line, words, 9, 'metadata low watermark');

  return {
    kind: 'working',
    transactionId,
    usedMetadataBlocks,
    totalMetadataBlocks,
    usedDataBlocks,
    totalDataBlocks,
    heldMetadataRoot,
    mode,
    discardPassdown,
    noSpacePolicy,
    needsCheck,
    metadataLowWatermark,
  };
}

/**
 * Free data blocks (`total − used`). Clamped at 0: both numbers are read
 * separately by the kernel, and a resize between reads must not yield a
 * negative count.
 */
export function poolDataFree(status: ThinPoolWorkingStatus): bigint {
  const free = status.totalDataBlocks - status.usedDataBlocks;
  return free > 0n ? free : 0n;
}

/** Free metadata blocks (`total − used`, clamped at 0). "Used" already counts the kernel's reserve. */
export function poolMetadataFree(status: ThinPoolWorkingStatus): bigint {
  const free = status.totalMetadataBlocks - status.usedMetadataBlocks;
  return free > 0n ? free : 0n;
}

/** True when the pool reports mode `out_of_data_space`. */
export function isOutOfDataSpace(status: ThinPoolStatus): boolean {
  return status.kind === 'working' && status.mode === 'out_of_data_space';
}

/** True when the pool refuses changes: mode `ro`, or not working at all. */
export function isPoolReadOnly(status: ThinPoolStatus): boolean {
  return status.kind !== 'working' || status.mode === 'ro';
}

/**
 * True when free data blocks are below `lowWaterMark` — the condition on
 * which the kernel raises its (edge-triggered) low-water dm event.
 */
export function isBelowLowWater(status: ThinPoolWorkingStatus, lowWaterMark: bigint | number): boolean {
  return poolDataFree(status) < BigInt(lowWaterMark);
}

/**
 * The error that explains why a pool with this status cannot take new thin
 * devices or snapshots, or `null` when it is writable. Checked in order of
 * severity: failed, needs_check, read-only, out of data space.
 */
export function poolStatusError(status: ThinPoolStatus, pool?: string): ThinError | null {
  const ctx = pool === undefined ? {} : { pool };
  if (status.kind !== 'working') return new PoolFailedError(ctx);
  if (status.needsCheck) return new PoolNeedsCheckError(ctx);
  if (status.mode === 'ro') return new PoolReadOnlyError(ctx);
  if (status.mode === 'out_of_data_space') return new PoolOutOfDataSpaceError(ctx);
  return null;
}
