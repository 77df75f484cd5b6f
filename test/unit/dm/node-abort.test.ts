// SPDX-License-Identifier: MIT
// deviceRemove's `signal` after the remove succeeded: it cuts the wait for udev short and the node
// is removed directly (libdm's fallback), instead of polling for the whole udevTimeoutMs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DmControl, linearTarget } from '../../../src/dm/index.js';
import { FakeDm } from './fake-dm.js';

const lin = linearTarget(0n, 2048n, { device: { major: 7, minor: 0 }, offset: 0n });

test('udev policy: an abort during the node wait after a remove ends it; the node is removed directly', async () => {
  const k = new FakeDm();
  k.fs.entries.set('/run', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev/control', { kind: 'file', mode: 0o600 });
  let now = 0;
  let polls = 0;
  let onPoll = (): void => {
    // "udev" makes the node of the create on the first poll, then never acts again.
    k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
    k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
  };
  const dm = new DmControl({
    syscalls: k.syscalls(),
    udevTimeoutMs: 60_000,
    clock: () => now,
    sleep: async (ms) => {
      now += ms;
      polls++;
      onPoll();
    },
  });
  await dm.createDevice('a', [lin]);
  const ac = new AbortController();
  polls = 0;
  onPoll = () => {
    if (polls === 2) ac.abort();
  };
  const r = await dm.deviceRemove('a', { signal: ac.signal });
  assert.equal(r, { deferred: false, attempts: 1 });
  assert.is(polls, 2, 'two polls, then the abort ended the wait (60 s of polls without it)');
  assert.not.ok(k.fs.entries.has('/dev/mapper/a'), 'the node was removed directly');
});

test.run();
