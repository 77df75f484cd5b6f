// SPDX-License-Identifier: MIT
// The batched kernel-call path against the per-call path, in one guest run (issue #21 §1), as
// root on a kernel with device-mapper:
//   node bin/devmapper.js vm --cached node_modules --cached dist -- node dist/bench/batch-guest.js [--n 25]
// Rows: DmControl.createDevice(zero) and ThinDevice.snapshot() of an active origin, each through
// a DmControl over the real seam (batched: one worker hop per operation) and over the same seam
// with `openBatch` hidden (the per-call path: a sync create and two koffi `.async` hops; suspend,
// message and resume as three `.async` hops). Samples alternate between the two so host load
// hits both alike. Also the event-loop lag (a 2 ms interval's worst lateness) over each series.
// Prints one JSON line.
import { ftruncateSync, mkdirSync, openSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DmControl, zeroTarget } from '../src/dm/index.js';
import { realSyscalls, type Syscalls } from '../src/ioctl/index.js';
import { LoopControl } from '../src/loop/index.js';
import { ThinDevice, ThinPool } from '../src/thin/index.js';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--n') + 1] ?? 25) || 25;
const WORK = '/tmp/devmapper-batch-bench';

function perCallSeam(): Syscalls {
  const real = realSyscalls();
  return new Proxy(real, {
    get(t, p) {
      if (p === 'openBatch') return undefined;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

function sparse(path: string, bytes: number): string {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  return path;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;

/** Worst lateness of a 2 ms interval while `fn` runs. */
async function withLag<T>(fn: () => Promise<T>): Promise<{ value: T; lagMs: number }> {
  let last = performance.now();
  let worst = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 2);
    last = now;
  }, 2);
  try {
    const value = await fn();
    return { value, lagMs: worst };
  } finally {
    clearInterval(iv);
  }
}

rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
const batched = new DmControl({ batch: true });
const perCall = new DmControl({ syscalls: perCallSeam(), procMiscPath: '/proc/misc' });
const loops = new LoopControl();
const out: Record<string, unknown> = { n: N };

// create + load + resume (zero), then remove (untimed).
{
  const series = { batched: [] as number[], perCall: [] as number[] };
  const run = async (dm: DmControl, name: string): Promise<number> => {
    const t = performance.now();
    await dm.createDevice(name, [zeroTarget(0n, 2048n)]);
    const ms = performance.now() - t;
    await dm.deviceRemove(name);
    return ms;
  };
  for (let i = 0; i < 10; i++) {
    await run(batched, `bb-w${i}`);
    await run(perCall, `bb-w${i}`);
  }
  const lag = { batched: 0, perCall: 0 };
  for (let i = 0; i < N; i++) {
    const a = await withLag(() => run(batched, `bb-a${i}`));
    series.batched.push(a.value);
    lag.batched = Math.max(lag.batched, a.lagMs);
    const b = await withLag(() => run(perCall, `bb-b${i}`));
    series.perCall.push(b.value);
    lag.perCall = Math.max(lag.perCall, b.lagMs);
  }
  out['createLoadResume'] = { batchedMs: median(series.batched), perCallMs: median(series.perCall), minBatchedMs: Math.min(...series.batched), minPerCallMs: Math.min(...series.perCall), worstLagMs: lag };
}

// Snapshot of an active origin.
{
  const meta = await loops.attach(sparse(join(WORK, 'meta'), 64 << 20), { autoclear: false, hold: false });
  const data = await loops.attach(sparse(join(WORK, 'data'), 256 << 20), { autoclear: false, hold: false });
  const pool = await ThinPool.create(batched, {
    name: 'bb-pool',
    metadataDev: meta.path,
    dataDev: data.path,
    dataBlockSize: 128,
    lowWaterMark: 0,
    metadata: 'new',
    zeroMetadata: true,
    features: { skipBlockZeroing: true },
  });
  try {
    const origin = await ThinDevice.create(pool, 1);
    await origin.activate('bb-origin', 2048n);
    const pool2 = await ThinPool.open(perCall, 'bb-pool');
    const origin2 = await ThinDevice.open(pool2, 'bb-origin');
    let id = 100;
    const series = { batched: [] as number[], perCall: [] as number[] };
    const lag = { batched: 0, perCall: 0 };
    const snap = async (o: ThinDevice): Promise<number> => {
      const t = performance.now();
      await o.snapshot(id++);
      return performance.now() - t;
    };
    for (let i = 0; i < 10; i++) {
      await snap(origin);
      await snap(origin2);
    }
    for (let i = 0; i < N; i++) {
      const a = await withLag(() => snap(origin));
      series.batched.push(a.value);
      lag.batched = Math.max(lag.batched, a.lagMs);
      const b = await withLag(() => snap(origin2));
      series.perCall.push(b.value);
      lag.perCall = Math.max(lag.perCall, b.lagMs);
    }
    out['snapshotActiveOrigin'] = { batchedMs: median(series.batched), perCallMs: median(series.perCall), minBatchedMs: Math.min(...series.batched), minPerCallMs: Math.min(...series.perCall), worstLagMs: lag };
    await origin.deactivate();
  } finally {
    await pool.remove();
    await loops.detach(meta.path);
    await loops.detach(data.path);
  }
}
// Idle lag baseline: the same interval with nothing else running, as long as one series.
out['idleWorstLagMs'] = (await withLag(() => new Promise((r) => setTimeout(r, 500)))).lagMs;
batched.close();
perCall.close();
rmSync(WORK, { recursive: true, force: true });
console.log(JSON.stringify(out));
