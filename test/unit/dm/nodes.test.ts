import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceNodeError } from '../../../src/dm/errors.js';
import {
  ensureControlNode,
  ensureDeviceNode,
  mapperPath,
  removeDeviceNode,
  renameDeviceNode,
} from '../../../src/dm/nodes.js';
import { ErrnoError, FakeFs, strictSyscalls } from './fake-fs.js';

function setup(): { fs: FakeFs; sys: ReturnType<typeof strictSyscalls> } {
  const fs = new FakeFs();
  fs.entries.set('/dev', { kind: 'dir', mode: 0o755 });
  fs.entries.set('/dev/mapper', { kind: 'dir', mode: 0o755 });
  fs.entries.set('/dev/dm-3', { kind: 'blk', mode: 0o660, rdev: 0xfd03n });
  return { fs, sys: strictSyscalls(fs.fileCalls()) };
}
const dev = { major: 253, minor: 3 };

test('mapperPath', () => {
  assert.is(mapperPath('/dev', 'a'), '/dev/mapper/a');
  assert.is(mapperPath('/tmp/d/', 'a'), '/tmp/d/mapper/a');
});

test('creates a missing block node 0600 with the right numbers', () => {
  const { fs, sys } = setup();
  assert.is(ensureDeviceNode(sys, '/dev/mapper/a', dev), 'created');
  assert.equal(fs.calls, ['mknod /dev/mapper/a 60600 fd03']);
  assert.equal(fs.entries.get('/dev/mapper/a'), { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
});

test('keeps a correct node and a udev-style symlink to the right dm-N', () => {
  const { fs, sys } = setup();
  fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
  fs.entries.set('/dev/mapper/b', { kind: 'link', target: '../dm-3' });
  assert.is(ensureDeviceNode(sys, '/dev/mapper/a', dev), 'kept');
  assert.is(ensureDeviceNode(sys, '/dev/mapper/b', dev), 'kept');
  assert.equal(fs.calls, []);
  assert.equal(fs.entries.get('/dev/mapper/a'), { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
  assert.equal(fs.entries.get('/dev/mapper/b'), { kind: 'link', target: '../dm-3' });
});

test('replaces a stale node and a dangling symlink', () => {
  const { fs, sys } = setup();
  fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0xfd09n });
  fs.entries.set('/dev/mapper/b', { kind: 'link', target: '../dm-99' });
  assert.is(ensureDeviceNode(sys, '/dev/mapper/a', dev), 'replaced');
  assert.is(ensureDeviceNode(sys, '/dev/mapper/b', dev), 'replaced');
  assert.equal(fs.calls, [
    'unlink /dev/mapper/a',
    'mknod /dev/mapper/a 60600 fd03',
    'mknod /dev/mapper/b 60600 fd03', // EEXIST: the dangling symlink
    'unlink /dev/mapper/b',
    'mknod /dev/mapper/b 60600 fd03',
  ]);
  assert.equal(fs.entries.get('/dev/mapper/a'), { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
  assert.equal(fs.entries.get('/dev/mapper/b'), { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
});

test('expectAbsent (a device this DmControl just created): mknod first, same outcomes as probing first', () => {
  const { fs, sys } = setup();
  const opt = { expectAbsent: true };
  assert.is(ensureDeviceNode(sys, '/dev/mapper/new', dev, undefined, opt), 'created');
  fs.entries.set('/dev/mapper/ok', { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
  fs.entries.set('/dev/mapper/stale', { kind: 'blk', mode: 0o600, rdev: 0xfd09n });
  fs.entries.set('/dev/mapper/dangling', { kind: 'link', target: '../dm-99' });
  fs.entries.set('/dev/mapper/file', { kind: 'file', mode: 0o644 });
  assert.is(ensureDeviceNode(sys, '/dev/mapper/ok', dev, undefined, opt), 'kept');
  assert.is(ensureDeviceNode(sys, '/dev/mapper/stale', dev, undefined, opt), 'replaced');
  assert.is(ensureDeviceNode(sys, '/dev/mapper/dangling', dev, undefined, opt), 'replaced');
  assert.throws(() => ensureDeviceNode(sys, '/dev/mapper/file', dev, undefined, opt), (e: unknown) => e instanceof DeviceNodeError);
  assert.equal(fs.calls, [
    'mknod /dev/mapper/new 60600 fd03',
    'mknod /dev/mapper/ok 60600 fd03', // EEXIST, then the probe finds it right
    'mknod /dev/mapper/stale 60600 fd03', // EEXIST
    'unlink /dev/mapper/stale',
    'mknod /dev/mapper/stale 60600 fd03',
    'mknod /dev/mapper/dangling 60600 fd03', // EEXIST
    'unlink /dev/mapper/dangling',
    'mknod /dev/mapper/dangling 60600 fd03',
    'mknod /dev/mapper/file 60600 fd03', // EEXIST, then refused
  ]);
  for (const n of ['new', 'ok', 'stale', 'dangling']) assert.equal(fs.entries.get(`/dev/mapper/${n}`), { kind: 'blk', mode: 0o600, rdev: 0xfd03n }, n);
  assert.equal(fs.entries.get('/dev/mapper/file'), { kind: 'file', mode: 0o644 });
});

test('a node recreated between our unlink and mknod (udev\'s late symlink) is taken over once more', () => {
  const { fs, sys: base } = setup();
  fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0xfd09n });
  let raced = false;
  const calls = fs.fileCalls();
  const sys = strictSyscalls({
    ...calls,
    mknod: (path: string, mode: number, d: bigint) => {
      if (!raced) {
        raced = true;
        fs.entries.set(path, { kind: 'link', target: '../dm-3' }); // udev, just now
      }
      calls.mknod(path, mode, d);
    },
  });
  void base;
  assert.is(ensureDeviceNode(sys, '/dev/mapper/a', dev), 'replaced');
  assert.equal(fs.calls, ['unlink /dev/mapper/a', 'mknod /dev/mapper/a 60600 fd03', 'unlink /dev/mapper/a', 'mknod /dev/mapper/a 60600 fd03']);
  assert.equal(fs.entries.get('/dev/mapper/a'), { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
});

test('a read-only /dev: a correct node is kept, a missing one reports mknod\'s errno', () => {
  const fs = new FakeFs();
  fs.entries.set('/dev', { kind: 'dir', mode: 0o755 });
  fs.entries.set('/dev/mapper', { kind: 'dir', mode: 0o755 });
  fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
  const sys = strictSyscalls({
    ...fs.fileCalls(),
    mknod: (path: string) => {
      throw new ErrnoError('EROFS', 'mknod', path);
    },
  });
  for (const expectAbsent of [false, true]) {
    assert.is(ensureDeviceNode(sys, '/dev/mapper/a', dev, undefined, { expectAbsent }), 'kept');
    assert.throws(() => ensureDeviceNode(sys, '/dev/mapper/b', dev, undefined, { expectAbsent }), (e: unknown) => (e as { code?: string }).code === 'EROFS');
  }
});

test('refuses to clobber a non-block file', () => {
  const { fs, sys } = setup();
  fs.entries.set('/dev/mapper/a', { kind: 'file', mode: 0o644 });
  assert.throws(() => ensureDeviceNode(sys, '/dev/mapper/a', dev), (e: unknown) => e instanceof DeviceNodeError);
  assert.is(removeDeviceNode(sys, '/dev/mapper/a'), 'kept');
  assert.equal(fs.calls, []);
  assert.equal(fs.entries.get('/dev/mapper/a'), { kind: 'file', mode: 0o644 });
});

test('remove: missing is fine; only the matching device is removed when dev is given', () => {
  const { fs, sys } = setup();
  assert.is(removeDeviceNode(sys, '/dev/mapper/a'), 'absent');
  fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0xfd09n });
  assert.is(removeDeviceNode(sys, '/dev/mapper/a', dev), 'kept');
  assert.is(removeDeviceNode(sys, '/dev/mapper/a'), 'removed');
  fs.entries.set('/dev/mapper/b', { kind: 'link', target: '../dm-99' });
  assert.is(removeDeviceNode(sys, '/dev/mapper/b', dev), 'removed');
  assert.not.ok(fs.entries.has('/dev/mapper/b'));
});

test('rename moves a correct node; creates the new one when the old is missing or stale', () => {
  const { fs, sys } = setup();
  fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
  assert.is(renameDeviceNode(sys, '/dev/mapper/a', '/dev/mapper/b', dev), 'renamed');
  assert.not.ok(fs.entries.has('/dev/mapper/a'));
  assert.equal(fs.entries.get('/dev/mapper/b'), { kind: 'blk', mode: 0o600, rdev: 0xfd03n });
  assert.is(renameDeviceNode(sys, '/dev/mapper/x', '/dev/mapper/c', dev), 'created');
  fs.entries.set('/dev/mapper/s', { kind: 'blk', mode: 0o600, rdev: 0xfd07n });
  assert.is(renameDeviceNode(sys, '/dev/mapper/s', '/dev/mapper/d', dev), 'created');
  assert.not.ok(fs.entries.has('/dev/mapper/s'));
});

test('control node: creates /dev/mapper 0755 and control 10:236 0600; replaces a wrong one', () => {
  const fs = new FakeFs();
  fs.entries.set('/dev', { kind: 'dir', mode: 0o755 });
  const sys = strictSyscalls(fs.fileCalls());
  assert.is(ensureControlNode(sys, '/dev/mapper'), 'created');
  assert.equal(fs.calls, ['mkdir /dev/mapper 755', 'mknod /dev/mapper/control 20600 aec']);
  assert.is(ensureControlNode(sys, '/dev/mapper'), 'kept');
  fs.entries.set('/dev/mapper/control', { kind: 'chr', mode: 0o600, rdev: 0xa00n });
  assert.is(ensureControlNode(sys, '/dev/mapper'), 'replaced');
  fs.entries.set('/dev/mapper/control', { kind: 'file', mode: 0o600 });
  assert.throws(() => ensureControlNode(sys, '/dev/mapper'), (e: unknown) => e instanceof DeviceNodeError);
});

test.run();
