// SPDX-License-Identifier: MIT
// FakeKernel features beyond the shared contract: fault injection, crash points, the call log,
// thin metadata persistence across a "reboot", out-of-space accounting, mounts, version config.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DmControl, linearTarget } from '../../../src/dm/index.js';
import { LoopControl, ensureSparseFile, type LoopAttachment } from '../../../src/loop/index.js';
import { parseThinPoolStatus } from '../../../src/thin/index.js';
import { FakeIoError, FakeKernel, SimulatedCrash } from '../../../src/testing/index.js';
import { IoctlError, LOCK_EX, LOCK_NB, LOCK_UN } from '../../../src/ioctl/index.js';

const O_RDWR = 2;
const O_CREAT = 0o100;

const MiB = 1024 * 1024;
let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'fake-kernel-test-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

function world(fake = new FakeKernel({ sysfs: true })): { fake: FakeKernel; dm: DmControl; loops: LoopControl } {
  const dm = new DmControl({ syscalls: fake, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 }, sleep: async () => {} });
  const loops = new LoopControl({ syscalls: fake, sysfsRoot: fake.sysfsRoot!, sleep: async () => {} });
  return { fake, dm, loops };
}

async function file(name: string, bytes: number): Promise<string> {
  const p = join(dir, name);
  await ensureSparseFile(p, bytes);
  return p;
}

async function pool(w: ReturnType<typeof world>, features = '0'): Promise<{ meta: LoopAttachment; data: LoopAttachment }> {
  const meta = await w.loops.attach(await file('meta', 4 * MiB));
  const data = await w.loops.attach(await file('data', 8 * 64 * 1024));
  await w.dm.createDevice('pool', [{ start: 0n, length: 8n * 128n, type: 'thin-pool', params: `${meta.devNumber} ${data.devNumber} 128 2 ${features}` }]);
  meta.close();
  data.close();
  return { meta, data };
}

test('failNext: scripted EBUSY on remove is retried by DmControl', async () => {
  const { fake, dm } = world();
  await dm.createDevice('a', [{ start: 0n, length: 8n, type: 'zero', params: '' }]);
  const h = fake.failNext({ request: 'DM_DEV_REMOVE', errno: 'EBUSY', times: 2 });
  const r = await dm.deviceRemove('a', { retry: { attempts: 3, delayMs: 0 } });
  assert.equal(r, { deferred: false, attempts: 3 });
  assert.is(h.remaining, 0);
  assert.equal(fake.calls.filter((c) => c.request === 'DM_DEV_REMOVE').map((c) => c.result), ['EBUSY', 'EBUSY', 'ok']);
  fake.dispose();
});

test("failNext when: 'after' — the kernel did it, the caller got the errno", async () => {
  const { fake, dm } = world();
  await dm.deviceCreate('a');
  fake.failNext({ request: 'DM_DEV_REMOVE', errno: 'EINTR', when: 'after' });
  await dm.deviceRemove('a').then(
    () => assert.unreachable(),
    (e: { code?: string }) => assert.is(e.code, 'EINTR'),
  );
  assert.is(fake.device('a'), undefined);
  fake.dispose();
});

test('crashAfter: every index of createDevice stops dead; revive closes the dead process fds', async () => {
  const probe = world();
  const start = probe.fake.callCount;
  await probe.dm.createDevice('x', [{ start: 0n, length: 8n, type: 'zero', params: '' }]);
  const calls = probe.fake.callCount - start;
  probe.fake.dispose();
  assert.ok(calls >= 4, `${calls} calls`);
  for (let i = 0; i < calls; i++) {
    for (const when of ['before', 'after'] as const) {
      const w = world();
      w.fake.crashAfter(i, { when });
      await w.dm.createDevice('x', [{ start: 0n, length: 8n, type: 'zero', params: '' }]).then(
        () => assert.unreachable(`index ${i} did not crash`),
        (e) => assert.instance(e, SimulatedCrash),
      );
      assert.ok(w.fake.crashed);
      assert.throws(() => w.fake.stat('/dev'), (e: unknown) => e instanceof SimulatedCrash);
      w.fake.revive();
      // A new process sees consistent kernel state and can clean up.
      const dm2 = new DmControl({ syscalls: w.fake, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 } });
      for (const d of await dm2.listDevices()) await dm2.deviceRemove(d.name);
      assert.equal(w.fake.devices(), []);
      w.fake.dispose();
    }
  }
});

