// SPDX-License-Identifier: MIT
// PoolMonitor on the FakeKernel: every event (lowWater, outOfDataSpace, modeChange, needsCheck,
// metadataLow, poolGone/poolAppeared, error), both wait mechanisms (DM_DEV_ARM_POLL and the
// DM_DEV_WAIT fallback of a 4.35 interface), close/abort with no fd left, input refusal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../../src/errors.js';
import { DmControl } from '../../../src/dm/index.js';
import { LoopControl, ensureSparseFile, type LoopAttachment } from '../../../src/loop/index.js';
import { PoolMonitor, UnexpectedTargetError, metadataThreshold, type PoolMonitorEvents, type PoolMonitorOptions } from '../../../src/thin/index.js';
import { FakeIoError, FakeKernel } from '../../../src/testing/index.js';

const KiB = 1024;
const BLOCK_SECTORS = 128n; // 64 KiB data blocks

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'pool-monitor-test-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface World {
  fake: FakeKernel;
  dm: DmControl;
  loops: LoopControl;
  meta: LoopAttachment;
  data: LoopAttachment;
}

/** A pool `pool` of `blocks` data blocks (data file: 32 blocks), low water 2, and thin `thin` (id 1, 32 blocks). */
async function world(options: { dmVersion?: [number, number, number]; metaBytes?: number; blocks?: bigint; features?: string } = {}): Promise<World> {
  const fake = new FakeKernel({ sysfs: true, ...(options.dmVersion ? { dmVersion: options.dmVersion } : {}) });
  const dm = new DmControl({ syscalls: fake, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 }, sleep: async () => {} });
  const loops = new LoopControl({ syscalls: fake, sysfsRoot: fake.sysfsRoot!, sleep: async () => {} });
  await ensureSparseFile(join(dir, 'meta'), options.metaBytes ?? 4096 * KiB);
  await ensureSparseFile(join(dir, 'data'), 32 * 64 * KiB);
  const meta = await loops.attach(join(dir, 'meta'));
  const data = await loops.attach(join(dir, 'data'));
  const w = { fake, dm, loops, meta, data };
  await createPool(w, options.blocks ?? 8n, options.features ?? '0');
  await dm.targetMessage('pool', 0n, 'create_thin 1');
  await createThin(w);
  return w;
}

async function createPool(w: World, blocks: bigint, features = '0'): Promise<void> {
  await w.dm.createDevice('pool', [poolLine(w, blocks, features)]);
}

function poolLine(w: World, blocks: bigint, features = '0'): { start: bigint; length: bigint; type: string; params: string } {
  return { start: 0n, length: blocks * BLOCK_SECTORS, type: 'thin-pool', params: `${w.meta.devNumber} ${w.data.devNumber} ${BLOCK_SECTORS} 2 ${features}` };
}

async function createThin(w: World): Promise<void> {
  const p = w.fake.device('pool')!;
  await w.dm.createDevice('thin', [{ start: 0n, length: 32n * BLOCK_SECTORS, type: 'thin', params: `${p.major}:${p.minor} 1` }]);
}

/** Grows the pool's table to `blocks` and resumes (pool_resume → event; commit → back to rw). */
async function grow(w: World, blocks: bigint): Promise<void> {
  await w.dm.tableLoad('pool', [poolLine(w, blocks)]);
  await w.dm.deviceSuspend('pool');
  await w.dm.deviceResume('pool');
}

function writeThin(w: World, first: number, count: number): string {
  try {
    w.fake.writeThin('thin', first, count);
    return 'ok';
  } catch (e) {
    if (e instanceof FakeIoError) return e.code;
    throw e;
  }
}

type Recorded = { [K in keyof PoolMonitorEvents]: [K, ...PoolMonitorEvents[K]] }[keyof PoolMonitorEvents];

/** Every event the monitor emits, in order. */
function record(m: PoolMonitor): Recorded[] {
  const out: Recorded[] = [];
  for (const name of ['lowWater', 'outOfDataSpace', 'modeChange', 'needsCheck', 'metadataLow', 'poolGone', 'poolAppeared', 'error', 'close'] as const) {
    m.on(name, (...args: unknown[]) => out.push([name, ...args] as Recorded));
  }
  return out;
}

