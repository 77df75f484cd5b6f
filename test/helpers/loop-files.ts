// SPDX-License-Identifier: MIT
// Privileged tests: running a tool, and a loop device (made with losetup, the independent tool)
// over a fresh sparse file under the run's temp dir, which the sweep detaches if a test does not.
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDevNum, type DevNum } from '../../src/dm/index.js';
import { testTmpDir } from './privileged.js';

/** Runs a tool and returns its stdout; throws (with its stderr) on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 120_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
}

/** A loop device over a fresh sparse file of `bytes` under the run's temp dir. */
export function makeLoop(label: string, bytes: number): { dev: string; file: string } {
  const file = join(testTmpDir(), `${label}-${Math.random().toString(36).slice(2, 8)}.img`);
  writeFileSync(file, '');
  run('truncate', ['-s', String(bytes), file]);
  const dev = run('losetup', ['--find', '--show', file]).trim();
  return { dev, file };
}

/** The device number of a block node (its st_rdev, decoded as glibc's major()/minor() do). */
export function rdevOf(path: string): DevNum {
  return decodeDevNum(BigInt(statSync(path).rdev));
}
