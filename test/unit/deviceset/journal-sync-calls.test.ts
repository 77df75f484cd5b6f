// SPDX-License-Identifier: MIT
// Issue #17 §2: the journal's fsynced record writes (metadata.ts, through fs/promises) no longer
// block the event loop. On the FakeKernel, addDevice and deleteDevice (one at a time, and a group
// commit of several at once) are recorded at node:fs's synchronous calls: there must be none.
// Before, every operation wrote its intent and its `ready` record (or unlink) with openSync,
// writeSync, fsyncSync, closeSync, renameSync and a directory fsync, all on the main thread.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { DeviceSet } from '../../../src/deviceset/index.js';
import { fakeDeviceSetInit } from '../../../src/testing/index.js';
import { withRecordedFake } from '../../helpers/sync-calls.js';

const test = suite('journal: addDevice and deleteDevice make no synchronous file call');
const DEV = '/fakedev';
const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.blocksize=64K', 'dm.min_free_space=0%'];

test('addDevice, deleteDevice, and a batch of each: no node:fs *Sync call; the records went through fs/promises', () =>
  withRecordedFake(DEV, async ({ kernel, rec, root }) => {
    const set = await DeviceSet.init(root, { ...fakeDeviceSetInit(kernel, DEV), options: OPTIONS, deferredDeleteIntervalMs: 0, log: () => {} });
    rec.on = true;
    await set.addDevice('a', '');
    await set.addDevice('b', 'a');
    await Promise.all(['c0', 'c1', 'c2'].map((h) => set.addDevice(h, 'b')));
    await set.deleteDevice('b');
    await Promise.all(['c0', 'c1', 'c2'].map((h) => set.deleteDevice(h)));
    await set.deleteDevice('a');
    rec.on = false;
    assert.equal(rec.fs, [], 'no synchronous node:fs call');
    const meta = join(root, 'metadata');
    const renamed = rec.asyncFs.filter((c) => c.startsWith('rename ')).length;
    const unlinked = rec.asyncFs.filter((c) => c.startsWith(`unlink ${meta}/`)).map((c) => c.slice(`unlink ${meta}/`.length));
    // Each create: intent + ready (2 renames); each delete: intent (1 rename) + unlink.
    assert.is(renamed, 5 * 2 + 5, 'the intent and ready records, renamed through fs/promises');
    assert.equal(unlinked.sort(), ['a', 'b', 'c0', 'c1', 'c2']);
    assert.equal(set.list(), []);
    await set.shutdown();
  }));

test.run();
