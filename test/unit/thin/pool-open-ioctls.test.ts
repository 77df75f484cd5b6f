// ThinPool.open over DmControl (issue 21 §4): the table and the device number come from one
// DM_TABLE_STATUS, whose reply header the kernel fills with the device's status
// (drivers/md/dm-ioctl.c, table_status() → __dev_status()); no DM_DEV_STATUS of its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DmControl } from '../../../src/dm/index.js';
import { LoopControl, ensureSparseFile } from '../../../src/loop/index.js';
import { ThinPool, UnexpectedTargetError } from '../../../src/thin/index.js';
import { FakeKernel, fakeBlockDevices } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';

test('open: one DM_TABLE_STATUS gives the table and the device number', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const tmp = mkdtempSync(join(tmpdir(), 'pool-open-'));
  try {
    const loops = new LoopControl({ devDir: '/fakedev', syscalls: fake, sysfsRoot: fake.sysfsRoot, sleep: async () => {} });
    const dm = new DmControl({ devDir: '/fakedev', syscalls: fake, sleep: async () => {}, udevRecheckMs: 0 });
    const blockDevices = fakeBlockDevices(fake, loops);
    const [dataFile, metaFile] = ['data', 'meta'].map((f) => join(tmp, f));
    await ensureSparseFile(dataFile!, 64n << 20n);
    await ensureSparseFile(metaFile!, 2n << 20n);
    const data = await loops.attach(dataFile!, { autoclear: false });
    const meta = await loops.attach(metaFile!, { autoclear: false });
    // Another dm device first, so that the pool's minor is not 0.
    await dm.createDevice('other', [{ start: 0n, length: 8n, type: 'zero', params: '' }]);
    const made = await ThinPool.create(dm, { name: 'p', dataDev: data.path, metadataDev: meta.path, dataBlockSize: 128, lowWaterMark: 0, metadata: 'new', blockDevices });
    const before = fake.callCount;
    const pool = await ThinPool.open(dm, 'p', { blockDevices });
    const dmCalls = fake.calls.filter((c) => c.index >= before && c.request?.startsWith('DM_')).map((c) => c.request);
    assert.equal(dmCalls, ['DM_TABLE_STATUS']);
    assert.equal(pool.dev, made.dev);
    assert.equal(pool.dev, (await dm.deviceInfo('p')).dev);
    assert.is.not(pool.dev.minor, 0);
    assert.equal(pool.params, made.params);
    await rejects(ThinPool.open(dm, 'other', { blockDevices }), UnexpectedTargetError);
  } finally {
    fake.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
