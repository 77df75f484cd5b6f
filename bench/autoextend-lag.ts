// SPDX-License-Identifier: MIT
// Where the event-loop lag during an autoextended write comes from (issue #20): the lag probe
// (bench/lib/lag.ts) during the same `dd oflag=direct conv=fsync` into a DeviceSet device's
// mounted ext4, in scenarios that add one piece at a time, with every synchronous call of this
// process timed and matched against the late ticks:
//   idle                     nothing runs (the guest's floor);
//   grows, no writer         6 resizePool calls (the grow steps alone);
//   control                  autoextend off, a pool big enough never to grow, no monitor;
//   control + PoolMonitor    the same with a monitor on the pool;
//   autoextend               dm.autoextend_threshold=70%, 50% steps;
//   autoextend + dmsetup     the same with an `extended` listener that runs `dmsetup table`
//                            through execFileSync (what deviceset-autoextend.test.ts did).
// Synchronous calls are timed through the `devmapper:ioctl` channel (src/ioctl/diagnostics.ts)
// and by wrapping node:fs's and node:child_process's *Sync functions (syncBuiltinESMExports).
// Run as root with device-mapper, e.g. in the guest after `npm run build`:
//   node bin/devmapper.js vm --cached node_modules --cached dist -- node dist/bench/autoextend-lag.js [MiB]
// Figures and the reading of them: docs/deviceset.md, "Autoextend and the event loop".
import * as cp from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet } from '../src/deviceset/index.js';
import { prefixFor } from '../src/deviceset/hash.js';
import { PoolMonitor } from '../src/thin/index.js';
import { startLagProbe, threadSchedstat, type LagReading } from './lib/lag.js';

const MB = Number(process.argv[2] ?? '96');
interface Ev { t0: number; t1: number; what: string }
let events: Ev[] = [];
let recording = false;
const rec = (what: string, t0: number, t1: number): void => void (recording && events.push({ t0, t1, what }));

subscribe('devmapper:ioctl', (m) => {
  const x = m as { request: string; async: boolean; durationMs: number };
  const t1 = performance.now();
  rec(`ioctl ${x.request}${x.async ? ' (async)' : ' SYNC'}`, t1 - x.durationMs, t1);
});
function wrap(mod: Record<string, unknown>, names: string[], tag: string): void {
  for (const name of names) {
    const orig = mod[name] as (...a: unknown[]) => unknown;
    if (typeof orig !== 'function') continue;
    mod[name] = function (this: unknown, ...a: unknown[]) {
      const t0 = performance.now();
      try {
        return orig.apply(this, a);
      } finally {
        rec(`${tag}.${name}(${typeof a[0] === 'string' ? a[0].slice(-40) : typeof a[0] === 'number' ? a[0] : ''})`, t0, performance.now());
      }
    };
  }
}
wrap((fs as unknown as { default: Record<string, unknown> }).default, ['statSync', 'lstatSync', 'fstatSync', 'openSync', 'closeSync', 'fsyncSync', 'fdatasyncSync', 'writeFileSync', 'writeSync', 'readFileSync', 'renameSync', 'ftruncateSync', 'readdirSync', 'existsSync', 'mkdirSync', 'unlinkSync', 'statfsSync', 'readSync'], 'fs');
wrap((cp as unknown as { default: Record<string, unknown> }).default, ['execFileSync', 'spawnSync', 'execSync'], 'cp');
syncBuiltinESMExports();

const work = fs.mkdtempSync(join(tmpdir(), 'autoextend-lag-'));
const roots: string[] = [];
const src = join(work, 'random.bin');

function sh(cmd: string, args: string[]): string {
  return cp.execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}
function dd(from: string, to: string): Promise<number | null> {
  const child = cp.spawn('dd', [`if=${from}`, `of=${to}`, 'bs=1M', 'oflag=direct', 'conv=fsync', 'status=none'], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
}
/** Unmounts and removes what a root of ours left (its dm names share the root's prefix). */
function cleanupRoot(root: string): void {
  if (!fs.existsSync(root)) return;
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const mp = line.split(' ')[1];
    if (mp && mp.startsWith(root + '/')) cp.spawnSync('umount', ['-l', mp]);
  }
  const st = fs.statSync(root, { bigint: true });
  const prefix = prefixFor({ dev: st.dev, ino: st.ino });
  const out = sh('dmsetup', ['ls']);
  const mine = /No devices found/i.test(out) ? [] : out.split('\n').map((l) => l.split('\t')[0]?.trim() ?? '').filter((d) => d.startsWith(`${prefix}-`));
  for (const d of [...mine.filter((x) => !x.endsWith('-pool')), ...mine.filter((x) => x.endsWith('-pool'))]) cp.spawnSync('dmsetup', ['remove', '--force', '--retry', d]);
}

