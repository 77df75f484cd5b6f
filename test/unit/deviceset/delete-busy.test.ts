// SPDX-License-Identifier: MIT
// deleteDevice with deferred deletion: a device held open only for a moment (udev's blkid after
// the delete's own discard, in the VM's udev cell) is removed and deleted, not deferred; one
// that stays open is deferred after the brief retry, and the background pass finishes it later.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet } from '../../../src/deviceset/index.js';
import { DmControl } from '../../../src/dm/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';

const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%', 'dm.use_deferred_removal=true', 'dm.use_deferred_deletion=true'];

async function withSet(fn: (ctx: { fake: FakeKernel; ds: DeviceSet; opener: { fd: number | undefined; closeAfterSleeps: number; sleeps: number } }) => Promise<void>): Promise<void> {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'ds-delete-busy-'));
  // Someone else's transient open of the device: closed by the dm layer's n-th retry sleep.
  const opener = { fd: undefined as number | undefined, closeAfterSleeps: Infinity, sleeps: 0 };
  const dm = new DmControl({
    devDir: '/fakedev',
    syscalls: fake,
    udevRecheckMs: 0,
    sleep: async () => {
      opener.sleeps++;
      if (opener.fd !== undefined && opener.sleeps >= opener.closeAfterSleeps) {
        fake.close(opener.fd);
        opener.fd = undefined;
      }
    },
  });
  try {
    const ds = await DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), dm, options: OPTIONS, log: () => {} });
    try {
      await fn({ fake, ds, opener });
    } finally {
      if (opener.fd !== undefined) fake.close(opener.fd);
      await ds.shutdown();
    }
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
}

test('a device open for a moment when deleted: removed after the brief retry, and deleted', async () => {
  await withSet(async ({ fake, ds, opener }) => {
    await ds.addDevice('img', '');
    const path = await ds.activateDevice('img');
    opener.fd = fake.open(path, constants.O_RDONLY);
    opener.closeAfterSleeps = 2;
    const poolName = (await ds.status()).poolName;
    const thins = fake.pool(poolName)?.thins.size;
    assert.is(await ds.deleteDevice('img'), 'deleted');
    assert.is(opener.sleeps, 2, 'two retries: busy, busy, then removed');
    assert.not.ok(ds.hasDevice('img'));
    assert.is(fake.pool(poolName)?.thins.size, (thins ?? 0) - 1);
    assert.equal(fake.devices().map((d) => d.name).filter((n) => n !== poolName), []);
  });
});

test('a device that stays open: ten retries (about a second), then the deletion is deferred', async () => {
  await withSet(async ({ fake, ds, opener }) => {
    await ds.addDevice('img', '');
    const path = await ds.activateDevice('img');
    opener.fd = fake.open(path, constants.O_RDONLY);
    assert.is(await ds.deleteDevice('img'), 'deferred');
    assert.is(opener.sleeps, 9, 'ten attempts, nine sleeps between them');
    assert.ok(ds.hasDevice('img'));
    assert.equal(ds.list(), []);
    fake.close(opener.fd);
    opener.fd = undefined;
    assert.equal(await ds.cleanupDeleted(), []);
    assert.not.ok(ds.hasDevice('img'));
  });
});

test.run();
