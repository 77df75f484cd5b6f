// SPDX-License-Identifier: MIT
// DeviceSet pieces that need no kernel: lock order, crash points, root lock, pool sizing, mount
// option splitting, fs probing, and option refusal before anything is created.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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
  parseLockPid,
  LockFileError,
  poolParamsFor,
  probeFilesystem,
  resolveDeviceSetOptions,
  splitMountOptions,
  type CrashPointName,
} from '../../../src/deviceset/index.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { LOCK_EX, LOCK_NB, realSyscalls } from '../../../src/ioctl/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';

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
  for (const bad of ['', 'nope', 'delete:before-nothing', '#0', 'create:before-message@0']) {
    assert.throws(() => parseCrashSpec(bad), /expected <point>\[@k\] or #n; points: init:before-pool-create, /);
  }
});

crash('the hook dies exactly at the k-th hit of a name, or the n-th hit overall, and traces all', () => {
  const seq: CrashPointName[] = ['create:before-intent', 'create:before-message', 'create:before-intent', 'create:before-message'];
  const died: string[] = [];
  const traced: string[] = [];
  const h = crashHook({ kind: 'name', name: 'create:before-message', occurrence: 2 }, (n) => died.push(n), (n) => traced.push(n));
  seq.forEach((n) => h(n));
  assert.equal(died, ['create:before-message']);
  assert.equal(traced, seq);
  const byIndex: string[] = [];
  const h2 = crashHook({ kind: 'index', index: 3 }, (n) => byIndex.push(n));
  seq.forEach((n) => h2(n));
  assert.equal(byIndex, ['create:before-intent']);
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

lock('a second acquire while held is refused with the owner pid; release frees it; the file stays', () => {
  const a = RootLock.acquire(dir);
  const path = join(dir, LOCK_FILE);
  assert.is(readFileSync(path, 'utf8'), `${process.pid}\n`);
  assert.is(statSync(path).mode & 0o777, 0o600);
  try {
    RootLock.acquire(dir);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, DeviceSetLockedError);
    assert.is((err as DeviceSetLockedError).code, 'EDEVICESETLOCKED');
    assert.is((err as DeviceSetLockedError).pid, process.pid);
    assert.match((err as Error).message, /only one DeviceSet/);
  }
  a.release();
  a.release();
  // Never unlinked: another process may have it open and be about to lock it.
  assert.ok(existsSync(path));
  RootLock.acquire(dir).release();
});

// d4: under the pid file, a holder between open(O_EXCL) and write() left an empty file that the
// next acquirer took for a torn write, unlinked, and took over: two owners.
lock('d4: a holder that has not written its pid yet still excludes (pid unknown)', () => {
  const path = join(dir, LOCK_FILE);
  const fd = openSync(path, 'w+', 0o600); // process A: created, locked, nothing written yet
  realSyscalls().flock(fd, LOCK_EX | LOCK_NB);
  try {
    RootLock.acquire(dir);
    assert.unreachable('a second owner got the root');
  } catch (err) {
    assert.instance(err, DeviceSetLockedError);
    assert.is((err as DeviceSetLockedError).pid, null);
    assert.match((err as Error).message, /in use by another process \(pid not known\)/);
  } finally {
    closeSync(fd);
  }
  assert.ok(existsSync(path), 'the held file was not unlinked');
  RootLock.acquire(dir).release();
});

lock('releaseAsync empties the file first: a racer losing to the next holder before its pid write reads null, not the gone holder', async () => {
  const path = join(dir, LOCK_FILE);
  const a = await RootLock.acquireAsync(dir);
  assert.is(readFileSync(path, 'utf8'), `${process.pid}\n`);
  await a.releaseAsync();
  await a.releaseAsync();
  assert.is(readFileSync(path, 'utf8'), '');
  const fd = openSync(path, 'r+'); // the next holder: locked, its pid not written yet
  realSyscalls().flock(fd, LOCK_EX | LOCK_NB);
  try {
    await RootLock.acquireAsync(dir);
    assert.unreachable('a second owner got the root');
  } catch (err) {
    assert.instance(err, DeviceSetLockedError);
    // With a plain release() the file still named this process: the racer reported it as the holder.
    assert.is((err as DeviceSetLockedError).pid, null);
  } finally {
    closeSync(fd);
  }
  RootLock.acquire(dir).release();
});

lock('the content decides nothing: a file naming a live pid (1) or a dead one, unlocked, is taken', () => {
  const path = join(dir, LOCK_FILE);
  for (const text of ['1\n', '2147483646 12345\n', 'garbage', '']) {
    writeFileSync(path, text);
    const l = RootLock.acquire(dir);
    assert.is(readFileSync(path, 'utf8'), `${process.pid}\n`);
    l.release();
  }
});

lock('a symlink, a directory or a file of another uid is refused with LockFileError, untouched', () => {
  const path = join(dir, LOCK_FILE);
  const target = join(dir, 'target');
  writeFileSync(target, 'keep');
  symlinkSync(target, path);
  assert.throws(() => RootLock.acquire(dir), (e: unknown) => e instanceof LockFileError && e.code === 'ELOCKFILE' && e.reason === 'is a symbolic link');
  assert.is(readFileSync(target, 'utf8'), 'keep');
  rmSync(path);
  mkdirSync(path);
  assert.throws(() => RootLock.acquire(dir), (e: unknown) => e instanceof LockFileError && e.reason === 'is a directory');
  rmSync(path, { recursive: true });
  if (process.geteuid?.() === 0) {
    writeFileSync(path, '42\n', { mode: 0o600 });
    chownSync(path, 1, 1);
    assert.throws(() => RootLock.acquire(dir), (e: unknown) => e instanceof LockFileError && e.reason === 'is owned by uid 1, not by our effective uid 0');
    assert.is(readFileSync(path, 'utf8'), '42\n');
  }
});

lock('parseLockPid', () => {
  assert.is(parseLockPid('12\n'), 12);
  assert.is(parseLockPid('12'), 12);
  assert.is(parseLockPid(''), null);
  assert.is(parseLockPid('x'), null);
  assert.is(parseLockPid('0\n'), null);
  assert.is(parseLockPid('12 345\n'), null);
});

// d3: the constructor ran after RootLock.acquire and outside the try, so a throw there kept the lock.
lock('d3: a throw in the DeviceSet constructor releases the lock', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = join(dir, 'root');
  const options = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
  const base = { ...fakeDeviceSetInit(fake, '/fakedev'), options, log: () => {} };
  const boom = Object.defineProperty({ ...base }, 'deferredDeleteIntervalMs', {
    get(): number {
      throw new Error('boom in the constructor');
    },
  });
  try {
    await DeviceSet.init(root, boom).then(
      () => assert.unreachable(),
      (err: Error) => assert.is(err.message, 'boom in the constructor'),
    );
    const set = await DeviceSet.init(root, base);
    await set.shutdown();
  } finally {
    fake.dispose();
  }
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

misc('init refuses a root already locked, before touching the kernel', async () => {
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
