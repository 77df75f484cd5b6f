// SPDX-License-Identifier: MIT
// DeviceSet roots of the autoextend privileged tests (deviceset-autoextend*.test.ts): each test's
// roots are cleaned up after it (unmount, then every dm device of the root's name prefix, pool
// last: our dm names carry no test marker), and the dmsetup readings both files check.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { prefixFor } from '../../src/deviceset/hash.js';
import { testTmpDir } from './privileged.js';

/** A command's stdout (throws on a non-zero exit; 120 s limit). */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

/** Unmounts anything under root and removes every dm device of its prefix (pool last). */
export function cleanupRoot(root: string): void {
  if (!existsSync(root)) return;
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const mp = line.split(' ')[1];
    if (mp && mp.startsWith(root + '/')) spawnSync('umount', ['-l', mp]);
  }
  const st = statSync(root, { bigint: true });
  const prefix = prefixFor({ dev: st.dev, ino: st.ino });
  const out = sh('dmsetup', ['ls']);
  const mine = /No devices found/i.test(out) ? [] : out.split('\n').map((l) => l.split('\t')[0]?.trim() ?? '').filter((d) => d.startsWith(`${prefix}-`));
  for (const d of [...mine.filter((x) => !x.endsWith('-pool')), ...mine.filter((x) => x.endsWith('-pool'))]) spawnSync('dmsetup', ['remove', '--force', '--retry', d]);
}

/** `dmsetup table NAME`'s length in sectors (field 2). */
export function tableSectors(name: string): number {
  return Number(sh('dmsetup', ['table', name]).trim().split(/\s+/)[1]);
}

/** `dmsetup status NAME` of a thin pool: `<start> <length> thin-pool <txid> <meta used/total> <data used/total> <held> <mode> …`. */
export function poolStatus(name: string): { meta: [number, number]; data: [number, number]; mode: string; words: string[] } {
  const w = sh('dmsetup', ['status', name]).trim().split(/\s+/);
  const ratio = (s: string | undefined): [number, number] => {
    const [a, b] = (s ?? '').split('/').map(Number);
    return [a ?? NaN, b ?? NaN];
  };
  return { meta: ratio(w[4]), data: ratio(w[5]), mode: w[7] ?? '', words: w };
}

/**
 * Roots under the test tmp dir named `<tag>-<kind>-<n>`, and `it`, which runs a test on `suite`,
 * prints a failure's stack and its duration under `[tag]`, and cleans up the roots it made.
 */
export function autoextendRoots(suite: (name: string, fn: () => Promise<void>) => void, tag: string, dirPrefix: string): {
  newRoot(kind: string): string;
  it(name: string, fn: () => Promise<void>): void;
} {
  const roots: string[] = [];
  let n = 0;
  return {
    newRoot(kind) {
      const root = join(testTmpDir(), `${dirPrefix}-${kind}-${++n}`);
      roots.push(root);
      return root;
    },
    it(name, fn) {
      suite(name, async () => {
        const mine = roots.length;
        const t0 = Date.now();
        try {
          await fn();
        } catch (err) {
          console.log(`  [${tag}] FAILED ${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          throw err;
        } finally {
          for (const r of roots.slice(mine)) cleanupRoot(r);
          console.log(`  [${tag}] ${name.split(':')[0]}: ${Date.now() - t0} ms`);
        }
      });
    },
  };
}

/**
 * `p`, or a rejection after `ms` naming `what` and `diagnose()`'s text: a step that never settles
 * fails its test with what was seen instead of holding the VM cell until its 50-minute limit. A
 * guard, not a speed check: the limit is minutes where the step takes seconds.
 */
export async function within<T>(p: Promise<T>, ms: number, what: string, diagnose: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms / 1000} s; ${diagnose()}`)), ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}
