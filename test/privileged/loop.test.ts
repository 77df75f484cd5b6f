// SPDX-License-Identifier: MIT
// LoopControl against the real loop driver: both bind paths, autoclear, races, losetup interop,
// setCapacity. Needs root and /dev/loop-control only (no device-mapper), so it also runs on a
// plain host: DEVMAPPER_PRIVILEGED=1 npx uvu dist/test/privileged 'loop\.test\.js$'
import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import {
  BackingFileNotFoundError,
  BackingFileNotRegularError,
  BackingFileReadOnlyError,
  LoopControl,
  LoopDeviceExistsError,
  LoopNotBoundError,
  ensureSparseFile,
  listBoundLoops,
  listBoundLoopsSync,
  readLoopSysfs,
  readLoopSysfsSync,
  type LoopAttachment,
} from '../../src/loop/index.js';
import { BLKSSZGET, realSyscalls } from '../../src/ioctl/index.js';
import {
  PRIVILEGED_ENV,
  TEST_MARKER,
  privilegedOptedIn,
  privilegedSuite,
  testLoopDevices,
  testTmpDir,
} from '../helpers/privileged.js';

const execFileP = promisify(execFile);
const MiB = 1024 * 1024;

// The shared gate also demands device-mapper; these tests need only the loop driver, so when
// opted in as root with /dev/loop-control present they run even on a host without dm.
const loopOnlyReady =
  privilegedOptedIn() && typeof process.getuid === 'function' && process.getuid() === 0 && existsSync('/dev/loop-control');
const test = loopOnlyReady ? suite('loop (real kernel)') : privilegedSuite('loop (real kernel)');

const loops = new LoopControl();
let dir = '';
let n = 0;
/** Every handle a test made, closed (and detached if still bound) in after.each. */
const handles: LoopAttachment[] = [];

async function file(size = 64 * MiB, base = 'backing'): Promise<string> {
  const p = join(dir, `${base}-${TEST_MARKER}-${++n}`);
  await ensureSparseFile(p, size);
  return p;
}

function track(h: LoopAttachment): LoopAttachment {
  handles.push(h);
  return h;
}

/** Devices bound to a file in our run dir, per sysfs. */
function ourBound(): number[] {
  return listBoundLoopsSync()
    .filter((l) => l.binding.backingFile.startsWith(dir + '/'))
    .map((l) => l.index);
}

async function waitUnbound(index: number, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await readLoopSysfs(index))?.bound) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return !(await readLoopSysfs(index))?.bound;
}

function losetupJson(dev: string): Record<string, unknown> {
  const out = JSON.parse(execFileSync('losetup', ['--json', '--list', dev], { encoding: 'utf8' })) as {
    loopdevices: Record<string, unknown>[];
  };
  const e = out.loopdevices[0];
  assert.ok(e, `losetup does not list ${dev}`);
  return e;
}

function sweepOurs(): void {
  for (const [dev] of testLoopDevices()) {
    try {
      execFileSync('losetup', ['--detach', dev], { stdio: 'pipe' });
    } catch {
      /* reported by the after hook */
    }
  }
}

test.before(() => {
  sweepOurs();
  dir = testTmpDir();
});

test.after.each(async () => {
  for (const h of handles.splice(0)) {
    if (h.fd !== undefined && (await readLoopSysfs(h.index))?.binding?.backingFile.startsWith(dir + '/')) {
      try {
        await h.detach();
      } catch {
        h.close();
      }
    } else h.close();
  }
});

test.after(async () => {
  sweepOurs();
  // Autoclear teardown runs on the last close; give it a moment, then insist.
  const end = Date.now() + 2000;
  while (ourBound().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ourBound(), [], 'loop devices still bound to test files');
  assert.equal(testLoopDevices(), [], 'losetup still lists loop devices on test files');
});

