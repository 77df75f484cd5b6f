// SPDX-License-Identifier: MIT
// DeviceSet pieces that need no kernel: lock order, crash points, root lock, pool sizing, mount
// option splitting, fs probing, and option refusal before anything is created.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AsyncMutex,
  CRASH_POINTS,
  DOCKER_LOW_WATER_BLOCKS,
  DeviceSet,
  DeviceSetLockedError,
  KeyedMutex,
  LOCK_FILE,
  RootLock,
  crashHook,
  freeSpaceShortfall,
  growCommand,
  lowWaterMarkFor,
  minFreeBlocks,
  mkfsCommand,
  parseCrashSpec,
  parseLockOwner,
  poolParamsFor,
  probeFilesystem,
  resolveDeviceSetOptions,
  splitMountOptions,
  type CrashPointName,
} from '../../../src/deviceset/index.js';
import { InvalidArgumentError } from '../../../src/errors.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

const mutex = suite('deviceset mutex');

mutex('AsyncMutex is FIFO and exclusive', async () => {
  const m = new AsyncMutex();
  const order: string[] = [];
  let inside = 0;
  const job = (name: string) =>
    m.run(async () => {
      inside++;
      assert.is(inside, 1);
      order.push(`${name}+`);
      await tick();
      order.push(`${name}-`);
      inside--;
    });
  await Promise.all([job('a'), job('b'), job('c')]);
  assert.equal(order, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  assert.is(m.locked, false);
});

mutex('release is idempotent and a throwing task releases the lock', async () => {
  const m = new AsyncMutex();
  const r = await m.lock();
  r();
  r();
  assert.is(m.locked, false);
  await m.run(() => Promise.reject(new Error('x'))).catch(() => undefined);
  assert.is(m.locked, false);
});

mutex('KeyedMutex.lockMany takes keys in sorted order, so opposite orders cannot deadlock', async () => {
  const k = new KeyedMutex();
  const seen: string[] = [];
  const run = (keys: string[], tag: string) =>
    k.run(keys, async () => {
      seen.push(tag);
      await tick();
    });
  // Without a global order, [a,b] and [b,a] taken one by one could each hold one and wait forever.
  await Promise.race([
    Promise.all(Array.from({ length: 20 }, (_, i) => run(i % 2 ? ['a', 'b'] : ['b', 'a'], String(i)))),
    new Promise((_, rej) => setTimeout(() => rej(new Error('deadlock')), 2000)),
  ]);
  assert.is(seen.length, 20);
  assert.equal(k.activeKeys, []);
});

mutex('KeyedMutex: different keys run concurrently, same key serialises', async () => {
  const k = new KeyedMutex();
  let concurrent = 0;
  let max = 0;
  const job = (key: string) =>
    k.run([key], async () => {
      concurrent++;
      max = Math.max(max, concurrent);
      await tick();
      concurrent--;
    });
  await Promise.all([job('x'), job('y'), job('z')]);
  assert.is(max, 3);
  max = 0;
  await Promise.all([job('x'), job('x'), job('x')]);
  assert.is(max, 1);
});

mutex('pool lock after device locks: device-locked tasks interleave on the pool lock without deadlock', async () => {
  const devices = new KeyedMutex();
  const pool = new AsyncMutex();
  const log: string[] = [];
  const op = (keys: string[], tag: string) =>
    devices.run(keys, () =>
      pool.run(async () => {
        log.push(tag);
        await tick();
      }),
    );
  await Promise.all([op(['', 'img'], 'add-img'), op(['img', 'ctr'], 'add-ctr'), op(['other'], 'delete-other')]);
  assert.is(log.length, 3);
});

const crash = suite('deviceset crash points');

crash('every point name is unique and parses', () => {
  assert.is(new Set(CRASH_POINTS).size, CRASH_POINTS.length);
  for (const p of CRASH_POINTS) assert.equal(parseCrashSpec(p), { kind: 'name', name: p, occurrence: 1 });
  assert.equal(parseCrashSpec('delete:before-commit@3'), { kind: 'name', name: 'delete:before-commit', occurrence: 3 });
  assert.equal(parseCrashSpec('#7'), { kind: 'index', index: 7 });
});

crash('bad specs are refused with the list of points', () => {
  for (const bad of ['', 'nope', 'delete:before-nothing', '#0', 'create:before-record@0']) {
    assert.throws(() => parseCrashSpec(bad), /DEVMAPPER_CRASH_AT/);
  }
});

crash('the hook dies exactly at the k-th hit of a name, or the n-th hit overall, and traces all', () => {
  const seq: CrashPointName[] = ['create:before-transaction', 'create:before-record', 'create:before-transaction', 'create:before-record'];
  const died: string[] = [];
  const traced: string[] = [];
  const h = crashHook({ kind: 'name', name: 'create:before-record', occurrence: 2 }, (n) => died.push(n), (n) => traced.push(n));
  seq.forEach((n) => h(n));
  assert.equal(died, ['create:before-record']);
  assert.equal(traced, seq);
  const byIndex: string[] = [];
  const h2 = crashHook({ kind: 'index', index: 3 }, (n) => byIndex.push(n));
  seq.forEach((n) => h2(n));
  assert.equal(byIndex, ['create:before-transaction']);
  const none: string[] = [];
  const h3 = crashHook(undefined, (n) => none.push(n));
  seq.forEach((n) => h3(n));
  assert.equal(none, []);
});

const lock = suite('deviceset root lock');
let dir = '';
lock.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'dmset-lock-'));
});
lock.after.each(() => rmSync(dir, { recursive: true, force: true }));