test('onCall sees every syscall in order; the log records results', async () => {
  const { fake, dm } = world();
  const seen: string[] = [];
  const off = fake.onCall((c) => seen.push(`${c.syscall}${c.request ? ':' + c.request : ''}`));
  await dm.version();
  off();
  await dm.version();
  assert.ok(seen.includes('open') && seen.includes('ioctl:DM_VERSION'));
  assert.is(fake.calls[fake.calls.length - 1]?.result, 'ok');
  fake.dispose();
});

test('thin: out of data space with error_if_no_space; low-water and mode events bump the pool event', async () => {
  const w = world();
  await pool(w, '1 error_if_no_space');
  await w.dm.targetMessage('pool', 0n, 'create_thin 0');
  await w.dm.createDevice('t', [{ start: 0n, length: 16n * 128n, type: 'thin', params: `${w.fake.device('pool')!.major}:${w.fake.device('pool')!.minor} 0` }]);
  const ev0 = (await w.dm.deviceInfo('pool')).eventNr;
  w.fake.writeThin('t', 0, 8);
  assert.is(w.fake.pool('pool')!.usedDataBlocks, 8);
  assert.throws(() => w.fake.writeThin('t', 8, 1), (e: unknown) => e instanceof FakeIoError && e.code === 'ENOSPC' && !e.queued);
  assert.is(w.fake.pool('pool')!.mode, 'out_of_data_space');
  assert.ok((await w.dm.deviceInfo('pool')).eventNr >= ev0 + 2, 'low water + mode change');
  assert.throws(() => w.fake.writeThin('t', 100, 1), (e: unknown) => e instanceof FakeIoError && e.code === 'EIO');
  w.fake.dispose();
});

test('thin metadata lives on the metadata file: a reboot finds the pool; zeroing block 0 unformats it', async () => {
  const w = world();
  await pool(w);
  await w.dm.targetMessage('pool', 0n, 'create_thin 5');
  await w.dm.targetMessage('pool', 0n, 'set_transaction_id 0 9');
  w.fake.reboot();
  assert.equal(w.fake.devices(), []);
  // The old process's fds died with the machine: a new DmControl opens the control node again.
  w.dm = new DmControl({ syscalls: w.fake, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 } });
  const meta = await w.loops.attach(join(dir, 'meta'));
  const data = await w.loops.attach(join(dir, 'data'));
  await w.dm.createDevice('pool2', [{ start: 0n, length: 8n * 128n, type: 'thin-pool', params: `${meta.devNumber} ${data.devNumber} 128 2 0` }]);
  assert.is(w.fake.pool('pool2')!.transactionId, 9n);
  assert.equal([...w.fake.pool('pool2')!.thins.keys()], [5]);
  await w.dm.deviceRemove('pool2');
  const fd = openSync(join(dir, 'meta'), 'r+');
  writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
  closeSync(fd);
  await w.dm.createDevice('pool3', [{ start: 0n, length: 8n * 128n, type: 'thin-pool', params: `${meta.devNumber} ${data.devNumber} 128 2 0` }]);
  const s = parseThinPoolStatus((await w.dm.tableStatus('pool3'))[0]!.params);
  assert.ok(s.kind === 'working' && s.transactionId === 0n);
  w.fake.dispose();
});