for (const method of ['configure', 'legacy'] as const) {
  test(`attach/detach round trip via ${method}: flags, offset, sizelimit, exact size`, async () => {
    const f = await file(64 * MiB);
    const dev = track(await loops.attach(f, { method, offset: MiB, sizeLimit: 32 * MiB, partscan: true }));
    assert.is(dev.method, method);
    assert.match(dev.path, /^\/dev\/loop\d+$/);
    assert.is(dev.major, 7);
    assert.is(dev.devNumber, readFileSync(`/sys/block/loop${dev.index}/dev`, 'utf8').trim());

    const st = await loops.status(dev);
    assert.is(st.offset, BigInt(MiB));
    assert.is(st.sizeLimit, BigInt(32 * MiB));
    assert.equal([st.readOnly, st.autoclear, st.partscan, st.directIo], [false, true, true, false]);
    assert.is(st.fileName, f);
    const fst = statSync(f, { bigint: true });
    assert.is(st.backingInode, fst.ino);
    assert.is(st.backingDevice, fst.dev);
    assert.is(await loops.sizeOf(dev.path), BigInt(32 * MiB));

    const sys = await readLoopSysfs(dev.index);
    assert.equal(sys?.binding, {
      backingFile: f,
      backingFileDeleted: false,
      offset: BigInt(MiB),
      sizeLimit: BigInt(32 * MiB),
      autoclear: true,
      partscan: true,
      directIo: false,
    });
    assert.is(sys?.sizeSectors, BigInt((32 * MiB) / 512));

    const j = losetupJson(dev.path);
    assert.is(j['back-file'], f);
    assert.is(Number(j['offset']), MiB);
    assert.is(Number(j['sizelimit']), 32 * MiB);
    assert.is(j['autoclear'], true);
    assert.is(j['ro'], false);

    assert.is(await loops.detach(dev), 'deferred', 'our own held fd keeps it until close');
    dev.close();
    assert.ok(await waitUnbound(dev.index), 'still bound after detach + close');
  });

  test(`${method}: readOnly, blockSize 4096, autoclear off`, async () => {
    const f = await file(16 * MiB);
    const dev = track(await loops.attach(f, { method, readOnly: true, blockSize: 4096, autoclear: false }));
    const st = await loops.status(dev);
    assert.equal([st.readOnly, st.autoclear], [true, false]);
    assert.is((await readLoopSysfs(dev.index))?.readOnly, true);
    assert.is((await readLoopSysfs(dev.index))?.logicalBlockSize, 4096);
    const sys = realSyscalls();
    const fd = sys.open(dev.path, 0);
    try {
      const b = Buffer.alloc(4);
      sys.ioctl(fd, BLKSSZGET, b, 'BLKSSZGET');
      assert.is(b.readInt32LE(0), 4096);
    } finally {
      sys.close(fd);
    }
    assert.is(losetupJson(dev.path)['ro'], true);
    dev.close();
    assert.ok((await readLoopSysfs(dev.index))?.bound, 'without autoclear, closing our fd must not detach');
    assert.is(await loops.detach(dev.index), 'detached');
    assert.not.ok((await readLoopSysfs(dev.index))?.bound);
  });
}

// Where the two CI kernels differ: a loop device asked for direct I/O over a tmpfs file (the
// guest's /tmp). The loop driver grants it only when the backing file can do O_DIRECT
// (drivers/block/loop.c: __loop_update_dio() in 6.1 needs mapping->a_ops->direct_IO;
// 6.12's loop_update_dio()/lo_can_use_dio() need FMODE_CAN_ODIRECT) and otherwise clears
// LO_FLAGS_DIRECT_IO silently, for LOOP_CONFIGURE and LOOP_SET_STATUS64 alike. tmpfs gained that
// in Linux 6.6 (mm/shmem.c, "tmpfs: trivial support for direct IO"). So 6.1 answers false and
// 6.12 true; the library reports what the kernel granted (status/sysfs), never what was asked.
const TMPFS_MAGIC = 0x01021994;
function kernelAtLeast(major: number, minor: number): boolean {
  const [a = 0, b = 0] = release().split(/[.-]/).map(Number);
  return a > major || (a === major && b >= minor);
}