lock('a second acquire while held is refused with the owner pid; release frees it', () => {
  const a = RootLock.acquire(dir);
  const text = readFileSync(join(dir, LOCK_FILE), 'utf8');
  assert.is(parseLockOwner(text)?.pid, process.pid);
  try {
    RootLock.acquire(dir);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, DeviceSetLockedError);
    assert.is((err as DeviceSetLockedError).pid, process.pid);
    assert.match((err as Error).message, /only one DeviceSet/);
  }
  a.release();
  a.release();
  assert.not.ok(existsSync(join(dir, LOCK_FILE)));
  RootLock.acquire(dir).release();
});

lock('a stale lock (dead pid), a reused pid (other start time) and a torn file are taken over', () => {
  writeFileSync(join(dir, LOCK_FILE), '2147483646 12345\n'); // pid beyond pid_max: dead
  RootLock.acquire(dir).release();
  writeFileSync(join(dir, LOCK_FILE), `${process.pid} 1\n`); // our pid, but another start time
  RootLock.acquire(dir).release();
  writeFileSync(join(dir, LOCK_FILE), '');
  RootLock.acquire(dir).release();
});

lock('parseLockOwner', () => {
  assert.equal(parseLockOwner('12 345\n'), { pid: 12, startTime: '345' });
  assert.equal(parseLockOwner('12 -\n'), { pid: 12, startTime: null });
  assert.equal(parseLockOwner('12'), { pid: 12, startTime: null });
  assert.is(parseLockOwner('x'), undefined);
  assert.is(parseLockOwner('0 1'), undefined);
});

const sizing = suite('deviceset pool sizing');

sizing('low water mark: Docker 32768 blocks, capped at 5% of the pool, at least 1', () => {
  assert.is(lowWaterMarkFor(10_000_000n), DOCKER_LOW_WATER_BLOCKS);
  assert.is(lowWaterMarkFor(655_360n), 32768n); // 5% = 32768 exactly (40 GiB at 64K)
  assert.is(lowWaterMarkFor(8192n), 409n); // 512 MiB at 64K
  assert.is(lowWaterMarkFor(10n), 1n);
  assert.is(lowWaterMarkFor(0n), 1n);
});

sizing('options → pool params (block size in sectors, skip_block_zeroing)', () => {
  const o = resolveDeviceSetOptions(['dm.blocksize=128K', 'dm.loopdatasize=1G']);
  assert.equal(poolParamsFor(o, o.loopDataSize), { dataBlockSize: 256, lowWaterMark: 409n, features: { skipBlockZeroing: true } });
  const d = resolveDeviceSetOptions([]);
  assert.equal(poolParamsFor(d, d.loopDataSize), { dataBlockSize: 128, lowWaterMark: 32768n, features: { skipBlockZeroing: true } });
});

