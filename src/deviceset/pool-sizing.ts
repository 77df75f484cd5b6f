// SPDX-License-Identifier: MIT
// Options → thin-pool parameters and the free-space arithmetic of dm.min_free_space. Pure.
import type { ResolvedDeviceSetOptions } from './options.js';

/**
 * Docker's hard-coded low water mark: 32768 data blocks (2 GiB at the default 64 KiB block).
 * Below it the kernel raises a dm event; nothing is refused.
 */
export const DOCKER_LOW_WATER_BLOCKS = 32768n;

/**
 * The low water mark for a pool of `dataBlocks` blocks: Docker's 32768 blocks, but at most 5% of
 * the pool, so a small pool (tests, laptops) is not "below low water" from birth (Docker's fixed
 * value exceeds every pool under 2 GiB), and at least 1 block.
 */
export function lowWaterMarkFor(dataBlocks: bigint): bigint {
  const fivePercent = dataBlocks / 20n;
  const mark = fivePercent < DOCKER_LOW_WATER_BLOCKS ? fivePercent : DOCKER_LOW_WATER_BLOCKS;
  return mark < 1n ? 1n : mark;
}

/**
 * The low water mark of a pool with dm.autoextend_threshold `threshold` (percent): "used ≥
 * threshold %" is "free ≤ blocks × (100 − threshold) / 100", so the mark is
 * `floor(dataBlocks × (100 − threshold) / 100)`, at least 1 (a mark of 0 would only fire once
 * the pool is full, with out_of_data_space). dm-thin.c alloc_data_block() calls
 * check_low_water_mark() with the free count before each allocation, so the event comes with the
 * first allocation made while free ≤ mark (1024 blocks at 80%: mark 204, the 821st block).
 */
export function autoextendLowWaterMark(dataBlocks: bigint, threshold: number): bigint {
  const mark = (dataBlocks * BigInt(100 - threshold)) / 100n;
  return mark < 1n ? 1n : mark;
}

/** What {@link poolParamsFor} decides for a pool we create. */
export interface OwnedPoolParams {
  /** Data block size in 512-byte sectors. */
  readonly dataBlockSize: number;
  readonly lowWaterMark: bigint;
  /** Docker's only feature argument; zeroing new blocks costs a write per first touch. */
  readonly features: { readonly skipBlockZeroing: true };
}

/** The thin-pool table parameters for a pool of `dataBytes` created from `options` (the mark: {@link autoextendLowWaterMark} with autoextend on, else {@link lowWaterMarkFor}). */
export function poolParamsFor(options: Pick<ResolvedDeviceSetOptions, 'blockSize'> & Partial<Pick<ResolvedDeviceSetOptions, 'autoextendThreshold'>>, dataBytes: bigint): OwnedPoolParams {
  const dataBlockSize = Number(options.blockSize / 512n);
  const dataBlocks = dataBytes / options.blockSize;
  const threshold = options.autoextendThreshold ?? null;
  const lowWaterMark = threshold === null ? lowWaterMarkFor(dataBlocks) : autoextendLowWaterMark(dataBlocks, threshold);
  return { dataBlockSize, lowWaterMark, features: { skipBlockZeroing: true } };
}

/**
 * dm.min_free_space in blocks: `percent`% of `total`, rounded down (Docker's
 * `total * percent / 100`). 0 disables the check.
 */
export function minFreeBlocks(total: bigint, percent: number): bigint {
  return (total * BigInt(percent)) / 100n;
}

/** Which space a pool lacks for a new snapshot under dm.min_free_space, or null when both suffice. */
export function freeSpaceShortfall(
  status: { readonly usedDataBlocks: bigint; readonly totalDataBlocks: bigint; readonly usedMetadataBlocks: bigint; readonly totalMetadataBlocks: bigint },
  percent: number,
): { what: 'data' | 'metadata'; free: bigint; required: bigint } | null {
  if (percent === 0) return null;
  const dataFree = status.totalDataBlocks - status.usedDataBlocks;
  const dataMin = minFreeBlocks(status.totalDataBlocks, percent);
  if (dataFree < dataMin) return { what: 'data', free: dataFree, required: dataMin };
  const metaFree = status.totalMetadataBlocks - status.usedMetadataBlocks;
  const metaMin = minFreeBlocks(status.totalMetadataBlocks, percent);
  if (metaFree < metaMin) return { what: 'metadata', free: metaFree, required: metaMin };
  return null;
}