test('mounts: mkfs mark, mount holds the device, umount releases it', async () => {
  const w = world();
  const l = await w.loops.attach(await file('fs', MiB));
  await w.dm.createDevice('vol', [linearTarget(0n, 2048n, { device: { major: l.major, minor: l.minor }, offset: 0n })]);
  l.close();
  const target = join(dir, 'mnt');
  mkdirSync(target);
  await w.fake.mountAsync('/dev/mapper/vol', target, 'ext4', 0n, null).then(
    () => assert.unreachable(),
    (e: { code?: string }) => assert.is(e.code, 'EINVAL'),
  );
  w.fake.mkfs('vol', 'ext4');
  await w.fake.mountAsync('/dev/mapper/vol', target, 'ext4', 0n, null);
  assert.is(w.fake.mounts().length, 1);
  await w.dm.deviceRemove('vol').then(
    () => assert.unreachable(),
    (e) => assert.ok(String(e).includes('EBUSY') || (e as Error).name === 'DeviceBusyError'),
  );
  w.fake.setMountBusy(target, true);
  await w.fake.umount2Async(target, 0).then(
    () => assert.unreachable(),
    (e: { code?: string }) => assert.is(e.code, 'EBUSY'),
  );
  await w.fake.umount2Async(target, 2);
  await w.fake.umount2Async(target, 0).then(
    () => assert.unreachable(),
    (e: { code?: string }) => assert.is(e.code, 'EINVAL'),
  );
  await w.dm.deviceRemove('vol');
  assert.equal(w.fake.loops().filter((x) => x.bound), []);
  w.fake.dispose();
});

test('configurable dm version: a 4.40 kernel refuses 4.41 requests; DmControl falls back to LIST_VERSIONS', async () => {
  const w = world(new FakeKernel({ dmVersion: [4, 40, 0], sysfs: true }));
  assert.equal(await w.dm.version(), [4, 40, 0]);
  assert.equal(await w.dm.getTargetVersion('thin-pool'), [1, 23, 0]);
  assert.is(w.fake.calls.some((c) => c.request === 'DM_GET_TARGET_VERSION'), false);
  w.fake.dispose();
});

test('introspection and reset', async () => {
  const w = world();
  await w.dm.deviceCreate('a', { uuid: 'U-a' });
  assert.equal(w.fake.devices().map((d) => [d.name, d.uuid, d.major, d.minor]), [['a', 'U-a', 253, 0]]);
  assert.is(w.fake.loops().length, 8);
  w.fake.reset();
  assert.equal(w.fake.devices(), []);
  assert.is(w.fake.callCount, 0);
  w.fake.dispose();
});

test('flock on a real file is the real flock(2): two fakes exclude each other; revive (process death) drops it', () => {
  const path = join(dir, 'lock');
  const a = new FakeKernel();
  const b = new FakeKernel();
  try {
    const fa = a.open(path, O_RDWR | O_CREAT, 0o600);
    const fb = b.open(path, O_RDWR | O_CREAT, 0o600);
    a.flock(fa, LOCK_EX | LOCK_NB);
    assert.throws(() => b.flock(fb, LOCK_EX | LOCK_NB), (e: unknown) => e instanceof IoctlError && e.code === 'EAGAIN' && e.syscall === 'flock' && e.fd === fb);
    assert.is(b.calls.at(-1)?.result, 'EAGAIN');
    a.crashAfter(0);
    assert.throws(() => a.close(fa), (e: unknown) => e instanceof SimulatedCrash);
    assert.throws(() => b.flock(fb, LOCK_EX | LOCK_NB), (e: unknown) => e instanceof IoctlError && e.code === 'EAGAIN', 'a dead process keeps its fds until the kernel reaps it');
    a.revive();
    b.flock(fb, LOCK_EX | LOCK_NB);
    b.close(fb);
    assert.throws(() => b.flock(fb, LOCK_UN), (e: unknown) => e instanceof IoctlError && e.code === 'EBADF');
    const ctl = a.open('/dev/mapper/control', O_RDWR, 0);
    assert.throws(() => a.flock(ctl, LOCK_EX), (e: unknown) => e instanceof IoctlError && e.code === 'EINVAL');
  } finally {
    a.dispose();
    b.dispose();
  }
});

test.run();
