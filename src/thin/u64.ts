// SPDX-License-Identifier: MIT
// Unsigned 64-bit decimal helpers shared by the thin params/status parsers and message builders.

/** 2^64 − 1: the range of every `%llu` field dm-thin prints and of its u64 message args. */
export const U64_MAX = (1n << 64n) - 1n;

const DECIMAL = /^\d+$/;

/**
 * Parses a plain unsigned decimal (`%llu` output) into a bigint, or `undefined`.
 * Signs, hex, exponents and surrounding blanks are refused: the kernel never prints them.
 * @internal
 */
export function parseU64(text: string | undefined): bigint | undefined {
  if (text === undefined || !DECIMAL.test(text)) return undefined;
  const n = BigInt(text);
  return n <= U64_MAX ? n : undefined;
}

/** True when `n` is a bigint in 0 … 2^64 − 1. @internal */
export function isU64(n: unknown): n is bigint {
  return typeof n === 'bigint' && n >= 0n && n <= U64_MAX;
}
