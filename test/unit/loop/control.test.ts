// SPDX-License-Identifier: MIT
// LoopControl control flow against a scripted fake kernel: the GET_FREE race retry, the
// LOOP_CONFIGURE → legacy fallback, cleanup after a failed bind, and errors before any ioctl.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as fsc, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOOP_ATTACH_MAX_ATTEMPTS,
  LoopControl,
  truncateUtf8,
} from '../../../src/loop/control.js';
import {
  BackingFileLinkError,
  BackingFileNotFoundError,
  BackingFileNotRegularError,
  BackingFileReadOnlyError,
  LoopDeviceBusyError,
  LoopDeviceExistsError,
  LoopDeviceInUseError,
  LoopDeviceNotFoundError,
  LoopNotBoundError,
  LoopUnsupportedError,
} from '../../../src/loop/errors.js';
import { decodeLoopConfig, decodeLoopInfo64 } from '../../../src/ioctl/index.js';
import { InvalidArgumentError, errnoCode } from '../../../src/errors.js';
import { FakeSyscalls, directory, regular } from './fake-syscalls.js';
import { rejects } from '../../helpers/rejects.js';

const FILE = '/fake/pool/data';

function setup(): { sys: FakeSyscalls; loops: LoopControl; sleeps: number[] } {
  const sys = new FakeSyscalls();
  sys.files.set(FILE, regular());
  const sleeps: number[] = [];
  const loops = new LoopControl({
    syscalls: sys,
    sysfsRoot: '/nonexistent-sysfs',
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
  });
  return { sys, loops, sleeps };
}

const names = (sys: FakeSyscalls): string[] => sys.ioctls.map((c) => c.name);


test('attach via LOOP_CONFIGURE: one atomic call with flags, offset, sizelimit, name', async () => {
  const { sys, loops } = setup();
  sys.freeIndexes = [3];
  const dev = await loops.attach(FILE, { offset: 1048576, sizeLimit: 33554432n, directIo: true, blockSize: 4096 });
  assert.equal(names(sys), ['LOOP_CTL_GET_FREE', 'LOOP_CONFIGURE', 'LOOP_GET_STATUS64']);
  const cfg = decodeLoopConfig(sys.ioctls[1]?.arg as Buffer);
  assert.is(cfg.block_size, 4096);
  assert.is(cfg.info.lo_offset, 1048576n);
  assert.is(cfg.info.lo_sizelimit, 33554432n);
  assert.is(cfg.info.lo_flags, 4 | 16); // AUTOCLEAR | DIRECT_IO; partscan off by default
  assert.is(cfg.info.lo_file_name, '/fake/pool/data');
  assert.is(sys.ioctls[1]?.path, '/dev/loop3');
  assert.equal([dev.path, dev.index, dev.major, dev.minor, dev.method], ['/dev/loop3', 3, 7, 3, 'configure']);
  assert.is(dev.devNumber, '7:3');
  assert.is(dev.status.autoclear, true);
  assert.is(dev.status.directIo, true);
  // The backing fd is closed, the loop fd is held by the handle until close().
  assert.equal(sys.openFds(), ['/dev/loop3']);
  assert.type(dev.fd, 'number');
  dev.close();
  dev.close(); // idempotent
  assert.equal(sys.openFds(), []);
  assert.is(dev.fd, undefined);
});

test('backing fd opened O_RDWR for read-write, O_RDONLY with READ_ONLY flag for readOnly', async () => {
  const { sys, loops } = setup();
  (await loops.attach(FILE)).close();
  assert.is((sys.opens.find((o) => o.path === FILE)?.flags ?? -1) & 3, 2);
  const { sys: sys2, loops: loops2 } = setup();
  (await loops2.attach(FILE, { readOnly: true })).close();
  assert.is((sys2.opens.find((o) => o.path === FILE)?.flags ?? -1) & 3, 0);
  assert.is(decodeLoopConfig(sys2.ioctls[1]?.arg as Buffer).info.lo_flags & 1, 1);
  // The loop node itself is always opened read-write (an O_RDONLY loop fd makes the device read-only).
  assert.is((sys.opens.find((o) => o.path.startsWith('/dev/loop') && o.path !== '/dev/loop-control')?.flags ?? -1) & 3, 2);
});

