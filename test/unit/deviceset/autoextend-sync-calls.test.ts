// SPDX-License-Identifier: MIT
// Issue #20, the event-loop lag: the grow step that answers a pool event runs in the service's own
// process, beside its other work, so it must not block the event loop on a call that can wait in
// the kernel. On the FakeKernel, one grow (Autoextender.check → resizePool's steps → the record)
// is recorded at the two seams it can block the thread through: the Syscalls seam (sync `ioctl`
// vs `ioctlAsync`) and node:fs's synchronous calls. Allowed synchronously: the dm ioctls that
// answer from memory (src/dm/request.ts usesWorker(): DEV_STATUS, ARM_POLL, noflush and table
// TABLE_STATUS), loop's LOOP_SET_CAPACITY (drivers/block/loop.c loop_set_capacity(): the
// backing file's i_size, set_capacity_and_notify(), no I/O) and BLKGETSIZE64 (block/ioctl.c
// blkdev_ioctl(): bdev_nr_bytes()) and the open/fstat/stat/close of device nodes around them.
// Nothing else: no statSync of the backing file, no synchronous table load, suspend or resume,
// and no synchronous file call at all: the deviceset record's atomic write (metadata.ts
// writeAtomic) is asynchronous since issue #17 §2 (the store lands writes of one record in call
// order, so an asynchronous write can no longer land after, and undo, a later update of it).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { join } from 'node:path';
import { DeviceSet } from '../../../src/deviceset/index.js';
import type { AutoextendExtension } from '../../../src/deviceset/autoextend.js';
import { fakeDeviceSetInit } from '../../../src/testing/index.js';
import { withRecordedFake } from '../../helpers/sync-calls.js';

const test = suite('autoextend: the grow step blocks the event loop on nothing that can wait');
const MiB = 1n << 20n;
const DEV = '/fakedev';
const AUTO = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=128M', 'dm.blocksize=64K', 'dm.min_free_space=0%', 'dm.autoextend_threshold=80%', 'dm.autoextend_percent=50%'];

/** Synchronous ioctls that return from memory: the dm ones usesWorker() keeps synchronous, LOOP_SET_CAPACITY, BLKGETSIZE64. */
const QUICK_IOCTLS = new Set(['DM_DEV_STATUS', 'DM_DEV_ARM_POLL', 'DM_TABLE_STATUS', 'DM_LIST_DEVICES', 'DM_VERSION', 'LOOP_SET_CAPACITY', 'BLKGETSIZE64']);
/** Other synchronous Syscalls methods the grow may use: on device nodes, no I/O. */
const QUICK_METHODS = new Set(['open', 'close', 'fstat', 'stat', 'lstat']);

test('one grow: blocking ioctls on the worker, no synchronous file call (the record write is asynchronous)', () =>
  withRecordedFake(DEV, async ({ fake, kernel, rec, root }) => {
    // watch: false: the grow runs when the test says (Autoextender.check, what an event does).
    const set = await DeviceSet.init(root, { ...fakeDeviceSetInit(kernel, DEV), options: AUTO, autoextend: { watch: false }, log: () => {} });
    await set.addDevice('a', '');
    await set.activateDevice('a');
    // 820 of 1024 blocks: at the threshold (80%).
    fake.writeThin(set.deviceInfo('a').dmName, 0, 820);
    const grown = once(set.autoextender, 'extended') as Promise<[AutoextendExtension]>;
    rec.on = true;
    await set.autoextender.check('lowWater');
    rec.on = false;
    const [ext] = await grown;
    assert.equal([ext.from, ext.to], [64n * MiB, 96n * MiB], 'it grew');

    const sync = rec.syscalls.filter((c) => !c.includes('Async'));
    const unexpected = sync.filter((c) => {
      const [method, request] = c.split(' ');
      return method === 'ioctl' ? !QUICK_IOCTLS.has(request!) : !QUICK_METHODS.has(method!);
    });
    assert.equal(unexpected, [], 'no synchronous call that can wait in the kernel');
    // The data device's size, read by the FakeKernel's BlockDevices.inspect through
    // LoopControl.sizeOf (asynchronous since issue #17 §2; realBlockDevices reads sysfs with
    // fs/promises), then the reload: the table load and the resume that swaps it in (dm-ioctl.c
    // do_resume() suspends the device itself when an inactive table is there), each on the worker.
    assert.equal(rec.syscalls.filter((c) => c.startsWith('ioctlAsync')), ['ioctlAsync BLKGETSIZE64', 'ioctlAsync DM_TABLE_LOAD', 'ioctlAsync DM_DEV_SUSPEND']);
    assert.ok(sync.includes('ioctl LOOP_SET_CAPACITY'), 'the loop device was refreshed');

    // node:fs, synchronously: nothing. The deviceset record's atomic write (metadata.ts
    // writeAtomic) goes through fs/promises; it was the one synchronous write before (8 calls).
    assert.equal(rec.fs, []);
    assert.ok(rec.asyncFs.some((c) => c.startsWith(`rename ${join(root, 'metadata', '.tmp-deviceset-metadata-')}`)), 'the record was written, asynchronously');
    await set.shutdown();
  }));

test.run();
