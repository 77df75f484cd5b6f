// SPDX-License-Identifier: MIT
// The benchmarks themselves. Runs as root on a kernel with device-mapper and loop (inside the VM
// that `npm run bench` boots, or directly on such a machine):
//   node --expose-gc dist/bench/guest.js --out FILE --bin DIR [--smoke]
// Writes a BenchResults JSON (bench/lib/results.ts) to FILE; bench/run.ts prints the report.
// Every device it makes is named dmbench-*; loop backing files live under /tmp/devmapper-bench.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, promises as fsPromises, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { DeviceSet, DmControl, LoopControl, ThinDevice, ThinPool, zeroTarget, type LoopAttachment, type TargetLine } from '../src/index.js';
import * as io from '../src/ioctl/index.js';
import { statfsFreeBytes, type AutoextendExtension } from '../src/deviceset/index.js';
import { dsCliBenchmarks } from './lib/ds-cli.js';
import { External, timeCli, type CProgram } from './lib/external.js';
import { fastBuild, fastDecode } from './lib/fast-dm.js';
import { warmDmPaths } from './lib/jit-warmup.js';
import { startLagProbe } from './lib/lag.js';
import type { BenchResults, DeviceSetPoint, GrowthPoint, Impl, LagResult, OpClass, OpResult } from './lib/results.js';
import { summarize, type Summary } from './lib/stats.js';

// ------------------------------------------------------------------------------ arguments

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const SMOKE = flag('--smoke');
/** BENCH_ONLY=deviceset: only the DeviceSet op rows (tmpfs and real-filesystem roots), for a quick guest run. */
const DS_ONLY = process.env['BENCH_ONLY'] === 'deviceset';
/** BENCH_ONLY=ds-cli: only the `ds` command rows (bench/lib/ds-cli.ts), 5 rounds even in a smoke run. */
const DS_CLI_ONLY = process.env['BENCH_ONLY'] === 'ds-cli';
/** BENCH_ONLY=kernel: only the per-operation rows (DM_VERSION to loop detach) and the lag scenarios but the removes', for a quick guest run. */
const KERNEL_ONLY = process.env['BENCH_ONLY'] === 'kernel';
const ONLY_SOME = DS_ONLY || DS_CLI_ONLY || KERNEL_ONLY;
/** Which sections of main() run, from the flags above. */
const RUN = {
  ops: !ONLY_SOME || KERNEL_ONLY,
  lag: !ONLY_SOME || KERNEL_ONLY,
  // Not in the smoke run of `npm test`: a `ds init` (mkfs) and six node processes per round.
  dsCli: (!SMOKE && !KERNEL_ONLY) || DS_CLI_ONLY,
  deviceSet: !DS_CLI_ONLY && !KERNEL_ONLY,
  // Not in the smoke run of `npm test` (mkfs.ext4 and a fresh DeviceSet on it cost ~10 s in the
  // TCG guest), but in a smoke run with BENCH_ONLY=deviceset.
  deviceSetRealFs: (!SMOKE && !DS_CLI_ONLY && !KERNEL_ONLY) || DS_ONLY,
  // autoextend, growth, DeviceSet growth.
  rest: !ONLY_SOME,
};
const OUT = opt('--out', 'bench/results/latest.json');
const BIN = opt('--bin', '.cache/bench');
const ext = new External(BIN, process.env['BENCH_LIBDM_UNAVAILABLE'] ?? '');

/** Repetition counts. Smoke mode only proves every benchmark runs. */
/**
 * JIT warm-up before ours is timed: the steady state of a long-running service, which is what a
 * library user runs. Under TCG the first few thousand calls run in V8's interpreter and baseline
 * tiers and cost several times more: DmControl.version() measured 73 µs median with 1,000
 * warm-up calls in a full run, and 14–15 µs after 3,000 in a separate guest run (a standalone
 * script, 9 × 2,000 calls). The C programs need none (they get 20 calls, as before).
 * Kernel-bound paths cannot get thousands of real calls (a create+remove is ~40 ms of kernel time
 * in the guest): they get `stub` calls each against a stub kernel first (bench/lib/jit-warmup.ts),
 * then `heavy` real ones.
 */
const WARM = SMOKE ? { light: 5, heavy: 1, stub: 20 } : { light: 5000, heavy: 20, stub: 8000 };
const R = SMOKE
  ? { light: 3, heavy: 3, concurrent: 1, cli: 1, batchVersion: 5, batchList: 2, batchStatus: 2, lagCycles: 1, growth: [10, 20], autoextend: { sizesMiB: [512, 1024], reps: 1 } }
  : { light: 15, heavy: 25, concurrent: 3, cli: 7, batchVersion: 200, batchList: 20, batchStatus: 10, lagCycles: 10, growth: [100, 1000, 10000], autoextend: { sizesMiB: [1024, 8192], reps: 3 } };
/** Activating more thin devices than this is skipped when the projected time exceeds the budget. */
const ACTIVATE_BUDGET_MS = 240_000;

const t0Guest = performance.now();
const WORK = '/tmp/devmapper-bench';
const PREFIX = 'dmbench-';
const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;

const log = (s: string): void => console.log(`[bench +${((performance.now() - t0Guest) / 1000).toFixed(1)}s] ${s}`);
const errors: string[] = [];
const ops: OpResult[] = [];
const lag: LagResult[] = [];

const dm = new DmControl();
const loops = new LoopControl();

// ------------------------------------------------------------------------------ helpers

function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function newOp(id: string, label: string, cls: OpClass, cli?: string): OpResult {
  const op: OpResult = { id, label, cls, impl: {}, unavailable: {}, notes: [], ...(cli ? { cli } : {}) };
  ops.push(op);
  return op;
}

function put(op: OpResult, impl: Impl, samplesUs: readonly number[]): void {
  (op.impl as Record<Impl, Summary>)[impl] = summarize(samplesUs);
}

function fail(op: OpResult, impl: Impl, e: unknown): void {
  const msg = errText(e);
  (op.unavailable as Record<Impl, string>)[impl] = `failed: ${msg}`;
  errors.push(`${op.id}/${impl}: ${msg}`);
  log(`  ${op.id}/${impl} FAILED: ${msg}`);
}

/** Runs one implementation's measurement; a failure is recorded and the run goes on. */
async function measure(ops: OpResult | OpResult[], impl: Impl, fn: () => Promise<number[][] | number[]> | number[][] | number[]): Promise<void> {
  const list = Array.isArray(ops) ? ops : [ops];
  try {
    const r = await fn();
    const series = Array.isArray(r[0]) ? (r as number[][]) : [r as number[]];
    list.forEach((op, i) => put(op, impl, series[i]!));
  } catch (e) {
    for (const op of list) fail(op, impl, e);
  }
}

/** The C program's series (µs), or marks it unavailable. */
async function measureC(opsIn: OpResult | OpResult[], which: CProgram, op: string, args: Record<string, string | number>, series: string[] = ['op']): Promise<void> {
  const list = Array.isArray(opsIn) ? opsIn : [opsIn];
  if (!ext.has(which)) {
    const why = which === 'libdm' ? ext.libdmUnavailable || 'libdm program not built' : 'floor program not built';
    for (const o of list) (o.unavailable as Record<Impl, string>)[which === 'floor' ? 'floor' : 'libdm'] = why;
    return;
  }
  await measure(list, which, () => {
    const r = ext.run(which, op, args);
    if (r.retries > 0) list[0]!.notes.push(`${which}: ${r.retries} retries (EBUSY / buffer full)`);
    return series.map((s) => {
      const v = r.series[s];
      if (!v || v.length === 0) throw new Error(`${which} ${op}: no '${s}' series`);
      return v;
    });
  });
}

/** `reps` repetitions of `batch` awaited calls; µs per call. */
async function timeLoop(reps: number, batch: number, warmup: number, fn: (i: number) => unknown): Promise<number[]> {
  let i = 0;
  for (let w = 0; w < warmup; w++) await fn(i++);
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let b = 0; b < batch; b++) await fn(i++);
    out.push(((performance.now() - t0) * 1000) / batch);
  }
  return out;
}

/** Like timeLoop for synchronous calls (no await between calls). */
function timeLoopSync(reps: number, batch: number, warmup: number, fn: () => void): number[] {
  for (let w = 0; w < warmup; w++) fn();
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let b = 0; b < batch; b++) fn();
    out.push(((performance.now() - t0) * 1000) / batch);
  }
  return out;
}

