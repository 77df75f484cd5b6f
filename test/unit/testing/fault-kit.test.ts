// SPDX-License-Identifier: MIT
// The fault kit's handles (flakeyOver, delayOver, logWritesOver) on the small in-test dm "kernel"
// of test/unit/dm/fake-dm.ts: the FakeKernel constructs no flakey, delay or log-writes target. The
// tables loaded, the requests made (each addressed by the handle's uuid), and disposal removing
// the device the handle made and nothing else. Their effect on I/O is checked on real kernels
// (test/privileged/fault-kit.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import { DmControl } from '../../../src/dm/index.js';
import { decodeTargetMsg, decodeDmIoctl, makedev, type Syscalls } from '../../../src/ioctl/index.js';
import { delayOver, flakeyOver, logWritesOver } from '../../../src/testing/index.js';
import { FakeDm } from '../dm/fake-dm.js';

const LOOP0 = 100;
const LOOP1 = 101;

/** FakeDm plus two block devices (/dev/loop0 = 7:0, 8 MiB; /dev/loop1 = 7:1, 4 MiB) and a regular file. */
function setup() {
  const k = new FakeDm();
  k.fs.entries.set('/dev/loop0', { kind: 'blk', mode: 0o660, rdev: makedev(7, 0) });
  k.fs.entries.set('/dev/loop1', { kind: 'blk', mode: 0o660, rdev: makedev(7, 1) });
  k.fs.entries.set('/tmp/plain', { kind: 'file', mode: 0o644 });
  const base = k.syscalls();
  const messages: string[] = [];
  const sizes = new Map([
    [LOOP0, 8n << 20n],
    [LOOP1, 4n << 20n],
  ]);
  const sys = new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'open')
        return (path: string, flags: number) => (path === '/dev/loop0' ? LOOP0 : path === '/dev/loop1' ? LOOP1 : target.open(path, flags));
      if (prop === 'close') return (fd: number) => (sizes.has(fd) ? undefined : target.close(fd));
      if (prop === 'ioctl')
        return (fd: number, req: number, arg: Buffer, name: string) => {
          if (!sizes.has(fd)) return target.ioctl(fd, req, arg, name);
          if (name !== 'BLKGETSIZE64') throw new Error(`unexpected ${name} on a loop device`);
          arg.writeBigUInt64LE(sizes.get(fd)!, 0);
          return 0;
        };
      if (prop === 'ioctlAsync')
        return async (fd: number, req: number, arg: Buffer, name: string) => {
          if (name === 'DM_TARGET_MSG') {
            const h = decodeDmIoctl(arg);
            messages.push(`${h.uuid}: ${decodeTargetMsg(arg, h.data_start, h.data_size).message}`);
          }
          return target.ioctlAsync(fd, req, arg, name);
        };
      return Reflect.get(target, prop, receiver);
    },
  }) as Syscalls;
  const dm = new DmControl({ syscalls: sys, nodes: 'manage', sleep: async () => {} });
  return { k, sys, dm, messages };
}

/** Request names sent to the fake, with the uuid they addressed when they named one. */
const requests = (k: FakeDm): string[] => k.seen.map((s) => (s.header.uuid ? `${s.name} ${s.header.uuid}` : s.name));
const live = (k: FakeDm, name: string) => k.devices.get(name)?.live?.map((t) => `${t.sector_start} ${t.length} ${t.target_type} ${t.params}`);

test('flakeyOver: the interval table, then goDown/goUp reload (by uuid) and resume; dispose removes only its device', async () => {
  const { k, dm, sys } = setup();
  await dm.createDevice('bystander', [{ start: 0n, length: 8n, type: 'zero', params: '' }]);
  k.seen.length = 0;
  const f = await flakeyOver('/dev/loop0', { up: 5, down: 7, mode: 'drop', name: 'fl', dm, syscalls: sys });
  assert.is(f.name, 'fl');
  assert.match(f.uuid, /^FAULTKIT-flakey-[0-9a-f]{16}$/);
  assert.is(f.path, '/dev/mapper/fl');
  assert.equal(f.dev, { major: 253, minor: 1 });
  assert.is(f.sectors, 16384n);
  assert.is(f.state, 'intervals');
  assert.equal(live(k, 'fl'), ['0 16384 flakey 7:0 0 5 7 1 drop_writes ']);
  assert.is(k.devices.get('fl')!.uuid, f.uuid);

  k.seen.length = 0;
  await f.goDown();
  assert.is(f.state, 'down');
  assert.equal(live(k, 'fl'), ['0 16384 flakey 7:0 0 0 4294967295 1 drop_writes ']);
  assert.equal(requests(k), [`DM_TABLE_LOAD ${f.uuid}`, `DM_DEV_SUSPEND ${f.uuid}`]);
  await f.goUp();
  assert.is(f.state, 'up');
  assert.equal(live(k, 'fl'), ['0 16384 flakey 7:0 0 4294967295 0 1 drop_writes ']);

  k.seen.length = 0;
  await f[Symbol.asyncDispose]();
  await f[Symbol.asyncDispose](); // a second dispose does nothing
  assert.equal(requests(k), [`DM_DEV_REMOVE ${f.uuid}`]);
  assert.equal([...k.devices.keys()], ['bystander']);
  assert.is(k.fdOpen, true, 'a DmControl given by the caller stays open');
});

