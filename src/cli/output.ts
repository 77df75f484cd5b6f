// SPDX-License-Identifier: MIT
// Output helpers: JSON with exact 64-bit integers, aligned human tables, integer arguments. Loaded
// by most commands: it imports nothing of the library (the size syntax is in size-args.ts).
import { UsageError } from './errors.js';

/**
 * JSON text of `value` where every bigint is written as a plain JSON integer with all its digits
 * (JSON numbers have no size limit; `jq` keeps them exact, JS `JSON.parse` rounds above 2^53).
 * Output is pretty-printed with two spaces and ends in a newline.
 */
export function toJson(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v !== 'bigint') return v;
      marks.push(v.toString());
      return `\u0000big${marks.length - 1}\u0000`;
    },
    2,
  );
  return text.replace(/"\\u0000big(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]!) + '\n';
}

/** An aligned text table; the last column is not padded. Empty rows → just the header. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** A non-negative integer (decimal) argument. */
export function parseUintArg(text: string, what: string, command: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text) || Number(text) > max) throw new UsageError(`${what}: '${text}' is not an integer in 0..${max}`, command);
  return Number(text);
}

/** A non-negative integer that may exceed 2^53 (sectors, transaction ids). */
export function parseU64Arg(text: string, what: string, command: string): bigint {
  if (!/^\d+$/.test(text) || BigInt(text) > (1n << 64n) - 1n) throw new UsageError(`${what}: '${text}' is not an integer in 0..2^64-1`, command);
  return BigInt(text);
}

/** Human size: `64.0M`-style, binary units, for tables. */
export function humanSize(bytes: bigint | number): string {
  let n = Number(bytes);
  for (const u of ['B', 'K', 'M', 'G', 'T', 'P']) {
    if (n < 1024 || u === 'P') return u === 'B' ? `${n}B` : `${n.toFixed(n < 10 ? 1 : 0)}${u}`;
    n /= 1024;
  }
  return `${n}`;
}