/** Compact form of recorded events for exact comparison. */
function summary(events: readonly Recorded[]): string[] {
  return events.map((e) => {
    switch (e[0]) {
      case 'lowWater':
        return `lowWater ${e[1].pool} free=${e[1].freeDataBlocks} mark=${e[1].lowWaterMark} used=${e[1].status.usedDataBlocks}/${e[1].status.totalDataBlocks}`;
      case 'outOfDataSpace':
      case 'needsCheck':
        return `${e[0]} ${e[1].pool} mode=${e[1].status.mode} needsCheck=${e[1].status.needsCheck}`;
      case 'modeChange':
        return `modeChange ${e[1].pool} ${e[1].from}->${e[1].to}`;
      case 'metadataLow':
        return `metadataLow ${e[1].pool} free=${e[1].freeMetadataBlocks} threshold=${e[1].threshold}`;
      case 'poolGone':
        return `poolGone ${e[1].pool}`;
      case 'poolAppeared':
        return `poolAppeared ${e[1].pool} mode=${e[1].state.mode}`;
      case 'error':
        return `error ${e[2]} ${e[1].name}`;
      case 'readingSkipped':
        return `readingSkipped ${e[1].pool} table=${e[1].tableDataBlocks} status=${e[1].statusDataBlocks}`;
      case 'close':
        return 'close';
    }
  });
}

function monitorOn(w: World, options: PoolMonitorOptions = {}, pools: string[] = ['pool']): PoolMonitor {
  return new PoolMonitor(pools, { ...options, dm: { syscalls: w.fake } });
}

/** Resolves at the next `name` event (unlike events.once, an `error` event does not reject it). */
function next(m: PoolMonitor, name: keyof PoolMonitorEvents): Promise<void> {
  return new Promise((resolve) => m.once(name, () => resolve()));
}