test("flakeyOver: 'error' and 'fail' modes; await using removes the device at the end of the scope", async () => {
  const { k, dm, sys } = setup();
  {
    await using e = await flakeyOver('/dev/loop1', { up: 0, down: 1, mode: 'error', name: 'fe', dm, syscalls: sys });
    await using a = await flakeyOver('/dev/loop0', { up: 1, down: 1, mode: 'fail', name: 'fa', dm, syscalls: sys });
    assert.equal(live(k, 'fe'), ['0 8192 flakey 7:1 0 0 1 1 error_writes ']);
    assert.equal(live(k, 'fa'), ['0 16384 flakey 7:0 0 1 1 0 ']);
    await a.goDown();
    assert.equal(live(k, 'fa'), ['0 16384 flakey 7:0 0 0 4294967295 0 ']);
    assert.is(e.state, 'intervals');
  }
  assert.equal([...k.devices.keys()], []);
});

test('dispose removes by uuid: a device of the same name made by someone else after ours vanished is left alone', async () => {
  const { k, dm, sys } = setup();
  const f = await flakeyOver('/dev/loop0', { up: 1, down: 1, mode: 'drop', name: 'same', dm, syscalls: sys });
  k.devices.delete('same'); // removed behind the handle's back
  await dm.createDevice('same', [{ start: 0n, length: 8n, type: 'zero', params: '' }], { uuid: 'OTHER-owner' });
  k.seen.length = 0;
  await f[Symbol.asyncDispose]();
  assert.equal(requests(k), [`DM_DEV_REMOVE ${f.uuid}`], 'one attempt, by uuid (ENXIO: already gone, no error)');
  assert.equal([...k.devices.values()].map((d) => `${d.name} ${d.uuid}`), ['same OTHER-owner']);
});

test('delayOver: the 9-argument table (read, write, flush classes), defaults 0', async () => {
  const { k, dm, sys } = setup();
  await using d = await delayOver('/dev/loop0', { readMs: 10, writeMs: 200, flushMs: 300, name: 'dl', dm, syscalls: sys });
  assert.equal([d.readMs, d.writeMs, d.flushMs], [10, 200, 300]);
  assert.equal(live(k, 'dl'), ['0 16384 delay 7:0 0 10 7:0 0 200 7:0 0 300']);
  await using z = await delayOver('/dev/loop1', { writeMs: 5, name: 'dz', dm, syscalls: sys });
  assert.equal(live(k, 'dz'), ['0 8192 delay 7:1 0 0 7:1 0 5 7:1 0 0']);
  assert.match(z.uuid, /^FAULTKIT-delay-/);
});

test('logWritesOver: the table, mark(name) sends `mark <name>` to its own device, a bad mark sends nothing', async () => {
  const { k, dm, sys, messages } = setup();
  const lw = await logWritesOver('/dev/loop0', '/dev/loop1', { name: 'lw', dm, syscalls: sys });
  assert.is(lw.logDevice, '/dev/loop1');
  assert.equal(live(k, 'lw'), ['0 16384 log-writes 7:0 7:1']);
  await lw.mark('after-fsync-1');
  assert.equal(messages, [`${lw.uuid}: mark after-fsync-1`]);
  for (const bad of ['', 'two words', 'back\\slash', 'x'.repeat(480)])
    await lw.mark(bad).then(
      () => assert.unreachable(`mark ${JSON.stringify(bad)}`),
      (e: unknown) => assert.instance(e, InvalidArgumentError),
    );
  assert.is(messages.length, 1);
  await lw[Symbol.asyncDispose]();
  assert.equal([...k.devices.keys()], []);
});

test('bad input: every problem listed, before any device is made or any dm request sent', async () => {
  const { k, sys, dm } = setup();
  const fails = async (p: Promise<unknown>): Promise<InvalidArgumentError> => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.instance(e, InvalidArgumentError);
    return e as InvalidArgumentError;
  };
  const f = await fails(flakeyOver('', { up: -1, down: 2 ** 32, mode: 'sometimes' as never, name: 'a/b', dm, syscalls: sys }));
  assert.equal(
    f.problems.map((p) => p.path),
    ['/device', '/options/name', '/options/up', '/options/down', '/options/mode'],
  );
  assert.equal((await fails(flakeyOver('/dev/loop0', { up: 0, down: 0, mode: 'drop', dm, syscalls: sys }))).problems.map((p) => p.message), [
    'up + down must not be zero (flakey_ctr refuses it)',
  ]);
  assert.equal((await fails(flakeyOver('/dev/loop0', { up: 0xffffffff, down: 1, mode: 'drop', dm, syscalls: sys }))).problems.map((p) => p.path), ['/options/down']);
  assert.equal((await fails(delayOver('/dev/loop0', { readMs: 1.5, writeMs: -1, flushMs: 2 ** 32, dm, syscalls: sys }))).problems.map((p) => p.path), [
    '/options/readMs',
    '/options/writeMs',
    '/options/flushMs',
  ]);
  assert.match((await fails(delayOver('/tmp/plain', { dm, syscalls: sys }))).message, /is not a block device/);
  assert.equal((await fails(logWritesOver('/dev/loop0', '', { dm, syscalls: sys }))).problems.map((p) => p.path), ['/logDevice']);
  assert.match((await fails(logWritesOver('/dev/loop0', '/dev/loop0', { dm, syscalls: sys }))).message, /must differ from device/);
  assert.equal(k.seen, [], 'no dm request');
  assert.equal([...k.devices.keys()], []);
  // Without a DmControl given, the handle makes its own over the seam and closes it when disposed.
  const own = await flakeyOver('/dev/loop0', { up: 1, down: 0, mode: 'drop', syscalls: sys });
  assert.match(own.name, /^faultkit-flakey-[0-9a-f]{16}$/);
  await own[Symbol.asyncDispose]();
  assert.is(k.fdOpen, false, 'its own DmControl is closed');
  assert.equal([...k.devices.keys()], []);
});

test.run();
