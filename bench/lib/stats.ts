// SPDX-License-Identifier: MIT
// Sample summaries for the benchmarks: every series is a list of per-operation times in
// microseconds, one per repetition (a repetition may time a batch and divide).

/** Median and range of one series, in microseconds. */
export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** The median of a non-empty list (mean of the middle two for even lengths). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty series');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(samplesUs: readonly number[]): Summary {
  return {
    n: samplesUs.length,
    median: median(samplesUs),
    min: Math.min(...samplesUs),
    max: Math.max(...samplesUs),
  };
}

/** Nanoseconds (as printed by the C programs) to microseconds. */
export function nsToUs(ns: readonly number[]): number[] {
  return ns.map((v) => v / 1000);
}

/** Formats microseconds with a unit that keeps 3 significant digits. */
export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  if (us < 10) return `${us.toFixed(2)} µs`;
  if (us < 1000) return `${us.toFixed(us < 100 ? 1 : 0)} µs`;
  const ms = us / 1000;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : ms < 100 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** "median (min–max)". */
export function fmtSummary(s: Summary | null | undefined): string {
  if (!s) return 'n/a';
  return `${fmtUs(s.median)} (${fmtUs(s.min)}–${fmtUs(s.max)})`;
}

/** A ratio with two decimals, or 'n/a'. */
export function fmtRatio(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return 'n/a';
  return r >= 100 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}