test('directIo: status and sysfs agree on what the kernel granted (tmpfs: from Linux 6.6 only)', async () => {
  const f = await file(16 * MiB);
  const onTmpfs = statfsSync(f).type === TMPFS_MAGIC;
  for (const method of ['configure', 'legacy'] as const) {
    const dev = track(await loops.attach(f, { method, directIo: true }));
    assert.is((await readLoopSysfs(dev.index))?.binding?.directIo, (await loops.status(dev)).directIo, method);
    if (onTmpfs) assert.is((await loops.status(dev)).directIo, kernelAtLeast(6, 6), `${method} on tmpfs, kernel ${release()}`);
    console.log(`    directIo via ${method} on this file system (${onTmpfs ? 'tmpfs' : 'not tmpfs'}, kernel ${release()}): ${(await loops.status(dev)).directIo}`);
    await dev.detach();
  }
});

test('autoclear: closing the last fd detaches (sysfs loop/ goes away)', async () => {
  const f = await file(8 * MiB);
  const dev = track(await loops.attach(f));
  assert.ok(existsSync(`/sys/block/loop${dev.index}/loop`));
  dev.close();
  assert.ok(await waitUnbound(dev.index), 'autoclear did not detach');
  assert.not.ok(existsSync(`/sys/block/loop${dev.index}/loop/backing_file`));
});

test('autoclear: another opener keeps the device until it closes too', async () => {
  const f = await file(8 * MiB);
  const dev = track(await loops.attach(f));
  const other = openSync(dev.path, 'r');
  try {
    dev.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.ok((await readLoopSysfs(dev.index))?.bound, 'detached while someone still had it open');
  } finally {
    closeSync(other);
  }
  assert.ok(await waitUnbound(dev.index));
});

test('detach while another process-level opener exists → deferred, then gone on its close', async () => {
  const f = await file(8 * MiB);
  const dev = track(await loops.attach(f, { autoclear: false }));
  dev.close();
  const other = openSync(dev.path, 'r');
  try {
    assert.is(await loops.detach(dev), 'deferred');
    assert.ok((await readLoopSysfs(dev.index))?.bound);
    assert.is((await loops.status(dev)).autoclear, true, 'LOOP_CLR_FD with openers switches autoclear on');
  } finally {
    closeSync(other);
  }
  assert.ok(await waitUnbound(dev.index));
});

test('16 concurrent attaches (with losetup racing from other processes) never share a device', async () => {
  const files = await Promise.all(Array.from({ length: 16 }, (_, i) => file(4 * MiB, `conc${i}`)));
  const rivals = await Promise.all(Array.from({ length: 6 }, (_, i) => file(4 * MiB, `rival${i}`)));
  const rivalRuns = rivals.map((r) => execFileP('losetup', ['--find', '--show', r]));
  const devs = (await Promise.all(files.map((f) => loops.attach(f)))).map(track);
  const rivalDevs = (await Promise.all(rivalRuns)).map((r) => r.stdout.trim());
  try {
    const ours = devs.map((d) => d.path);
    console.log(`    concurrent attach: ${devs.reduce((a, d) => a + d.attempts - 1, 0)} lost race(s) retried`);
    assert.is(new Set(ours).size, 16, `duplicates among ours: ${ours.join(' ')}`);
    for (const r of rivalDevs) assert.not.ok(ours.includes(r), `${r} handed to both us and losetup`);
    for (const [i, d] of devs.entries()) {
      assert.is((await loops.status(d)).backingInode, statSync(files[i] as string, { bigint: true }).ino, d.path);
    }
  } finally {
    for (const r of rivalDevs) execFileSync('losetup', ['--detach', r]);
  }
});

