// SPDX-License-Identifier: MIT
// The devmapper:deviceset channel (src/deviceset/diagnostics.ts): the exact steps of addDevice and
// deleteDevice on the FakeKernel, their hashes and codes; a failed step publishes its code;
// nothing is published once the subscriber is gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICESET_CHANNEL, DeviceSet, type DeviceSetChannelMessage } from '../../../src/deviceset/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { hashOfNodePath, traceTools } from '../../../src/deviceset/diagnostics.js';

const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];

async function withSet(fn: (ds: DeviceSet, fake: FakeKernel) => Promise<void>, options: string[] = OPTIONS): Promise<void> {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'ds-channel-'));
  try {
    const ds = await DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), options, log: () => {} });
    try {
      await fn(ds, fake);
    } finally {
      await ds.shutdown();
    }
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
}

function recording(): { seen: DeviceSetChannelMessage[]; stop: () => void } {
  const seen: DeviceSetChannelMessage[] = [];
  const on = (m: unknown): void => void seen.push(m as DeviceSetChannelMessage);
  subscribe(DEVICESET_CHANNEL, on);
  return { seen, stop: () => unsubscribe(DEVICESET_CHANNEL, on) };
}

const steps = (seen: readonly DeviceSetChannelMessage[]): unknown[] =>
  seen.map((m) => (m.kind === 'step' ? [m.step, m.hash, m.code] : [m.kind, m.step, m.hash, m.done, m.total]));

test('addDevice then deleteDevice: every step in order, with its hash and a null code', async () => {
  await withSet(async (ds) => {
    const r = recording();
    try {
      await ds.addDevice('a', '');
      const add = steps(r.seen);
      r.seen.length = 0;
      await ds.deleteDevice('a');
      const del = steps(r.seen);
      assert.equal(add, [
        ['journal-intent', 'a', null],
        ['create-snap', 'a', null],
        ['set-transaction-id', 'a', null],
        ['journal-record', 'a', null],
      ]);
      // dm.blkdiscard (on by default) activates the device to discard it; with deferred deletion on
      // (the fake's kernel supports it) the delete first tries a plain remove (removeUnlessBusy),
      // then deactivates, which finds nothing left to remove.
      assert.equal(del, [
        ['activate', 'a', null],
        ['progress', 'discard', 'a', 0, 1],
        ['progress', 'discard', 'a', 1, 1],
        ['discard', 'a', null],
        ['deactivate', 'a', null],
        ['deactivate', 'a', null],
        ['journal-intent', 'a', null],
        ['delete-thin', 'a', null],
        ['set-transaction-id', 'a', null],
        ['journal-remove', 'a', null],
      ]);
    } finally {
      r.stop();
    }
    assert.ok(r.seen.every((m) => m.kind === 'progress' || m.durationMs >= 0));
  });
});

test('a failed step publishes its error code; nothing is published after unsubscribe', async () => {
  await withSet(async (ds, fake) => {
    await ds.addDevice('a', '');
    const r = recording();
    try {
      await ds.mountDevice('a', '/nonexistent-mount-point-for-the-channel-test').catch(() => undefined);
    } finally {
      r.stop();
    }
    const mount = r.seen.filter((m) => m.kind === 'step' && m.step === 'mount');
    assert.is(mount.length, 1);
    assert.is.not((mount[0] as { code: string | null }).code, null);
    const before = r.seen.length;
    const calls = fake.calls.length;
    await ds.deleteDevice('a');
    assert.ok(fake.calls.length > calls, 'the delete reached the kernel');
    assert.is(r.seen.length, before, 'and published nothing');
  });
});

test('traceTools: every method passes through (a class instance too, and a member FsTools may gain later); an absent probe stays absent', async () => {
  class Tools {
    readonly calls: string[] = [];
    async mkfs(): Promise<void> {
      this.calls.push('mkfs');
    }
    async uuid(): Promise<string> {
      return 'u';
    }
    async grow(): Promise<void> {}
    async later(x: number): Promise<number> {
      return x + 1;
    }
  }
  const tools = new Tools();
  const traced = traceTools(tools, hashOfNodePath('/dev/mapper/p-base')) as unknown as Tools & { probe?: unknown };
  await traced.mkfs();
  assert.equal(tools.calls, ['mkfs'], 'called with the original as this');
  assert.is(await traced.later(1), 2);
  assert.is('probe' in traced, false);
  assert.equal(['/dev/mapper/p-base', '/dev/mapper/p-abc', '/dev/loop0'].map(hashOfNodePath('/dev/mapper/p-base')), ['', 'abc', null]);
});

test.run();
