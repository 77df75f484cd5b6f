// SPDX-License-Identifier: MIT
// bench/results/history.jsonl (issue 21 §5): one JSON line per full run, so a regression shows
// across commits. A line holds where and when it was measured and every ratio the run produced:
// the guest's ours/floor per operation (`npm run bench`), the native loop rows and the CLI startup
// rows (both runs). The smoke run never appends. The report prints the previous line of the same
// kind beside the new one.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO } from './cc.js';
import type { NativeLoopResult } from './native-loop.js';
import type { BenchResults } from './results.js';

/** The committed history file. */
export const HISTORY_FILE = join(REPO, 'bench/results/history.jsonl');

/** Which command wrote the line: the full VM run, or the native rows alone. */
export type HistorySource = 'bench' | 'bench:overhead';

export interface HistoryLine {
  readonly source: HistorySource;
  /** `git rev-parse HEAD`, and whether the work tree had uncommitted changes. */
  readonly commit: string;
  readonly dirty: boolean;
  /** ISO date of the run. */
  readonly date: string;
  /** The host's kernel (native rows), and the guest's for a VM run. */
  readonly kernel: string;
  readonly guestKernel?: string;
  /** Host name, CPU model and count, 1-minute load average when the run started. */
  readonly host: { readonly name: string; readonly cpu: string; readonly cpus: number; readonly load1: number };
  /**
   * Ratios by key: `vm:<op id>` ours/floor in the guest, `native:<op id>` ours/floor on the host's
   * loop driver, `startup:<command>` × `node -e 0`. Each is rounded to 3 decimals.
   */
  readonly ratios: Readonly<Record<string, number>>;
}

/** Startup rows as bench/startup.ts returns them (only what the history needs). */
export interface StartupRatio {
  readonly command: string;
  readonly ratio: number;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** Where the run happens: commit, dirty flag, host. Taken when the run starts (load average). */
export function runContext(): Pick<HistoryLine, 'commit' | 'dirty' | 'date' | 'kernel' | 'host'> {
  const cpu = cpus();
  return {
    commit: git(['rev-parse', 'HEAD']) || 'unknown',
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    date: new Date().toISOString(),
    kernel: release(),
    host: { name: hostname(), cpu: cpu[0]?.model ?? 'unknown', cpus: cpu.length, load1: round(loadavg()[0] ?? 0) },
  };
}

/** The ratios of one run, keyed as {@link HistoryLine.ratios} describes. */
export function collectRatios(parts: { vm?: BenchResults; loop?: NativeLoopResult; startup?: readonly StartupRatio[] }): Record<string, number> {
  const out: Record<string, number> = {};
  for (const op of parts.vm?.ops ?? []) {
    const ours = op.impl.ours?.median;
    const floor = op.impl.floor?.median;
    if (ours !== undefined && floor !== undefined && floor > 0) out[`vm:${op.id}`] = round(ours / floor);
  }
  for (const row of parts.loop?.rows ?? []) out[`native:${row.id}`] = round(row.ratio);
  for (const row of parts.startup ?? []) {
    if (row.command !== 'node -e 0') out[`startup:${row.command}`] = round(row.ratio);
  }
  return out;
}

/** Every line of the history file (none when it does not exist); malformed lines are skipped. */
export function readHistory(file = HISTORY_FILE): HistoryLine[] {
  if (!existsSync(file)) return [];
  const out: HistoryLine[] = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    if (raw.trim() === '') continue;
    try {
      const line = JSON.parse(raw) as HistoryLine;
      if (typeof line.ratios === 'object' && line.ratios !== null) out.push(line);
    } catch {
      /* a broken line hides nothing else */
    }
  }
  return out;
}

/** The most recent line of the same source, if any. */
export function previousLine(lines: readonly HistoryLine[], source: HistorySource): HistoryLine | undefined {
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.source === source) return lines[i];
  return undefined;
}

/** Appends one line (creating the directory). */
export function appendHistory(line: HistoryLine, file = HISTORY_FILE): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

/** A ratio that grew by more than this fraction is flagged as a possible regression. */
export const REGRESSION_FRACTION = 0.1;

/** The new ratios beside the previous line's: key, previous, now, change; regressions flagged. */
export function renderHistoryComparison(prev: HistoryLine | undefined, cur: HistoryLine): string {
  const head = prev
    ? `Previous ${prev.source} run: ${prev.commit.slice(0, 10)}${prev.dirty ? ' (dirty)' : ''}, ${prev.date}, load ${prev.host.load1}; this run: ${cur.commit.slice(0, 10)}${cur.dirty ? ' (dirty)' : ''}, load ${cur.host.load1}.`
    : `No previous ${cur.source} line in the history: nothing to compare with.`;
  const keys = [...new Set([...Object.keys(cur.ratios), ...Object.keys(prev?.ratios ?? {})])].sort();
  const lines = [head, '', '| ratio | previous | now | change |', '|---|---|---|---|'];
  for (const k of keys) {
    const p = prev?.ratios[k];
    const n = cur.ratios[k];
    let change = '';
    if (p !== undefined && n !== undefined && p > 0) {
      const d = n / p - 1;
      change = `${d >= 0 ? '+' : ''}${(d * 100).toFixed(0)} %${d > REGRESSION_FRACTION ? ' ▲ regression?' : ''}`;
    }
    lines.push(`| ${k} | ${p === undefined ? '—' : `${p.toFixed(2)}×`} | ${n === undefined ? '—' : `${n.toFixed(2)}×`} | ${change} |`);
  }
  return lines.join('\n');
}