test('findByBackingFile finds a device attached by losetup, by inode (also via hard link and symlink)', async () => {
  const f = await file(8 * MiB);
  const dev = execFileSync('losetup', ['--find', '--show', '--offset', '4096', f], { encoding: 'utf8' }).trim();
  try {
    const hard = `${f}-hardlink`;
    const sym = `${f}-symlink`;
    linkSync(f, hard);
    symlinkSync(f, sym);
    for (const p of [f, hard, sym]) {
      const found = await loops.findByBackingFile(p);
      assert.equal(found.map((m) => [m.path, m.matchedBy]), [[dev, 'inode']], p);
      assert.is(found[0]?.status?.offset, 4096n);
    }
    assert.equal(await loops.findByBackingFile(f, { offset: 0 }), []);
    assert.is((await loops.findByBackingFile(f, { offset: 4096 })).length, 1);
    assert.ok((await loops.list()).some((l) => l.path === dev && l.binding?.backingFile === f));
  } finally {
    execFileSync('losetup', ['--detach', dev]);
  }
});

test('each asynchronous read answers what its Sync twin answers', async () => {
  const f = await file(8 * MiB);
  const dev = track(await loops.attach(f, { offset: 4096, partscan: true }));
  const idle = track(await loops.attach(await file(MiB), { autoclear: false }));
  const st = await loops.status(dev);
  assert.equal(loops.statusSync(dev), st);
  assert.is(st.offset, 4096n);
  assert.is(await loops.sizeOf(dev.path), loops.sizeOfSync(dev.path));
  assert.is(await loops.sizeOf(dev.path), BigInt(8 * MiB - 4096));
  const found = await loops.findByBackingFile(f);
  assert.equal(found.map((m) => [m.index, m.matchedBy]), [[dev.index, 'inode']]);
  assert.equal(loops.findByBackingFileSync(f), found);
  // Between two reads of the same kernel state nothing of ours changes: the lists match too.
  const [all, allSync] = [await loops.list({ all: true }), loops.listSync({ all: true })];
  assert.equal(allSync, all);
  assert.ok(all.some((l) => l.index === idle.index && l.bound));
  assert.equal(loops.listSync(), await loops.list());
  assert.equal(await readLoopSysfs(dev.index), readLoopSysfsSync(dev.index));
  assert.equal(await listBoundLoops(), listBoundLoopsSync());
  // GET_FREE answers the same index while nobody binds one in between.
  assert.is(await loops.getFree(), loops.getFreeSync());
  await idle.detach();
});

test('findByBackingFile falls back to the sysfs path for a deleted backing file', async () => {
  const f = await file(8 * MiB);
  const dev = track(await loops.attach(f));
  const { unlinkSync } = await import('node:fs');
  unlinkSync(f);
  const found = await loops.findByBackingFile(f);
  assert.equal(found.map((m) => [m.index, m.matchedBy]), [[dev.index, 'path']]);
  assert.equal(loops.findByBackingFileSync(f), found);
  assert.is((await readLoopSysfs(dev.index))?.binding?.backingFileDeleted, true);
});

test('growing the file + setCapacity is visible through BLKGETSIZE64', async () => {
  const f = await file(8 * MiB);
  const dev = track(await loops.attach(f));
  assert.is(await loops.sizeOf(dev.path), BigInt(8 * MiB));
  const r = await ensureSparseFile(f, 24 * MiB);
  assert.ok(r.grown);
  assert.is(await loops.sizeOf(dev.path), BigInt(8 * MiB), 'the kernel should not notice before SET_CAPACITY');
  await loops.setCapacity(dev);
  assert.is(await loops.sizeOf(dev.path), BigInt(24 * MiB));
  assert.is((await readLoopSysfs(dev.index))?.sizeSectors, BigInt((24 * MiB) / 512));
});

