// SPDX-License-Identifier: MIT
// Issue #20 part 2: autoextend of the pool a DeviceSet owns, on the FakeKernel. The options and
// their refusals, the low water mark formula, the state machine (kernel event → grow through
// resizePool → new table length and mark; ceiling; host full through the statfs seam; the
// out_of_data_space fallback; metadata), shutdown (the monitor stopped, no fd left), and a crash
// at every syscall of the extend step (the sweep harness of issue 10), which the next init recovers.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet } from '../../../src/deviceset/index.js';
import { nodeMetadataFs } from '../../../src/deviceset/metadata.js';
import type { CliDeviceSet } from '../../../src/cli/context.js';
import { cli } from '../cli/harness.js';
import { autoextendLowWaterMark, poolParamsFor } from '../../../src/deviceset/pool-sizing.js';
import { parseDmOptions, resolveDeviceSetOptions } from '../../../src/deviceset/options.js';
import type { AutoextendExtension, AutoextendInit, AutoextendLimitEvent } from '../../../src/deviceset/autoextend.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { parsePoolParams } from '../../../src/thin/index.js';
import { FakeIoError, FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { World as SweepWorld, checkInvariants, isCrash, measure, runOnce, writeData, type SweptOp } from '../sweep/harness.js';

const MiB = 1n << 20n;
const DEV = '/fakedev';
/** 64 MiB data = 1024 blocks of 64 KiB; a 128 MiB base device so one device can fill the pool. */
const BASE_OPTS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=128M', 'dm.blocksize=64K', 'dm.min_free_space=0%'];
const AUTO = [...BASE_OPTS, 'dm.autoextend_threshold=80%', 'dm.autoextend_percent=50%'];

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.instance(err, InvalidArgumentError, String(err));
    return (err as InvalidArgumentError).problems.map((p) => `${p.path} ${p.message}`);
  }
  return assert.unreachable('expected InvalidArgumentError') as never;
}

// ------------------------------------------------------------------------------- options

const options = suite('autoextend options');

options('parse, default and format', () => {
  const r = parseDmOptions([...BASE_OPTS, 'dm.autoextend_threshold=80%', 'dm.autoextend_max=256M']);
  assert.is(r.autoextendThreshold, 80);
  assert.is(r.autoextendPercent, 20);
  assert.is(r.autoextendMax, 256n * MiB);
  const o = resolveDeviceSetOptions({ loopDataSize: '64M', minFreeSpacePercent: 0, autoextendThreshold: 90, autoextendPercent: 100, autoextendMax: 128n * MiB });
  assert.equal([o.autoextendThreshold, o.autoextendPercent, o.autoextendMax], [90, 100, 128n * MiB]);
  assert.equal(parseDmOptions([]).autoextendThreshold, null, 'off by default');
});