test('EBUSY twice (race lost), then success on the third device; no CLR_FD on EBUSY', async () => {
  const { sys, loops, sleeps } = setup();
  sys.freeIndexes = [0, 1, 2];
  sys.script.set('LOOP_CONFIGURE', ['EBUSY', 'EBUSY']);
  const dev = await loops.attach(FILE);
  assert.is(dev.index, 2);
  assert.is(dev.attempts, 3);
  assert.equal(names(sys), [
    'LOOP_CTL_GET_FREE',
    'LOOP_CONFIGURE',
    'LOOP_CTL_GET_FREE',
    'LOOP_CONFIGURE',
    'LOOP_CTL_GET_FREE',
    'LOOP_CONFIGURE',
    'LOOP_GET_STATUS64',
  ]);
  assert.not.ok(names(sys).includes('LOOP_CLR_FD'));
  assert.is(sleeps.length, 2);
  dev.close();
  assert.equal(sys.openFds(), []);
});

test('race retries are bounded: LoopDeviceBusyError after LOOP_ATTACH_MAX_ATTEMPTS, every fd closed', async () => {
  const { sys, loops } = setup();
  sys.script.set('LOOP_CONFIGURE', Array(LOOP_ATTACH_MAX_ATTEMPTS + 5).fill('EBUSY'));
  const err = await rejects(loops.attach(FILE), LoopDeviceBusyError);
  assert.is(err.attempts, LOOP_ATTACH_MAX_ATTEMPTS);
  assert.is(err.code, 'ELOOPBUSY');
  assert.is((err.cause as { code?: string }).code, 'EBUSY');
  assert.is(names(sys).filter((n) => n === 'LOOP_CONFIGURE').length, LOOP_ATTACH_MAX_ATTEMPTS);
  assert.equal(sys.openFds(), []);
});

test('EINVAL on LOOP_CONFIGURE → SET_FD, SET_BLOCK_SIZE, SET_STATUS64 (settable flags only), SET_DIRECT_IO', async () => {
  const { sys, loops } = setup();
  sys.freeIndexes = [5];
  sys.script.set('LOOP_CONFIGURE', ['EINVAL']);
  const dev = await loops.attach(FILE, { partscan: true, directIo: true, blockSize: 4096, offset: 4096, sizeLimit: 8192 });
  assert.equal(names(sys), [
    'LOOP_CTL_GET_FREE',
    'LOOP_CONFIGURE',
    'LOOP_SET_FD',
    'LOOP_SET_BLOCK_SIZE',
    'LOOP_SET_STATUS64',
    'LOOP_SET_DIRECT_IO',
    'LOOP_GET_STATUS64',
  ]);
  const setFd = sys.ioctls[2];
  assert.type(setFd?.arg, 'number'); // the backing fd, by value
  assert.is(sys.opens.find((o) => o.path === FILE) !== undefined, true);
  assert.is(sys.ioctls[3]?.arg, 4096);
  const info = decodeLoopInfo64(sys.ioctls[4]?.arg as Buffer);
  assert.is(info.lo_flags, 4 | 8); // AUTOCLEAR | PARTSCAN: SET_STATUS64 ignores READ_ONLY/DIRECT_IO
  assert.is(info.lo_offset, 4096n);
  assert.is(info.lo_sizelimit, 8192n);
  assert.is(info.lo_file_name, FILE);
  assert.is(sys.ioctls[5]?.arg, 1);
  assert.is(dev.method, 'legacy');
  assert.is(dev.status.flags, 4 | 8 | 16);
  dev.close();
});

test('ENOTTY and ENOSYS also fall back; other CONFIGURE errors are fatal without fallback', async () => {
  for (const code of ['ENOTTY', 'ENOSYS']) {
    const { sys, loops } = setup();
    sys.script.set('LOOP_CONFIGURE', [code]);
    (await loops.attach(FILE)).close();
    assert.ok(names(sys).includes('LOOP_SET_FD'), code);
  }
  const { sys, loops } = setup();
  sys.script.set('LOOP_CONFIGURE', ['EBADF']);
  const err = await rejects(loops.attach(FILE), Error);
  assert.is((err as { code?: string }).code, 'EBADF');
  assert.not.ok(names(sys).includes('LOOP_SET_FD'));
  assert.equal(sys.openFds(), []);
});

test("method: 'configure' does not fall back; method: 'legacy' never calls LOOP_CONFIGURE", async () => {
  const a = setup();
  a.sys.script.set('LOOP_CONFIGURE', ['EINVAL']);
  await rejects(a.loops.attach(FILE, { method: 'configure' }), Error);
  assert.equal(names(a.sys), ['LOOP_CTL_GET_FREE', 'LOOP_CONFIGURE']);
  const b = setup();
  (await b.loops.attach(FILE, { method: 'legacy' })).close();
  assert.equal(names(b.sys), ['LOOP_CTL_GET_FREE', 'LOOP_SET_FD', 'LOOP_SET_STATUS64', 'LOOP_GET_STATUS64']);
});

