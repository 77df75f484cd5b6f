// SPDX-License-Identifier: MIT
// Issue #17 §2: DeviceSet.init makes no synchronous node:fs call on the event loop. On the
// FakeKernel, the first use of a root (directories, loopback files, pool created, base device)
// and the reopen of a healthy set (the pool adopted, its loop devices found back) are recorded at
// node:fs's synchronous calls; so are status, mountDevice (with the default /dev/kmsg cursor, a
// failed mount reading it) and unmountDevice. Before, init checked the root and its directories
// with lstatSync/mkdirSync/realpathSync, took the root lock with fstatSync/ftruncateSync/writeSync,
// and read the loopback files with statSync/lstatSync/openSync/readSync; every mount opened
// /dev/kmsg with openSync and skipped the records in it with one readSync each.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceSet, MountFailedError } from '../../../src/deviceset/index.js';
import { fakeDeviceSetInit } from '../../../src/testing/index.js';
import { withRecordedFake } from '../../helpers/sync-calls.js';

const test = suite('DeviceSet.init, mountDevice, unmountDevice: no synchronous file call');
const DEV = '/fakedev';
const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.blocksize=64K', 'dm.min_free_space=0%'];

test('init: first use, reopen of the live pool after a death, reopen after a shutdown: no node:fs *Sync call', () =>
  withRecordedFake(DEV, async ({ fake, kernel, rec, root }) => {
    const lo = join(root, 'devicemapper');
    const initRecorded = async (what: string): Promise<DeviceSet> => {
      rec.fs.length = 0;
      rec.asyncFs.length = 0;
      rec.on = true;
      // A fresh DmControl and LoopControl each time: a death closes the old ones' fds.
      const set = await DeviceSet.init(root, { ...fakeDeviceSetInit(kernel, DEV), options: OPTIONS, deferredDeleteIntervalMs: 0, log: () => {} });
      rec.on = false;
      assert.equal(rec.fs, [], what);
      return set;
    };
    const first = await initRecorded('first use');
    // The loopback metadata file's head, read to classify it, went through fs/promises (O_NOFOLLOW).
    assert.ok(rec.asyncFs.includes(`open ${lo}/metadata`), 'the metadata head read');
    assert.ok(rec.asyncFs.includes(`mkdir ${lo}`) && rec.asyncFs.includes(`mkdir ${join(root, 'metadata')}`), 'the directories made');
    await first.addDevice('a', '');
    fake.revive(); // the process dies: its fds (the lock's) close, the pool stays live
    const adopted = await initRecorded('reopen of the live pool');
    // Adopted: the backing files looked at (lstat, for their presence and the pool identity), not created.
    // The data file: present (pool-setup), its size (ensureSparseFile's grow check), its dev/ino (the identity).
    assert.is(rec.asyncFs.filter((c) => c === `lstat ${lo}/data`).length, 3, 'the data file looked at three times');
    assert.not.ok(rec.asyncFs.includes(`mkdir ${lo}`), 'adopted, not created: devicemapper/ not made');
    assert.equal(adopted.list(), ['a']);
    await adopted.shutdown();
    const reopened = await initRecorded('reopen after a shutdown');
    assert.equal(reopened.list(), ['a']);
    await reopened.shutdown();
  }));

test('status: no node:fs *Sync call (udev\'s control socket looked for through fs/promises)', () =>
  withRecordedFake(DEV, async ({ kernel, rec, root }) => {
    const set = await DeviceSet.init(root, { ...fakeDeviceSetInit(kernel, DEV), options: OPTIONS, deferredDeleteIntervalMs: 0, log: () => {} });
    rec.on = true;
    const st = await set.status();
    rec.on = false;
    assert.equal(rec.fs, []);
    assert.is(st.udevSyncSupported, existsSync('/run/udev/control'));
    await set.shutdown();
  }));

test('mountDevice (with the default /dev/kmsg cursor, a failed mount reading it) and unmountDevice: no node:fs *Sync call', () =>
  withRecordedFake(DEV, async ({ fake, kernel, rec, root }) => {
    // Not fakeDeviceSetInit's empty kernel log: the DeviceSet's default opener, on the host's real
    // /dev/kmsg (EPERM for a non-root user under dmesg_restrict: then it is only the open). Before,
    // it made an openSync of /dev/kmsg and one readSync per record in the log at every mount.
    const { kernelLog: _none, ...init } = fakeDeviceSetInit(kernel, DEV);
    const set = await DeviceSet.init(root, { ...init, options: OPTIONS, deferredDeleteIntervalMs: 0, log: () => {} });
    await set.addDevice('a', '');
    const mnt = join(root, '..', 'mnt-a');
    mkdirSync(mnt);
    rec.asyncFs.length = 0;
    rec.on = true;
    fake.failNext({ syscall: 'mount', errno: 'EINVAL' });
    const failed = await set.mountDevice('a', mnt).then(() => undefined, (e: unknown) => e);
    await set.mountDevice('a', mnt);
    await set.unmountDevice('a', mnt);
    rec.on = false;
    assert.instance(failed, MountFailedError);
    assert.equal(rec.fs, []);
    assert.equal(rec.asyncFs.filter((c) => c.includes('kmsg')), ['open /dev/kmsg', 'open /dev/kmsg'], 'the default cursor opened through fs/promises at each mount');
    await set.shutdown();
  }));

test.run();
