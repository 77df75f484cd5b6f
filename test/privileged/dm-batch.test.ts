// SPDX-License-Identifier: MIT
// The opt-in batched path (DmControlOptions.batch, src/ioctl/batch-worker.ts) on the real kernel:
// create+load+resume as one BatchWorker batch gives the device dmsetup sees, and a thin snapshot
// of an active origin (suspend → create_snap → resume in one batch) copies the origin's data and
// leaves the origin running; a taken snapshot id fails the batch at create_snap with EEXIST
// mapped to ThinIdInUseError, and the origin is resumed. A single request that can block
// (create_thin, a committing pool status) goes to the worker as a batch of one. The batches are
// counted through a seam wrapper, so the test fails if the per-call path ran instead.
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, writeSync } from 'node:fs';
import { DmControl, zeroTarget } from '../../src/dm/index.js';
import { realSyscalls, type IoctlBatcher, type Syscalls } from '../../src/ioctl/index.js';
import { ThinDevice, ThinIdInUseError, ThinPool } from '../../src/thin/index.js';
import { makeLoop, run } from '../helpers/loop-files.js';
import { privilegedSuite, testName, withSweep } from '../helpers/privileged.js';
import { rejects } from '../helpers/rejects.js';

const test = withSweep(privilegedSuite('dm batched path (DmControlOptions.batch)'));
const MiB = 1024 * 1024;
/** systemd's libudev test for a running udev (DmControl's default udevControlPath). */
const UDEV = existsSync('/run/udev/control');

/** The real syscalls, with every batch's request names recorded. */
function counted(): { sys: Syscalls; batches: string[][] } {
  const real = realSyscalls();
  const batches: string[][] = [];
  const sys: Syscalls = Object.create(real) as Syscalls;
  (sys as { openBatch?: () => IoctlBatcher }).openBatch = () => {
    const b = real.openBatch!();
    return new Proxy(b, {
      get(t, p) {
        if (p === 'run') return (steps: readonly { requestName: string }[]) => {
          batches.push(steps.map((s) => s.requestName));
          return t.run(steps as never);
        };
        const v = Reflect.get(t, p, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  };
  return { sys, batches };
}

function sha(dev: string, bytes: number): string {
  const fd = openSync(dev, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    readSync(fd, buf, 0, bytes, 0);
    return createHash('sha256').update(buf).digest('hex');
  } finally {
    closeSync(fd);
  }
}

test('createDevice in one batch: the table dmsetup reads back, the device live', async () => {
  const { sys, batches } = counted();
  const dm = new DmControl({ syscalls: sys, batch: true });
  const name = testName('batch-zero');
  try {
    await dm.createDevice(name, [zeroTarget(0n, 2048n)]);
    if (UDEV) {
      // The 'udev' node policy: the first resume waits for udev's node first (src/dm/control.ts
      // createDevice), so create+load+resume is not one batch there; the load and the resume,
      // which can block, each go to the worker alone (the create is synchronous).
      console.log('  [dm-batch] udev runs: createDevice takes the per-call path (its first resume waits for udev)');
      assert.equal(batches, [['DM_TABLE_LOAD'], ['DM_DEV_SUSPEND']]);
    } else assert.equal(batches, [['DM_DEV_CREATE', 'DM_TABLE_LOAD', 'DM_DEV_SUSPEND']]);
    assert.is(run('dmsetup', ['table', name]), '0 2048 zero \n');
    assert.match(run('dmsetup', ['info', '-c', '--noheadings', '-o', 'attr', name]), /^L--w/);
  } finally {
    await dm.deviceRemove(name).catch(() => undefined);
    dm.close();
  }
});

test('snapshot of an active origin in one batch; a taken id fails at create_snap and the origin runs on', async () => {
  const { sys, batches } = counted();
  const dm = new DmControl({ syscalls: sys, batch: true });
  const meta = makeLoop('batch-meta', 8 * MiB);
  const data = makeLoop('batch-data', 64 * MiB);
  const names: string[] = [];
  try {
    const pool = await ThinPool.create(dm, { name: testName('batch-pool'), metadataDev: meta.dev, dataDev: data.dev, dataBlockSize: 128, lowWaterMark: 0, metadata: 'new', zeroMetadata: true });
    names.push(pool.name);
    const origin = await ThinDevice.create(pool, 1);
    const originName = testName('batch-origin');
    await origin.activate(originName, BigInt((16 * MiB) / 512));
    names.unshift(originName);
    const payload = randomBytes(MiB);
    const fd = openSync(origin.path as string, 'r+');
    writeSync(fd, payload, 0, payload.length, 0);
    closeSync(fd);
    batches.length = 0;
    const snap = await origin.snapshot(2);
    assert.is(snap.id, 2);
    assert.equal(batches, [['DM_DEV_SUSPEND', 'DM_TARGET_MSG', 'DM_DEV_SUSPEND']]);
    assert.match(run('dmsetup', ['info', '-c', '--noheadings', '-o', 'attr', originName]), /^L--w/, 'origin resumed');
    const snapName = testName('batch-snap');
    await snap.activate(snapName, BigInt((16 * MiB) / 512));
    names.unshift(snapName);
    assert.is(sha(snap.path as string, MiB), createHash('sha256').update(payload).digest('hex'));
    batches.length = 0;
    await rejects(origin.snapshot(2), ThinIdInUseError);
    // The batch stops at create_snap; the origin's resume then goes alone, a batch of one.
    assert.equal(batches, [['DM_DEV_SUSPEND', 'DM_TARGET_MSG', 'DM_DEV_SUSPEND'], ['DM_DEV_SUSPEND']]);
    assert.match(run('dmsetup', ['info', '-c', '--noheadings', '-o', 'attr', originName]), /^L--w/, 'origin resumed after the failed batch');
    // A single request that can block goes to the worker alone: create_thin, its EEXIST mapped as
    // on the per-call path, and a pool status without DM_NOFLUSH_FLAG (pool_status() may commit).
    batches.length = 0;
    await ThinDevice.create(pool, 3);
    await rejects(ThinDevice.create(pool, 3), ThinIdInUseError);
    const st = await pool.status();
    assert.ok(batches.length >= 3 && batches.every((b) => b.length === 1), JSON.stringify(batches));
    assert.equal(batches.filter((b) => b[0] === 'DM_TARGET_MSG').length, 2, JSON.stringify(batches));
    assert.equal(batches[batches.length - 1], ['DM_TABLE_STATUS']);
    const words = run('dmsetup', ['status', pool.name]).trim().split(/\s+/);
    assert.is(st.kind === 'working' ? `${st.transactionId} ${st.usedDataBlocks}/${st.totalDataBlocks}` : st.kind, `${words[3]} ${words[5]}`);
  } finally {
    for (const n of names) await dm.deviceRemove(n).catch(() => undefined);
    dm.close();
    run('losetup', ['-d', meta.dev]);
    run('losetup', ['-d', data.dev]);
  }
});

test.run();
