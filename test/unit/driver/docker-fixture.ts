// SPDX-License-Identifier: MIT
// A Docker devicemapper root built by hand on the FakeKernel, as dockerd 20.10 leaves it after a
// clean stop: loop files holding the pool's metadata (base id 1 with a filesystem, an image layer,
// a container's -init and container layers as snapshots), the records Docker writes
// (json.Marshal of deviceset.go's devInfo / deviceSetMetaData / transaction, field order kept),
// and no live pool.
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerPrefixFor } from '../../../src/driver/index.js';
import { ThinDevice, ThinPool } from '../../../src/thin/index.js';
import { FakeKernel, fakeBlockDevices, fakeDeviceSetInit, fakeFsTools } from '../../../src/testing/index.js';
import type { DockerKernelDeps } from '../../../src/driver/index.js';

export const DEV = '/fakedev';
export const MiB = 1024 * 1024;
/** Layer ids as Docker names them (64 hex digits; the init layer adds -init). */
export const IMAGE = 'a'.repeat(64);
export const CONTAINER = 'c'.repeat(64);
export const INIT = `${CONTAINER}-init`;
export const BASE_UUID = '5b1f3e6c-3a52-4d2a-9a0e-2f0b9c1d7e11';

export interface DockerFixture {
  readonly fake: FakeKernel;
  readonly root: string;
  readonly prefix: string;
  readonly deps: DockerKernelDeps;
  /** A fresh empty directory to mount on. */
  readonly target: string;
}

export interface FixtureOptions {
  readonly fs?: 'ext4' | 'xfs';
  /** The pool's transaction id; Docker's open transaction id is written as given. */
  readonly poolTransactionId?: number;
  readonly openTransactionId?: number;
  /** Leave the pool live (a dockerd killed with -9). */
  readonly leaveLive?: boolean;
  /** deviceset-metadata's BaseDeviceUUID (default {@link BASE_UUID}; the fake's mkfs gives FAKE_FILESYSTEM_UUID). */
  readonly baseUuid?: string;
  /** Add {@link DELETED}: thin 5, a snapshot of the image, recorded `deleted: true` (Docker's deferred deletion). */
  readonly deletedLayer?: boolean;
}

/** The deferred-deleted layer of `deletedLayer`. */
export const DELETED = 'd'.repeat(64);

/** Docker's json.Marshal of devInfo. */
export function deviceJson(id: number, size: number, txid: number, initialized: boolean, deleted = false): string {
  return `{"device_id":${id},"size":${size},"transaction_id":${txid},"initialized":${initialized},"deleted":${deleted}}`;
}

export async function buildDockerRoot(options: FixtureOptions = {}): Promise<DockerFixture> {
  const fake = new FakeKernel({ sysfs: true, devDir: DEV });
  const root = mkdtempSync(join(tmpdir(), 'docker-root-'));
  chmodSync(root, 0o700);
  const target = mkdtempSync(join(tmpdir(), 'docker-mnt-'));
  mkdirSync(join(root, 'devicemapper'), { mode: 0o700 });
  mkdirSync(join(root, 'metadata'), { mode: 0o700 });
  const dataFile = join(root, 'devicemapper', 'data');
  const metaFile = join(root, 'devicemapper', 'metadata');
  writeFileSync(dataFile, '');
  truncateSync(dataFile, 64 * MiB);
  writeFileSync(metaFile, '');
  truncateSync(metaFile, 2 * MiB);
  const prefix = dockerPrefixFor(statSync(root, { bigint: true }));
  const init = fakeDeviceSetInit(fake, DEV);
  const blockDevices = fakeBlockDevices(fake, init.loops);

  const data = await init.loops.attach(dataFile, { autoclear: true });
  const meta = await init.loops.attach(metaFile, { autoclear: true });
  const pool = await ThinPool.create(init.dm, {
    name: `${prefix}-pool`,
    metadataDev: meta.devNumber,
    dataDev: data.devNumber,
    dataBlockSize: 128,
    lowWaterMark: 32768,
    features: { skipBlockZeroing: true },
    metadata: 'new',
    zeroMetadata: true,
    blockDevices,
  });
  data.close();
  meta.close();
  const size = 16 * MiB;
  await pool.createThin(1);
  const base = ThinDevice.of(pool, 1);
  await base.activate(`${prefix}-base`, BigInt(size / 512));
  fake.mkfs(`${DEV}/mapper/${prefix}-base`, options.fs ?? 'ext4');
  fake.writeThin(`${prefix}-base`, 0, 4);
  await base.deactivate();
  await pool.setTransactionId(0, 1);
  await pool.createSnap(2, 1);
  await pool.setTransactionId(1, 2);
  await pool.createSnap(3, 2);
  await pool.setTransactionId(2, 3);
  await pool.createSnap(4, 3);
  let last = 3;
  if (options.deletedLayer) {
    await pool.setTransactionId(3, 4);
    await pool.createSnap(5, 2);
    last = 4;
  }
  const txid = options.poolTransactionId ?? (options.deletedLayer ? 5 : 4);
  await pool.setTransactionId(last, txid);
  if (!options.leaveLive) {
    await pool.remove();
    // struct thin_disk_superblock's trans_id (byte 48), which the fake's block 0 leaves zero.
    const fd = openSync(metaFile, 'r+');
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(txid));
    writeSync(fd, b, 0, 8, 48);
    closeSync(fd);
  }

  const m = (name: string, text: string): void => writeFileSync(join(root, 'metadata', name), text, { mode: 0o600 });
  m('base', deviceJson(1, size, 1, true));
  m(IMAGE, deviceJson(2, size, 2, false));
  m(INIT, deviceJson(3, size, 3, false));
  m(CONTAINER, deviceJson(4, size, 4, false));
  if (options.deletedLayer) m(DELETED, deviceJson(5, size, 5, false, true));
  m('deviceset-metadata', `{"next_device_id":${options.deletedLayer ? 5 : 4},"BaseDeviceUUID":"${options.baseUuid ?? BASE_UUID}","BaseDeviceFilesystem":"${options.fs ?? 'ext4'}"}`);
  m('transaction-metadata', `{"open_transaction_id":${options.openTransactionId ?? 4},"device_hash":"${CONTAINER}","device_id":4}`);

  const tools = fakeFsTools(fake);
  const deps: DockerKernelDeps = {
    dm: init.dm,
    loops: init.loops,
    syscalls: fake,
    blockDevices,
    probe: async (d) => (await tools.probe!(d)) ?? null,
    mounts: () =>
      fake.mounts().map((x) => {
        const d = fake.device(x.source.replace(`${DEV}/mapper/`, ''));
        return { major: d?.major ?? 0, minor: d?.minor ?? 0, path: x.target };
      }),
    devDir: DEV,
  };
  return { fake, root, prefix, deps, target };
}

export { treeDigest } from '../../helpers/tree-digest.js';
