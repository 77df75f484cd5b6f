// SPDX-License-Identifier: MIT
// Shared argument checks of the target modules: the kernel's integer grammar (`dm_read_arg`,
// `sscanf("%llu%c")`) accepts only plain decimals, so we produce and accept only those.
import type { ValidationProblem } from '../../errors.js';

/** Largest `unsigned int` (UINT_MAX). */
export const U32_MAX = 0xffffffff;
/** Largest `sector_t` / `unsigned long long`. */
export const U64_MAX = (1n << 64n) - 1n;

/** A problem when `v` is not an integer number in `min..max`. */
export function intProblem(v: unknown, path: string, min: number, max: number): ValidationProblem[] {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    return [{ path, message: `must be an integer in ${min}..${max}`, value: v }];
  return [];
}

/** A problem when `v` is not a bigint sector in 0..2^64-1. */
export function sectorProblem(v: unknown, path: string): ValidationProblem[] {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX)
    return [{ path, message: 'must be a bigint sector in 0..2^64-1', value: v }];
  return [];
}

/** A plain decimal as a number when it fits in 0..max, else undefined. */
export function decimalNumber(s: string | undefined, max: number): number | undefined {
  if (s === undefined || !/^\d{1,20}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= max ? n : undefined;
}

/** A plain decimal as a bigint when it fits in 0..2^64-1, else undefined. */
export function decimalBigint(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^\d{1,20}$/.test(s)) return undefined;
  const n = BigInt(s);
  return n <= U64_MAX ? n : undefined;
}

/** The blank-separated words of a parameter or status string (the kernel's `dm_split_args` without escapes). */
export function words(text: string): string[] {
  return text.split(/[ \t\n\r\f\v]+/).filter((w) => w !== '');
}
