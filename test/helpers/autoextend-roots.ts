// SPDX-License-Identifier: MIT
// DeviceSet roots of the autoextend privileged tests (deviceset-autoextend*.test.ts): each test's
// roots are cleaned up after it (unmount, then every dm device of the root's name prefix, pool
// last: our dm names carry no test marker), and the dmsetup readings both files check.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
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

/** JSON with bigints as decimal strings (the monitor's and the Autoextender's states carry u64s). */
export function json(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));
}

/** A file's text, or `?` (a task gone, a file the kernel does not offer). */
function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * What a hung step leaves to read, for {@link within}'s message: whether the libuv threadpool
 * still answers (an fs/promises stat, 3 s limit; koffi's `.async` calls and PoolMonitor's poll
 * slices run there), this process's threads with their state and kernel wait channel, every task
 * in uninterruptible sleep (D) with its kernel stack, the dm devices' event numbers, and the
 * active handles.
 */
export async function hangEvidence(): Promise<string> {
  const t0 = Date.now();
  const pool = await Promise.race([stat('/').then(() => `answered in ${Date.now() - t0} ms`), new Promise<string>((r) => setTimeout(() => r('NO ANSWER in 3 s (every worker busy or blocked)'), 3000).unref())]);
  const task = (dir: string): string => {
    const st = readOr(`${dir}/stat`);
    const state = st.slice(st.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
    return `${readOr(`${dir}/comm`)}[${state}] wchan=${readOr(`${dir}/wchan`)}`;
  };
  const threads = readdirSync('/proc/self/task').map((t) => `${t}:${task(`/proc/self/task/${t}`)}`);
  const blocked: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const st = readOr(`/proc/${pid}/stat`);
    if (st.slice(st.lastIndexOf(')') + 2).startsWith('D')) blocked.push(`${pid} ${task(`/proc/${pid}`)} stack: ${readOr(`/proc/${pid}/stack`).split('\n').map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '')).join(' < ')}`);
  }
  let events = '?';
  try {
    events = sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'name,events,attr']).trim().split('\n').join(', ');
  } catch (e) {
    events = String(e);
  }
  // The kernel's side: dm-thin's DMWARN/DMINFO lines (a metadata low water event, a resize, a mode change).
  const kmsg = spawnSync('dmesg', [], { encoding: 'utf8' }).stdout.split('\n').filter((l) => /device-mapper|thin/.test(l)).slice(-12).join(' / ');
  const handles = process.getActiveResourcesInfo().reduce<Record<string, number>>((m, k) => ((m[k] = (m[k] ?? 0) + 1), m), {});
  return `threadpool: ${pool}; threads: ${threads.join(', ')}; tasks in D: ${blocked.join(' | ') || 'none'}; dm events: ${events}; kernel log: ${kmsg || 'nothing of dm'}; handles: ${JSON.stringify(handles)}`;
}

/**
 * `p`, or a rejection after `ms` naming `what`, `diagnose()`'s text and {@link hangEvidence}: a
 * step that never settles fails its test with what was seen instead of holding the VM cell until
 * its 50-minute limit. A guard, not a speed check: the limit is minutes where the step takes
 * seconds.
 */
export async function within<T>(p: Promise<T>, ms: number, what: string, diagnose: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const seen = diagnose();
      void hangEvidence().then(
        (ev) => reject(new Error(`${what}: not settled after ${ms / 1000} s; ${seen}; ${ev}`)),
        (e: unknown) => reject(new Error(`${what}: not settled after ${ms / 1000} s; ${seen}; (evidence failed: ${String(e)})`)),
      );
    }, ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}
