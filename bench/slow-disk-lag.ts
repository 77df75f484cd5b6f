// SPDX-License-Identifier: MIT
// Issue #17 §2, the proof: event-loop lag during a DeviceSet workload whose metadata directory
// sits on a slow disk. `<root>/metadata` is an ext4 over a dm `delay` target (writes and flushes
// held DELAY_MS each; drivers/md/dm-delay.c, 6-argument form: the write class serves flushes too)
// over a loop device; the pool's own files stay on the guest's tmpfs. Scenarios, one run:
//   idle            nothing runs (the guest's floor);
//   async           N addDevice, then N deleteDevice, one at a time: the store's default seam
//                   (fs/promises: every open, write, fsync, rename on libuv's thread pool);
//   blocking        the same workload through a MetadataFs that makes the same calls with
//                   node:fs's *Sync functions (what the store did before issue #17).
// Run as root with device-mapper, e.g. in the guest after `npm run build`:
//   node bin/devmapper.js vm --cached node_modules --cached dist -- node dist/bench/slow-disk-lag.js [N] [DELAY_MS]
// Figures: docs/deviceset.md, "Autoextend and the event loop".
import * as cp from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, nodeMetadataFs, type MetadataFs } from '../src/deviceset/index.js';
import { DmControl, delayTarget } from '../src/dm/index.js';
import { LoopControl } from '../src/loop/index.js';
import { startLagProbe, threadSchedstat, type LagReading } from './lib/lag.js';

const N = Number(process.argv[2] ?? '8');
const DELAY_MS = Number(process.argv[3] ?? '30');
const work = fs.mkdtempSync(join(tmpdir(), 'slow-disk-lag-'));
const DISK_BYTES = 64n << 20n;
const dm = new DmControl();
const loops = new LoopControl();
const delayed: string[] = [];
const mounts: string[] = [];

/** The store's calls made with node:fs's *Sync functions: the event loop waits out every fsync. */
const blockingMetadataFs: MetadataFs = {
  mkdir: (path, options) => nodeMetadataFs.mkdir(path, options),
  readdir: async (path) => fs.readdirSync(path),
  readFile: async (path) => fs.readFileSync(path, 'utf8'),
  open: async (path, flags, mode) => {
    const fd = fs.openSync(path, flags, mode);
    return {
      write: async (data, offset, length) => ({ bytesWritten: fs.writeSync(fd, data, offset, length) }),
      sync: async () => fs.fsyncSync(fd),
      close: async () => fs.closeSync(fd),
    };
  },
  rename: async (from, to) => fs.renameSync(from, to),
  unlink: async (path) => fs.unlinkSync(path),
};

/** A fresh ext4 over `delay` over a loop device, mounted at `<root>/metadata` (mode 0700, empty). */
async function slowMetadataDir(root: string, tag: string): Promise<void> {
  const file = join(work, `${tag}.img`);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, Number(DISK_BYTES));
  const loop = await loops.attach(file);
  const dev = { major: loop.major, minor: loop.minor };
  const name = `slow-disk-lag-${tag}-${process.pid}`;
  const sectors = DISK_BYTES / 512n;
  const info = await dm.createDevice(name, [delayTarget(0n, sectors, { device: dev, offset: 0n, delayMs: 0, write: { device: dev, offset: 0n, delayMs: DELAY_MS } })]);
  delayed.push(name);
  loop.close(); // autoclear: the loop goes with the dm device
  const node = `/dev/dm-${info.dev.minor}`;
  cp.execFileSync('mkfs.ext4', ['-q', '-F', node], { stdio: 'ignore' });
  const meta = join(root, 'metadata');
  fs.mkdirSync(meta, { recursive: true, mode: 0o700 });
  cp.execFileSync('mount', ['-t', 'ext4', node, meta], { stdio: 'ignore' });
  mounts.push(meta);
  fs.rmdirSync(join(meta, 'lost+found'));
  fs.chmodSync(meta, 0o700);
}

type Sched = { cpuMs: number; runQueueMs: number } | null;
interface Row {
  name: string;
  seconds: number;
  lag: LagReading;
  spikes10: number;
  cpuMs: number | null;
  runQueueMs: number | null;
}
const rows: Row[] = [];
let ticks10 = 0;