test('legacy path: EBUSY on SET_FD is a lost race (retried, no CLR_FD)', async () => {
  const { sys, loops } = setup();
  sys.freeIndexes = [0, 1];
  sys.script.set('LOOP_SET_FD', ['EBUSY']);
  const dev = await loops.attach(FILE, { method: 'legacy' });
  assert.is(dev.index, 1);
  assert.not.ok(names(sys).includes('LOOP_CLR_FD'));
  dev.close();
});

test('failure after binding → LOOP_CLR_FD, original error rethrown, device free again', async () => {
  const { sys, loops } = setup();
  sys.script.set('LOOP_CONFIGURE', ['EINVAL']);
  sys.script.set('LOOP_SET_STATUS64', ['EPERM']);
  const err = await rejects(loops.attach(FILE), Error);
  assert.is((err as { code?: string }).code, 'EPERM');
  assert.equal(names(sys).slice(-2), ['LOOP_SET_STATUS64', 'LOOP_CLR_FD']);
  assert.is(sys.bound.size, 0);
  assert.equal(sys.openFds(), []);
});

test('failure after a successful LOOP_CONFIGURE (status read) → LOOP_CLR_FD', async () => {
  const { sys, loops } = setup();
  sys.script.set('LOOP_GET_STATUS64', ['EIO']);
  await rejects(loops.attach(FILE), Error);
  assert.equal(names(sys).slice(-2), ['LOOP_GET_STATUS64', 'LOOP_CLR_FD']);
  assert.is(sys.bound.size, 0);
  assert.equal(sys.openFds(), []);
});

test('EAGAIN on a configuration ioctl is retried in place', async () => {
  const { sys, loops, sleeps } = setup();
  sys.script.set('LOOP_CONFIGURE', ['EAGAIN', 'EAGAIN']);
  (await loops.attach(FILE)).close();
  assert.equal(names(sys), ['LOOP_CTL_GET_FREE', 'LOOP_CONFIGURE', 'LOOP_CONFIGURE', 'LOOP_CONFIGURE', 'LOOP_GET_STATUS64']);
  assert.is(sleeps.length, 2);
});

test('ENOENT opening the fresh node is retried (udev/devtmpfs lag)', async () => {
  const { sys, loops, sleeps } = setup();
  sys.script.set('open:/dev/loop0', ['ENOENT', 'EACCES']);
  (await loops.attach(FILE)).close();
  assert.is(sleeps.length, 2);
  assert.equal(names(sys), ['LOOP_CTL_GET_FREE', 'LOOP_CONFIGURE', 'LOOP_GET_STATUS64']);
});

test('bad backing files fail before any ioctl, with no loop device touched', async () => {
  const { sys, loops } = setup();
  sys.files.set('/fake/dir', directory());
  sys.files.set('/fake/ro', regular({ writable: false }));
  sys.files.set('/fake/chr', { mode: 0o020000 | 0o666 });
  await rejects(loops.attach('/fake/missing'), BackingFileNotFoundError);
  const e = await rejects(loops.attach('/fake/dir'), BackingFileNotRegularError);
  assert.is(e.fileType, 'directory');
  await rejects(loops.attach('/fake/chr'), BackingFileNotRegularError);
  const ro = await rejects(loops.attach('/fake/ro'), BackingFileReadOnlyError);
  assert.is(ro.code, 'EBACKINGREADONLY');
  assert.is((ro.cause as { code?: string }).code, 'EACCES');
  await rejects(loops.attach(FILE, { blockSize: 3 }), InvalidArgumentError);
  assert.equal(sys.ioctls, []);
  assert.not.ok(sys.opens.some((o) => o.path.startsWith('/dev/')));
  assert.equal(sys.openFds(), []);
  // A read-only file attached readOnly is fine.
  (await loops.attach('/fake/ro', { readOnly: true })).close();
});

test('noFollow: the backing file is opened O_NOFOLLOW; ELOOP is BackingFileLinkError before any ioctl', async () => {
  const { sys, loops } = setup();
  (await loops.attach(FILE, { noFollow: true })).close();
  const backing = sys.opens.filter((o) => o.path === FILE);
  assert.is(backing.length, 1);
  assert.is(backing[0]!.flags & fsc.O_NOFOLLOW, fsc.O_NOFOLLOW);
  const plain = setup();
  (await plain.loops.attach(FILE)).close();
  assert.is(plain.sys.opens.filter((o) => o.path === FILE)[0]!.flags & fsc.O_NOFOLLOW, 0);

  const b = setup();
  b.sys.script.set(`open:${FILE}`, ['ELOOP']); // what the kernel answers for a link with O_NOFOLLOW
  const err = await rejects(b.loops.attach(FILE, { noFollow: true }), BackingFileLinkError);
  assert.is(err.code, 'EBACKINGLINK');
  assert.is(err.path, FILE);
  assert.is((err.cause as { code?: string }).code, 'ELOOP');
  assert.equal(b.sys.ioctls, []);
  assert.equal(b.sys.openFds(), []);
});