/**
 * Creates R.heavy devices `<prefix>-<i>` (create+load+resume), then removes them all; returns the
 * per-device create and remove times in µs.
 */
async function createThenRemove(ctl: DmControl, prefix: string, table: readonly TargetLine[]): Promise<number[][]> {
  const names = Array.from({ length: R.heavy }, (_, i) => `${prefix}-${i}`);
  const cs: number[] = [];
  const rs: number[] = [];
  for (const name of names) {
    const t = performance.now();
    await ctl.createDevice(name, [...table]);
    cs.push((performance.now() - t) * 1000);
  }
  for (const name of names) {
    const t = performance.now();
    await ctl.deviceRemove(name);
    rs.push((performance.now() - t) * 1000);
  }
  return [cs, rs];
}

/** createThenRemove with bare Syscalls calls and prebuilt requests: the Node + koffi floor. */
async function rawCreateThenRemove(prefix: string, viaWorker: boolean): Promise<number[]> {
  const sc = io.realSyscalls();
  const fd = sc.open('/dev/mapper/control', O_RDWR | O_CLOEXEC);
  const v: [number, number, number] = [4, 0, 0];
  const spec = io.encodeTargetSpecs([{ sector_start: 0n, length: 2048n, target_type: 'zero', params: '' }]);
  const names = Array.from({ length: R.heavy + WARM.heavy }, (_, i) => `${prefix}-${i}`);
  const reqs = names.map((name) => ({
    create: io.buildDmRequest({ version: v, name }),
    load: io.buildDmRequest({ version: v, name, target_count: 1 }, spec),
    resume: io.buildDmRequest({ version: v, name }),
    remove: io.buildDmRequest({ version: v, name }),
  }));
  const cs: number[] = [];
  try {
    for (const [i, q] of reqs.entries()) {
      const t = performance.now();
      sc.ioctl(fd, io.DM_DEV_CREATE, q.create, 'DM_DEV_CREATE');
      if (viaWorker) {
        await sc.ioctlAsync(fd, io.DM_TABLE_LOAD, q.load, 'DM_TABLE_LOAD');
        await sc.ioctlAsync(fd, io.DM_DEV_SUSPEND, q.resume, 'DM_DEV_SUSPEND');
      } else {
        sc.ioctl(fd, io.DM_TABLE_LOAD, q.load, 'DM_TABLE_LOAD');
        sc.ioctl(fd, io.DM_DEV_SUSPEND, q.resume, 'DM_DEV_SUSPEND');
      }
      if (i >= WARM.heavy) cs.push((performance.now() - t) * 1000);
    }
    for (const q of reqs) await sc.ioctlAsync(fd, io.DM_DEV_REMOVE, q.remove, 'DM_DEV_REMOVE');
  } finally {
    sc.close(fd);
  }
  return cs;
}

function gcNow(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
}

function sparseFile(path: string, bytes: number): string {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  return path;
}

let nextThinId = 1;
/** A fresh block of thin ids. */
function ids(n: number): number {
  const first = nextThinId;
  nextThinId += n;
  return first;
}

interface PoolSetup {
  pool: ThinPool;
  meta: LoopAttachment;
  data: LoopAttachment;
}

async function makePool(name: string, metaBytes: number, dataBytes: number): Promise<PoolSetup> {
  const meta = await loops.attach(sparseFile(join(WORK, `${name}.meta`), metaBytes), { autoclear: false, hold: false });
  const data = await loops.attach(sparseFile(join(WORK, `${name}.data`), dataBytes), { autoclear: false, hold: false });
  const pool = await ThinPool.create(dm, {
    name,
    metadataDev: meta.path,
    dataDev: data.path,
    dataBlockSize: 128,
    lowWaterMark: 0,
    metadata: 'new',
    zeroMetadata: true,
    features: { skipBlockZeroing: true },
  });
  return { pool, meta, data };
}

/** Removes every dmbench-* device (thin devices before pools) and loops backed by WORK files. */
async function sweep(): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const left = (await dm.listDevices({ namePrefix: PREFIX })).map((d) => d.name);
    if (left.length === 0) break;
    for (const name of left.sort((a, b) => Number(a.includes('pool')) - Number(b.includes('pool')))) {
      try {
        await dm.deviceRemove(name, { retry: { attempts: 2, delayMs: 50 } });
      } catch {
        // a pool still held by a thin device: next round
      }
    }
  }
  for (const l of await loops.list()) {
    if (l.binding?.backingFile?.startsWith(WORK + '/')) {
      try {
        await loops.detach(l.path);
      } catch {
        // reported by nobody: the VM is thrown away anyway
      }
    }
  }
}

// ------------------------------------------------------------------------------ per-op benchmarks

