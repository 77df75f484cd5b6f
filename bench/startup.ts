// SPDX-License-Identifier: MIT
// node dist/bench/startup.js [--smoke] [--json] — how long the `devmapper` CLI takes to start,
// natively on this machine, against `node -e 0` (Node's own startup, the floor of any node CLI).
// Issue 21 item 4's target: `loop ls` and `dm ls` within 1.5× of `node -e 0`.
//
// Each command is spawned ROUNDS times, the commands interleaved round by round (so a busy
// moment of the machine hits every row alike); a row is the median wall time of its spawns and
// its ratio to the median of `node -e 0` in the same run. `loop ls` and `dm ls` do their kernel
// work too (one LOOP_CTL / sysfs walk, one DM_LIST_DEVICES); on a machine without device-mapper
// `dm ls` exits 6 after opening /dev/mapper/control fails, which is still a full startup. The
// exit status of each command is reported beside its row.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(repo, 'bin', 'devmapper.js');

export interface StartupRow {
  readonly command: string;
  /** Median wall time of one spawn, ms. */
  readonly ms: number;
  /** ms / the median of `node -e 0` in the same run. */
  readonly ratio: number;
  /** Exit status of the last spawn. */
  readonly exitCode: number | null;
}

/** The measured commands: argv after `node`. The first one is the floor. */
export const STARTUP_COMMANDS: readonly (readonly [string, readonly string[]])[] = [
  ['node -e 0', ['-e', '0']],
  ['devmapper --version', [bin, '--version']],
  ['devmapper --help', [bin, '--help']],
  ['devmapper loop ls --help', [bin, 'loop', 'ls', '--help']],
  ['devmapper loop ls', [bin, 'loop', 'ls']],
  ['devmapper dm ls', [bin, 'dm', 'ls']],
];

export function measureStartup(rounds = process.argv.includes('--smoke') ? 3 : 20): StartupRow[] {
  const times = STARTUP_COMMANDS.map(() => [] as number[]);
  const codes: (number | null)[] = STARTUP_COMMANDS.map(() => null);
  for (let r = 0; r < rounds; r++) {
    STARTUP_COMMANDS.forEach(([, args], i) => {
      const t = process.hrtime.bigint();
      const res = spawnSync(process.execPath, args, { stdio: 'ignore', cwd: repo });
      times[i]!.push(Number(process.hrtime.bigint() - t) / 1e6);
      codes[i] = res.status;
    });
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;
  const floor = median(times[0]!);
  return STARTUP_COMMANDS.map(([command], i) => {
    const ms = median(times[i]!);
    return { command, ms, ratio: ms / floor, exitCode: codes[i] ?? null };
  });
}

export function renderStartup(rows: readonly StartupRow[]): string {
  const w = Math.max(...rows.map((r) => r.command.length), 7);
  const lines = [`| ${'command'.padEnd(w)} | median (ms) | × node -e 0 | exit |`, `|${'-'.repeat(w + 2)}|-------------|-------------|------|`];
  for (const r of rows) lines.push(`| ${r.command.padEnd(w)} | ${r.ms.toFixed(1).padStart(11)} | ${r.ratio.toFixed(2).padStart(11)} | ${String(r.exitCode).padStart(4)} |`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = measureStartup();
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
  else console.log(renderStartup(rows));
}
