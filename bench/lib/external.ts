// SPDX-License-Identifier: MIT
// The comparison implementations, as the guest runs them: the C floor and libdm programs
// (bench/reference/*.c, compiled on the host by bench/run.ts) and the dmsetup/losetup CLIs,
// spawned once per operation the way shell scripts and Node tools do it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { nsToUs } from './stats.js';

export type CProgram = 'floor' | 'libdm';

/** Output of one C program run: every series in µs per operation. */
export interface CRun {
  readonly series: Record<string, number[]>;
  readonly retries: number;
  readonly stderr: string;
}

export class External {
  constructor(
    readonly binDir: string,
    /** Why libdm is missing ('' when its program is there). */
    readonly libdmUnavailable: string,
  ) {}

  has(which: CProgram): boolean {
    return existsSync(join(this.binDir, which)) && (which === 'floor' || this.libdmUnavailable === '');
  }

  /** Runs `<binDir>/<which> <op> k=v…` and parses its JSON line. Throws with stderr on failure. */
  run(which: CProgram, op: string, args: Readonly<Record<string, string | number>>): CRun {
    const argv = [op, ...Object.entries(args).map(([k, v]) => `${k}=${v}`)];
    const bin = join(this.binDir, which);
    let stdout: string;
    const r = spawnSync(bin, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000, maxBuffer: 64 << 20 });
    if (r.error) throw new Error(`${which} ${argv.join(' ')}: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`${which} ${argv.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
    stdout = r.stdout;
    const line = stdout.trim().split('\n').pop() ?? '';
    const j = JSON.parse(line) as { series: Record<string, number[]>; retries: number };
    const series: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(j.series)) series[k] = nsToUs(v);
    return { series, retries: j.retries, stderr: r.stderr };
  }
}

/** One CLI invocation, timed from spawn to exit (µs). Throws on a non-zero exit. */
export function timeCli(cmd: string, args: readonly string[]): { us: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  const us = (performance.now() - t0) * 1000;
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return { us, stdout: r.stdout };
}

/** Quietly runs a command (setup/cleanup); returns false on failure. */
export function tryRun(cmd: string, args: readonly string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 120_000 });
    return true;
  } catch {
    return false;
  }
}
