// SPDX-License-Identifier: MIT
// How many durable writes the journal costs (issue 21 §3): counts, through the metadata store's
// fs seam, the file fsyncs, directory fsyncs, renames and unlinks of the base setup (first init),
// one addDevice (a snapshot) and one deleteDevice on the FakeKernel, and pins them exactly.
// Before issue 21 (transaction → record → message → commit → record → clear, each write
// temp+fsync+rename+directory fsync): base setup 8 file + 9 dir fsyncs, addDevice 3 + 4,
// deleteDevice 2 + 4. Now (intent record → message → commit → lazy record write, journal.ts):
// base setup 7 + 4, addDevice 2 + 1, deleteDevice 1 + 1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DmControl } from '../../../src/dm/index.js';
import { ThinPool } from '../../../src/thin/index.js';
import { MetadataStore, TRANSACTION_FILE } from '../../../src/deviceset/metadata.js';
import { RecordingFs } from './recording-fs.js';
import { DEV_DIR, World, checkInvariants, writeData, type DataMarks } from '../sweep/harness.js';

test('durable writes per operation: base setup, one addDevice (snapshot), one deleteDevice', async () => {
  const w = new World();
  try {
    const fs = new RecordingFs();
    const set = await w.init({ metadataFs: fs });
    const setup = fs.take();
    await set.addDevice('a', '');
    const add = fs.take();
    await set.deleteDevice('a');
    const del = fs.take();
    await set.shutdown();
    const costs = { setup, add, del };
    if (process.env['DEVMAPPER_FSYNC_REPORT']) console.log(JSON.stringify(costs));
    assert.equal(costs, {
      setup: { fileFsyncs: 7, dirFsyncs: 4, renames: 7, unlinks: 0 },
      add: { fileFsyncs: 2, dirFsyncs: 1, renames: 2, unlinks: 0 },
      del: { fileFsyncs: 1, dirFsyncs: 1, renames: 1, unlinks: 1 },
    });
  } finally {
    w.dispose();
  }
});

/** The pool of `w`'s set as a new process would open it (for an older devmapper's steps). */
async function openPool(w: World, name: string): Promise<{ pool: ThinPool; dm: DmControl }> {
  const dm = new DmControl({ devDir: DEV_DIR, syscalls: w.fake, sleep: async () => {}, udevRecheckMs: 0 });
  return { pool: await ThinPool.open(dm, name), dm };
}

test('a crash that loses the lazy write after an addDevice commit: the intent reads as ready', async () => {
  const w = new World();
  try {
    const fs = new RecordingFs();
    const set = await w.init({ metadataFs: fs });
    const marks: DataMarks = new Map();
    await set.addDevice('a', '');
    marks.set('a', await writeData(w, set, 'a', 0, 3));
    fs.take();
    fs.pending = [];
    await set.addDevice('b', 'a');
    const lost = fs.powerCut();
    assert.equal(lost, ['b']);
    assert.is(JSON.parse(readFileSync(join(w.root, 'metadata', 'b'), 'utf8')).state, 'creating');
    w.die(true);
    const again = await w.init();
    assert.equal(await checkInvariants(w, again, marks), []);
    assert.is(again.deviceInfo('b').deviceId, 3);
    assert.ok(w.logs.some((l) => l.includes('mark-ready b (rollforward-committed-create)')), w.logs.join('\n'));
    await again.shutdown();
  } finally {
    w.dispose();
  }
});

test('a crash that loses the lazy unlink after a deleteDevice commit: the intent reads as done', async () => {
  const w = new World();
  try {
    const fs = new RecordingFs();
    const set = await w.init({ metadataFs: fs });
    await set.addDevice('a', '');
    await set.addDevice('b', 'a');
    const idB = set.deviceInfo('b').deviceId;
    fs.pending = [];
    await set.deleteDevice('b');
    assert.equal(fs.powerCut(), ['b']);
    assert.is(JSON.parse(readFileSync(join(w.root, 'metadata', 'b'), 'utf8')).state, 'deleting');
    w.die(true);
    const again = await w.init();
    assert.equal(await checkInvariants(w, again, new Map()), []);
    assert.is(again.hasDevice('b'), false);
    assert.is(w.fake.pool(again.poolName)?.thins.has(idB), false);
    assert.ok(w.logs.some((l) => l.includes('drop record b (rollforward-committed-delete)')), w.logs.join('\n'));
    await again.shutdown();
  } finally {
    w.dispose();
  }
});

/**
 * Roots an older devmapper left mid-transaction (before issue 21: a `transaction-metadata`
 * record written first, then the device record, the message, the commit, the record, the clear):
 * the new code must still recover each window.
 */
