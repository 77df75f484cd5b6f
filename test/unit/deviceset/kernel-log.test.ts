// SPDX-License-Identifier: MIT
// The /dev/kmsg record parser, the cursor's positioning (one lseek, reading only as a fallback), the
// tail selection, and a failed mount carrying the kernel's words.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, fstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, MountFailedError, kernelLogTail, openKernelLog, parseKmsgRecord, type KmsgRecord } from '../../../src/deviceset/index.js';
import { IoctlError, SEEK_END } from '../../../src/ioctl/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';

test('parseKmsgRecord: fields, facility masked off, continuation lines dropped, \\x escapes undone', () => {
  const r = parseKmsgRecord('3,1234,56789012,-;EXT4-fs (dm-3): Unrecognized mount option "bogus" or missing value\n SUBSYSTEM=block\n DEVICE=b253:3\n');
  assert.equal(r, { level: 3, seq: 1234n, usec: 56789012n, text: 'EXT4-fs (dm-3): Unrecognized mount option "bogus" or missing value' });
  // prio 30 = facility 3 (daemon) << 3 | level 6; extra comma fields (caller id) are allowed
  assert.equal(parseKmsgRecord('30,7,100,c,caller=T1;tab\\x09here'), { level: 6, seq: 7n, usec: 100n, text: 'tab\there' });
  assert.is(parseKmsgRecord('no semicolon'), undefined);
  assert.is(parseKmsgRecord('3,x,1,-;text'), undefined);
  assert.is(parseKmsgRecord('3,1;too few fields'), undefined);
});

const rec = (usec: number, text: string): KmsgRecord => ({ level: 3, seq: BigInt(usec), usec: BigInt(usec), text });

test('kernelLogTail: the records naming the device, else the last ones; dm-1 does not match dm-12', () => {
  const records = [rec(1, 'EXT4-fs (dm-12): mounted'), rec(2, 'EXT4-fs (dm-1): bad superblock'), rec(3, 'loop0: detected capacity change'), rec(4, 'XFS (dm-1): Filesystem has duplicate UUID')];
  assert.equal(kernelLogTail(records, 'dm-1'), ['EXT4-fs (dm-1): bad superblock', 'XFS (dm-1): Filesystem has duplicate UUID']);
  assert.equal(kernelLogTail(records, 'dm-7', 2), ['loop0: detected capacity change', 'XFS (dm-1): Filesystem has duplicate UUID']);
  assert.equal(kernelLogTail([], 'dm-1'), []);
});

test('openKernelLog: an unreadable log gives null (the error message only loses its tail)', async () => {
  assert.is(await openKernelLog({ path: '/nonexistent/kmsg' }), null);
});

/** A temp file standing in for /dev/kmsg, holding `records`; removed after `body`. */
async function withLogFile(records: string, body: (log: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ds-kmsg-file-'));
  try {
    const log = join(dir, 'kmsg');
    writeFileSync(log, records);
    await body(log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BEFORE = '3,1,10,-;first before the cursor\n SUBSYSTEM=block\n3,2,11,-;second\n6,3,12,-;third\n';

test('openKernelLog: the cursor starts after what is in the log when it opens (the real lseek)', () =>
  withLogFile(BEFORE, async (log) => {
    const cursor = await openKernelLog({ path: log });
    assert.ok(cursor !== null);
    appendFileSync(log, '4,4,20,-;after the cursor\n');
    assert.equal(await cursor.read(), [{ level: 4, seq: 4n, usec: 20n, text: 'after the cursor' }]);
    assert.equal(await cursor.read(), []);
    await cursor.close();
    await cursor.close();
    assert.equal(await cursor.read(), []);
  }));

test('openKernelLog: positioned by ONE lseek(fd, 0, SEEK_END) of the opened log, no record read to get there', () =>
  withLogFile(BEFORE, async (log) => {
    const calls: string[] = [];
    // An lseek that records and does not move: whatever the opener read before returning would be
    // gone from the cursor. (Before, it read and dropped every record: one read(2) each.)
    const sys = {
      lseek: (fd: number, offset: bigint, whence: number): number => {
        calls.push(`lseek ${fstatSync(fd).ino === statSync(log).ino ? 'log' : fd} ${offset} ${whence}`);
        return 0;
      },
    };
    const cursor = await openKernelLog({ path: log, sys });
    assert.ok(cursor !== null);
    assert.equal(calls, [`lseek log 0 ${SEEK_END}`]);
    assert.equal(SEEK_END, 2);
    assert.equal(
      (await cursor.read()).map((r) => `${r.seq} ${r.text}`),
      ['1 first before the cursor', '2 second', '3 third'],
      'nothing was read before the cursor was handed out',
    );
    await cursor.close();
  }));

test('openKernelLog: where lseek fails (EINVAL) or the seam has none, the records there are are read and dropped', async () => {
  const failing = {
    lseek: (fd: number): number => {
      throw new IoctlError({ syscall: 'lseek', errno: 22, fd });
    },
  };
  for (const [what, sys] of [['lseek EINVAL', failing], ['no lseek', {}]] as const) {
    await withLogFile(BEFORE, async (log) => {
      const cursor = await openKernelLog({ path: log, sys });
      assert.ok(cursor !== null, what);
      appendFileSync(log, '4,4,20,-;after the cursor\n');
      assert.equal((await cursor.read()).map((r) => r.text), ['after the cursor'], what);
      await cursor.close();
    });
  }
});

test('a failed mount carries the kernel log lines about its dm device, from a cursor opened before the mount', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'ds-kmsg-'));
  const events: string[] = [];
  let minor = -1;
  try {
    const options = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
    const ds = await DeviceSet.init(root, {
      ...fakeDeviceSetInit(fake, '/fakedev'),
      options,
      log: () => {},
      kernelLog: async () => {
        events.push('open');
        return {
          read: async () => {
            events.push('read');
            // Read while the device is still active: the kernel would name it dm-<its minor>.
            minor = fake.devices().find((d) => d.name.endsWith('-c'))?.minor ?? -1;
            return [rec(1, `EXT4-fs (dm-${minor + 10}): someone else`), rec(2, `EXT4-fs (dm-${minor}): Unrecognized mount option "bogus" or missing value`)];
          },
          close: async () => void events.push('close'),
        };
      },
    });
    await ds.addDevice('c', '');
    const mnt = join(root, 'mnt');
    mkdirSync(mnt);
    fake.onCall((c) => {
      if (c.syscall === 'mount') events.push('mount');
    });
    fake.failNext({ syscall: 'mount', errno: 'EINVAL' });
    const err = await ds.mountDevice('c', mnt, { options: 'bogus' }).then(() => undefined, (e: unknown) => e);
    assert.instance(err, MountFailedError);
    const m = err as MountFailedError;
    assert.equal(events, ['open', 'mount', 'read', 'close'], 'cursor opened before the mount, read after it, closed');
    assert.ok(minor >= 0, 'the log was read while the device was active');
    assert.ok(!fake.devices().some((d) => d.name.endsWith('-c')), 'the device is deactivated again after the failed mount');
    assert.equal(m.kernelLog, [`EXT4-fs (dm-${minor}): Unrecognized mount option "bogus" or missing value`]);
    assert.match(m.message, /EINVAL: .*; kernel log: EXT4-fs \(dm-\d+\): Unrecognized mount option "bogus"/);
    // A successful mount closes its cursor without reading it.
    events.length = 0;
    await ds.mountDevice('c', mnt);
    assert.equal(events, ['open', 'mount', 'close']);
    await ds.unmountDevice('c', mnt);
    await ds.shutdown();
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
