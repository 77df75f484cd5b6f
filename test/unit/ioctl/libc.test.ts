// Host sanity tests of the real libc boundary. Need no root and no special devices; they run on
// any Linux (koffi is loaded), and are skipped elsewhere.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as io from '../../../src/ioctl/index.js';

const linux = process.platform === 'linux';
const it = (name: string, fn: () => void | Promise<void>) => (linux ? test(name, fn) : test.skip(`${name} (Linux only)`, fn));

test('importing src/ioctl (and creating realSyscalls) loads neither koffi nor libc', () => {
  // In a fresh process, since other test files in this uvu run may already have made native calls.
  const index = new URL('../../../src/ioctl/index.js', import.meta.url).href;
  const script =
    `const m = await import(${JSON.stringify(index)}); m.realSyscalls();` +
    `const { createRequire } = await import('node:module');` +
    `const req = createRequire(${JSON.stringify(index)});` +
    `const koffiPath = req.resolve('koffi');` +
    `console.log(JSON.stringify({ loaded: m.libcLoaded(), inCache: koffiPath in req.cache }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(JSON.parse(out), { loaded: false, inCache: false });
});

/** A fd number that is certainly closed: open then close one. */
function closedFd(): number {
  const fd = openSync('/dev/null', 'r');
  closeSync(fd);
  return fd;
}

function expectIoctlError(fn: () => unknown, code: string): io.IoctlError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, io.IoctlError);
    assert.is((e as io.IoctlError).code, code, (e as Error).message);
    return e as io.IoctlError;
  }
  throw new assert.Assertion({ message: `expected IoctlError ${code}`, generated: true, operator: 'throws', expects: code, actual: 'no error' });
}

async function expectIoctlErrorAsync(p: Promise<unknown>, code: string): Promise<io.IoctlError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, io.IoctlError);
    assert.is((e as io.IoctlError).code, code, (e as Error).message);
    return e as io.IoctlError;
  }
  throw new assert.Assertion({ message: `expected IoctlError ${code}`, generated: true, operator: 'throws', expects: code, actual: 'no error' });
}

it('statAsync (statx on a worker) answers what stat answers; ENOENT the same', async () => {
  const sc = io.realSyscalls();
  assert.ok(sc.statAsync, 'the real seam has statAsync');
  assert.equal(await sc.statAsync('/dev/null'), sc.stat('/dev/null'));
  const missing = '/nonexistent-devmapper-statasync';
  const e = await expectIoctlErrorAsync(sc.statAsync(missing), 'ENOENT');
  assert.is(e.syscall, 'stat');
  assert.is(e.path, missing);
});

it('open /dev/null + close', () => {
  const sc = io.realSyscalls();
  const fd = sc.open('/dev/null', 0 /* O_RDONLY */);
  assert.ok(fd >= 0);
  sc.close(fd);
  assert.is(io.libc().libraryName.length > 0, true);
});

it('ioctl on a closed fd → EBADF, sync and async, both argument forms', async () => {
  const sc = io.realSyscalls();
  const fd = closedFd();
  const e = expectIoctlError(() => sc.ioctl(fd, io.DM_VERSION, io.encodeDmIoctl({}), 'DM_VERSION'), 'EBADF');
  assert.is(e.errno, 9);
  assert.is(e.syscall, 'ioctl');
  assert.is(e.request, 'DM_VERSION');
  assert.is(e.fd, fd);
  assert.is(e.message, 'ioctl DM_VERSION failed: EBADF (bad file descriptor)');
  expectIoctlError(() => sc.ioctl(fd, io.LOOP_CTL_GET_FREE, 0, 'LOOP_CTL_GET_FREE'), 'EBADF');
  const a = await expectIoctlErrorAsync(sc.ioctlAsync(fd, io.DM_VERSION, io.encodeDmIoctl({}), 'DM_VERSION'), 'EBADF');
  assert.is(a.errno, 9);
  await expectIoctlErrorAsync(sc.ioctlAsync(fd, io.LOOP_CTL_GET_FREE, 0n, 'LOOP_CTL_GET_FREE'), 'EBADF');
});

it('errno on the async path is the worker\'s, not whatever the JS thread had', async () => {
  const l = io.libc();
  // Leave a different errno on the JS thread (ENOENT) just before issuing the async call.
  const r1 = l.open('/nonexistent-devmapper-test/x', 0, 0);
  assert.is(r1.errno, 2);
  const fd = closedFd();
  const pending = l.ioctlPtr.async(fd, io.DM_VERSION, Buffer.alloc(312));
  // ...and another one while it is in flight.
  assert.is(l.open('/nonexistent-devmapper-test/y', 0, 0).errno, 2);
  const r2 = await pending;
  assert.is(r2.rc, -1);
  assert.is(r2.errno, 9);
  // Concurrent async calls keep their own errno.
  const [a, b] = await Promise.all([
    l.open.async('/nonexistent-devmapper-test/z', 0, 0),
    l.close.async(fd),
  ]);
  assert.equal([a.errno, b.errno], [2, 9]);
});

it('open of a missing path → ENOENT, sync and async', async () => {
  const sc = io.realSyscalls();
  const e = expectIoctlError(() => sc.open('/nonexistent-devmapper-test', 0), 'ENOENT');
  assert.is(e.path, '/nonexistent-devmapper-test');
  assert.is(e.syscall, 'open');
  const r = await io.libc().open.async('/nonexistent-devmapper-test', 0, 0);
  assert.equal(r, { rc: -1, errno: 2 });
});

it('stat/fstat match fs.statSync(bigint); /dev/null rdev; mkdir/rename/unlink/fsync', () => {
  const sc = io.realSyscalls();
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-libc-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, Buffer.alloc(5000, 1));
    const ref = statSync(file, { bigint: true });
    const s = sc.stat(file);
    assert.is(s.dev, ref.dev);
    assert.is(s.ino, ref.ino);
    assert.is(s.rdev, 0n);
    assert.is(s.size, 5000n);
    assert.is(s.blocks, ref.blocks);
    assert.is(s.mode, Number(ref.mode));
    assert.is(s.mode & io.S_IFMT, io.S_IFREG);
    const fd = sc.open(file, 2 /* O_RDWR */);
    try {
      assert.equal(sc.fstat(fd), s);
      sc.fsync(fd);
    } finally {
      sc.close(fd);
    }
    const nul = sc.stat('/dev/null');
    assert.is(nul.mode & io.S_IFMT, io.S_IFCHR);
    assert.is(nul.rdev, statSync('/dev/null', { bigint: true }).rdev);
    assert.is(io.formatDev(nul.rdev), '1:3');
    sc.mkdir(join(dir, 'd'), 0o755);
    expectIoctlError(() => sc.mkdir(join(dir, 'd'), 0o755), 'EEXIST');
    sc.rename(file, join(dir, 'g'));
    const re = expectIoctlError(() => sc.rename(file, join(dir, 'h')), 'ENOENT');
    assert.is(re.dest, join(dir, 'h'));
    sc.unlink(join(dir, 'g'));
    expectIoctlError(() => sc.unlink(join(dir, 'g')), 'ENOENT');
    expectIoctlError(() => sc.stat(join(dir, 'g')), 'ENOENT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('stat/fstat/lstat share one statx buffer: every result is its own object, a failed stat leaves earlier results intact', () => {
  const sc = io.realSyscalls();
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-libc-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, Buffer.alloc(3000, 1));
    const ref = statSync(file, { bigint: true });
    const a = sc.stat(file);
    const nul = sc.stat('/dev/null');
    expectIoctlError(() => sc.stat(join(dir, 'missing')), 'ENOENT');
    const l = sc.lstat(dir);
    // The first result still holds the file's values after three more calls through the buffer.
    assert.equal(a, { dev: ref.dev, ino: ref.ino, rdev: 0n, mode: Number(ref.mode), size: 3000n, blocks: ref.blocks });
    assert.is(nul.rdev, statSync('/dev/null', { bigint: true }).rdev);
    assert.is(l.mode & io.S_IFMT, io.S_IFDIR);
    // After a failure, the next call decodes its own answer, not the previous one's.
    expectIoctlError(() => sc.fstat(closedFd()), 'EBADF');
    assert.equal(sc.stat(file), a);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('async poll reads revents back from the caller\'s pollfd buffer; closed fd → POLLNVAL', async () => {
  const sc = io.realSyscalls();
  const fd = sc.open('/dev/null', 1 /* O_WRONLY */);
  try {
    // /dev/null is always writable: poll must report POLLOUT, read back from the pollfd buffer.
    const rev = await sc.pollAsync(fd, io.POLLOUT, 1000);
    assert.ok(rev & io.POLLOUT);
  } finally {
    sc.close(fd);
  }
  const nval = await sc.pollAsync(closedFd(), io.POLLIN, 0);
  assert.ok(nval & io.POLLNVAL);
});

it('flock: a second open file description gets EWOULDBLOCK (EAGAIN) with LOCK_NB until the first is closed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-flock-'));
  const sys = io.realSyscalls();
  try {
    const a = openSync(join(dir, 'f'), 'w+');
    const b = openSync(join(dir, 'f'), 'r');
    sys.flock(a, io.LOCK_EX | io.LOCK_NB);
    assert.throws(() => sys.flock(b, io.LOCK_SH | io.LOCK_NB), (e: unknown) => e instanceof io.IoctlError && e.code === 'EAGAIN' && e.syscall === 'flock' && e.fd === b);
    closeSync(a);
    sys.flock(b, io.LOCK_EX | io.LOCK_NB);
    sys.flock(b, io.LOCK_UN);
    closeSync(b);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

it('SysV semaphores (udev cookies) on the host kernel: struct sembuf, SETVAL/GETVAL, EAGAIN with IPC_NOWAIT, IPC_RMID', async () => {
  assert.equal([...io.encodeSembufs([{ num: 0, op: -1, flags: io.IPC_NOWAIT }])], [0, 0, 0xff, 0xff, 0x00, 0x08]);
  const sysv = io.realSyscalls().sysv!;
  // A private key (IPC_PRIVATE = 0) so no cookie of a real udev can collide.
  const id = sysv.semget(0, 1, io.IPC_CREAT | 0o600);
  try {
    sysv.semctl(id, 0, io.SETVAL, 2);
    assert.is(sysv.semctl(id, 0, io.GETVAL), 2);
    sysv.semop(id, [{ num: 0, op: -1, flags: io.IPC_NOWAIT }]);
    assert.is(sysv.semctl(id, 0, io.GETVAL), 1);
    sysv.semop(id, [{ num: 0, op: -1 }]);
    assert.is(sysv.semctl(id, 0, io.GETVAL), 0);
    try {
      sysv.semop(id, [{ num: 0, op: -1, flags: io.IPC_NOWAIT }]);
      assert.unreachable();
    } catch (e) {
      assert.is((e as io.IoctlError).code, 'EAGAIN');
    }
  } finally {
    sysv.semctl(id, 0, io.IPC_RMID);
  }
  try {
    sysv.semctl(id, 0, io.GETVAL);
    assert.unreachable();
  } catch (e) {
    assert.is((e as io.IoctlError).code, 'EINVAL');
  }
});
