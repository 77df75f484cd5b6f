// SPDX-License-Identifier: MIT
// Issue #20, data growth safety: the Autoextender grows only on evidence that proves the need,
// read under the pool lock. A grow that lands between the Autoextender's reading and its own grow
// (a resizePool of the DeviceSet's user here; on the bench, an earlier grow the monitor's stale
// event was answered after) must not make it grow again from the size the file had before.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet } from '../../../src/deviceset/index.js';
import type { AutoextendInit } from '../../../src/deviceset/autoextend.js';
import { parsePoolParams, type ThinPoolWorkingStatus } from '../../../src/thin/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';

const MiB = 1n << 20n;
const DEV = '/fakedev';
/** 64 MiB data = 1024 blocks of 64 KiB; mark at 80 % used (204 free). */
const AUTO = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=128M', 'dm.blocksize=64K', 'dm.min_free_space=0%', 'dm.autoextend_threshold=80%', 'dm.autoextend_percent=50%'];

interface W {
  fake: FakeKernel;
  tmp: string;
  root: string;
  logs: string[];
}
function world(): W {
  const tmp = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ds-autoextend-stale-'));
  return { fake: new FakeKernel({ sysfs: true, devDir: DEV }), tmp, root: join(tmp, 'root'), logs: [] };
}
function open(w: W, autoextend: AutoextendInit): Promise<DeviceSet> {
  return DeviceSet.init(w.root, { ...fakeDeviceSetInit(w.fake, DEV), options: AUTO, autoextend, log: (l, m) => void w.logs.push(`${l}: ${m}`) });
}
function tableOf(w: W, set: DeviceSet): { blocks: bigint; lowWater: bigint } {
  const t = w.fake.device(set.poolName)?.live?.[0];
  if (!t) throw new Error('no pool table');
  return { blocks: t.length / 128n, lowWater: parsePoolParams(t.params).lowWaterMark };
}
const dataSize = (w: W): bigint => BigInt(statSync(join(w.root, 'devicemapper', 'data')).size);

const stale = suite('autoextend: no grow from a stale reading');

stale('a grow landing between the reading and the grow: the need is re-read under the lock, nothing grows twice', async () => {
  const w = world();
  let set: DeviceSet | undefined;
  try {
    let userGrow: Promise<void> | undefined;
    // The statfs seam runs between the Autoextender's reading (820 of 1024 used: grow) and its
    // grow: the DeviceSet's user grows the pool to 80 MiB right then (the lock is free).
    const hostFreeBytes = async (): Promise<bigint> => {
      userGrow ??= set!.resizePool(80n * MiB);
      return 1n << 40n;
    };
    set = await open(w, { watch: false, hostFreeBytes });
    await set.addDevice('a', '');
    await set.activateDevice('a');
    w.fake.writeThin(set.deviceInfo('a').dmName, 0, 820);
    await set.autoextender.check('lowWater');
    await userGrow;
    // 820 of 1280 blocks used (64 %) after the user's grow: below the threshold, no grow of ours.
    // (Before the fix: 'growing … from 67108864 to 100663296', the file 96 MiB for one crossing.)
    assert.equal([dataSize(w), tableOf(w, set), set.autoextender.status().extensions, set.autoextender.status().lastExtension], [80n * MiB, { blocks: 1280n, lowWater: 256n }, 0, null]);
    assert.equal(
      w.logs.filter((l) => l.includes('autoextend')),
      [`info: autoextend (lowWater): the data file ${join(w.root, 'devicemapper', 'data')} is ${80n * MiB} bytes and the pool no longer needs to grow`],
    );
    assert.is(set.autoextender.status().state, 'notWatching');
  } finally {
    // Shut down on failure too: a live DeviceSet keeps the process (and the suite) running.
    await set?.shutdown().catch(() => undefined);
    w.fake.dispose();
    rmSync(w.tmp, { recursive: true, force: true });
  }
});

stale('a lowWater event read before our last grow is ignored: no status read, no grow', async () => {
  const w = world();
  let opened: DeviceSet | undefined;
  try {
    const set = (opened = await open(w, {}));
    await set.addDevice('a', '');
    await set.activateDevice('a');
    const name = set.deviceInfo('a').dmName;
    const monitor = set.autoextender.monitor!;
    const grown = new Promise<void>((r) => set.autoextender.once('extended', () => r()));
    w.fake.writeThin(name, 0, 820); // the kernel's low-water event: the monitor wakes, we grow
    await grown;
    assert.equal([dataSize(w), set.autoextender.status().extensions], [96n * MiB, 1]);
    // A reading of the 1024-block pool, delivered late (the bench's second event for one crossing).
    const old: ThinPoolWorkingStatus = {
      kind: 'working', transactionId: 1n, usedMetadataBlocks: 120n, totalMetadataBlocks: 512n, usedDataBlocks: 820n, totalDataBlocks: 1024n,
      heldMetadataRoot: null, mode: 'rw', discardPassdown: 'discard_passdown', noSpacePolicy: 'queue_if_no_space', needsCheck: false, metadataLowWatermark: 128n,
    };
    w.logs.length = 0;
    monitor.emit('lowWater', { pool: set.poolName, status: old, lowWaterMark: 204n, freeDataBlocks: 204n });
    await set.autoextender.check('check'); // whatever the event queued has finished
    assert.equal(w.logs.filter((l) => l.includes('ignoring')), [`info: autoextend: ignoring lowWater read from a ${64n * MiB}-byte pool: the data file was grown to ${96n * MiB} bytes since`]);
    assert.equal([dataSize(w), set.autoextender.status().extensions], [96n * MiB, 1]);
  } finally {
    await opened?.shutdown().catch(() => undefined);
    w.fake.dispose();
    rmSync(w.tmp, { recursive: true, force: true });
  }
});

stale.run();
