// SPDX-License-Identifier: MIT
// `using` / `await using` (Symbol.dispose, Symbol.asyncDispose) on DmControl, LoopControl,
// LoopAttachment and DeviceSet, on the FakeKernel: each releases what it holds at the end of the
// scope (the control fd, the loop fd or binding, the DeviceSet's pool, lock and fds), also when
// the scope throws; a loop handle that no longer holds its fd detaches nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, DeviceSetClosedError } from '../../src/deviceset/index.js';
import { DmControl } from '../../src/dm/index.js';
import { LoopControl } from '../../src/loop/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../src/testing/index.js';
import { rejects } from '../helpers/rejects.js';

const kinds = (fake: FakeKernel): string[] => fake.openFds().map((f) => f.kind).sort();
const bound = (fake: FakeKernel): string[] => fake.loops().filter((l) => l.bound).map((l) => l.path);

test('using DmControl: the control fd is closed at the end of the scope, and when it throws', async () => {
  const fake = new FakeKernel({ devDir: '/fakedev' });
  try {
    {
      using dm = new DmControl({ devDir: '/fakedev', syscalls: fake });
      await dm.version();
      assert.equal(kinds(fake), ['dm-control']);
    }
    assert.equal(kinds(fake), []);
    const e = await rejects(
      (async () => {
        using dm = new DmControl({ devDir: '/fakedev', syscalls: fake });
        await dm.version();
        assert.equal(kinds(fake), ['dm-control']);
        throw new Error('scope failed');
      })(),
      Error,
    );
    assert.is(e.message, 'scope failed');
    assert.equal(kinds(fake), []);
  } finally {
    fake.dispose();
  }
});

test('LoopAttachment: using closes the held fd (autoclear then detaches); await using detaches through it', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const dir = mkdtempSync(join(tmpdir(), 'dispose-loop-'));
  try {
    const file = join(dir, 'data');
    writeFileSync(file, Buffer.alloc(1 << 20));
    using loops = new LoopControl({ devDir: '/fakedev', syscalls: fake, sysfsRoot: fake.sysfsRoot ?? '/nonexistent' });
    let path: string;
    {
      await using dev = await loops.attach(file, { autoclear: false });
      path = dev.path;
      assert.equal(kinds(fake), ['block']);
      assert.equal(bound(fake), [path]);
    }
    assert.equal(kinds(fake), [], 'LoopControl holds nothing between calls');
    assert.equal(bound(fake), [], `${path} was detached`);
    {
      using dev = await loops.attach(file, { autoclear: true });
      assert.equal(bound(fake), [dev.path]);
    }
    assert.equal(kinds(fake), []);
    assert.equal(bound(fake), [], 'the last close let autoclear detach it');
    // A handle without its fd cannot prove the binding is the one it made: nothing is detached.
    const dev = await loops.attach(file, { autoclear: false });
    dev.close();
    await dev[Symbol.asyncDispose]();
    assert.equal(bound(fake), [dev.path]);
    await loops.detach(dev.path);
  } finally {
    fake.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('await using DeviceSet: shut down at the end of the scope (pool removed, lock released, no fd left)', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'dispose-ds-'));
  const options = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
  try {
    let held: DeviceSet;
    const init = fakeDeviceSetInit(fake, '/fakedev');
    {
      await using ds = await DeviceSet.init(root, { ...init, options, log: () => {} });
      held = ds;
      await ds.addDevice('img', '');
      assert.ok(fake.devices().length > 0);
      assert.ok(fake.loops().filter((l) => l.bound).length === 2, 'the data and metadata loop devices');
    }
    assert.equal(fake.devices(), [], 'pool and devices removed');
    assert.equal(fake.loops().filter((l) => l.bound), [], 'the loop files auto-cleared');
    // The DmControl given in `init` stays the caller's: shutdown leaves it open.
    assert.equal(kinds(fake), ['dm-control']);
    init.dm.close();
    await rejects(held.addDevice('x', ''), DeviceSetClosedError);
    // The lock was released: the root opens again, with its device.
    await using again = await DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), options, log: () => {} });
    assert.ok(again.hasDevice('img'));
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