test('old layout: a snapshot interrupted after its message, before the commit, is rolled back', async () => {
  const w = new World();
  try {
    const set = await w.init();
    await set.addDevice('a', '');
    const marks: DataMarks = new Map([['a', await writeData(w, set, 'a', 0, 3)]]);
    const poolName = set.poolName;
    const txid = w.fake.pool(poolName)!.transactionId;
    const originId = set.deviceInfo('a').deviceId;
    w.die();
    // What the older version wrote and did before dying at snapshot:before-commit.
    const store = new MetadataStore(w.root);
    const open = Number(txid) + 1;
    await store.saveTransaction({ openTransactionId: open, deviceHash: 'b', deviceId: 9, op: 'snapshot', originDeviceId: originId, size: 16 << 20 });
    await store.saveDevice({ hash: 'b', deviceId: 9, size: 16 << 20, transactionId: open, initialized: false, deleted: false, state: 'creating', createdAt: '2026-01-01T00:00:00.000Z' });
    const { pool, dm } = await openPool(w, poolName);
    await pool.createSnap(9, originId);
    dm.close();
    assert.is(w.fake.pool(poolName)!.thins.has(9), true);
    const again = await w.init();
    assert.equal(await checkInvariants(w, again, marks), []);
    assert.is(w.fake.pool(poolName)!.thins.has(9), false);
    assert.is(w.fake.pool(poolName)!.transactionId, txid);
    assert.is(again.hasDevice('b'), false);
    assert.is(existsSync(join(w.root, 'metadata', TRANSACTION_FILE)), false);
    await again.shutdown();
  } finally {
    w.dispose();
  }
});

test('old layout: a snapshot interrupted after its commit and ready record, before the clear, is kept', async () => {
  const w = new World();
  try {
    const set = await w.init();
    await set.addDevice('a', '');
    const marks: DataMarks = new Map([['a', await writeData(w, set, 'a', 0, 3)]]);
    const poolName = set.poolName;
    const txid = w.fake.pool(poolName)!.transactionId;
    const originId = set.deviceInfo('a').deviceId;
    w.die();
    const store = new MetadataStore(w.root);
    const open = Number(txid) + 1;
    await store.saveTransaction({ openTransactionId: open, deviceHash: 'b', deviceId: 9, op: 'snapshot', originDeviceId: originId, size: 16 << 20 });
    await store.saveDevice({ hash: 'b', deviceId: 9, size: 16 << 20, transactionId: open, initialized: false, deleted: false, state: 'creating', createdAt: '2026-01-01T00:00:00.000Z' });
    const { pool, dm } = await openPool(w, poolName);
    await pool.createSnap(9, originId);
    await pool.setTransactionId(txid, open);
    dm.close();
    await store.saveDevice({ hash: 'b', deviceId: 9, size: 16 << 20, transactionId: open, initialized: false, deleted: false, state: 'ready', createdAt: '2026-01-01T00:00:00.000Z' });
    const again = await w.init();
    assert.equal(await checkInvariants(w, again, marks), []);
    assert.is(again.deviceInfo('b').deviceId, 9);
    assert.is(existsSync(join(w.root, 'metadata', TRANSACTION_FILE)), false);
    await again.shutdown();
  } finally {
    w.dispose();
  }
});

test('old layout: a delete interrupted after its message, before the commit, is rolled forward', async () => {
  const w = new World();
  try {
    const set = await w.init();
    await set.addDevice('a', '');
    await set.addDevice('b', 'a');
    const marks: DataMarks = new Map([['a', await writeData(w, set, 'a', 0, 3)]]);
    const poolName = set.poolName;
    const txid = w.fake.pool(poolName)!.transactionId;
    const b = set.deviceInfo('b');
    const recB = (await new MetadataStore(w.root).loadAll()).devices.get('b')!;
    w.die();
    const store = new MetadataStore(w.root);
    const open = Number(txid) + 1;
    await store.saveTransaction({ openTransactionId: open, deviceHash: 'b', deviceId: b.deviceId, op: 'delete' });
    await store.saveDevice({ ...recB, state: 'deleting' }); // the older version kept the record's own txid
    const { pool, dm } = await openPool(w, poolName);
    await pool.deleteThin(b.deviceId);
    dm.close();
    const again = await w.init();
    assert.equal(await checkInvariants(w, again, marks, new Set(['b'])), []);
    assert.is(again.hasDevice('b'), false);
    assert.is(w.fake.pool(poolName)!.transactionId, BigInt(open));
    assert.is(existsSync(join(w.root, 'metadata', TRANSACTION_FILE)), false);
    await again.shutdown();
  } finally {
    w.dispose();
  }
});

test.run();
