// SPDX-License-Identifier: MIT
// statusPairs against what Docker 20.10 prints (driver.go Status, deviceset.go Status), for the
// cases the FakeKernel-backed driver.test.ts does not build: a dm.thinpooldev set. Docker sets
// devices.dataDevice/metadataDevice only when it creates the pool itself (initDevmapper), so for an
// external pool `docker info` has no "Data file"/"Metadata file" lines (seen against the real
// dockerd in test/privileged/docker-variants.test.ts); our DeviceSetStatus still carries the
// pool's table devices (`major:minor`) there, for `ds status`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DeviceSetStatus } from '../../../src/deviceset/index.js';
import { statusPairs } from '../../../src/driver/index.js';

const GB = 1_000_000_000n;
const base: DeviceSetStatus = {
  poolName: 'docker-thinpool',
  dataFile: '7:1',
  dataLoopback: null,
  metadataFile: '7:0',
  metadataLoopback: null,
  data: { used: 2n * GB, total: 10n * GB, available: 8n * GB },
  metadata: { used: 65536n, total: 67108864n, available: 67108864n - 65536n },
  sectorSize: 65536n,
  udevSyncSupported: true,
  deferredRemoveEnabled: true,
  deferredDeleteEnabled: true,
  deferredDeletedDeviceCount: 0,
  baseDeviceSize: 536870912n,
  baseDeviceFS: 'ext4',
  minFreeSpace: GB,
  transactionId: 4n,
  mode: 'rw',
  needsCheck: false,
  poolOwned: false,
  quarantinedThinIds: [],
};

test('dm.thinpooldev (external pool): no Data file / Metadata file lines, as docker info', () => {
  assert.equal(statusPairs(base), [
    ['Pool Name', 'docker-thinpool'],
    ['Pool Blocksize', '65.54kB'],
    ['Base Device Size', '536.9MB'],
    ['Backing Filesystem', 'ext4'],
    ['Udev Sync Supported', 'true'],
    ['Data Space Used', '2GB'],
    ['Data Space Total', '10GB'],
    ['Data Space Available', '8GB'],
    ['Metadata Space Used', '65.54kB'],
    ['Metadata Space Total', '67.11MB'],
    ['Metadata Space Available', '67.04MB'],
    ['Thin Pool Minimum Free Space', '1GB'],
    ['Deferred Removal Enabled', 'true'],
    ['Deferred Deletion Enabled', 'true'],
    ['Deferred Deleted Device Count', '0'],
  ]);
});

test('a pool the set created over dm.datadev/dm.metadatadev: the block devices are printed', () => {
  const pairs = statusPairs({ ...base, poolOwned: true, dataFile: '/dev/sdb', metadataFile: '/dev/sdc' });
  assert.equal(pairs.slice(5, 7), [
    ['Data file', '/dev/sdb'],
    ['Metadata file', '/dev/sdc'],
  ]);
  assert.is(pairs.length, 17);
});

test.run();