test('setBlockSize and setDirectIo on a bound device', async () => {
  const f = await file(8 * MiB);
  const dev = track(await loops.attach(f));
  await loops.setBlockSize(dev, 4096);
  assert.is((await readLoopSysfs(dev.index))?.logicalBlockSize, 4096);
  await loops.setBlockSize(dev, 512);
  assert.is((await readLoopSysfs(dev.index))?.logicalBlockSize, 512);
  try {
    await loops.setDirectIo(dev, true);
    assert.is((await readLoopSysfs(dev.index))?.binding?.directIo, true);
    await loops.setDirectIo(dev, false);
  } catch (err) {
    assert.is((err as { code?: string }).code, 'EINVAL', 'only EINVAL (no direct I/O here) is acceptable');
  }
  assert.is((await readLoopSysfs(dev.index))?.binding?.directIo, false);
});

test('bad backing files fail before any loop device is touched', async () => {
  const before = (await listBoundLoops()).map((l) => l.index);
  const free = await loops.getFree();
  await assert_rejects(loops.attach(join(dir, 'missing-file')), BackingFileNotFoundError);
  const d = join(dir, `adir-${TEST_MARKER}`);
  mkdirSync(d);
  await assert_rejects(loops.attach(d), BackingFileNotRegularError);
  await assert_rejects(loops.attach('/dev/null'), BackingFileNotRegularError);

  // Root ignores permission bits, so make the file unwritable with a read-only mount.
  const mnt = join(dir, `romnt-${TEST_MARKER}`);
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'devmapper-test', mnt]);
  try {
    const ro = join(mnt, 'ro-file');
    writeFileSync(ro, Buffer.alloc(MiB));
    chmodSync(ro, 0o444);
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    const e = await assert_rejects(loops.attach(ro), BackingFileReadOnlyError);
    assert.is((e.cause as { code?: string }).code, 'EROFS');
    assert.equal((await listBoundLoops()).map((l) => l.index), before, 'a loop device was consumed');
    assert.is(await loops.getFree(), free, 'GET_FREE answer changed');
    const dev = track(await loops.attach(ro, { readOnly: true }));
    assert.is((await loops.status(dev)).readOnly, true);
    await dev.detach();
  } finally {
    execFileSync('umount', [mnt]);
  }
});

test('status / detach of an unbound device → LoopNotBoundError; loop-control add/remove', async () => {
  const idx = await loops.getFree();
  await assert_rejects(loops.status(idx), LoopNotBoundError);
  assert.throws(() => loops.statusSync(idx), (e: unknown) => e instanceof LoopNotBoundError);
  await assert_rejects(loops.detach(idx), LoopNotBoundError);
  // A high index nobody uses: add, EEXIST on re-add, remove.
  const hi = 900 + (process.pid % 90);
  if (!existsSync(`/sys/block/loop${hi}`)) {
    assert.is(loops.add(hi), hi);
    try {
      assert.throws(() => loops.add(hi), (e: unknown) => e instanceof LoopDeviceExistsError);
      assert.ok(existsSync(`/sys/block/loop${hi}`));
    } finally {
      loops.remove(hi);
    }
    assert.not.ok(existsSync(`/sys/block/loop${hi}`));
  }
});

test('timing: LOOP_CONFIGURE vs legacy attach (+ detach)', async () => {
  const f = await file(8 * MiB);
  const N = 20;
  const times: Record<string, number[]> = { configure: [], legacy: [] };
  for (let i = 0; i < N; i++) {
    for (const method of ['configure', 'legacy'] as const) {
      const t0 = process.hrtime.bigint();
      const dev = await loops.attach(f, { method });
      const t1 = process.hrtime.bigint();
      await dev.detach();
      times[method]?.push(Number(t1 - t0) / 1e6);
    }
  }
  const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;
  console.log(
    `    attach median over ${N}: LOOP_CONFIGURE ${med(times['configure'] ?? []).toFixed(3)} ms, legacy ${med(times['legacy'] ?? []).toFixed(3)} ms`,
  );
});

async function assert_rejects<T>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof cls)) throw err;
    return err;
  }
  assert.unreachable(`expected ${cls.name}`);
  throw new Error('unreachable');
}

if (!loopOnlyReady && privilegedOptedIn()) {
  console.log(`  loop tests need root and /dev/loop-control (${PRIVILEGED_ENV} is set)`);
}

test.run();
