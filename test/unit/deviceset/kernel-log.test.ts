// SPDX-License-Identifier: MIT
// The /dev/kmsg record parser, the tail selection, and a failed mount carrying the kernel's words.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, MountFailedError, kernelLogTail, openKernelLog, parseKmsgRecord, type KmsgRecord } from '../../../src/deviceset/index.js';
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

test('openKernelLog: an unreadable log gives null (the error message only loses its tail)', () => {
  assert.is(openKernelLog('/nonexistent/kmsg'), null);
});

test('openKernelLog: the cursor starts after what is in the log when it opens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ds-kmsg-file-'));
  try {
    const log = join(dir, 'kmsg');
    writeFileSync(log, '3,1,10,-;before the cursor\n');
    const cursor = openKernelLog(log);
    assert.ok(cursor !== null);
    appendFileSync(log, '4,2,20,-;after the cursor\n');
    assert.equal(cursor.read(), [{ level: 4, seq: 2n, usec: 20n, text: 'after the cursor' }]);
    assert.equal(cursor.read(), []);
    cursor.close();
    assert.equal(cursor.read(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
      kernelLog: () => {
        events.push('open');
        return {
          read: () => {
            events.push('read');
            // Read while the device is still active: the kernel would name it dm-<its minor>.
            minor = fake.devices().find((d) => d.name.endsWith('-c'))?.minor ?? -1;
            return [rec(1, `EXT4-fs (dm-${minor + 10}): someone else`), rec(2, `EXT4-fs (dm-${minor}): Unrecognized mount option "bogus" or missing value`)];
          },
          close: () => void events.push('close'),
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