options('refused on an external pool and on dm.datadev, every key listed, before anything changes', () => {
  assert.equal(problemsOf(() => parseDmOptions(['dm.thinpooldev=lvm-pool', 'dm.autoextend_threshold=80%', 'dm.autoextend_percent=20%', 'dm.autoextend_max=1G'])), [
    '/1 dm.autoextend_threshold=80%: cannot be used with dm.thinpooldev: an external pool is grown by its manager (e.g. lvextend), not by devmapper',
    '/2 dm.autoextend_percent=20%: cannot be used with dm.thinpooldev: an external pool is grown by its manager (e.g. lvextend), not by devmapper',
    '/3 dm.autoextend_max=1G: cannot be used with dm.thinpooldev: an external pool is grown by its manager (e.g. lvextend), not by devmapper',
  ]);
  assert.equal(problemsOf(() => parseDmOptions(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc', 'dm.autoextend_threshold=80%'])), [
    '/2 dm.autoextend_threshold=80%: cannot be used with dm.datadev: a block device cannot be grown here; autoextend grows loopback files',
  ]);
});

options('inconsistent or out-of-range values are refused, all at once', () => {
  assert.equal(problemsOf(() => parseDmOptions(['dm.autoextend_percent=20%', 'dm.autoextend_max=1G'])), [
    '/0 dm.autoextend_percent=20%: needs dm.autoextend_threshold (autoextendThreshold): without it autoextend is off',
    '/1 dm.autoextend_max=1G: needs dm.autoextend_threshold (autoextendThreshold): without it autoextend is off',
  ]);
  assert.equal(problemsOf(() => parseDmOptions(['dm.autoextend_threshold=0%', 'dm.autoextend_percent=0%'])), [
    '/0 dm.autoextend_threshold=0%: must be between 1% and 99%',
    '/1 dm.autoextend_percent=0%: must be between 1% and 1000%',
  ]);
  assert.equal(problemsOf(() => parseDmOptions(['dm.autoextend_threshold=100%', 'dm.autoextend_percent=1001%'])), [
    '/0 dm.autoextend_threshold=100%: must be between 1% and 99%',
    '/1 dm.autoextend_percent=1001%: must be between 1% and 1000%',
  ]);
  // The default dm.min_free_space=10% refuses new devices above 90% used: a threshold above that never helps.
  assert.equal(problemsOf(() => parseDmOptions(['dm.autoextend_threshold=95%'])), [
    '/0 dm.autoextend_threshold=95%: must be at most 90% (100 − dm.min_free_space): above it new devices are refused before the pool grows',
  ]);
  assert.equal(problemsOf(() => parseDmOptions(['dm.loopdatasize=64M', 'dm.autoextend_threshold=80%', 'dm.autoextend_max=32M'])), [
    '/2 dm.autoextend_max=32M: must be at least dm.loopdatasize (64M)',
  ]);
  assert.equal(problemsOf(() => parseDmOptions(['dm.loopdatasize=64M', 'dm.autoextend_threshold=80%', 'dm.autoextend_max=100000K'])), [
    '/2 dm.autoextend_max=100000K: must be a multiple of the pool block size (64K)',
  ]);
  assert.equal(problemsOf(() => resolveDeviceSetOptions({ autoextendThreshold: 0, autoextendPercent: 2000 })), [
    '/autoextendThreshold autoextendThreshold=0: must be between 1 and 99',
    '/autoextendPercent autoextendPercent=2000: must be between 1 and 1000',
  ]);
});

options('the low water mark: floor(blocks × (100 − threshold) / 100), at least 1', () => {
  assert.is(autoextendLowWaterMark(1024n, 80), 204n);
  assert.is(autoextendLowWaterMark(1536n, 80), 307n);
  assert.is(autoextendLowWaterMark(1000n, 99), 10n);
  assert.is(autoextendLowWaterMark(50n, 99), 1n);
  const o = parseDmOptions(AUTO);
  assert.equal(poolParamsFor(o, o.loopDataSize), { dataBlockSize: 128, lowWaterMark: 204n, features: { skipBlockZeroing: true } });
  // Without autoextend the mark is Docker's (5% capped at 32768 blocks).
  const d = parseDmOptions(BASE_OPTS);
  assert.is(poolParamsFor(d, d.loopDataSize).lowWaterMark, 51n);
});

options.run();

// ---------------------------------------------------------------------------- the set

interface W {
  fake: FakeKernel;
  tmp: string;
  root: string;
  logs: string[];
}
function world(): W {
  const tmp = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ds-autoextend-'));
  return { fake: new FakeKernel({ sysfs: true, devDir: DEV }), tmp, root: join(tmp, 'root'), logs: [] };
}
function dispose(w: W): void {
  w.fake.dispose();
  rmSync(w.tmp, { recursive: true, force: true });
}
function open(w: W, opts: readonly string[] = AUTO, autoextend: AutoextendInit = {}): Promise<DeviceSet> {
  return DeviceSet.init(w.root, { ...fakeDeviceSetInit(w.fake, DEV), options: opts, autoextend, log: (l, m) => void w.logs.push(`${l}: ${m}`) });
}
/** The pool table's length in data blocks and its low water mark, as the kernel holds them. */
function table(w: W, set: DeviceSet): { blocks: number; lowWater: bigint } {
  const d = w.fake.device(set.poolName);
  const t = d?.live?.[0];
  if (!t) throw new Error('no pool table');
  return { blocks: Number(t.length / 128n), lowWater: parsePoolParams(t.params).lowWaterMark };
}
/** Activates `hash` and writes `count` blocks from `first` (the fake commits, as an fsync would). */
async function write(w: W, set: DeviceSet, hash: string, first: number, count: number): Promise<string> {
  const name = set.deviceInfo(hash).dmName;
  try {
    w.fake.writeThin(name, first, count);
    return 'ok';
  } catch (e) {
    if (e instanceof FakeIoError) return e.code;
    throw e;
  }
}
const dataSize = (w: W): bigint => BigInt(statSync(join(w.root, 'devicemapper', 'data')).size);
const metaSize = (w: W): bigint => BigInt(statSync(join(w.root, 'devicemapper', 'metadata')).size);

const machine = suite('autoextend state machine (FakeKernel)');

machine('a lowWater event grows the data file by 50% through resizePool; the table gets the new length and mark; again at the next crossing', async () => {
  const w = world();
  try {
    const set = await open(w);
    assert.equal(table(w, set), { blocks: 1024, lowWater: 204n }, 'the mark of the threshold from the start');
    assert.is(set.autoextender.status().state, 'watching');
    await set.addDevice('a', '');
    await set.activateDevice('a');
    const first = once(set.autoextender, 'extended') as Promise<[AutoextendExtension]>;
    // dm-thin checks the mark before each allocation (alloc_data_block → check_low_water_mark):
    // the 821st block is allocated with 204 free, ≤ the mark, and raises the event.
    assert.is(await write(w, set, 'a', 0, 821), 'ok');
    const [e1] = await first;
    assert.equal([e1.what, e1.from, e1.to, e1.trigger], ['data', 64n * MiB, 96n * MiB, 'lowWater']);
    assert.is(dataSize(w), 96n * MiB);
    assert.equal(table(w, set), { blocks: 1536, lowWater: 307n });
    assert.is(w.fake.pool(set.poolName)?.dataBlocks, 1536);
    // Second crossing: the 1230th block is allocated with 307 of 1536 free.
    const second = once(set.autoextender, 'extended') as Promise<[AutoextendExtension]>;
    assert.is(await write(w, set, 'a', 821, 409), 'ok');
    const [e2] = await second;
    assert.equal([e2.from, e2.to], [96n * MiB, 144n * MiB]);
    assert.equal(table(w, set), { blocks: 2304, lowWater: 460n });
    const st = (await set.status()).autoextend;
    assert.equal({ ...st, lastExtension: null }, {
      enabled: true, threshold: 80, percent: 50, max: null, lowWaterMark: 460n, state: 'watching', message: null, lastExtension: null, extensions: 2,
    });
    assert.equal(st.lastExtension, e2);
    await set.shutdown();
  } finally {
    dispose(w);
  }
});

machine('at dm.autoextend_max: the step is cut to the ceiling, then a ceiling event and status(), never a silent stop', async () => {
  const w = world();
  try {
    const set = await open(w, [...AUTO, 'dm.autoextend_max=80M']);
    await set.addDevice('a', '');
    await set.activateDevice('a');
    const grew = once(set.autoextender, 'extended') as Promise<[AutoextendExtension]>;
    assert.is(await write(w, set, 'a', 0, 821), 'ok');
    const [e] = await grew;
    assert.equal([e.from, e.to], [64n * MiB, 80n * MiB], 'cut from +32M to the ceiling');
    const ceiling = once(set.autoextender, 'ceiling') as Promise<[AutoextendLimitEvent]>;
    // The 1025th block is allocated with 256 of 1280 free: the new mark.
    assert.is(await write(w, set, 'a', 821, 204), 'ok');
    const [c] = await ceiling;
    const message = 'the data file is at its ceiling (83886080 of 83886080 bytes, dm.autoextend_max) and the pool needs more data space (threshold 80%)';
    assert.equal(c, { what: 'data', size: 80n * MiB, limit: 80n * MiB, message });
    const st = (await set.status()).autoextend;
    assert.equal([st.state, st.message, st.extensions], ['ceiling', message, 1]);
    assert.ok(w.logs.includes(`warn: autoextend: ${message}`));
    assert.is(table(w, set).blocks, 1280);
    await set.shutdown();
  } finally {
    dispose(w);
  }
});

machine('host full (injected statfs): a step is cut to the free space; with less than a block free, a hostFull event and status()', async () => {
  const w = world();
  let free = 16n * MiB + 1000n;
  try {
    const set = await open(w, AUTO, { watch: false, hostFreeBytes: async () => free });
    await set.addDevice('a', '');
    await set.activateDevice('a');
    assert.is(await write(w, set, 'a', 0, 820), 'ok');
    assert.is(set.autoextender.status().state, 'notWatching');
    await set.autoextender.check('lowWater');
    assert.equal([set.autoextender.status().lastExtension?.from, set.autoextender.status().lastExtension?.to], [64n * MiB, 80n * MiB], 'cut to whole blocks of the 16 MiB free');
    assert.is(table(w, set).blocks, 1280);
    free = 65535n;
    const events: AutoextendLimitEvent[] = [];
    set.autoextender.on('hostFull', (e) => events.push(e));
    assert.is(await write(w, set, 'a', 820, 204), 'ok');
    await set.autoextender.check('lowWater');
    await set.autoextender.check('lowWater');
    const message = `the host filesystem of ${join(w.root, 'devicemapper', 'data')} has 65535 bytes free, less than one 65536-byte block, and the pool needs more data space (threshold 80%)`;
    assert.equal(events, [{ what: 'data', size: 80n * MiB, limit: 65535n, message }], 'one event for the same condition');
    assert.equal([set.autoextender.status().state, set.autoextender.status().message], ['hostFull', message]);
    // Room again: the next check grows and the state is back.
    free = 1n << 40n;
    await set.autoextender.check('lowWater');
    assert.equal([set.autoextender.status().state, dataSize(w)], ['notWatching', 120n * MiB]);
    await set.shutdown();
  } finally {
    dispose(w);
  }
});

machine('out_of_data_space fallback: writes that outran the grow queue; the grow resumes the pool in rw', async () => {
  const w = world();
  try {
    const set = await open(w, AUTO, { watch: false });
    await set.addDevice('a', '');
    await set.activateDevice('a');
    assert.is(await write(w, set, 'a', 0, 1100), 'ENOSPC');
    assert.is(w.fake.pool(set.poolName)?.mode, 'out_of_data_space');
    await set.autoextender.check('outOfDataSpace');
    assert.is(w.fake.pool(set.poolName)?.mode, 'rw');
    assert.equal([set.autoextender.status().lastExtension?.trigger, dataSize(w), table(w, set).blocks], ['outOfDataSpace', 96n * MiB, 1536]);
    assert.is(await write(w, set, 'a', 1024, 76), 'ok', 'the rest fits now');
    await set.shutdown();
  } finally {
    dispose(w);
  }
});

machine('metadataLow grows the metadata file by the step; the pool takes the new metadata size', async () => {
  const w = world();
  try {
    const set = await open(w, AUTO, { watch: false });
    assert.is(w.fake.pool(set.poolName)?.metadataBlocks, 512);
    await set.autoextender.check('metadataLow');
    const last = set.autoextender.status().lastExtension;
    assert.equal([last?.what, last?.from, last?.to], ['metadata', 2n * MiB, 3n * MiB]);
    assert.is(metaSize(w), 3n * MiB);
    assert.is(w.fake.pool(set.poolName)?.metadataBlocks, 768);
    assert.is(dataSize(w), 64n * MiB, 'data untouched');
    await set.shutdown();
  } finally {
    dispose(w);
  }
});

machine('the last extension is kept in the deviceset record: status() shows it after a restart, also with autoextend off', async () => {
  const w = world();
  try {
    const set = await open(w, AUTO, { watch: false });
    assert.is(set.autoextender.status().lastExtension, null, 'none yet');
    await set.autoextender.check('metadataLow');
    const ext = set.autoextender.status().lastExtension;
    assert.ok(ext);
    assert.equal([ext.what, ext.from, ext.to, ext.trigger], ['metadata', 2n * MiB, 3n * MiB, 'metadataLow']);
    // Written when the grow finished, not only at shutdown: a process killed now keeps it.
    const onDisk = JSON.parse(readFileSync(join(w.root, 'metadata', 'deviceset-metadata'), 'utf8')) as { lastExtension?: unknown };
    assert.equal(onDisk.lastExtension, { at: ext.at, what: 'metadata', from: 2 * 1024 * 1024, to: 3 * 1024 * 1024, trigger: 'metadataLow' });
    await set.shutdown();

    const again = await open(w, AUTO, { watch: false });
    const st = (await again.status()).autoextend;
    assert.equal([st.lastExtension, st.extensions], [ext, 0], 'the record\'s entry; no grow by this process');
    // A data grow of this process replaces it.
    await again.addDevice('a', '');
    await again.activateDevice('a');
    assert.is(await write(w, again, 'a', 0, 820), 'ok');
    await again.autoextender.check('lowWater');
    const data = again.autoextender.status().lastExtension;
    assert.equal([data?.what, data?.from, data?.to, data?.trigger], ['data', 64n * MiB, 96n * MiB, 'lowWater']);
    await again.shutdown();

    const off = await open(w, BASE_OPTS);
    assert.equal((await off.status()).autoextend.lastExtension, data, 'shown with autoextend off too');
    await off.shutdown();
  } finally {
    dispose(w);
  }
});

machine('ds status (a one-shot process) shows the extension a long-running set made, text and JSON', async () => {
  const w = world();
  try {
    const service = await open(w, AUTO, { watch: false });
    await service.autoextender.check('metadataLow');
    const ext = service.autoextender.status().lastExtension!;
    await service.shutdown();
    // What real-deps does for a ds command: a new DeviceSet on the root, watch false.
    writeFileSync(join(w.tmp, 'root', 'cli-options.json'), JSON.stringify({ formatVersion: 1, options: AUTO }));
    let opened: DeviceSet | undefined;
    const openDeviceSet = async (root: string, options: readonly string[]): Promise<CliDeviceSet> => (opened = await open({ ...w, root }, options, { watch: false }));
    const text = await cli(['ds', 'status', '--root', w.root], { openDeviceSet });
    assert.is(text.code, 0, text.stderr);
    await opened?.shutdown();
    const lines = text.stdout.split('\n').filter((l) => l.startsWith('Autoextend'));
    assert.equal(lines.slice(1), ['Autoextend State:          notWatching', `Autoextend Last:           ${ext.at} metadata 2.0M -> 3.0M (metadataLow)`]);
    const json = await cli(['ds', 'status', '--root', w.root, '--json'], { openDeviceSet });
    assert.is(json.code, 0, json.stderr);
    await opened?.shutdown();
    assert.equal((JSON.parse(json.stdout) as { autoextend: { lastExtension: unknown } }).autoextend.lastExtension, { at: ext.at, what: 'metadata', from: 2097152, to: 3145728, trigger: 'metadataLow' });
  } finally {
    dispose(w);
  }
});

machine('a failed record write is logged; the grow stands', async () => {
  const w = world();
  try {
    const init = fakeDeviceSetInit(w.fake, DEV);
    let failWrites = false;
    const metadataFs = { ...nodeMetadataFs, rename: async (a: string, b: string) => {
      if (failWrites) throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      await nodeMetadataFs.rename(a, b);
    } };
    const set = await DeviceSet.init(w.root, { ...init, metadataFs, options: AUTO, autoextend: { watch: false }, log: (l, m) => void w.logs.push(`${l}: ${m}`) });
    failWrites = true;
    await set.autoextender.check('metadataLow');
    failWrites = false;
    const st = set.autoextender.status();
    assert.equal([st.state, st.lastExtension?.to, st.extensions, metaSize(w)], ['notWatching', 3n * MiB, 1, 3n * MiB]);
    assert.ok(w.logs.includes('warn: autoextend: the metadata file grew from 2097152 to 3145728 bytes, but recording it in the deviceset record failed: EIO: i/o error, rename'), w.logs.join('\n'));
    await set.shutdown();
  } finally {
    dispose(w);
  }
});

machine('status() when off; resizePool keeps the table mark in step with the threshold', async () => {
  const w = world();
  try {
    const off = await open(w, BASE_OPTS);
    assert.equal((await off.status()).autoextend, {
      enabled: false, threshold: null, percent: 20, max: null, lowWaterMark: null, state: 'off', message: null, lastExtension: null, extensions: 0,
    });
    assert.is(off.autoextender.monitor, undefined);
    await off.resizePool('96M');
    assert.equal(table(w, off), { blocks: 1536, lowWater: 51n }, 'without autoextend resize keeps the mark');
    await off.shutdown();
    const on = await open(w, AUTO, { watch: false });
    assert.equal(table(w, on), { blocks: 1536, lowWater: 307n }, 'init set the mark of the threshold on the adopted pool');
    await on.resizePool('128M');
    assert.equal(table(w, on), { blocks: 2048, lowWater: 409n });
    await on.shutdown();
  } finally {
    dispose(w);
  }
});

machine('shutdown stops the monitor: no control fd of it left, no event handled after', async () => {
  const w = world();
  try {
    const controlFds = (): number => w.fake.openFds().filter((f) => f.kind === 'dm-control').length;
    const before = controlFds();
    const init = fakeDeviceSetInit(w.fake, DEV);
    const set = await DeviceSet.init(w.root, { ...init, options: AUTO, log: () => {} });
    const monitor = set.autoextender.monitor;
    assert.ok(monitor, 'a monitor runs');
    assert.is(monitor.mechanism, 'arm-poll');
    assert.is(controlFds(), before + 2, "the DeviceSet's and the monitor's");
    await set.shutdown();
    assert.is(monitor.closed, true);
    assert.is(set.autoextender.monitor, undefined);
    assert.is(set.autoextender.status().state, 'notWatching');
    init.dm.close();
    assert.is(controlFds(), before, 'no fd left');
  } finally {
    dispose(w);
  }
});

machine.run();

// -------------------------------------------------------------------------- crash sweep

const crash = suite('autoextend crash sweep');

const SWEEP_OPTS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=128M', 'dm.blocksize=64K', 'dm.min_free_space=0%', 'dm.autoextend_threshold=80%', 'dm.autoextend_percent=50%'];

/** The extend step answering a lowWater event: a crash anywhere in it, then the next init. */
const EXTEND: SweptOp = {
  name: 'autoextend',
  setup: async (sw: SweepWorld) => {
    sw.options = SWEEP_OPTS;
    // watch: false: the step runs when the test says, so the syscall count is the same every run.
    const set = await sw.init({ autoextend: { watch: false } });
    await set.addDevice('a', '');
    const marks = new Map([['a', await writeData(sw, set, 'a', 0, 820)]]);
    return { set, marks };
  },
  run: async (_w, set) => set!.autoextender.check('lowWater'),
  gone: new Set(),
  check: (sw, set) => {
    // Finished by the next init whatever the crash point: the file, the loop and the table at 96M,
    // the mark of 1536 blocks (80% of the grown pool is not reached, so no second grow).
    const problems: string[] = [];
    const size = BigInt(statSync(join(sw.root, 'devicemapper', 'data')).size);
    if (size !== 96n * MiB) problems.push(`data file ${size} bytes, want ${96n * MiB}`);
    const pool = sw.fake.pool(set.poolName);
    if (pool?.dataBlocks !== 1536) problems.push(`pool has ${pool?.dataBlocks} data blocks, want 1536`);
    const t = sw.fake.device(set.poolName)?.live?.[0];
    const lw = t ? parsePoolParams(t.params).lowWaterMark : -1n;
    if (lw !== 307n) problems.push(`table low water mark ${lw}, want 307`);
    return problems;
  },
};

crash('a crash at every syscall of the extend step (before and after the kernel acted) is recovered by the next init', async () => {
  const { calls, steps } = await measure(EXTEND);
  assert.ok(calls > 0, 'the step makes syscalls');
  // After the grow, one atomic write of the deviceset record (its lastExtension): open, write,
  // fsync, close the temp file, rename, open, fsync, close the directory.
  assert.is(steps, 8, 'the record write after the grow');
  const failures: string[] = [];
  for (const when of ['before', 'after'] as const) {
    for (let n = 0; n < calls; n++) {
      const r = await runOnce(EXTEND, (sw) => sw.fake.crashAfter(n, { when }), { expectCrash: true, reboot: n % 4 === 3 });
      // The step catches its own failure (state 'error'): a crash shows as the dead kernel, not a throw.
      if (r.problems.length > 0) {
        failures.push(`syscall #${n} (${when}${n % 4 === 3 ? ', reboot' : ''}): ${r.problems.join(' | ')}`);
      }
    }
  }
  assert.equal(failures, []);
});

crash('a stop at every metadata write step after the grow: the grow stands; the record holds the extension or none', async () => {
  const { steps } = await measure(EXTEND);
  const failures: string[] = [];
  for (let n = 0; n < steps; n++) {
    let m0 = 0;
    const r = await runOnce(
      { ...EXTEND, check: async (sw, set) => {
        const problems = await EXTEND.check!(sw, set);
        const last = set.autoextender.status().lastExtension;
        // The rename is step 4: a stop there or before leaves no entry; after it the entry is there.
        const want = n >= 5 ? 'data 67108864 100663296 lowWater' : 'none';
        const got = last === null ? 'none' : `${last.what} ${last.from} ${last.to} ${last.trigger}`;
        if (got !== want) problems.push(`lastExtension ${got}, want ${want}`);
        return problems;
      } },
      (sw) => {
        m0 = sw.mfs.steps;
        sw.mfs.stopAt = m0 + n;
      },
      { expectCrash: true },
    );
    if (r.problems.length > 0) failures.push(`metadata step #${n}: ${r.problems.join(' | ')}`);
  }
  assert.equal(failures, []);
});

crash('a clean extend step leaves the invariants of the sweep', async () => {
  const sw = new SweepWorld();
  try {
    const { set, marks } = await EXTEND.setup(sw);
    await EXTEND.run(sw, set);
    assert.equal([...(await checkInvariants(sw, set!, marks)), ...(await EXTEND.check!(sw, set!))], []);
    await set!.shutdown();
  } catch (err) {
    assert.ok(!isCrash(err), String(err));
    throw err;
  } finally {
    sw.dispose();
  }
});

crash.run();
