// SPDX-License-Identifier: MIT
// resizePool's and deleteDevice's onProgress and AbortSignal on the FakeKernel: the exact event
// sequence (also on the devmapper:deviceset channel), and an abort that leaves nothing changed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICESET_CHANNEL, DeviceSet, OperationAbortedError, type DeviceSetChannelMessage, type ProgressEvent } from '../../../src/deviceset/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';

const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
const MiB = 1024 * 1024;

async function withSet(fn: (ds: DeviceSet, root: string) => Promise<void>): Promise<void> {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'ds-progress-'));
  try {
    const ds = await DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), options: OPTIONS, log: () => {} });
    try {
      await fn(ds, root);
    } finally {
      await ds.shutdown();
    }
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
}

const ev = (step: string, done: number, total: number): ProgressEvent => ({ step, done, total }) as ProgressEvent;

test('resizePool: onProgress gets the sparse-file stages inside the grow-data stages; the channel the same, then the step', async () => {
  await withSet(async (ds, root) => {
    const seen: ProgressEvent[] = [];
    const channel: DeviceSetChannelMessage[] = [];
    const on = (m: unknown): void => void channel.push(m as DeviceSetChannelMessage);
    subscribe(DEVICESET_CHANNEL, on);
    try {
      await ds.resizePool(128 * MiB, { onProgress: (e) => void seen.push(e) });
    } finally {
      unsubscribe(DEVICESET_CHANNEL, on);
    }
    const expected = [ev('grow-data', 0, 3), ev('sparse-file', 0, 3), ev('sparse-file', 1, 3), ev('sparse-file', 2, 3), ev('sparse-file', 3, 3), ev('grow-data', 1, 3), ev('grow-data', 2, 3), ev('grow-data', 3, 3)];
    assert.equal(seen, expected);
    assert.equal(
      channel.filter((m) => m.kind === 'progress'),
      expected.map((e) => ({ kind: 'progress', step: e.step, hash: null, done: e.done, total: e.total })),
    );
    assert.equal(channel.filter((m) => m.kind === 'step').map((m) => (m.kind === 'step' ? [m.step, m.hash, m.code] : [])), [
      ['pool-resize', null, null],
      ['grow-data', null, null],
    ]);
    assert.is(statSync(join(root, 'devicemapper', 'data')).size, 128 * MiB);
  });
});

test('resizePool: an abort while the data file grows shrinks it back; nothing else changes', async () => {
  await withSet(async (ds, root) => {
    const ac = new AbortController();
    const before = (await ds.status()).data.total;
    const err = await rejects(
      ds.resizePool(128 * MiB, { signal: ac.signal, onProgress: (e) => (e.step === 'sparse-file' && e.done === 2 ? ac.abort(new Error('enough')) : undefined) }),
      OperationAbortedError,
    );
    assert.is(err.code, 'EABORTED');
    assert.is((err.cause as Error).message, 'enough');
    assert.is(statSync(join(root, 'devicemapper', 'data')).size, 64 * MiB);
    assert.is((await ds.status()).data.total, before);
  });
});

test('deleteDevice: discard progress per 1 GiB chunk; an abort between chunks keeps the device', async () => {
  await withSet(async (ds) => {
    await ds.addDevice('big', '', { size: 2 * 1024 * MiB + MiB });
    const ac = new AbortController();
    const seen: ProgressEvent[] = [];
    await rejects(
      ds.deleteDevice('big', {
        signal: ac.signal,
        onProgress: (e) => {
          seen.push(e);
          if (e.done === 1) ac.abort();
        },
      }),
      OperationAbortedError,
    );
    assert.equal(seen, [ev('discard', 0, 3), ev('discard', 1, 3)]);
    assert.equal(ds.list(), ['big']);
    assert.is(ds.deviceInfo('big').state, 'ready');
    seen.length = 0;
    assert.is(await ds.deleteDevice('big', { onProgress: (e) => void seen.push(e) }), 'deleted');
    assert.equal(seen, [0, 1, 2, 3].map((d) => ev('discard', d, 3)));
    assert.equal(ds.list(), []);
  });
});

test.run();
