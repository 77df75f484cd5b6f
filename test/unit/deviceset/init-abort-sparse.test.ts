// SPDX-License-Identifier: MIT
// Issue #17 §2: DeviceSet.init honours its AbortSignal while it makes the loopback files (the
// sparse data and metadata files of a pool it creates), and an abort there leaves nothing
// half-made: the file being made is removed or shrunk back by ensureSparseFile, a file this init
// created before it is removed (its O_CREAT|O_EXCL creation is the proof), and a file that was
// there before the init stays as it was. The abort fires from the devmapper:deviceset channel's
// progress of the metadata file (stage 1 of 3: opened or created, not yet sized).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICESET_CHANNEL, DeviceSet, OperationAbortedError, type DeviceSetChannelMessage } from '../../../src/deviceset/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';

const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
const MiB = 1024 * 1024;
const DEV = '/fakedev';

/** Runs `init` with a signal that fires when the metadata file's sparse-file progress reaches stage 1. */
async function initAbortedAtMetadataFile(fake: FakeKernel, root: string): Promise<{ err: OperationAbortedError; stages: string[] }> {
  const ac = new AbortController();
  const stages: string[] = [];
  const on = (m: unknown): void => {
    const msg = m as DeviceSetChannelMessage;
    if (msg.kind !== 'progress' || msg.step !== 'sparse-file') return;
    stages.push(`${msg.done}/${msg.total}`);
    // The data file's four stages (0..3), then the metadata file's 0 and 1.
    if (stages.length === 6) ac.abort(new Error('stop'));
  };
  subscribe(DEVICESET_CHANNEL, on);
  try {
    const err = await rejects(DeviceSet.init(root, { ...fakeDeviceSetInit(fake, DEV), options: OPTIONS, signal: ac.signal, log: () => {} }), OperationAbortedError);
    return { err, stages };
  } finally {
    unsubscribe(DEVICESET_CHANNEL, on);
  }
}

async function withRoot(fn: (fake: FakeKernel, root: string) => Promise<void>): Promise<void> {
  const fake = new FakeKernel({ sysfs: true, devDir: DEV });
  const tmp = mkdtempSync(join(tmpdir(), 'ds-init-abort-'));
  try {
    await fn(fake, join(tmp, 'root'));
  } finally {
    fake.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

test('an abort while the metadata file is made removes it and the data file this init created; no loop, no pool', async () => {
  await withRoot(async (fake, root) => {
    const { err, stages } = await initAbortedAtMetadataFile(fake, root);
    assert.equal(stages, ['0/3', '1/3', '2/3', '3/3', '0/3', '1/3'], 'aborted inside the metadata file, after the data file was made');
    assert.is(err.code, 'EABORTED');
    assert.is(err.operation, 'DeviceSet.init');
    assert.is((err.cause as Error).message, 'stop');
    assert.is(existsSync(join(root, 'devicemapper', 'metadata')), false, 'the file being made is removed');
    assert.is(existsSync(join(root, 'devicemapper', 'data')), false, 'the data file this init created is removed');
    assert.equal(fake.loops().filter((l) => l.bound), [], 'no loop device bound');
    assert.equal(fake.devices(), [], 'no dm device');
    // The lock is released and nothing is in the way: the next init makes the pool.
    const ds = await DeviceSet.init(root, { ...fakeDeviceSetInit(fake, DEV), options: OPTIONS, log: () => {} });
    assert.is(statSync(join(root, 'devicemapper', 'data')).size, 64 * MiB);
    await ds.shutdown();
  });
});

test('a data file that was there before the init stays, content and size, when the abort hits the metadata file', async () => {
  await withRoot(async (fake, root) => {
    const loopDir = join(root, 'devicemapper');
    mkdirSync(loopDir, { recursive: true, mode: 0o700 });
    const data = join(loopDir, 'data');
    const marker = Buffer.from('not made by this init');
    writeFileSync(data, marker, { mode: 0o600 });
    const { stages } = await initAbortedAtMetadataFile(fake, root);
    assert.equal(stages, ['0/3', '1/3', '2/3', '3/3', '0/3', '1/3']);
    assert.is(existsSync(join(loopDir, 'metadata')), false, 'the metadata file this init began is removed');
    assert.ok(existsSync(data), 'the data file it did not create is kept');
    // Grown (a whole, fsynced step of this init, the one the next init would take again), not removed.
    assert.is(statSync(data).size, 64 * MiB);
    assert.equal(readFileSync(data).subarray(0, marker.length), marker);
    assert.equal(fake.devices(), []);
  });
});

test.run();
