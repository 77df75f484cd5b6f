// SPDX-License-Identifier: MIT
// Reads uvu's footer ("Total: / Passed: / Skipped:") out of captured output.

export interface UvuSummary {
  readonly total: number;
  readonly passed: number;
  readonly skipped: number;
  readonly failed: number;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/**
 * Parses the LAST uvu footer in `text` (colour codes allowed). uvu counts skipped tests outside
 * Total, so failed = Total - Passed. Returns undefined when there is no footer (uvu crashed, e.g.
 * a throwing before-hook or an import error, which must count as a failure).
 */
export function parseUvuSummary(text: string): UvuSummary | undefined {
  const clean = text.replace(ANSI, '').replace(/\r/g, '');
  const re = /^\s*Total:\s+(\d+)\s*\n\s*Passed:\s+(\d+)\s*\n\s*Skipped:\s+(\d+)\s*$/gm;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(clean); m; m = re.exec(clean)) last = m;
  if (!last) return undefined;
  const total = Number(last[1]);
  const passed = Number(last[2]);
  const skipped = Number(last[3]);
  return { total, passed, skipped, failed: total - passed };
}

/**
 * What finished before the run stopped without a footer (a VM timeout, a crash): uvu ends each
 * suite's line with `(passed / total)`; those are summed. Tests of the suite that was running are
 * not in it.
 */
export function parseUvuProgress(text: string): { suites: number; passed: number; total: number } {
  const clean = text.replace(ANSI, '').replace(/\r/g, '');
  let suites = 0;
  let passed = 0;
  let total = 0;
  for (const m of clean.matchAll(/\((\d+) \/ (\d+)\)\s*$/gm)) {
    suites++;
    passed += Number(m[1]);
    total += Number(m[2]);
  }
  return { suites, passed, total };
}

/**
 * uvu's failure reports ("FAIL  suite  \"test\"" and the assertion and stack below it, printed
 * just above the footer), without colour codes, at most `maxLines` lines: what a CI record that
 * keeps only the end of the output must still show.
 */
export function uvuFailureReport(text: string, maxLines = 80): string[] {
  const lines = text.replace(ANSI, '').replace(/\r/g, '').split('\n');
  const first = lines.findIndex((l) => /^\s*FAIL\s/.test(l));
  if (first < 0) return [];
  let end = lines.findIndex((l, i) => i > first && /^\s*Total:\s+\d+/.test(l));
  if (end < 0) end = lines.length;
  const body = lines.slice(first, end);
  while (body.length > 0 && body[body.length - 1]!.trim() === '') body.pop();
  if (body.length <= maxLines) return body;
  return [...body.slice(0, maxLines), `… ${body.length - maxLines} more line(s) in the log`];
}

/**
 * What a failed VM cell must still show at the end of a CI record: uvu's failure reports, or, when
 * there are none (a timeout, a crash before the footer), the last `tail` lines of the log; then the
 * runner's closing lines (`[devmapper vm] …`: exit, timeout, seconds per file) wherever they are.
 */
export function cellFailureReport(text: string, maxLines = 60, tail = 25): string[] {
  const clean = text.replace(ANSI, '').replace(/\r/g, '');
  let body = uvuFailureReport(clean, maxLines);
  if (body.length === 0) {
    const lines = clean.split('\n');
    while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
    body = ['(no uvu failure report; the last lines of the log:)', ...lines.slice(-tail)];
  }
  const runner = clean.split('\n').filter((l) => l.startsWith('[devmapper vm]') && !body.includes(l));
  return [...body, ...runner];
}

/** `label: N passed, M failed`, the line format npm test ends with. */
export function summaryLine(label: string, passed: number, failed: number): string {
  return `${label}: ${passed} passed, ${failed} failed`;
}

/** What one matrix cell (one VM boot, see run-privileged.ts) reports to summarize.ts. */
export interface CellSummary {
  /** e.g. `vm[6.1.0-57-amd64]` or `vm[6.12.118+deb12-amd64, udev]`. */
  readonly label: string;
  readonly kernel: string;
  readonly udev: boolean;
  /** The uvu file pattern the cell ran. */
  readonly files: string;
  readonly passed: number;
  readonly failed: number;
  readonly exitCode: number;
  readonly timedOut: boolean;
  /** Wall time of the cell, kernel fetch and boot included. */
  readonly ms: number;
}

/** `vm[<kernel>]`, or `vm[<kernel>, udev]` when systemd-udevd ran in the guest. */
export function cellLabel(kernel: string, udev: boolean, tag?: string): string {
  return `vm[${kernel}${udev ? ', udev' : ''}${tag ? `, ${tag}` : ''}]`;
}