test('hold: false closes the loop fd before returning (autoclear off)', async () => {
  const { sys, loops } = setup();
  const dev = await loops.attach(FILE, { hold: false, autoclear: false });
  assert.is(dev.fd, undefined);
  assert.equal(sys.openFds(), []);
  assert.is(decodeLoopConfig(sys.ioctls[1]?.arg as Buffer).info.lo_flags, 0);
});

test('handle.detach(): LOOP_CLR_FD through the held fd, then closed', async () => {
  const { sys, loops } = setup();
  const dev = await loops.attach(FILE);
  await dev.detach();
  assert.is(names(sys).at(-1), 'LOOP_CLR_FD');
  assert.equal(sys.openFds(), []);
  assert.is(sys.bound.size, 0);
  // Detaching again (handle closed, so through a fresh fd) reports the unbound device.
  await rejects(dev.detach(), LoopNotBoundError);
  assert.equal(sys.openFds(), []);
});

test('detach / status / setCapacity on an unbound device → LoopNotBoundError (ENXIO)', async () => {
  const { loops } = setup();
  await rejects(loops.detach(4), LoopNotBoundError);
  await rejects(loops.status('/dev/loop4'), LoopNotBoundError);
  assert.throws(() => loops.statusSync('/dev/loop4'), (e: unknown) => e instanceof LoopNotBoundError);
  await rejects(loops.setCapacity(4), LoopNotBoundError);
});

test('status decodes lo_flags and lo_device, on the worker; statusSync the same on the thread', async () => {
  const { sys, loops } = setup();
  const dev = await loops.attach(FILE, { partscan: true, readOnly: true });
  sys.asyncIoctls.length = 0;
  const s = await loops.status(dev);
  assert.equal(
    [s.index, s.readOnly, s.autoclear, s.partscan, s.directIo, s.backingInode, s.backingDeviceMajor, s.backingDeviceMinor],
    [0, true, true, true, false, 1234n, 0xfe, 1],
  );
  assert.equal(sys.asyncIoctls, ['LOOP_GET_STATUS64']);
  assert.equal(loops.statusSync(dev), s);
  assert.equal(sys.asyncIoctls, ['LOOP_GET_STATUS64'], 'the Sync twin made no worker call');
  dev.close();
});

test('loop-control: EEXIST / EBUSY / missing node map to typed errors', async () => {
  const { sys, loops } = setup();
  sys.script.set('LOOP_CTL_ADD', ['EEXIST']);
  assert.throws(() => loops.add(1), (e: unknown) => e instanceof LoopDeviceExistsError);
  sys.script.set('LOOP_CTL_REMOVE', ['EBUSY']);
  assert.throws(() => loops.remove(1), (e: unknown) => e instanceof LoopDeviceInUseError);
  assert.is(loops.add(9), 9);
  assert.throws(() => loops.add(-1), (e: unknown) => e instanceof InvalidArgumentError);
  sys.script.set('open:/dev/loop-control', ['ENOENT', 'ENOENT']);
  await rejects(loops.getFree(), LoopUnsupportedError);
  assert.throws(() => loops.getFreeSync(), (e: unknown) => e instanceof LoopUnsupportedError);
  assert.equal(sys.openFds(), []);
  sys.freeIndexes = [5];
  assert.equal([await loops.getFree(), loops.getFreeSync()], [5, 5]);
  assert.equal(sys.asyncIoctls, ['LOOP_CTL_GET_FREE'], 'getFree on the worker, getFreeSync not');
  assert.equal(sys.openFds(), []);
});

test('sizeOf uses BLKGETSIZE64 (on the worker), sizeOfSync the same on the thread', async () => {
  const { sys, loops } = setup();
  assert.is(await loops.sizeOf('/dev/loop0'), 1n << 20n);
  assert.is(loops.sizeOfSync('/dev/loop0'), 1n << 20n);
  assert.equal(names(sys), ['BLKGETSIZE64', 'BLKGETSIZE64']);
  assert.equal(sys.asyncIoctls, ['BLKGETSIZE64']);
  assert.equal(sys.openFds(), []);
});

