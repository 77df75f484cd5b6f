// SPDX-License-Identifier: MIT
// thin target INFO status line → typed variants (thin_status() in drivers/md/dm-thin.c).
import { KernelOutputError } from '../errors.js';
import { parseU64 } from './u64.js';

/** An open thin device: how much of it is provisioned. */
export interface ThinWorkingStatus {
  readonly kind: 'working';
  /** Provisioned sectors: mapped blocks × data block size. */
  readonly mappedSectors: bigint;
  /**
   * Last sector of the highest mapped block, `(highest_block + 1) × block_size − 1`,
   * or null when nothing is mapped (the kernel prints `-`).
   */
  readonly highestMappedSector: bigint | null;
}
/** The pool is in fail mode: `Fail`. */
export interface ThinFailStatus {
  readonly kind: 'fail';
}
/** A metadata query failed: `Error`. */
export interface ThinErrorStatus {
  readonly kind: 'error';
}
/** The thin device is not open in the pool (no table active for it): `-`. */
export interface ThinInactiveStatus {
  readonly kind: 'inactive';
}

/** Parsed thin status. Switch on `kind`. */
export type ThinStatus = ThinWorkingStatus | ThinFailStatus | ThinErrorStatus | ThinInactiveStatus;

function badField(line: string, index: number, what: string, raw: string | undefined, expected: string): KernelOutputError {
  const got = raw === undefined ? 'nothing' : JSON.stringify(raw);
  return new KernelOutputError(`thin status field ${index} (${what}): got ${got}, expected ${expected}`, line);
}

/**
 * Parses a thin INFO status line: `<nr_mapped_sectors> <highest_mapped_sector|->`,
 * or the single words `Fail`, `Error` (possibly after a partial line) or `-`.
 * Surrounding blanks are ignored.
 * @throws KernelOutputError naming the 1-based field index, raw value and expectation.
 * @example parseThinStatus('2048 4095') // → { kind: 'working', mappedSectors: 2048n, highestMappedSector: 4095n }
 */
export function parseThinStatus(line: string): ThinStatus {
  const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 1) {
    if (words[0] === 'Fail') return { kind: 'fail' };
    if (words[0] === 'Error') return { kind: 'error' };
    if (words[0] === '-') return { kind: 'inactive' };
  }
  // thin_status() emits the mapped count before the lookup that can fail, so "123 Error" is possible.
  if (words.length > 0 && words[words.length - 1] === 'Error') return { kind: 'error' };

  const mappedSectors = parseU64(words[0]);
  if (mappedSectors === undefined) {
    throw badField(line, 1, 'mapped sectors', words[0], 'an unsigned 64-bit decimal (or Fail / Error / -)');
  }
  const raw = words[1];
  const highest = raw === '-' ? null : parseU64(raw);
  if (highest === undefined) throw badField(line, 2, 'highest mapped sector', raw, 'an unsigned 64-bit decimal or -');
  if (words.length > 2) throw badField(line, 3, 'end of line', words[2], 'exactly 2 fields');
  return { kind: 'working', mappedSectors, highestMappedSector: highest };
}