async function opBenchmarks(p: PoolSetup): Promise<void> {
  const pool = p.pool;
  const poolName = pool.name;

  // --- DM_VERSION, plus the layers under DmControl for the analysis.
  {
    log('DM_VERSION');
    const op = newOp('dm_version', 'DM_VERSION', 'light', 'dmsetup version');
    await measure(op, 'ours', () => timeLoop(R.light, R.batchVersion, WARM.light, () => dm.version()));
    await measureC(op, 'floor', 'version', { reps: R.light, batch: R.batchVersion, warmup: 20 });
    await measureC(op, 'libdm', 'version', { reps: R.light, batch: R.batchVersion, warmup: 20 });
    await measure(op, 'cli', () => Array.from({ length: R.cli }, () => timeCli('dmsetup', ['version']).us));

    const sc = io.realSyscalls();
    const fd = sc.open('/dev/mapper/control', O_RDWR | O_CLOEXEC);
    try {
      const buf = io.buildDmRequest({ version: [4, 0, 0] });
      const raw = newOp('dm_version_koffi', 'DM_VERSION: bare koffi call, no Syscalls/DmControl (info)', 'info');
      const lc = io.libc();
      await measure(raw, 'ours', () => timeLoopSync(R.light, R.batchVersion, WARM.light, () => void lc.ioctlPtr(fd, io.DM_VERSION, buf)));
      const sync = newOp('dm_version_sys', 'DM_VERSION: Syscalls.ioctl, prebuilt buffer (info)', 'info');
      await measure(sync, 'ours', () => timeLoopSync(R.light, R.batchVersion, WARM.light, () => void sc.ioctl(fd, io.DM_VERSION, buf, 'DM_VERSION')));
      const build = newOp('dm_version_build', 'DM_VERSION: buildDmRequest + Syscalls.ioctl + decodeDmIoctl (info)', 'info');
      await measure(build, 'ours', () =>
        timeLoopSync(R.light, R.batchVersion, WARM.light, () => {
          const b = io.buildDmRequest({ version: [4, 0, 0] });
          sc.ioctl(fd, io.DM_VERSION, b, 'DM_VERSION');
          io.decodeDmIoctl(b);
        }),
      );
      const fast = newOp('dm_version_fast', 'DM_VERSION: hand-coded header encode/decode + Syscalls.ioctl (what-if, bench/lib/fast-dm.ts) (info)', 'info');
      await measure(fast, 'ours', () =>
        timeLoopSync(R.light, R.batchVersion, WARM.light, () => {
          const b = fastBuild({ version: [4, 0, 0] });
          sc.ioctl(fd, io.DM_VERSION, b, 'DM_VERSION');
          fastDecode(b);
        }),
      );
      const asyncOp = newOp('dm_version_async', 'DM_VERSION: Syscalls.ioctlAsync (worker hop) (info)', 'info');
      await measure(asyncOp, 'ours', () => timeLoop(R.light, Math.max(2, R.batchVersion / 10), WARM.light, () => sc.ioctlAsync(fd, io.DM_VERSION, buf, 'DM_VERSION')));
    } finally {
      sc.close(fd);
    }
  }

  // --- listDevices with 100 devices.
  {
    log('listDevices with 100 devices');
    const n = 100;
    const names = Array.from({ length: n }, (_, i) => `${PREFIX}l-${String(i).padStart(3, '0')}`);
    for (const name of names) await dm.createDevice(name, [zeroTarget(0n, 2048n)]);
    const listed = (await dm.listDevices()).length;
    const op = newOp('list_100', `listDevices, ${listed} devices`, 'light', 'dmsetup ls');
    await measure(op, 'ours', () => timeLoop(R.light, R.batchList, WARM.light, () => dm.listDevices()));
    await measureC(op, 'floor', 'list', { reps: R.light, batch: R.batchList, warmup: 3 });
    await measureC(op, 'libdm', 'list', { reps: R.light, batch: R.batchList, warmup: 3 });
    await measure(op, 'cli', () => Array.from({ length: R.cli }, () => timeCli('dmsetup', ['ls']).us));
    for (const name of names) await dm.deviceRemove(name);
  }

  // --- The kernel-bound rows below run ours in V8's steady state: every measured DmControl /
  // ThinPool / ThinDevice path first runs WARM.stub times against a stub kernel (see
  // bench/lib/jit-warmup.ts for why 20 real cycles are not enough under TCG).
  for (const batch of [false, true]) {
    const times = await warmDmPaths(WARM.stub, { batch });
    log(`JIT warm-up${batch ? ' (batch: true)' : ''}, ${WARM.stub} calls each against the stub kernel: ${Object.entries(times).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')}`);
  }
  // DmControl({ batch: true }) over the real kernel, for the '(batch: true)' info rows: the
  // same requests, each operation one hop to its BatchWorker. The worker is a thread of its own
  // with its own JIT: WARM.light DM_VERSION batches warm its loop first.
  const { ctl: batched, hopUs } = await batchedDm(WARM.light);
  const bpool = await ThinPool.open(batched, poolName);
  {
    const hop = newOp('dm_version_batch', 'DM_VERSION: one BatchWorker batch of one (worker hop) (info)', 'info');
    put(hop, 'ours', hopUs);
  }

  // --- create+load+resume and remove of a zero device.
  {
    log('create/remove zero device');
    const c = newOp('create_zero', 'create+load+resume (zero target)', 'kernel', 'dmsetup create');
    const r = newOp('remove_zero', 'remove (zero device)', 'kernel', 'dmsetup remove');
    const table = [zeroTarget(0n, 2048n)];
    for (let w = 0; w < WARM.heavy; w++) {
      await dm.createDevice(`${PREFIX}cw-${w}`, table);
      await dm.deviceRemove(`${PREFIX}cw-${w}`);
    }
    await measure([c, r], 'ours', () => createThenRemove(dm, `${PREFIX}c-ours`, table));
    const cargs = { reps: R.heavy, type: 'zero', sectors: 2048 };
    const cb = newOp('create_zero_batch', 'create+load+resume, DmControl({ batch: true }) (info)', 'info');
    const rb = newOp('remove_zero_batch', 'remove, DmControl({ batch: true }) (info)', 'info');
    for (let w = 0; w < WARM.heavy; w++) {
      await batched.createDevice(`${PREFIX}cbw-${w}`, table);
      await batched.deviceRemove(`${PREFIX}cbw-${w}`);
    }
    await measure([cb, rb], 'ours', () => createThenRemove(batched, `${PREFIX}c-batch`, table));
    {
      const c2 = newOp('create_zero_nonodes', "create+load+resume, DmControl({ nodes: 'none' }) (info)", 'info');
      const r2 = newOp('remove_zero_nonodes', "remove, DmControl({ nodes: 'none' }) (info)", 'info');
      const bare = new DmControl({ nodes: 'none' });
      await measure([c2, r2], 'ours', () => createThenRemove(bare, `${PREFIX}c-none`, table));
      bare.close();
    }
    // What Node + koffi cost by themselves for the same three requests (prebuilt spec, no
    // validation, no node management): all sync, and with TABLE_LOAD + resume on the worker as
    // DmControl does. The gap to the C floor that remains here is not DmControl's.
    for (const mode of ['sync', 'async'] as const) {
      const c3 = newOp(`create_zero_raw_${mode}`, `create+load+resume: three bare Syscalls.ioctl${mode === 'async' ? ' (load + resume via ioctlAsync)' : ' (all sync)'} (info)`, 'info');
      await measure(c3, 'ours', () => rawCreateThenRemove(`${PREFIX}c-raw${mode}`, mode === 'async'));
    }
    await measureC([c, r], 'floor', 'create_remove', { ...cargs, prefix: `${PREFIX}c-floor` }, ['create', 'remove']);
    noteAgainstFloor(c, ['create_zero_batch', 'create_zero_nonodes', 'create_zero_raw_sync', 'create_zero_raw_async']);
    await measureC([c, r], 'libdm', 'create_remove', { ...cargs, prefix: `${PREFIX}c-libdm` }, ['create', 'remove']);
    await measure([c, r], 'cli', () => {
      const names = Array.from({ length: R.cli }, (_, i) => `${PREFIX}c-cli-${i}`);
      const cs = names.map((name) => timeCli('dmsetup', ['create', name, '--table', '0 2048 zero']).us);
      const rs = names.map((name) => timeCli('dmsetup', ['remove', name]).us);
      return [cs, rs];
    });
  }

  // --- An active origin thin device for suspend/snapshot.
  const originId = ids(1);
  await pool.createThin(originId);
  const origin = ThinDevice.of(pool, originId);
  const originName = `${PREFIX}origin`;
  await origin.activate(originName, 2048n);

  {
    log('suspend+resume of an active thin device');
    const op = newOp('suspend_resume', 'suspend + resume (idle thin device)', 'kernel', 'dmsetup suspend; dmsetup resume');
    await measure(op, 'ours', () =>
      timeLoop(R.heavy, 1, WARM.heavy, async () => {
        await dm.deviceSuspend(originName);
        await dm.deviceResume(originName);
      }),
    );
    await measureC(op, 'floor', 'suspend_resume', { reps: R.heavy, warmup: 3, name: originName });
    await measureC(op, 'libdm', 'suspend_resume', { reps: R.heavy, warmup: 3, name: originName });
    await measure(op, 'cli', () =>
      Array.from({ length: R.cli }, () => timeCli('dmsetup', ['suspend', originName]).us + timeCli('dmsetup', ['resume', originName]).us),
    );
  }

  {
    // Where the time of a suspend+resume goes: the same two ioctls without DmControl, sync and
    // through the worker hop (hand-coded headers, bench/lib/fast-dm.ts).
    await withControl(async (sc, fd) => {
      const pair = (call: (b: Buffer) => unknown) => async () => {
        await call(fastBuild({ version: [4, 0, 0], name: originName, flags: io.DM_SUSPEND_FLAG }));
        await call(fastBuild({ version: [4, 0, 0], name: originName }));
      };
      const s = newOp('suspend_resume_sync', 'suspend + resume: two bare Syscalls.ioctl (sync) (info)', 'info');
      await measure(s, 'ours', () => timeLoop(R.heavy, 1, WARM.heavy, pair((b) => sc.ioctl(fd, io.DM_DEV_SUSPEND, b, 'DM_DEV_SUSPEND'))));
      const a = newOp('suspend_resume_async', 'suspend + resume: two bare Syscalls.ioctlAsync (info)', 'info');
      await measure(a, 'ours', () => timeLoop(R.heavy, 1, WARM.heavy, pair((b) => sc.ioctlAsync(fd, io.DM_DEV_SUSPEND, b, 'DM_DEV_SUSPEND'))));
    });
  }

  {
    log('pool status');
    const op = newOp('pool_status', 'pool status (TABLE_STATUS + parse)', 'light', 'dmsetup status');
    await measure(op, 'ours', () => timeLoop(R.light, R.batchStatus, WARM.light, () => pool.status()));
    const b = newOp('pool_status_batch', 'pool status, DmControl({ batch: true }) (info)', 'info');
    await measure(b, 'ours', () => timeLoop(R.light, R.batchStatus, WARM.light, () => bpool.status()));
    // The least one non-blocking call from Node costs: the same request, prebuilt, one koffi hop.
    const raw = newOp('pool_status_raw_async', 'pool status: one bare Syscalls.ioctlAsync, prebuilt 16 KiB request (info)', 'info');
    await measure(raw, 'ours', () =>
      withControl(async (sc, fd) => {
        const template = io.buildDmRequest({ version: [4, 0, 0], name: poolName }, undefined, 16384);
        const buf = Buffer.alloc(template.length);
        return timeLoop(R.light, R.batchStatus, WARM.light, () => {
          template.copy(buf, 0, 0, io.DM_IOCTL_SIZE);
          return sc.ioctlAsync(fd, io.DM_TABLE_STATUS, buf, 'DM_TABLE_STATUS');
        });
      }),
    );
    await measureC(op, 'floor', 'status', { reps: R.light, batch: R.batchStatus, warmup: 3, name: poolName });
    noteAgainstFloor(op, ['pool_status_batch', 'pool_status_raw_async']);
    await measureC(op, 'libdm', 'status', { reps: R.light, batch: R.batchStatus, warmup: 3, name: poolName });
    await measure(op, 'cli', () => Array.from({ length: R.cli }, () => timeCli('dmsetup', ['status', poolName]).us));
  }

  {
    log('create_thin message');
    const op = newOp('create_thin', 'thin create_thin message', 'light', 'dmsetup message');
    let id = ids(R.heavy + WARM.heavy);
    await measure(op, 'ours', () => timeLoop(R.heavy, 1, WARM.heavy, () => pool.createThin(id++)));
    const b = newOp('create_thin_batch', 'create_thin message, DmControl({ batch: true }) (info)', 'info');
    let bid = ids(R.heavy + WARM.heavy);
    await measure(b, 'ours', () => timeLoop(R.heavy, 1, WARM.heavy, () => bpool.createThin(bid++)));
    const raw = newOp('create_thin_raw_async', 'create_thin: one bare Syscalls.ioctlAsync, request built per call (info)', 'info');
    let rid = ids(R.heavy + WARM.heavy);
    await measure(raw, 'ours', () =>
      withControl((sc, fd) =>
        timeLoop(R.heavy, 1, WARM.heavy, () =>
          sc.ioctlAsync(fd, io.DM_TARGET_MSG, io.buildDmRequest({ version: [4, 0, 0], name: poolName }, io.encodeTargetMsg(0n, `create_thin ${rid++}`)), 'DM_TARGET_MSG'),
        ),
      ),
    );
    await measureC(op, 'floor', 'message', { reps: R.heavy, name: poolName, fmt: 'create_thin %d', id0: ids(R.heavy) });
    noteAgainstFloor(op, ['create_thin_batch', 'create_thin_raw_async']);
    await measureC(op, 'libdm', 'message', { reps: R.heavy, name: poolName, fmt: 'create_thin %d', id0: ids(R.heavy) });
    let cid = ids(R.cli);
    await measure(op, 'cli', () => Array.from({ length: R.cli }, () => timeCli('dmsetup', ['message', poolName, '0', `create_thin ${cid++}`]).us));
  }

  {
    log('snapshot of an active origin');
    const op = newOp('snapshot', 'thin snapshot of active origin (suspend+create_snap+resume)', 'kernel', '3× dmsetup');
    let id = ids(R.heavy + WARM.heavy);
    await measure(op, 'ours', () => timeLoop(R.heavy, 1, WARM.heavy, () => origin.snapshot(id++)));
    const b = newOp('snapshot_batch', 'snapshot of an active origin, DmControl({ batch: true }) (info)', 'info');
    const borigin = await ThinDevice.open(bpool, originName);
    let bid = ids(R.heavy + WARM.heavy);
    await measure(b, 'ours', () => timeLoop(R.heavy, 1, WARM.heavy, () => borigin.snapshot(bid++)));
    const sargs = { reps: R.heavy, pool: poolName, origin: originName, origin_id: originId };
    await measureC(op, 'floor', 'snapshot', { ...sargs, id0: ids(R.heavy) });
    noteAgainstFloor(op, ['snapshot_batch']);
    await measureC(op, 'libdm', 'snapshot', { ...sargs, id0: ids(R.heavy) });
    let cid = ids(R.cli);
    await measure(op, 'cli', () =>
      Array.from({ length: R.cli }, () => {
        let us = timeCli('dmsetup', ['suspend', originName]).us;
        us += timeCli('dmsetup', ['message', poolName, '0', `create_snap ${cid++} ${originId}`]).us;
        return us + timeCli('dmsetup', ['resume', originName]).us;
      }),
    );
  }

  {
    log('thin activate / remove');
    const a = newOp('thin_activate', 'thin activate (create+load+resume)', 'kernel', 'dmsetup create');
    const d = newOp('thin_remove', 'thin deactivate (remove)', 'kernel', 'dmsetup remove');
    const block = async (n: number): Promise<number> => {
      const first = ids(n);
      for (let i = 0; i < n; i++) await pool.createThin(first + i);
      return first;
    };
    {
      const w = await block(WARM.heavy);
      for (let i = 0; i < WARM.heavy; i++) {
        const t = ThinDevice.of(pool, w + i);
        await t.activate(`${PREFIX}tw-${i}`, 2048n);
        await t.deactivate();
      }
    }
    const oursFirst = await block(R.heavy);
    await measure([a, d], 'ours', async () => {
      const devs = Array.from({ length: R.heavy }, (_, i) => ThinDevice.of(pool, oursFirst + i));
      const as: number[] = [];
      const ds: number[] = [];
      for (const [i, t] of devs.entries()) {
        const t0 = performance.now();
        await t.activate(`${PREFIX}t-ours-${i}`, 2048n);
        as.push((performance.now() - t0) * 1000);
      }
      for (const t of devs) {
        const t0 = performance.now();
        await t.deactivate();
        ds.push((performance.now() - t0) * 1000);
      }
      return [as, ds];
    });
    const targs = { reps: R.heavy, type: 'thin', sectors: 2048, params: `${pool.poolDev} %d` };
    for (const which of ['floor', 'libdm'] as const) {
      const id0 = ext.has(which) ? await block(R.heavy) : 0;
      await measureC([a, d], which, 'create_remove', { ...targs, prefix: `${PREFIX}t-${which}`, id0 }, ['create', 'remove']);
    }
    const cliFirst = await block(R.cli);
    await measure([a, d], 'cli', () => {
      const names = Array.from({ length: R.cli }, (_, i) => `${PREFIX}t-cli-${i}`);
      const as = names.map((name, i) => timeCli('dmsetup', ['create', name, '--table', `0 2048 thin ${pool.poolDev} ${cliFirst + i}`]).us);
      const ds = names.map((name) => timeCli('dmsetup', ['remove', name]).us);
      return [as, ds];
    });
  }

  {
    log('loop attach / detach');
    const a = newOp('loop_attach', 'loop attach (LOOP_CONFIGURE path)', 'loop', 'losetup -f --show');
    const d = newOp('loop_detach', 'loop detach (LOOP_CLR_FD)', 'loop', 'losetup -d');
    const file = sparseFile(join(WORK, 'loopfile'), 64 << 20);
    for (let w = 0; w < WARM.heavy; w++) {
      const att = await loops.attach(file, { autoclear: false, hold: false });
      await loops.detach(att.path);
    }
    await measure([a, d], 'ours', async () => {
      const as: number[] = [];
      const ds: number[] = [];
      const paths: string[] = [];
      for (let i = 0; i < R.heavy; i++) {
        const t0 = performance.now();
        const att = await loops.attach(file, { autoclear: false, hold: false });
        as.push((performance.now() - t0) * 1000);
        paths.push(att.path);
      }
      for (const path of paths) {
        const t0 = performance.now();
        await loops.detach(path);
        ds.push((performance.now() - t0) * 1000);
      }
      return [as, ds];
    });
    await measureC([a, d], 'floor', 'loop', { reps: R.heavy, file }, ['attach', 'detach']);
    a.unavailable.libdm = 'libdevmapper has no loop API';
    d.unavailable.libdm = 'libdevmapper has no loop API';
    await measure([a, d], 'cli', () => {
      const paths: string[] = [];
      const as = Array.from({ length: R.cli }, () => {
        const r = timeCli('losetup', ['-f', '--show', file]);
        paths.push(r.stdout.trim());
        return r.us;
      });
      const ds = paths.map((path) => timeCli('losetup', ['-d', path]).us);
      return [as, ds];
    });
  }

  await origin.deactivate();
  batched.close();
}

