// SPDX-License-Identifier: MIT
// poolSpace against Docker 20.10's DeviceSet.Status (deviceset.go): with loopback files, Data
// Space Available is capped by the free space of the data file's file system and Metadata Space
// Available by the *metadata* file's, each f_bfree × f_bsize (getUnderlyingAvailableSpace), not
// f_bavail. statfs is injected: the two files on two file systems, bfree ≠ bavail.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { poolSpace, type FreeSpaceStat } from '../../../src/deviceset/pool-setup.js';
import type { ThinPoolWorkingStatus } from '../../../src/thin/index.js';

const w: ThinPoolWorkingStatus = {
  kind: 'working',
  transactionId: 3n,
  usedMetadataBlocks: 100n,
  totalMetadataBlocks: 524288n,
  usedDataBlocks: 10n,
  totalDataBlocks: 16384n,
  heldMetadataRoot: null,
  mode: 'rw',
  discardPassdown: 'discard_passdown',
  noSpacePolicy: 'queue_if_no_space',
  needsCheck: false,
  metadataLowWatermark: null,
};
const KiB64 = 65536n;

const stats: Record<string, FreeSpaceStat & { bavail: bigint }> = {
  '/d/data': { bfree: 1000n, bavail: 500n, bsize: 4096n },
  '/m/metadata': { bfree: 300n, bavail: 200n, bsize: 4096n },
};
const statfs = async (f: string): Promise<FreeSpaceStat> => {
  const s = stats[f];
  if (s === undefined) throw new Error(`statfs ${f}`);
  return s;
};

test('loopback: each file caps its own space by its file system, f_bfree × f_bsize', async () => {
  const r = await poolSpace(w, KiB64, { dataFile: '/d/data', metadataFile: '/m/metadata' }, statfs);
  assert.equal(r.data, { used: 10n * KiB64, total: 16384n * KiB64, available: 1000n * 4096n });
  assert.equal(r.metadata, { used: 100n * 4096n, total: 524288n * 4096n, available: 300n * 4096n });
});

test('no cap above the pool: the pool free space when smaller; none without loop files', async () => {
  const roomy = async (): Promise<FreeSpaceStat> => ({ bfree: 1n << 40n, bsize: 4096n });
  const r = await poolSpace(w, KiB64, { dataFile: '/d/data', metadataFile: '/m/metadata' }, roomy);
  assert.is(r.data.available, (16384n - 10n) * KiB64);
  assert.is(r.metadata.available, (524288n - 100n) * 4096n);
  const ext = await poolSpace(w, KiB64, { dataFile: null, metadataFile: null }, statfs);
  assert.is(ext.data.available, (16384n - 10n) * KiB64);
  assert.is(ext.metadata.available, (524288n - 100n) * 4096n);
});

test.run();