async function measured(name: string, body: () => Promise<void>): Promise<void> {
  const s0: Sched = threadSchedstat();
  const t0 = performance.now();
  const probe = startLagProbe(2, { spikes: 5, spikeMs: 10 });
  // Count every tick over 10 ms (the probe keeps only the worst few).
  ticks10 = 0;
  let last = performance.now();
  const counter = setInterval(() => {
    const now = performance.now();
    if (now - last - 2 > 10) ticks10++;
    last = now;
  }, 2);
  await body();
  clearInterval(counter);
  const lag = probe.stop();
  const t1 = performance.now();
  const s1: Sched = threadSchedstat();
  rows.push({
    name,
    seconds: (t1 - t0) / 1000,
    lag,
    spikes10: ticks10,
    cpuMs: s0 && s1 ? s1.cpuMs - s0.cpuMs : null,
    runQueueMs: s0 && s1 ? s1.runQueueMs - s0.runQueueMs : null,
  });
  const r = rows[rows.length - 1]!;
  console.log(
    `[lag] ${name}: ${r.seconds.toFixed(1)} s, worst ${lag.worstMs.toFixed(1)} ms, p99 ${lag.p99Ms.toFixed(1)} ms, median ${lag.medianMs.toFixed(2)} ms, ${lag.ticks} ticks, ${r.spikes10} over 10 ms` +
      (r.cpuMs !== null ? `; main thread ${r.cpuMs.toFixed(0)} ms on CPU, ${r.runQueueMs!.toFixed(0)} ms waiting for a CPU` : ''),
  );
  console.log(`  worst ticks: ${lag.spikes.map((s) => `${s.lagMs.toFixed(1)} ms at +${((s.atMs - t0) / 1000).toFixed(2)} s`).join('; ') || '-'}`);
}

async function scenario(name: string, tag: string, metadataFs: MetadataFs | undefined): Promise<void> {
  const root = join(work, tag);
  fs.mkdirSync(root, { mode: 0o700 });
  await slowMetadataDir(root, tag);
  const options = ['dm.loopdatasize=256M', 'dm.loopmetadatasize=16M', 'dm.basesize=64M', 'dm.min_free_space=0%'];
  const t0 = performance.now();
  const set = await DeviceSet.init(root, { options, deferredDeleteIntervalMs: 0, ...(metadataFs ? { metadataFs } : {}) });
  console.log(`${name}: init ${((performance.now() - t0) / 1000).toFixed(1)} s (not measured)`);
  try {
    const hashes = Array.from({ length: N }, (_, i) => `dev${i}`);
    await measured(`${name}: ${N} addDevice + ${N} deleteDevice, one at a time`, async () => {
      for (const h of hashes) await set.addDevice(h, '');
      for (const h of hashes) await set.deleteDevice(h);
    });
  } finally {
    await set.shutdown();
  }
}

async function main(): Promise<void> {
  console.log(`slow-disk-lag: metadata on ext4 over dm delay (writes and flushes +${DELAY_MS} ms) over a loop device; N = ${N}; kernel ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`);
  await measured('idle, 3 s', () => new Promise((r) => setTimeout(r, 3000)));
  await scenario('async (fs/promises, the default)', 'async', undefined);
  await scenario('blocking (the same calls through *Sync, as before)', 'blocking', blockingMetadataFs);
  await measured('idle again, 3 s', () => new Promise((r) => setTimeout(r, 3000)));
  console.log('\n| Scenario | time (s) | worst (ms) | p99 (ms) | median (ms) | ticks over 10 ms |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.seconds.toFixed(1)} | ${r.lag.worstMs.toFixed(0)} | ${r.lag.p99Ms.toFixed(1)} | ${r.lag.medianMs.toFixed(2)} | ${r.spikes10} of ${r.lag.ticks} |`);
}

try {
  await main();
} finally {
  for (const m of mounts.reverse()) cp.spawnSync('umount', [m]);
  for (const d of delayed) await dm.deviceRemove(d, { retry: { attempts: 5, delayMs: 100 } }).catch((e: unknown) => console.error(`removing ${d}: ${String(e)}`));
  dm.close();
  fs.rmSync(work, { recursive: true, force: true });
}
