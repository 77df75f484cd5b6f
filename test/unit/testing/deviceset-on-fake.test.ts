// SPDX-License-Identifier: MIT
// The README's promise: a service can unit-test against a DeviceSet on FakeKernel, through the
// public devmapper/testing API alone, with no root, no device-mapper and no VM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet } from '../../../src/deviceset/index.js';
import { FAKE_FILESYSTEM_UUID, FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';

test('DeviceSet on FakeKernel: init, snapshot chain, status, delete, shutdown leaves nothing', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'ds-on-fake-'));
  try {
    const options = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
    const ds = await DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), options, log: () => {} });
    await ds.addDevice('image', '');
    await ds.addDevice('container', 'image');
    assert.ok(ds.hasDevice('container'));
    assert.equal([...ds.list()].sort(), ['container', 'image']);
    const status = await ds.status();
    assert.is(status.baseDeviceFS, 'ext4');
    assert.is(fake.pool(status.poolName)?.thins.size, 3);
    await ds.deleteDevice('container', { sync: true });
    assert.is(fake.pool(status.poolName)?.thins.size, 2);
    await ds.shutdown();
    assert.equal(fake.devices(), [], 'no dm device left');
    assert.equal(fake.loops().filter((l) => l.backingFile), [], 'no loop left bound');
    const again = await DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), options, log: () => {} });
    assert.equal([...again.list()].sort(), ['image']);
    assert.ok(FAKE_FILESYSTEM_UUID.length > 0);
    await again.shutdown();
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