/**
 * A DmControl({ batch: true }) over the real kernel whose BatchWorker has run `warm` DM_VERSION
 * batches (the worker thread's loop warmed by its own JIT, as the main thread's paths are).
 */
async function batchedDm(warm: number): Promise<{ ctl: DmControl; hopUs: number[] }> {
  let batcher: io.IoctlBatcher | undefined;
  const real = io.realSyscalls();
  const seam = new Proxy(real, {
    get(t, prop) {
      if (prop === 'openBatch') {
        return () => {
          batcher = real.openBatch!();
          return batcher;
        };
      }
      const v = Reflect.get(t, prop, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  const ctl = new DmControl({ syscalls: seam, procMiscPath: '/proc/misc', batch: true });
  // One operation that batches makes DmControl open its batcher.
  await ctl.createDevice(`${PREFIX}batch-open`, [zeroTarget(0n, 8n)]);
  await ctl.deviceRemove(`${PREFIX}batch-open`);
  const b = batcher;
  if (b === undefined) throw new Error('DmControl({ batch: true }) opened no batcher');
  const hopUs = await withControl((_sc, fd) => {
    const buf = io.buildDmRequest({ version: [4, 0, 0] });
    const once = async (): Promise<void> => {
      const out = await b.run([{ fd, request: io.DM_VERSION, arg: buf, requestName: 'DM_VERSION' }]);
      if (out.error) throw out.error;
    };
    // The warm-up calls, then the hop itself (as the DM_VERSION ioctlAsync row above).
    return timeLoop(R.light, Math.max(2, R.batchVersion / 10), warm, once);
  });
  return { ctl, hopUs };
}

/** Runs `fn` with the real seam and an open /dev/mapper/control. */
async function withControl<T>(fn: (sc: io.Syscalls, fd: number) => Promise<T>): Promise<T> {
  const sc = io.realSyscalls();
  const fd = sc.open('/dev/mapper/control', O_RDWR | O_CLOEXEC);
  try {
    return await fn(sc, fd);
  } finally {
    sc.close(fd);
  }
}

/** Adds "<row>: N× the floor" notes to `op` for the info rows `ids`, against `op`'s floor median. */
function noteAgainstFloor(op: OpResult, rowIds: readonly string[]): void {
  const floor = op.impl.floor?.median;
  if (floor === undefined || floor <= 0) return;
  for (const id of rowIds) {
    const row = ops.find((o) => o.id === id);
    const ours = row?.impl.ours?.median;
    if (row && ours !== undefined) op.notes.push(`${row.label.replace(/ \(info\)$/, '')}: ${(ours / floor).toFixed(2)}× the floor`);
  }
}

// ------------------------------------------------------------------------------ event-loop lag

async function lagBenchmarks(p: PoolSetup): Promise<void> {
  const pool = p.pool;
  {
    log('lag: idle baseline');
    const probe = startLagProbe();
    await new Promise((r) => setTimeout(r, SMOKE ? 200 : 1000));
    const l = probe.stop();
    lag.push({ scenario: 'idle baseline (timer only)', worstLagMs: l.worstMs, medianLagMs: l.medianMs,
        p99LagMs: l.p99Ms, ticks: l.ticks, blockedMs: 0, notes: [] });
  }

  // Suspend (flushing) while another process writes to the device with O_DIRECT.
  {
    log('lag: suspend under write load');
    const id = ids(1);
    await pool.createThin(id);
    const t = ThinDevice.of(pool, id);
    const name = `${PREFIX}lag-load`;
    await t.activate(name, 524288n); // 256 MiB
    const node = `/dev/dm-${t.dev!.minor}`;
    let writer: ChildProcess | undefined;
    try {
      writer = spawn('sh', ['-c', `while :; do dd if=/dev/zero of=${node} bs=1M count=256 oflag=direct 2>/dev/null; done`], {
        stdio: 'ignore',
        detached: true,
      });
      await new Promise((r) => setTimeout(r, 500));
      const calls: number[] = [];
      const probe = startLagProbe();
      const started = performance.now();
      for (let i = 0; i < R.lagCycles; i++) {
        const s = performance.now();
        await dm.deviceSuspend(name);
        calls.push(performance.now() - s);
        await dm.deviceResume(name);
        await new Promise((r) => setTimeout(r, 20));
      }
      const blocked = performance.now() - started;
      const l = probe.stop();
      const status = await t.status();
      lag.push({
        scenario: `suspend (flush) under O_DIRECT write load, ${R.lagCycles} cycles`,
        worstLagMs: l.worstMs,
        medianLagMs: l.medianMs,
        p99LagMs: l.p99Ms,
        ticks: l.ticks,
        blockedMs: blocked,
        callMs: summarize(calls),
        notes: [`thin status after: ${JSON.stringify(status, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`],
      });
    } catch (e) {
      errors.push(`lag/suspend: ${errText(e)}`);
    } finally {
      if (writer?.pid) {
        try {
          process.kill(-writer.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      await t.deactivate();
    }
  }

  // DM_DEV_WAIT blocking until a rename raises an event.
  {
    log('lag: DM_DEV_WAIT');
    let name = `${PREFIX}lag-wait`;
    await dm.createDevice(name, [zeroTarget(0n, 2048n)]);
    try {
      const info = await dm.deviceInfo(name);
      const probe = startLagProbe();
      const started = performance.now();
      const waiting = dm.deviceWait(name, info.eventNr);
      const delay = SMOKE ? 100 : 500;
      await new Promise((r) => setTimeout(r, delay));
      const renamed = `${PREFIX}lag-wait2`;
      await dm.deviceRename(name, { name: renamed });
      name = renamed;
      const res = await Promise.race([
        waiting,
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('DM_DEV_WAIT did not return within 10 s')), 10_000)),
      ]);
      const blocked = performance.now() - started;
      const l = probe.stop();
      lag.push({
        scenario: `DM_DEV_WAIT in flight ${delay} ms until a rename raises an event`,
        worstLagMs: l.worstMs,
        medianLagMs: l.medianMs,
        p99LagMs: l.p99Ms,
        ticks: l.ticks,
        blockedMs: blocked,
        notes: [`event_nr ${info.eventNr} → ${res.info.eventNr}`],
      });
    } catch (e) {
      errors.push(`lag/wait: ${errText(e)}`);
    } finally {
      await dm.deviceRemove(name);
    }
  }
}

// ------------------------------------------------------------------------------ DeviceSet

/** DeviceSet growth stops before a size whose addDevice calls alone would take longer than this. */
const DS_BUDGET_MS = 300_000;
const DS_OPTS = ['dm.loopdatasize=4G', 'dm.loopmetadatasize=1G', 'dm.basesize=64M'];
const dsQuiet = { log: () => undefined };

/** DeviceSet.addDevice and activate/deactivate, with the floor doing the same kernel requests. */
async function deviceSetBenchmarks(): Promise<void> {
  log('DeviceSet.init (fresh: pool, base device, mkfs)');
  const root = join(WORK, 'ds-ops');
  const t0 = performance.now();
  const set = await DeviceSet.init(root, { options: DS_OPTS, ...dsQuiet });
  log(`  fresh init took ${(performance.now() - t0).toFixed(0)} ms`);
  try {
    const st = await set.status();
    const poolDev = (await dm.deviceInfo(st.poolName)).dev;
    const poolDevStr = `${poolDev.major}:${poolDev.minor}`;
    const base = set.deviceInfo('');
    const sizeSectors = Number(base.size / 512n);

    const add = newOp('ds_add', 'DeviceSet.addDevice (journalled create_snap of the base)', 'info');
    add.notes.push('floor = one create_snap message; addDevice also sends set_transaction_id and writes the journal (4 fsynced metadata writes)');
    let n = 0;
    await measure(add, 'ours', () => timeLoop(R.heavy, 1, WARM.heavy, () => set.addDevice(`bench${n++}`, '')));
    // Floor: create_snap of the base id into ids DeviceSet never allocates (it counts up from 1).
    const floorIds = 16_000_000;
    await measureC(add, 'floor', 'message', { reps: R.heavy, name: st.poolName, fmt: `create_snap %d ${base.deviceId}`, id0: floorIds });
    await concurrentAdds(set, 'ds_add32', 'DeviceSet: 32 concurrent addDevice (one sample = all 32), root on tmpfs', add, 'tmpfs');

    const act = newOp('ds_activate', 'DeviceSet.activateDevice', 'info');
    const deact = newOp('ds_deactivate', 'DeviceSet.deactivateDevice', 'info');
    act.notes.push('floor = create+load+resume of the same thin table');
    for (let w = 0; w < WARM.heavy; w++) {
      await set.activateDevice(`bench${w}`);
      await set.deactivateDevice(`bench${w}`);
    }
    await measure([act, deact], 'ours', async () => {
      const as: number[] = [];
      const ds: number[] = [];
      for (let i = 0; i < R.heavy; i++) {
        const t = performance.now();
        await set.activateDevice(`bench${i}`);
        as.push((performance.now() - t) * 1000);
      }
      for (let i = 0; i < R.heavy; i++) {
        const t = performance.now();
        await set.deactivateDevice(`bench${i}`);
        ds.push((performance.now() - t) * 1000);
      }
      return [as, ds];
    });
    await measureC([act, deact], 'floor', 'create_remove', {
      reps: R.heavy,
      prefix: `${PREFIX}ds-floor`,
      type: 'thin',
      sectors: sizeSectors,
      params: `${poolDevStr} %d`,
      id0: floorIds,
    }, ['create', 'remove']);
    for (let i = 0; i < R.heavy; i++) await dm.targetMessage(st.poolName, 0n, `delete ${floorIds + i}`).catch(() => undefined);
  } finally {
    await set.shutdown();
  }
}

/** Concurrent addDevice calls per sample (issue 21 §3: group commit); 4 in the smoke run. */
const CONCURRENT_ADDS = SMOKE ? 4 : 32;

/**
 * `CONCURRENT_ADDS` addDevice calls of the base at once, R.concurrent samples of the whole batch;
 * notes the ratio to `one`'s median (issue 21 target: < 8×).
 */
async function concurrentAdds(set: DeviceSet, id: string, label: string, one: OpResult, tag: string): Promise<OpResult> {
  const op = newOp(id, label, 'info');
  let n = 0;
  await measure(op, 'ours', async () => {
    const out: number[] = [];
    for (let r = 0; r < R.concurrent; r++) {
      const t = performance.now();
      await Promise.all(Array.from({ length: CONCURRENT_ADDS }, () => set.addDevice(`${tag}-c${n++}`, '')));
      out.push((performance.now() - t) * 1000);
    }
    return out;
  });
  // Deleted again, concurrently (a batch too), so that later sections find the set as before.
  await Promise.all(Array.from({ length: n }, (_, i) => set.deleteDevice(`${tag}-c${i}`, { sync: true }))).catch((e: unknown) => errors.push(`${id} cleanup: ${errText(e)}`));
  const a = one.impl.ours?.median;
  const b = op.impl.ours?.median;
  if (a !== undefined && b !== undefined) op.notes.push(`${CONCURRENT_ADDS} concurrent / one addDevice = ${(b / a).toFixed(2)}× (target < 8×)`);
  return op;
}

/** dm-delay's delay in ms for every read, write and flush under the real-filesystem root (drivers/md/dm-delay.c). */
const FS_DELAY_MS = 1;

/**
 * DeviceSet with its root on a real filesystem, where fsync costs something (issue 21 §3): ext4
 * on a dm `delay` target (every read, write and flush delayed by FS_DELAY_MS) over a loop device
 * whose file is on the guest's tmpfs. Rows: one addDevice, 32 concurrent addDevice calls, two
 * fsyncs (a new 300-byte file's fsync, its rename, the directory's fsync: the intent of one
 * operation), and the C create_snap floor on the same pool (the pool's metadata is on that ext4
 * too: each message's metadata commit flushes through the loop device, an fsync of its file).
 */
async function deviceSetRealFs(): Promise<void> {
  const backing = join(WORK, 'ext4-backing.img');
  const mnt = join(WORK, 'ds-ext4');
  const delayName = `${PREFIX}fsync-delay`;
  const bytes = (SMOKE ? 192 : 768) << 20;
  const fd = openSync(backing, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  const lo = await loops.attach(backing, { autoclear: false });
  lo.close();
  let mounted = false;
  try {
    // drivers/md/dm-delay.c: `<device> <offset> <delay ms>` delays reads, writes and flushes alike.
    await dm.createDevice(delayName, [{ start: 0n, length: BigInt(bytes / 512), type: 'delay', params: `${lo.path} 0 ${FS_DELAY_MS}` }]);
    const node = dm.nodePath(delayName);
    const mk = spawnSyncChecked('mkfs.ext4', ['-q', '-F', node]);
    if (mk) throw new Error(mk);
    mkdirSync(mnt, { recursive: true });
    const mo = spawnSyncChecked('mount', ['-t', 'ext4', node, mnt]);
    if (mo) throw new Error(mo);
    mounted = true;
    const label = `root on ext4 over dm-delay ${FS_DELAY_MS} ms`;
    log(`DeviceSet on a real filesystem (${label})`);
    const fsync = newOp('ds_fs_fsync2', `two fsyncs (new 300-byte file fsync + rename + directory fsync), ${label}`, 'info');
    const dirFd = openSync(mnt, 'r');
    try {
      let k = 0;
      const data = Buffer.alloc(300, 'x');
      await measure(fsync, 'ours', () =>
        timeLoopSync(R.heavy, 1, WARM.heavy, () => {
          const tmp = join(mnt, `.fsync-${k}`);
          const f = openSync(tmp, 'w', 0o600);
          writeSync(f, data);
          fsyncSync(f);
          closeSync(f);
          renameSync(tmp, join(mnt, `fsync-${k++}`));
          fsyncSync(dirFd);
        }),
      );
    } finally {
      closeSync(dirFd);
    }
    const t0 = performance.now();
    const set = await DeviceSet.init(join(mnt, 'root'), { options: ['dm.loopdatasize=2G', 'dm.loopmetadatasize=64M', `dm.basesize=${SMOKE ? 16 : 64}M`], ...dsQuiet });
    log(`  fresh init took ${(performance.now() - t0).toFixed(0)} ms`);
    try {
      const add = newOp('ds_fs_add', `DeviceSet.addDevice, ${label}`, 'info');
      add.notes.push('floor = one create_snap message on the same pool; the target compares ours with floor + two fsyncs (ds_fs_fsync2)');
      let n = 0;
      // Few warm-up calls: each costs real fsyncs here, and the JIT is warm from the tmpfs rows.
      await measure(add, 'ours', () => timeLoop(R.heavy, 1, Math.min(WARM.heavy, 3), () => set.addDevice(`fs${n++}`, '')));
      const st = await set.status();
      const floorIds = 15_000_000;
      await measureC(add, 'floor', 'message', { reps: R.heavy, name: st.poolName, fmt: `create_snap %d ${set.deviceInfo('').deviceId}`, id0: floorIds });
      for (let i = 0; i < R.heavy; i++) await dm.targetMessage(st.poolName, 0n, `delete ${floorIds + i}`).catch(() => undefined);
      const ours = add.impl.ours?.median;
      const floor = add.impl.floor?.median;
      const two = fsync.impl.ours?.median;
      if (ours !== undefined && floor !== undefined && two !== undefined) {
        add.notes.push(`addDevice / (create_snap floor + two fsyncs) = ${(ours / (floor + two)).toFixed(2)}× (target ≤ 3×; floor ${(floor / 1000).toFixed(2)} ms + fsyncs ${(two / 1000).toFixed(2)} ms)`);
      }
      await concurrentAdds(set, 'ds_fs_add32', `DeviceSet: ${CONCURRENT_ADDS} concurrent addDevice (one sample = all ${CONCURRENT_ADDS}), ${label}`, add, 'fs');
    } finally {
      await set.shutdown();
    }
  } finally {
    if (mounted) {
      const um = spawnSyncChecked('umount', [mnt]);
      if (um) errors.push(`ds real fs: ${um}`);
    }
    await dm.deviceRemove(delayName).catch(() => undefined);
    await loops.detach(lo.path).catch(() => undefined);
    rmSync(backing, { force: true });
  }
}

/** Runs a tool to completion; '' when it exited 0, else what went wrong. */
function spawnSyncChecked(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return `${cmd}: ${r.error.message}`;
  return r.status === 0 ? '' : `${cmd} ${args.join(' ')}: exit ${r.status}: ${(r.stderr || '').trim()}`;
}

/** DeviceSet at growing sizes: addDevice up to each size; init (reload), status(), list(). */
async function deviceSetGrowth(sizes: number[], notes: string[]): Promise<Map<number, DeviceSetPoint>> {
  const out = new Map<number, DeviceSetPoint>();
  // The same root as deviceSetBenchmarks: this init is already a reload (no second mkfs).
  const root = join(WORK, 'ds-ops');
  let set = await DeviceSet.init(root, { options: DS_OPTS, ...dsQuiet });
  let count = set.list().filter((h) => h !== '').length;
  try {
    let lastAddMs = 0;
    for (const size of sizes) {
      const need = size - count;
      if (need <= 0) {
        notes.push(`DeviceSet growth: size ${size} skipped, the set already holds ${count} devices`);
        continue;
      }
      if (lastAddMs * need > DS_BUDGET_MS) {
        notes.push(
          `DeviceSet growth stopped at ${count} devices: addDevice at ${lastAddMs.toFixed(1)} ms projects ${((lastAddMs * need) / 1000).toFixed(0)} s to reach ${size} (budget ${DS_BUDGET_MS / 1000} s)`,
        );
        break;
      }
      log(`DeviceSet growth: ${size} devices`);
      const tail = Math.min(need, 100);
      let tailStart = performance.now();
      for (let i = 0; i < need; i++) {
        if (i === need - tail) tailStart = performance.now();
        await set.addDevice(`g${count}-${i}`, '');
        count++;
      }
      const addDeviceUs = ((performance.now() - tailStart) * 1000) / Math.max(1, tail);
      lastAddMs = addDeviceUs / 1000;
      const reps = SMOKE ? 2 : 5;
      const statusUs = summarize(await timeLoop(reps, 1, 1, () => set.status())).median;
      const listUs = summarize(await timeLoop(reps, 1, 1, () => set.list())).median;
      // init reloads every record; the pool stays (shutdown removes it, init re-creates it from
      // the same metadata), so this is Docker's daemon restart.
      await set.shutdown();
      const ti = performance.now();
      set = await DeviceSet.init(root, { options: DS_OPTS, ...dsQuiet });
      const initUs = (performance.now() - ti) * 1000;
      if (set.list().length < size) throw new Error(`DeviceSet reloaded ${set.list().length} devices, expected ≥ ${size}`);
      out.set(size, { initUs, statusUs, listUs, addDeviceUs });
      log(`  init ${(initUs / 1000).toFixed(0)} ms, addDevice ${(addDeviceUs / 1000).toFixed(1)} ms`);
    }
  } finally {
    await set.shutdown();
  }
  return out;
}

// ------------------------------------------------------------------------------ autoextend

/**
 * Low-water event → resumed pool, at two pool sizes. Each sample is the first crossing of a fresh
 * DeviceSet with dm.autoextend_threshold=1% (the smallest, so few blocks are written to cross it)
 * and dm.autoextend_percent=20% (LVM's default): a thin device (a snapshot of the base) is written
 * block by block through the page cache with a datasync per batch, so each write allocates one
 * pool block. The write that allocates with free blocks ≤ the low water mark makes dm-thin raise
 * the event (alloc_data_block → check_low_water_mark → dm_table_event); the sample runs from that
 * write's start to the Autoextender's `extended` (file grown, LOOP_SET_CAPACITY, table reloaded
 * and resumed). A sub-row times the grow alone, from the monitor's `lowWater` to `extended`.
 * Only first crossings: after a grow the monitor can report a lowWater from a reading taken
 * during the reload (docs/pool-monitor.md, "Readings during a reload"), which starts a check of
 * its own and disturbs the next sample. The host-space bound is lifted (statfs still runs): the
 * sparse file outgrows the guest's tmpfs on paper only.
 */
async function autoextendBenchmarks(): Promise<void> {
  for (const mib of R.autoextend.sizesMiB) {
    const label = mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`;
    const op = newOp(`ds_autoextend_${mib}m`, `DeviceSet autoextend: low-water event → resumed pool (${label} data, +20 %)`, 'info');
    const step = newOp(`ds_autoextend_step_${mib}m`, `— of which the grow step (monitor's lowWater → extended), ${label}`, 'info');
    const samples: number[] = [];
    const steps: number[] = [];
    log(`autoextend: ${label} pool, ${R.autoextend.reps} fresh DeviceSet(s)`);
    try {
      for (let rep = 0; rep < R.autoextend.reps; rep++) {
        const root = join(WORK, `ds-autoextend-${mib}-${rep}`);
        const set = await DeviceSet.init(root, {
          options: [`dm.loopdatasize=${mib}M`, 'dm.loopmetadatasize=64M', `dm.basesize=${SMOKE ? 16 : 512}M`, 'dm.min_free_space=0%', 'dm.autoextend_threshold=1%', 'dm.autoextend_percent=20%'],
          autoextend: { hostFreeBytes: async (path) => (await statfsFreeBytes(path), 1n << 50n) },
          ...dsQuiet,
        });
        try {
          const monitor = set.autoextender.monitor;
          if (!monitor) throw new Error('the autoextend monitor is not running');
          await set.addDevice('writer', '');
          await set.activateDevice('writer');
          const dev = `/dev/mapper/${set.deviceInfo('writer').dmName}`;
          const bs = set.options.blockSize;
          const blockBytes = Number(bs);
          const virtualBlocks = Number(set.deviceInfo('writer').size) / blockBytes;
          const st = await set.status();
          const used = st.data.used / bs;
          const total = st.data.total / bs;
          const mark = st.autoextend.lowWaterMark ?? 0n;
          // The k-th allocation sees free = total − used − (k − 1); the first with free ≤ mark raises the event.
          const k = Number(total - used - mark) + 1;
          if (k < 1) throw new Error(`the pool is already below its low water mark (${used}/${total} blocks used, mark ${mark})`);
          if (k > virtualBlocks) throw new Error(`the writer device has ${virtualBlocks} blocks; ${k} needed`);
          let tEvent = 0;
          monitor.on('lowWater', () => void (tEvent ||= performance.now()));
          let ext: AutoextendExtension | undefined;
          const grown = new Promise<AutoextendExtension>((resolve) => set.autoextender.once('extended', (e) => resolve((ext = e))));
          const fh = await fsPromises.open(dev, 'r+');
          try {
            const buf = Buffer.alloc(blockBytes, 0xa5);
            for (let i = 0; i < k - 1; i++) await fh.write(buf, 0, blockBytes, i * blockBytes);
            await fh.datasync();
            if (tEvent > 0 || ext) throw new Error(`the pool crossed its mark before the ${k}th block (${used}/${total} used, mark ${mark})`);
            const t0 = performance.now();
            await fh.write(buf, 0, blockBytes, (k - 1) * blockBytes);
            await fh.datasync();
            const done = await grown;
            const t1 = performance.now();
            samples.push((t1 - t0) * 1000);
            if (tEvent > 0) steps.push((t1 - tEvent) * 1000);
            log(`  ${done.from / 1048576n} → ${done.to / 1048576n} MiB (${done.trigger}) in ${(t1 - t0).toFixed(1)} ms${tEvent > 0 ? `, ${(t1 - tEvent).toFixed(1)} ms after the monitor's lowWater` : ''}`);
          } finally {
            await fh.close();
          }
        } finally {
          await set.shutdown();
          rmSync(root, { recursive: true, force: true });
        }
      }
      put(op, 'ours', samples);
      if (steps.length > 0) put(step, 'ours', steps);
      op.notes.push(`${R.autoextend.reps} fresh pool(s) of ${label}, the first crossing of each; from the crossing write's start to the resumed pool`);
    } catch (e) {
      fail(op, 'ours', e);
      log(`FAILED: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }
}

// ------------------------------------------------------------------------------ growth

async function growth(): Promise<BenchResults['growth']> {
  const notes: string[] = [];
  const points: GrowthPoint[] = [];
  const sizes = R.growth;
  const top = sizes[sizes.length - 1]!;
  // Metadata: every thin device costs at least one 4 KiB btree block; 10k devices ≈ 40 MiB.
  const gp = await makePool(`${PREFIX}gpool`, 512 << 20, 1 << 30);
  const pool = gp.pool;
  let activateCap = top;
  const active: ThinDevice[] = [];
  let created = 0;
  const activateSize = 2048n;
  try {
    for (const size of sizes) {
      log(`growth: ${size} thin devices`);
      // create_thin up to `size`; the per-device cost is the mean over the step's last ≤ 200.
      const need = size - created;
      const tail = Math.min(need, 200);
      let tailStart = 0;
      for (let i = 0; i < need; i++) {
        if (i === need - tail) tailStart = performance.now();
        await pool.createThin(created + 1);
        created++;
      }
      const createThinUs = ((performance.now() - tailStart) * 1000) / Math.max(1, tail);

      // Activate up to min(size, cap): decide the cap from the measured cost once 1000 are active.
      let activateUs: number | null = null;
      const target = Math.min(size, activateCap);
      const aNeed = target - active.length;
      if (aNeed > 0) {
        const aTail = Math.min(aNeed, 200);
        let aStart = 0;
        const stepStart = performance.now();
        for (let i = 0; i < aNeed; i++) {
          if (i === aNeed - aTail) aStart = performance.now();
          const t = ThinDevice.of(pool, active.length + 1);
          await t.activate(`${PREFIX}g-${active.length + 1}`, activateSize);
          active.push(t);
        }
        activateUs = ((performance.now() - aStart) * 1000) / aTail;
        const perMs = (performance.now() - stepStart) / aNeed;
        const next = sizes[sizes.indexOf(size) + 1];
        if (next !== undefined && activateCap > size) {
          // Activating the rest and removing them all again, at this step's cost each.
          const projected = perMs * (next - active.length) + perMs * next;
          if (projected > ACTIVATE_BUDGET_MS) {
            activateCap = size;
            notes.push(
              `activation capped at ${size}: ${perMs.toFixed(2)} ms per activation projects ${(projected / 1000).toFixed(0)} s to activate and remove ${next} (budget ${ACTIVATE_BUDGET_MS / 1000} s)`,
            );
          }
        }
      }

      const listed = (await dm.listDevices()).length;
      const reps = SMOKE ? 2 : size >= 10000 ? 5 : 9;
      const listDevices = summarize(await timeLoop(reps, 1, 1, () => dm.listDevices()));
      let listDevicesFloor: Summary | null = null;
      if (ext.has('floor')) {
        try {
          listDevicesFloor = summarize(ext.run('floor', 'list', { reps, batch: 1, warmup: 1 }).series['op']!);
        } catch (e) {
          errors.push(`growth/list floor at ${size}: ${errText(e)}`);
        }
      }
      const poolStatus = summarize(await timeLoop(reps, 1, 1, () => pool.status()));
      gcNow();
      const mem = process.memoryUsage();
      points.push({
        thinCount: created,
        activeCount: active.length,
        listed,
        createThinUs,
        activateUs,
        listDevices,
        listDevicesFloor,
        poolStatus,
        rssMiB: mem.rss / 1048576,
        heapUsedMiB: mem.heapUsed / 1048576,
        deviceSet: null,
      });
      log(`  ${created} thin, ${active.length} active, list ${(listDevices.median / 1000).toFixed(2)} ms, rss ${(mem.rss / 1048576).toFixed(0)} MiB`);
    }
  } finally {
    // Slow removes through the async path: every active thin device, then the pool.
    log(`growth: removing ${active.length} thin devices and the pool`);
    const calls: number[] = [];
    const probe = startLagProbe();
    const started = performance.now();
    for (const t of active) {
      const s = performance.now();
      try {
        await t.deactivate();
      } catch (e) {
        errors.push(`growth teardown ${t.activeName}: ${errText(e)}`);
      }
      calls.push(performance.now() - s);
    }
    const s = performance.now();
    try {
      await pool.remove();
    } catch (e) {
      errors.push(`growth pool remove: ${errText(e)}`);
    }
    const poolRemoveMs = performance.now() - s;
    const l = probe.stop();
    if (calls.length > 0)
      lag.push({
        scenario: `remove ${calls.length} active thin devices one by one, then the pool (${created} thin ids)`,
        worstLagMs: l.worstMs,
        medianLagMs: l.medianMs,
        p99LagMs: l.p99Ms,
        ticks: l.ticks,
        blockedMs: performance.now() - started,
        callMs: summarize(calls),
        notes: [`pool remove took ${poolRemoveMs.toFixed(1)} ms`],
      });
    await loops.detach(gp.meta.path).catch((e: unknown) => errors.push(`growth detach: ${errText(e)}`));
    await loops.detach(gp.data.path).catch((e: unknown) => errors.push(`growth detach: ${errText(e)}`));
  }
  notes.push(`sizes ${sizes.join(', ')}: create_thin messages to each size; thin devices activated up to ${activateCap}`);
  return { sizes, activateCap, points, notes };
}

/** The `ds` commands as CLI processes (bench/lib/ds-cli.ts); snapshots timed on the bench's pool. */
async function dsCli(p: PoolSetup): Promise<void> {
  const originId = 900_000;
  await p.pool.createThin(originId);
  try {
    await dsCliBenchmarks({
      reps: DS_CLI_ONLY ? 5 : R.cli,
      root: join(WORK, 'ds-cli-root'),
      pool: p.pool,
      originId,
      firstFreeId: originId + 1,
      newOp: (id, label) => newOp(id, label, 'info'),
      put: (op, samples) => put(op, 'ours', samples),
      log,
    });
  } catch (e) {
    errors.push(`ds cli: ${errText(e)}`);
    log(`ds cli FAILED: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    await p.pool.deleteThin(originId).catch(() => undefined);
  }
}

// ------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  await sweep();
  const dmVersion = (await dm.version()).join('.');
  log(`kernel ${release()}, dm ioctl ${dmVersion}, node ${process.version}, ${SMOKE ? 'SMOKE' : 'full'} run`);
  if (!ext.has('libdm')) log(`libdm: n/a (${ext.libdmUnavailable || 'not built'})`);

  let growthResult: BenchResults['growth'] = { sizes: R.growth, activateCap: 0, points: [], notes: [] };
  const p = await makePool(`${PREFIX}pool`, 64 << 20, 1 << 30);
  try {
    if (RUN.ops) await opBenchmarks(p);
    if (RUN.lag) await lagBenchmarks(p);
    if (RUN.dsCli) await dsCli(p);
  } catch (e) {
    errors.push(`ops: ${errText(e)}`);
    log(`FAILED: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    await sweep().catch(() => undefined);
  }
  if (RUN.deviceSet) try {
    await deviceSetBenchmarks();
  } catch (e) {
    errors.push(`ops: ${errText(e)}`);
    log(`FAILED: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    await sweep().catch(() => undefined);
  }
  if (RUN.deviceSetRealFs) try {
    await deviceSetRealFs();
  } catch (e) {
    errors.push(`deviceset real fs: ${errText(e)}`);
    log(`FAILED: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    await sweep().catch(() => undefined);
  }
  if (RUN.rest) try {
    await autoextendBenchmarks();
  } catch (e) {
    errors.push(`autoextend: ${errText(e)}`);
    log(`FAILED: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    await sweep().catch(() => undefined);
  }
  if (RUN.rest) try {
    growthResult = await growth();
  } catch (e) {
    errors.push(`growth: ${errText(e)}`);
    log(`FAILED: ${e instanceof Error ? e.stack : String(e)}`);
  }
  if (RUN.rest) try {
    const dsNotes: string[] = [];
    const ds = await deviceSetGrowth(R.growth, dsNotes);
    const points = growthResult.points.map((pt) => ({ ...pt, deviceSet: ds.get(pt.thinCount) ?? null }));
    growthResult = {
      ...growthResult,
      points,
      notes: [...growthResult.notes, `DeviceSet growth: its own pool; addDevice (snapshots of the base) up to each size, then shutdown + init (reload), status(), list()`, ...dsNotes],
    };
  } catch (e) {
    errors.push(`deviceset growth: ${errText(e)}`);
    log(`FAILED: ${e instanceof Error ? e.stack : String(e)}`);
  }
  await sweep().catch(() => undefined);
  dm.close();

  const results: BenchResults = {
    meta: {
      date: new Date().toISOString(),
      smoke: SMOKE,
      kernel: release(),
      dmVersion,
      node: process.version,
      cpus: cpus().length,
      memMiB: Math.round(totalmem() / 1048576),
      libdm: ext.has('libdm') ? 'libdevmapper via bench/reference/libdm.c' : `n/a (${ext.libdmUnavailable || 'not built'})`,
      guestMs: performance.now() - t0Guest,
    },
    ops,
    growth: growthResult,
    lag,
    errors,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  log(`wrote ${OUT} (${errors.length} errors) in ${((performance.now() - t0Guest) / 1000).toFixed(1)} s`);
}

await main();
// Tidy-up of the work dir is best effort; the VM's /tmp is a tmpfs anyway.
rmSync(WORK, { recursive: true, force: true });
log(`done after ${((performance.now() - t0Guest) / 1000).toFixed(1)} s`);
// Nothing may keep the guest alive (a straggling timer or child): the results are written.
process.exit(0);