/** Lets queued microtasks and immediates run (no timer, no wall-clock wait). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

const controlFds = (fake: FakeKernel): number => fake.openFds().filter((f) => f.kind === 'dm-control').length;

test('ARM_POLL: lowWater, then out_of_data_space (modeChange + outOfDataSpace), then a grow back to rw', async () => {
  const w = await world();
  const m = monitorOn(w);
  const events = record(m);
  await m.ready;
  assert.is(m.mechanism, 'arm-poll');
  assert.is(m.state('pool')?.mode, 'rw');
  assert.is(m.state('pool')?.belowLowWater, false);
  assert.equal(summary(events), []);

  assert.is(writeThin(w, 0, 6), 'ok'); // free 8 → 2; check_low_water_mark runs before each alloc: last saw 3
  await settle();
  assert.equal(summary(events), [], 'no kernel event yet, nothing read');
  const ev1 = next(m, 'lowWater');
  assert.is(writeThin(w, 6, 1), 'ok'); // sees free 2 <= 2: event; then used 7
  await ev1;
  assert.equal(summary(events), ['lowWater pool free=1 mark=2 used=7/8']);

  const ev2 = next(m, 'outOfDataSpace');
  assert.is(writeThin(w, 7, 2), 'ENOSPC'); // block 7 fits, block 8 finds no space
  await ev2;
  assert.equal(summary(events).slice(1), ['modeChange pool rw->out_of_data_space', 'outOfDataSpace pool mode=out_of_data_space needsCheck=false']);

  const ev3 = next(m, 'modeChange');
  await grow(w, 16n);
  await ev3;
  assert.equal(summary(events).slice(3), ['modeChange pool out_of_data_space->rw']);
  assert.is(m.state('pool')?.belowLowWater, false);
  const grown = m.state('pool')!.status;
  assert.ok(grown.kind === 'working');
  assert.equal([grown.usedDataBlocks, grown.totalDataBlocks, grown.mode], [8n, 16n, 'rw']);

  // The low-water edge re-arms once free blocks are above the mark again.
  assert.is(writeThin(w, 8, 6), 'ok'); // free 8 → 2 (last check saw 3)
  const ev4 = next(m, 'lowWater');
  assert.is(writeThin(w, 14, 1), 'ok');
  await ev4;
  assert.equal(summary(events).slice(4), ['lowWater pool free=1 mark=2 used=15/16']);
  await m.close();
  w.fake.dispose();
});

test('modeChange through ro and fail, needsCheck; the kernel keeps a failed pool failed', async () => {
  const w = await world();
  const m = monitorOn(w);
  const events = record(m);
  await m.ready;
  const ev5 = next(m, 'needsCheck');
  w.fake.setPoolMode('pool', 'ro', { needsCheck: true });
  await ev5;
  const ev6 = next(m, 'modeChange');
  w.fake.setPoolMode('pool', 'fail');
  await ev6;
  assert.equal(summary(events), ['modeChange pool rw->ro', 'needsCheck pool mode=ro needsCheck=true', 'modeChange pool ro->fail']);
  assert.equal(m.state('pool')?.status, { kind: 'fail' });
  assert.is(m.state('pool')?.mode, 'fail');
  await m.close();
  w.fake.dispose();
});

test('a pool already low when the monitor starts is reported at once; modeChange needs two readings', async () => {
  const w = await world();
  assert.is(writeThin(w, 0, 8), 'ok');
  w.fake.setPoolMode('pool', 'out_of_data_space');
  const m = monitorOn(w);
  const events = record(m);
  await m.ready;
  assert.equal(summary(events), ['lowWater pool free=0 mark=2 used=8/8', 'outOfDataSpace pool mode=out_of_data_space needsCheck=false']);
  await m.close();
  w.fake.dispose();
});

test('metadataLow: the fake raises the metadata threshold event; threshold = min(1024, blocks/4)', async () => {
  // 256 KiB of metadata = 64 blocks: threshold min(1024, 16) = 16.
  const w = await world({ metaBytes: 256 * KiB });
  const m = monitorOn(w);
  const events = record(m);
  await m.ready;
  const st = m.state('pool')!.status;
  assert.ok(st.kind === 'working');
  assert.is(st.metadataLowWatermark, 16n);
  assert.is(metadataThreshold(st), 16n);
  assert.is(metadataThreshold({ ...st, metadataLowWatermark: null }), 16n, 'computed as the kernel does when field 9 is missing');
  assert.is(metadataThreshold({ ...st, metadataLowWatermark: null, totalMetadataBlocks: 8192n }), 1024n, '4 MiB worth caps it');
  // Each create_thin costs the fake one metadata block; the messages themselves raise no event.
  let id = 2;
  while (w.fake.pool('pool')!.metadataBlocks - Number((await statusUsedMeta(w))) > 17) await w.dm.targetMessage('pool', 0n, `create_thin ${id++}`);
  await settle();
  assert.equal(summary(events), [], 'free 17 > 16: no event');
  const ev7 = next(m, 'metadataLow');
  await w.dm.targetMessage('pool', 0n, `create_thin ${id++}`);
  await ev7;
  assert.equal(summary(events), ['metadataLow pool free=16 threshold=16']);
  await m.close();
  w.fake.dispose();
});

test('FakeKernel: the metadata threshold raises one dm event when crossed (edge), none above it', async () => {
  const w = await world({ metaBytes: 256 * KiB });
  const eventNr = (): number => w.fake.device('pool')!.eventNr;
  let id = 2;
  while (w.fake.pool('pool')!.metadataBlocks - Number(await statusUsedMeta(w)) > 17) await w.dm.targetMessage('pool', 0n, `create_thin ${id++}`);
  const before = eventNr();
  await w.dm.targetMessage('pool', 0n, `create_thin ${id++}`); // free 16 <= 16
  assert.is(eventNr(), before + 1);
  await w.dm.targetMessage('pool', 0n, `create_thin ${id++}`); // free 15: already triggered
  assert.is(eventNr(), before + 1);
  await w.dm.targetMessage('pool', 0n, `delete ${--id}`);
  await w.dm.targetMessage('pool', 0n, `delete ${--id}`); // free 17: re-armed
  await w.dm.targetMessage('pool', 0n, `create_thin ${id++}`);
  assert.is(eventNr(), before + 2);
  w.fake.dispose();
});

async function statusUsedMeta(w: World): Promise<bigint> {
  const [line] = await w.dm.tableStatus('pool', { noflush: true });
  return BigInt(line!.params.split(' ')[1]!.split('/')[0]!);
}

test('poolGone / poolAppeared: the pool removed and created again under the same name is watched on', async () => {
  const w = await world();
  const m = monitorOn(w);
  const events = record(m);
  await m.ready;
  await w.dm.deviceRemove('thin');
  const ev8 = next(m, 'poolGone');
  await w.dm.deviceRemove('pool');
  await ev8;
  assert.is(m.state('pool'), null);
  const ev9 = next(m, 'poolAppeared');
  await createPool(w, 8n);
  await ev9;
  await createThin(w);
  const ev10 = next(m, 'lowWater');
  assert.is(writeThin(w, 0, 7), 'ok');
  await ev10;
  assert.equal(summary(events), ['poolGone pool', 'poolAppeared pool mode=rw', 'lowWater pool free=1 mark=2 used=7/8']);
  await m.close();
  w.fake.dispose();
});

test('a pool absent at start is reported when it appears; a non-pool device is an error event', async () => {
  const w = await world();
  await w.dm.createDevice('zero', [{ start: 0n, length: 8n, type: 'zero', params: '' }]);
  const m = monitorOn(w, {}, ['later', 'zero']);
  const events = record(m);
  await m.ready;
  assert.is(m.state('later'), null);
  const errors = events.filter((e) => e[0] === 'error');
  assert.is(errors.length, 1);
  const err = errors[0]![1] as Error;
  assert.instance(err, UnexpectedTargetError);
  assert.equal((err as UnexpectedTargetError).found, ['zero']);
  await w.dm.createDevice('later', [{ start: 0n, length: 4n * BLOCK_SECTORS, type: 'linear', params: `${w.data.devNumber} 0` }]);
  await settle();
  await w.dm.deviceRemove('later');
  await w.dm.deviceRemove('thin');
  await w.dm.deviceRemove('pool');
  const ev11 = next(m, 'poolAppeared');
  await w.dm.createDevice('later', [poolLine(w, 8n)]);
  await ev11;
  assert.is(m.state('later')?.mode, 'rw');
  assert.equal(summary(events).filter((s) => !s.startsWith('error')), ['poolAppeared later mode=rw']);
  await m.close();
  w.fake.dispose();
});

test('close(): resolves with the control fd closed, emits close, nothing after', async () => {
  const w = await world();
  const before = controlFds(w.fake);
  const m = monitorOn(w);
  const events = record(m);
  await m.ready;
  assert.is(controlFds(w.fake), before + 1, 'the monitor has its own control fd');
  await m.close();
  assert.is(controlFds(w.fake), before);
  assert.is(m.closed, true);
  assert.is(writeThin(w, 0, 7), 'ok');
  await settle();
  assert.equal(summary(events), ['close']);
  await m.close(); // idempotent
  w.fake.dispose();
});

test('AbortSignal: aborting stops the monitor and closes its fd; an aborted signal never opens one', async () => {
  const w = await world();
  const before = controlFds(w.fake);
  const ac = new AbortController();
  const m = monitorOn(w, { signal: ac.signal });
  const events = record(m);
  await m.ready;
  assert.is(controlFds(w.fake), before + 1);
  const closed = next(m, 'close');
  ac.abort();
  await closed;
  assert.is(controlFds(w.fake), before);
  assert.equal(summary(events), ['close']);

  const calls = w.fake.callCount;
  const m2 = monitorOn(w, { signal: AbortSignal.abort() });
  await m2.close();
  assert.is(w.fake.callCount, calls, 'no syscall at all');
  w.fake.dispose();
});

test('DM_DEV_WAIT fallback on a 4.35 interface: events per pool; close with a wait in flight holds no fd', async () => {
  const w = await world({ dmVersion: [4, 35, 0] });
  const before = controlFds(w.fake);
  const m = monitorOn(w);
  const events = record(m);
  await m.ready;
  assert.is(m.mechanism, 'dev-wait');
  assert.equal(
    w.fake.calls.filter((c) => c.request === 'DM_DEV_ARM_POLL').map((c) => c.result),
    ['EINVAL'],
    'check_version refuses a request stamped 4.36',
  );
  const ev12 = next(m, 'lowWater');
  assert.is(writeThin(w, 0, 7), 'ok');
  await ev12;
  const ev13 = next(m, 'outOfDataSpace');
  assert.is(writeThin(w, 7, 2), 'ENOSPC');
  await ev13;
  assert.equal(summary(events), [
    'lowWater pool free=1 mark=2 used=7/8',
    'modeChange pool rw->out_of_data_space',
    'outOfDataSpace pool mode=out_of_data_space needsCheck=false',
  ]);
  await settle();
  assert.is(w.fake.calls.filter((c) => c.request === 'DM_DEV_WAIT' && c.result === undefined).length, 1, 'one DM_DEV_WAIT blocks');
  await m.close();
  assert.is(controlFds(w.fake), before, 'closed although the kernel wait still blocks');
  await grow(w, 16n); // wakes the abandoned wait: it must end quietly
  await settle();
  assert.equal(summary(events).slice(3), ['close']);
  w.fake.dispose();
});

test('DM_DEV_WAIT fallback: close() between two reads of a pool does not let a later read reopen the fd', async () => {
  const w = await world({ dmVersion: [4, 35, 0] });
  const before = controlFds(w.fake);
  let m: PoolMonitor | undefined;
  let closing: Promise<void> | undefined;
  const off = w.fake.onCall((c) => {
    // The monitor's first DM_DEV_STATUS: close() runs before its next ioctl (the table read).
    if (c.request === 'DM_DEV_STATUS' && m && !closing) queueMicrotask(() => (closing = m!.close()));
  });
  m = monitorOn(w);
  await m.ready;
  await closing;
  await settle();
  off();
  assert.is(controlFds(w.fake), before);
  w.fake.dispose();
});

test('DM_DEV_WAIT fallback: a removed pool is looked for again and reported when recreated', async () => {
  const w = await world({ dmVersion: [4, 35, 0] });
  const m = monitorOn(w, { absentRecheckMs: 1 });
  const events = record(m);
  await m.ready;
  await w.dm.deviceRemove('thin');
  const ev14 = next(m, 'poolGone');
  await w.dm.deviceRemove('pool');
  await ev14;
  const ev15 = next(m, 'poolAppeared');
  await createPool(w, 8n);
  await ev15;
  assert.equal(summary(events), ['poolGone pool', 'poolAppeared pool mode=rw']);
  await m.close();
  w.fake.dispose();
});

test("mechanism 'arm-poll' on a kernel without it: error event, then close", async () => {
  const w = await world({ dmVersion: [4, 35, 0] });
  const before = controlFds(w.fake);
  const m = monitorOn(w, { mechanism: 'arm-poll' });
  const ev16 = next(m, 'close');
  const events = record(m);
  await ev16;
  assert.equal(summary(events), ['error undefined IoctlError', 'close']);
  assert.is((events[0]![1] as { code?: string }).code, 'EINVAL');
  assert.is(controlFds(w.fake), before);
  w.fake.dispose();
});

test('bad input is refused before anything opens', () => {
  const fake = new FakeKernel();
  for (const [pools, opts] of [
    [[], {}],
    [['a', 'a'], {}],
    [['bad/name'], {}],
    [['a'], { mechanism: 'inotify' }],
    [['a'], { absentRecheckMs: -1 }],
    [['a'], { recheckMs: -1 }],
    [['a'], { recheckMs: Number.POSITIVE_INFINITY }],
    [['a'], { recheckMs: Number.NaN }],
  ] as [string[], Record<string, unknown>][]) {
    assert.throws(() => new PoolMonitor(pools, { ...(opts as PoolMonitorOptions), dm: { syscalls: fake } }), (e: unknown) => e instanceof InvalidArgumentError);
  }
  assert.is(fake.callCount, 0);
  fake.dispose();
});

test.run();
