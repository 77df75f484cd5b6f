// SPDX-License-Identifier: MIT
// Reopening a root: the base device is checked against dm.basesize only when the caller gave it
// (resolveDeviceSetOptionsReport's `given`), never against the default 10G.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, DeviceSizeError, MetadataStore, type DeviceSetOptions } from '../../../src/deviceset/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';

const M = 1024 * 1024;
const POOL = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.min_free_space=0%'];

test('a reopen without dm.basesize keeps the base as it is; with a smaller one it is refused', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'ds-base-given-'));
  const init = (options: readonly string[] | DeviceSetOptions) => DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), options: options as string[], log: () => {} });
  const baseSize = async (): Promise<number | undefined> => (await new MetadataStore(root).loadAll()).devices.get('')?.size;
  try {
    await (await init([...POOL, 'dm.basesize=32M'])).shutdown();
    assert.is(await baseSize(), 32 * M);
    // Not given: the default (10G) is not a request to grow.
    await (await init(POOL)).shutdown();
    assert.is(await baseSize(), 32 * M);
    await (await init({ loopDataSize: '64M', loopMetadataSize: '2M', minFreeSpacePercent: 0 })).shutdown();
    assert.is(await baseSize(), 32 * M);
    // Given and smaller: refused, in either form.
    const err = await rejects(init([...POOL, 'dm.basesize=16M']), DeviceSizeError);
    assert.is(err.message, 'base device size cannot be smaller than 33554432 bytes (dm.basesize=16777216)');
    await rejects(init({ loopDataSize: '64M', loopMetadataSize: '2M', minFreeSpacePercent: 0, baseSize: 16 * M }), DeviceSizeError);
    assert.is(await baseSize(), 32 * M);
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