test('truncateUtf8 never splits a character; long paths are cut to 63 bytes', async () => {
  assert.is(truncateUtf8('abc', 63), 'abc');
  assert.is(truncateUtf8('a'.repeat(70), 63).length, 63);
  const s = 'a'.repeat(62) + 'é'; // é is 2 bytes: 64 bytes total
  assert.is(truncateUtf8(s, 63), 'a'.repeat(62));
  const { sys, loops } = setup();
  const long = '/fake/' + 'x'.repeat(100);
  sys.files.set(long, regular());
  (await loops.attach(long)).close();
  const name = decodeLoopConfig(sys.ioctls[1]?.arg as Buffer).info.lo_file_name;
  assert.is(Buffer.byteLength(name), 63);
  assert.ok(long.startsWith(name));
});

test('findByBackingFile matches by (dev, ino) from a sysfs listing; falls back to the path', async () => {
  const root = mkdtempSync(join(tmpdir(), 'devmapper-find-'));
  try {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const mk = (i: number, file: string): void => {
      const d = join(root, 'block', `loop${i}`, 'loop');
      mkdirSync(d, { recursive: true });
      writeFileSync(join(root, 'block', `loop${i}`, 'dev'), `7:${i}\n`);
      for (const [k, v] of Object.entries({ backing_file: file, offset: '0', sizelimit: '0', autoclear: '0', partscan: '0' })) {
        writeFileSync(join(d, k), `${v}\n`);
      }
    };
    mk(0, '/somewhere/else');
    mk(4, FILE);
    const sys = new FakeSyscalls();
    sys.files.set(FILE, regular());
    const loops = new LoopControl({ syscalls: sys, sysfsRoot: root });
    // Device 4 is bound with the same (dev, ino) in the fake; device 0 is not bound in the fake,
    // so its status fails and it cannot match by inode.
    sys.bound.set(4, { flags: 0, offset: 0n, sizeLimit: 0n, name: FILE, blockSize: 512 });
    const found = await loops.findByBackingFile(FILE);
    assert.equal(found.map((f) => [f.index, f.matchedBy]), [[4, 'inode']]);
    assert.equal(loops.findByBackingFileSync(FILE), found);
    assert.equal(await loops.findByBackingFile(FILE, { offset: 512 }), []);
    assert.equal(loops.findByBackingFileSync(FILE, { offset: 512 }), []);
    // The file cannot be stat'ed: match on the sysfs string.
    sys.files.delete(FILE);
    const byPath = await loops.findByBackingFile(FILE);
    assert.equal(byPath.map((f) => [f.index, f.matchedBy]), [[4, 'path']]);
    assert.equal(loops.findByBackingFileSync(FILE), byPath);
    const listed = await loops.list();
    assert.equal(listed.map((l) => [l.index, l.path]), [[0, '/dev/loop0'], [4, '/dev/loop4']]);
    assert.equal(loops.listSync(), listed);
    assert.equal(await loops.list({ all: true }), loops.listSync({ all: true }));
    assert.equal(sys.openFds(), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every operation on a device maps ENOENT, ENXIO and ENODEV from open(2) to LoopDeviceNotFoundError', async () => {
  const ops: [string, (loops: LoopControl) => Promise<unknown>][] = [
    ['status', async (loops) => loops.status(3)],
    ['detach', (loops) => loops.detach(3)],
    ['setCapacity', (loops) => loops.setCapacity(3)],
    ['setDirectIo', (loops) => loops.setDirectIo(3, true)],
    ['setBlockSize', (loops) => loops.setBlockSize(3, 4096)],
  ];
  for (const code of ['ENOENT', 'ENXIO', 'ENODEV']) {
    for (const [op, run] of ops) {
      const { sys, loops } = setup();
      sys.script.set('open:/dev/loop3', [code]);
      const err = await rejects(run(loops), LoopDeviceNotFoundError);
      assert.is(err.device, '/dev/loop3', `${op} ${code}`);
      assert.is(errnoCode(err), code, `${op} ${code}`);
      assert.equal(sys.ioctls, [], `${op} ${code}`);
    }
  }
});

test('LoopAttachment.detach after close maps ENXIO from open(2) to LoopDeviceNotFoundError too', async () => {
  const { sys, loops } = setup();
  const dev = await loops.attach(FILE);
  dev.close();
  sys.script.set(`open:${dev.path}`, ['ENXIO']);
  const err = await rejects(dev.detach(), LoopDeviceNotFoundError);
  assert.is(err.device, dev.path);
  assert.equal(sys.openFds(), []);
});

test.run();