sizing('dm.min_free_space: data first, then metadata; 0 disables', () => {
  const st = { usedDataBlocks: 95n, totalDataBlocks: 100n, usedMetadataBlocks: 1n, totalMetadataBlocks: 100n };
  assert.is(minFreeBlocks(100n, 10), 10n);
  assert.equal(freeSpaceShortfall(st, 10), { what: 'data', free: 5n, required: 10n });
  assert.is(freeSpaceShortfall(st, 5), null);
  assert.is(freeSpaceShortfall(st, 0), null);
  assert.equal(freeSpaceShortfall({ ...st, usedDataBlocks: 0n, usedMetadataBlocks: 95n }, 10), { what: 'metadata', free: 5n, required: 10n });
});

const misc = suite('deviceset mount options, mkfs commands, fs probe');

misc('mount options: flag words become flags, the rest is data', () => {
  assert.equal(splitMountOptions(['nouuid', 'noatime,ro', 'discard', 'context="x"']), {
    flags: 1n | 1024n,
    data: 'nouuid,discard,context="x"',
  });
  assert.equal(splitMountOptions(['rw', '']), { flags: 0n, data: '' });
});

misc("mkfs/grow commands follow Docker's defaults plus dm.mkfsarg", () => {
  assert.equal(mkfsCommand('ext4', '/dev/x', ['-L', 'l']), ['mkfs.ext4', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', '-L', 'l', '/dev/x']);
  assert.equal(mkfsCommand('ext4', '/dev/x', [], true), ['mkfs.ext4', '-E', 'nodiscard,lazy_itable_init=0', '/dev/x']);
  assert.equal(mkfsCommand('xfs', '/dev/x', ['-K']), ['mkfs.xfs', '-K', '/dev/x']);
  assert.equal(growCommand('ext4', '/dev/x', '/m'), ['resize2fs', '/dev/x']);
  assert.equal(growCommand('xfs', '/dev/x', '/m'), ['xfs_growfs', '/m']);
});

misc('probeFilesystem: ext4 magic at 0x438, xfs XFSB at 0, else null', () => {
  const ext4 = Buffer.alloc(4096);
  ext4.writeUInt16LE(0xef53, 0x438);
  assert.is(probeFilesystem(ext4), 'ext4');
  const xfs = Buffer.alloc(4096);
  xfs.write('XFSB', 0, 'latin1');
  assert.is(probeFilesystem(xfs), 'xfs');
  assert.is(probeFilesystem(Buffer.alloc(4096)), null);
  assert.is(probeFilesystem(Buffer.alloc(10)), null);
});

misc('init refuses bad options with every problem listed, before creating the root', async () => {
  const root = join(tmpdir(), `dmset-never-${process.pid}`);
  try {
    await DeviceSet.init(root, { options: ['dm.fs=btrfs', 'dm.basesize=1', 'dm.override_udev_sync_check=true', 'dm.nope=1'] });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, InvalidArgumentError);
    assert.ok((err as InvalidArgumentError).problems.length >= 4, (err as Error).message);
  }
  assert.not.ok(existsSync(root));
  await DeviceSet.init('relative/root').then(
    () => assert.unreachable(),
    (err) => assert.instance(err, InvalidArgumentError),
  );
});

misc('init refuses a root already locked by a live process, before touching the kernel', async () => {
  const root = mkdtempSync(join(tmpdir(), 'dmset-locked-'));
  mkdirSync(join(root, 'metadata'));
  const held = RootLock.acquire(root);
  try {
    await DeviceSet.init(root, { options: ['dm.basesize=64M'] }).then(
      () => assert.unreachable(),
      (err) => assert.instance(err, DeviceSetLockedError),
    );
  } finally {
    held.release();
    rmSync(root, { recursive: true, force: true });
  }
});

mutex.run();
crash.run();
lock.run();
sizing.run();
misc.run();
