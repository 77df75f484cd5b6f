// SPDX-License-Identifier: MIT
// discardBlockDevice: BLKDISCARD of [0, length) on an O_RDWR|O_CLOEXEC fd, fsync, close (also on failure).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as fsc } from 'node:fs';
import { BLKDISCARD, O_CLOEXEC, type IoctlArg, type Syscalls } from '../../../src/ioctl/index.js';
import { discardBlockDevice } from '../../../src/loop/index.js';
import { rejects } from '../../helpers/rejects.js';

function recorder(failIoctl?: Error): { sys: Syscalls; calls: string[] } {
  const calls: string[] = [];
  const sys = {
    open: (path: string, flags: number) => (calls.push(`open ${path} ${flags === (fsc.O_RDWR | O_CLOEXEC)}`), 7),
    ioctlAsync: async (fd: number, request: number, arg: IoctlArg, name: string) => {
      const b = arg as Buffer;
      calls.push(`ioctl ${fd} ${request === BLKDISCARD} ${name} ${b.readBigUInt64LE(0)} ${b.readBigUInt64LE(8)}`);
      if (failIoctl) throw failIoctl;
      return 0;
    },
    fsync: (fd: number) => void calls.push(`fsync ${fd}`),
    close: (fd: number) => void calls.push(`close ${fd}`),
  };
  return { sys: sys as unknown as Syscalls, calls };
}

test('discardBlockDevice: open O_RDWR|O_CLOEXEC, BLKDISCARD {0, length}, fsync, close', async () => {
  const { sys, calls } = recorder();
  await discardBlockDevice(sys, '/dev/mapper/x', 10n * 1024n * 1024n);
  assert.equal(calls, ['open /dev/mapper/x true', 'ioctl 7 true BLKDISCARD 0 10485760', 'fsync 7', 'close 7']);
});

test('discardBlockDevice: a failed BLKDISCARD propagates and the fd is still closed', async () => {
  const boom = new Error('EOPNOTSUPP');
  const { sys, calls } = recorder(boom);
  const err = await rejects(discardBlockDevice(sys, '/dev/mapper/x', 4096n), Error);
  assert.is(err, boom);
  assert.equal(calls, ['open /dev/mapper/x true', 'ioctl 7 true BLKDISCARD 0 4096', 'close 7']);
});

test.run();
