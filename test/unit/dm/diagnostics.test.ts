// SPDX-License-Identifier: MIT
// node:diagnostics_channel: DM_CHANNEL publishes every DmControl ioctl (FakeKernel included),
// IOCTL_CHANNEL every real ioctl(2); nothing is published once the subscriber is gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DM_CHANNEL, DmControl, linearTarget, type DmChannelMessage } from '../../../src/dm/index.js';
import { BLKGETSIZE64, IOCTL_CHANNEL, realSyscalls, type IoctlChannelMessage } from '../../../src/ioctl/index.js';
import { FakeDm } from './fake-dm.js';

const lin = linearTarget(0n, 2048n, { device: { major: 7, minor: 0 }, offset: 0n });

test('DM_CHANNEL: one message per dm ioctl, in order, with name, errno and code; none after unsubscribe', async () => {
  const k = new FakeDm();
  const dm = new DmControl({ syscalls: k.syscalls(), sleep: async () => {}, udevRecheckMs: 0 });
  const seen: DmChannelMessage[] = [];
  const onMessage = (m: unknown): void => void seen.push(m as DmChannelMessage);
  subscribe(DM_CHANNEL, onMessage);
  try {
    await dm.createDevice('a', [lin]);
    await dm.deviceInfo('missing').catch(() => undefined);
  } finally {
    unsubscribe(DM_CHANNEL, onMessage);
  }
  const calls = k.seen.length;
  assert.equal(
    seen.map((m) => [m.command, m.name, m.errno, m.code]),
    [
      ['DM_DEV_CREATE', 'a', 0, null],
      ['DM_TABLE_LOAD', 'a', 0, null],
      ['DM_DEV_SUSPEND', 'a', 0, null],
      ['DM_DEV_STATUS', 'missing', 6, 'EDEVICENOTFOUND'],
    ],
  );
  assert.ok(seen.every((m) => m.durationMs >= 0 && m.dev === null && m.uuid === ''));
  const published = seen.length;
  await dm.deviceRemove('a');
  assert.is(k.seen.length, calls + 1, 'the remove reached the kernel');
  assert.is(seen.length, published, 'and published nothing');
});

test('IOCTL_CHANNEL: the real syscalls publish request, fd, errno, sync and async', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ioctl-channel-'));
  const file = join(dir, 'f');
  writeFileSync(file, 'x');
  const fd = openSync(file, 'r');
  const seen: IoctlChannelMessage[] = [];
  const onMessage = (m: unknown): void => void seen.push(m as IoctlChannelMessage);
  subscribe(IOCTL_CHANNEL, onMessage);
  try {
    const sys = realSyscalls();
    // BLKGETSIZE64 on a regular file: the kernel answers ENOTTY (25), fs/ioctl.c → file_ioctl.
    assert.throws(() => sys.ioctl(fd, BLKGETSIZE64, Buffer.alloc(8), 'BLKGETSIZE64'));
    await sys.ioctlAsync(fd, BLKGETSIZE64, Buffer.alloc(8), 'BLKGETSIZE64').catch(() => undefined);
  } finally {
    unsubscribe(IOCTL_CHANNEL, onMessage);
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(
    seen.map((m) => [m.request, m.fd, m.async, m.errno]),
    [
      ['BLKGETSIZE64', fd, false, 25],
      ['BLKGETSIZE64', fd, true, 25],
    ],
  );
});

test.run();