type Sched = { cpuMs: number; runQueueMs: number } | null;
function report(name: string, lag: LagReading, t0: number, t1: number, s0: Sched, s1: Sched): void {
  console.log(`[lag] ${name}: ${((t1 - t0) / 1000).toFixed(1)} s, worst ${lag.worstMs.toFixed(1)} ms, p99 ${lag.p99Ms.toFixed(1)} ms, median ${lag.medianMs.toFixed(2)} ms, ${lag.ticks} ticks`);
  if (s0 && s1) console.log(`  main thread: ${(s1.cpuMs - s0.cpuMs).toFixed(0)} ms on CPU, ${(s1.runQueueMs - s0.runQueueMs).toFixed(0)} ms runnable but waiting for a CPU`);
  const ours = (e: Ev): boolean => e.what.includes('SYNC') || e.what.startsWith('fs.') || e.what.startsWith('cp.');
  for (const s of lag.spikes) {
    const from = s.atMs - s.lagMs - 2;
    const over = events.filter((e) => e.t1 >= from && e.t0 <= s.atMs && (ours(e) || e.what.startsWith('log') || e.what.startsWith('extended')));
    const mine = over.filter(ours).reduce((a, e) => a + (e.t1 - e.t0), 0);
    console.log(`  spike ${s.lagMs.toFixed(1)} ms at +${((s.atMs - t0) / 1000).toFixed(2)} s, our sync calls ${mine.toFixed(1)} ms: ${over.map((e) => `${e.what} ${(e.t1 - e.t0).toFixed(1)}`).join('; ') || '-'}`);
  }
  const sync = events.filter(ours);
  const total = sync.reduce((a, e) => a + (e.t1 - e.t0), 0);
  const top = [...sync].sort((a, b) => b.t1 - b.t0 - (a.t1 - a.t0)).slice(0, 6);
  console.log(`  ${sync.length} synchronous calls, ${total.toFixed(1)} ms in all; longest: ${top.map((e) => `${e.what} ${(e.t1 - e.t0).toFixed(1)}`).join('; ') || '-'}`);
}

async function measured(name: string, body: () => Promise<void>): Promise<void> {
  events = [];
  recording = true;
  const s0 = threadSchedstat();
  const t0 = performance.now();
  const probe = startLagProbe(2, { spikes: 10 });
  await body();
  const lag = probe.stop();
  const t1 = performance.now();
  const s1 = threadSchedstat();
  recording = false;
  report(name, lag, t0, t1, s0, s1);
}

async function withSet(tag: string, options: string[], fn: (set: DeviceSet, root: string) => Promise<void>): Promise<void> {
  const root = join(work, `${tag}-${roots.length}`);
  roots.push(root);
  const set = await DeviceSet.init(root, { options, log: (l, m) => rec(`log ${l}: ${m.slice(0, 60)}`, performance.now(), performance.now()) });
  try {
    await fn(set, root);
  } finally {
    await set.shutdown().catch(() => undefined);
  }
}

async function writeScenario(name: string, options: string[], setup: (set: DeviceSet) => Promise<() => Promise<void>>): Promise<void> {
  await withSet('w', options, async (set, root) => {
    const teardown = await setup(set);
    await set.addDevice('box', '');
    const mp = join(root, 'mnt-box');
    fs.mkdirSync(mp, { recursive: true });
    await set.mountDevice('box', mp);
    let status: number | null = null;
    await measured(name, async () => void (status = await dd(src, join(mp, 'data.bin'))));
    if (status !== 0) throw new Error(`${name}: dd exited ${status}`);
    console.log(`  grows: ${set.autoextender.status().extensions}`);
    await teardown();
    await set.unmountDevice('box', mp);
  });
}

async function main(): Promise<void> {
  cp.spawnSync('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', `count=${MB}`, 'status=none']);
  const small = [`dm.loopdatasize=${Math.max(32, MB >> 3)}M`, 'dm.loopmetadatasize=16M', `dm.basesize=${MB + 64}M`, 'dm.min_free_space=0%'];
  const auto = [...small, 'dm.autoextend_threshold=70%', 'dm.autoextend_percent=50%'];
  const big = [`dm.loopdatasize=${MB * 3}M`, 'dm.loopmetadatasize=16M', `dm.basesize=${MB + 64}M`, 'dm.min_free_space=0%'];
  await measured('idle, 3 s', () => new Promise((r) => setTimeout(r, 3000)));
  await withSet('g', small, async (set, root) => {
    let size = BigInt(fs.statSync(join(root, 'devicemapper', 'data')).size);
    await measured('6 resizePool grows, no writer, no monitor', async () => {
      for (let i = 0; i < 6; i++) await set.resizePool((size += 8n << 20n));
    });
  });
  await writeScenario(`control: ${MB} MiB, autoextend off, no monitor, a pool that never grows`, big, async () => async () => undefined);
  await writeScenario(`control + a PoolMonitor on the pool`, big, async (set) => {
    const m = new PoolMonitor([set.poolName]);
    m.on('error', () => undefined);
    await m.ready;
    return () => m.close();
  });
  await writeScenario(`autoextend on`, auto, async (set) => {
    set.autoextender.on('extended', (e) => rec(`extended ${e.from}->${e.to}`, performance.now(), performance.now()));
    return async () => undefined;
  });
  await writeScenario(`autoextend on, an 'extended' listener running dmsetup table (execFileSync)`, auto, async (set) => {
    set.autoextender.on('extended', (e) => {
      rec(`extended ${e.from}->${e.to}`, performance.now(), performance.now());
      sh('dmsetup', ['table', set.poolName]);
    });
    return async () => undefined;
  });
}

try {
  await main();
} finally {
  for (const r of roots) cleanupRoot(r);
  fs.rmSync(work, { recursive: true, force: true });
}
