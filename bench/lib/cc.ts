// SPDX-License-Identifier: MIT
// Compiling the C comparison programs (bench/reference/*.c) into .cache/bench/ on the host:
// used by bench/run.ts (for the guest) and by bench/overhead.ts (the native loop rows).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is dist/bench/lib/cc.js once built). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Where the compiled programs go. */
export const BIN_DIR = join(REPO, '.cache/bench');

/**
 * `cc -O2 -Wall -o BIN_DIR/bin bench/reference/src libs…`, replacing any older binary.
 * Returns '' on success, else why it failed (the caller reports the column as n/a).
 */
export function compileC(src: string, bin: string, libs: readonly string[] = []): string {
  mkdirSync(BIN_DIR, { recursive: true });
  rmSync(join(BIN_DIR, bin), { force: true });
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', join(BIN_DIR, bin), join(REPO, 'bench/reference', src), ...libs], { encoding: 'utf8' });
  if (r.error) return `cc not runnable: ${r.error.message}`;
  return r.status === 0 ? '' : `cc failed: ${r.stderr.trim()}`;
}
