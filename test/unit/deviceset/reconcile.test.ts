// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DeviceIdsExhaustedError,
  allocateDeviceId,
  reconcile,
  type DeviceRecord,
  type ReconcileAction,
  type TransactionRecord,
} from '../../../src/deviceset/index.js';
import { inFlightTransaction } from '../../../src/deviceset/reconcile.js';

function rec(hash: string, deviceId: number, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    hash, deviceId, size: 1073741824, transactionId: 1, initialized: hash === '', deleted: false, state: 'ready',
    createdAt: '2024-01-01T00:00:00Z', ...over,
  };
}

/** Base (id 1, txid 1) and a parent layer (id 3, txid 2): the state before every window. */
const base = rec('', 1);
const parent = rec('parent', 3, { transactionId: 2 });
const before = [base, parent];

const createTx: TransactionRecord = { openTransactionId: 5, deviceHash: 'abc', deviceId: 7, op: 'snapshot', originDeviceId: 3, size: 1073741824 };
const deleteTx: TransactionRecord = { openTransactionId: 6, deviceHash: 'abc', deviceId: 7, op: 'delete' };
const creating = rec('abc', 7, { state: 'creating', transactionId: 5 });
const ready = rec('abc', 7, { transactionId: 5 });

const clear: ReconcileAction = { action: 'clear-transaction', why: 'transaction-done' };

const windows = suite('deviceset/reconcile: create/snapshot crash windows');

windows('1. transaction saved, nothing else: just clear it', () => {
  assert.equal(reconcile(before, createTx, new Set([1, 3]), 4n), [clear]);
});

windows('2. record saved as creating, pool untouched: drop the record', () => {
  assert.equal(reconcile([...before, creating], createTx, new Set([1, 3]), 4n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollback-uncommitted-create' },
    clear,
  ]);
});

windows('3. create_snap done, not committed: delete the thin device, then the record', () => {
  assert.equal(reconcile([...before, creating], createTx, new Set([1, 3, 7]), 4n), [
    { action: 'delete-thin', deviceId: 7, why: 'rollback-uncommitted-create' },
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollback-uncommitted-create' },
    clear,
  ]);
});

windows('3b. Docker order (thin created, no record yet): delete the thin device', () => {
  assert.equal(reconcile(before, createTx, new Set([1, 3, 7]), 4n), [
    { action: 'delete-thin', deviceId: 7, why: 'rollback-uncommitted-create' },
    clear,
  ]);
});

windows('4. committed (set_transaction_id done), record still creating: mark it ready', () => {
  assert.equal(reconcile([...before, creating], createTx, new Set([1, 3, 7]), 5n), [
    { action: 'mark-ready', hash: 'abc', why: 'rollforward-committed-create' },
    clear,
  ]);
});

windows('5. record ready, transaction not yet cleared: clear it', () => {
  assert.equal(reconcile([...before, ready], createTx, new Set([1, 3, 7]), 5n), [clear]);
});

windows('6. all done: nothing to do', () => {
  assert.equal(reconcile([...before, ready], undefined, new Set([1, 3, 7]), 5n), []);
});

windows('EEXIST retry: transaction rewritten to id 8, record still says 7 (an orphan\'s id)', () => {
  const tx = { ...createTx, deviceId: 8 };
  assert.equal(reconcile([...before, creating], tx, new Set([1, 3, 7]), 4n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollback-uncommitted-create' },
    { action: 'delete-thin', deviceId: 7, why: 'orphan-thin' },
    clear,
  ]);
});

windows('rollback never deletes a thin id another record claims', () => {
  const other = rec('other', 7, { transactionId: 2 });
  assert.equal(reconcile([...before, other, { ...creating }], createTx, new Set([1, 3, 7]), 4n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollback-uncommitted-create' },
    clear,
  ]);
});

windows('base device: create_thin done, not committed', () => {
  const tx: TransactionRecord = { openTransactionId: 1, deviceHash: '', deviceId: 1, op: 'create', size: 10737418240 };
  assert.equal(reconcile([rec('', 1, { state: 'creating', initialized: false })], tx, new Set([1]), 0n), [
    { action: 'delete-thin', deviceId: 1, why: 'rollback-uncommitted-create' },
    { action: 'drop-record', hash: '', deviceId: 1, why: 'rollback-uncommitted-create' },
    clear,
  ]);
});

windows('base device committed, mkfs not finished: ready but not initialized (the DeviceSet recreates it)', () => {
  const tx: TransactionRecord = { openTransactionId: 1, deviceHash: '', deviceId: 1, op: 'create' };
  assert.equal(reconcile([rec('', 1, { state: 'creating', initialized: false })], tx, new Set([1]), 1n), [
    { action: 'mark-ready', hash: '', why: 'rollforward-committed-create' },
    clear,
  ]);
});

windows('stale transaction (pool txid moved past it): roll forward by what the pool holds', () => {
  assert.equal(reconcile([...before, creating], createTx, new Set([1, 3, 7]), 9n), [
    { action: 'mark-ready', hash: 'abc', why: 'rollforward-committed-create' },
    clear,
  ]);
  assert.equal(reconcile([...before, creating], createTx, new Set([1, 3]), 9n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'missing-thin' },
    clear,
  ]);
});

windows.run();

const deletes = suite('deviceset/reconcile: delete crash windows (always rolled forward)');

const deleting = rec('abc', 7, { state: 'deleting', transactionId: 5 });

deletes('1. transaction saved, record still ready, thin present', () => {
  assert.equal(reconcile([...before, ready], deleteTx, new Set([1, 3, 7]), 5n), [
    { action: 'delete-thin', deviceId: 7, why: 'rollforward-delete' },
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollforward-delete' },
    { action: 'set-transaction-id', from: 5n, to: 6n, why: 'rollforward-delete' },
    clear,
  ]);
});

deletes('2. record marked deleting, thin present', () => {
  assert.equal(reconcile([...before, deleting], deleteTx, new Set([1, 3, 7]), 5n), [
    { action: 'delete-thin', deviceId: 7, why: 'rollforward-delete' },
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollforward-delete' },
    { action: 'set-transaction-id', from: 5n, to: 6n, why: 'rollforward-delete' },
    clear,
  ]);
});

deletes('3. pool delete done, not committed', () => {
  assert.equal(reconcile([...before, deleting], deleteTx, new Set([1, 3]), 5n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollforward-delete' },
    { action: 'set-transaction-id', from: 5n, to: 6n, why: 'rollforward-delete' },
    clear,
  ]);
});

deletes('4. committed, record not yet removed', () => {
  assert.equal(reconcile([...before, deleting], deleteTx, new Set([1, 3]), 6n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollforward-delete' },
    clear,
  ]);
});

deletes('5. record removed, transaction not cleared', () => {
  assert.equal(reconcile(before, deleteTx, new Set([1, 3]), 6n), [clear]);
});

deletes('deferred deletion (EBUSY): committed and cleared, record deleted=true stays for the worker', () => {
  const deferred = rec('abc', 7, { state: 'deleting', deleted: true, transactionId: 5 });
  assert.equal(reconcile([...before, deferred], undefined, new Set([1, 3, 7]), 6n), []);
  assert.equal(reconcile([...before, deferred], undefined, new Set([1, 3]), 6n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'missing-thin' },
  ]);
});

deletes.run();

const anomalies = suite('deviceset/reconcile: invariants without a transaction');

anomalies('orphan thin ids are deleted, in id order', () => {
  assert.equal(reconcile(before, undefined, new Set([9, 1, 3, 4]), 2n), [
    { action: 'delete-thin', deviceId: 4, why: 'orphan-thin' },
    { action: 'delete-thin', deviceId: 9, why: 'orphan-thin' },
  ]);
});

anomalies('records whose thin id vanished are dropped (thin deleted behind our back)', () => {
  assert.equal(reconcile([...before, ready], undefined, new Set([1, 3]), 5n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'missing-thin' },
  ]);
});

anomalies('two records claiming one id both become faulty; the id stays', () => {
  assert.equal(reconcile([...before, rec('x', 3, { transactionId: 2 })], undefined, new Set([1, 3]), 2n), [
    { action: 'mark-faulty', hash: 'parent', why: 'duplicate-id' },
    { action: 'mark-faulty', hash: 'x', why: 'duplicate-id' },
  ]);
});

anomalies('a creating record above the committed id that is not the open transaction becomes faulty', () => {
  assert.equal(reconcile([...before, rec('abc', 7, { state: 'creating', transactionId: 6 })], undefined, new Set([1, 3, 7]), 5n), [
    { action: 'mark-faulty', hash: 'abc', why: 'interrupted-create' },
    { action: 'set-transaction-id', from: 5n, to: 6n, why: 'record-ahead-of-pool' },
  ]);
});

const lazy = suite('deviceset/reconcile: intent records (issue 21), the lost lazy writes after a commit');

lazy('a creating record at or below the committed id is a committed create: mark it ready', () => {
  assert.equal(reconcile([...before, creating], undefined, new Set([1, 3, 7]), 5n), [
    { action: 'mark-ready', hash: 'abc', why: 'rollforward-committed-create' },
  ]);
});

lazy('a deleting (not deferred) record at or below the committed id is a finished delete: drop it, delete nothing', () => {
  assert.equal(reconcile([...before, rec('abc', 7, { state: 'deleting', transactionId: 6 })], undefined, new Set([1, 3, 7]), 6n), [
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollforward-committed-delete' },
  ]);
});

lazy('a deferred deletion (deleted: true) is kept for the worker', () => {
  assert.equal(reconcile([...before, rec('abc', 7, { state: 'deleting', deleted: true, transactionId: 5 })], undefined, new Set([1, 3, 7]), 6n), []);
});

lazy('a finished delete whose id a later, uncommitted create reused: the create is rolled back and the id deleted', () => {
  const gone = rec('old', 7, { state: 'deleting', transactionId: 6 });
  const reuse = rec('abc', 7, { state: 'creating', transactionId: 7 });
  const tx = inFlightTransaction([...before, gone, reuse], 6n);
  assert.equal(tx, { openTransactionId: 7, deviceHash: 'abc', deviceId: 7, op: 'snapshot' });
  assert.equal(reconcile([...before, gone, reuse], tx, new Set([1, 3, 7]), 6n), [
    { action: 'drop-record', hash: 'old', deviceId: 7, why: 'rollforward-committed-delete' },
    { action: 'delete-thin', deviceId: 7, why: 'rollback-uncommitted-create' },
    { action: 'drop-record', hash: 'abc', deviceId: 7, why: 'rollback-uncommitted-create' },
    clear,
  ]);
});

lazy('a finished delete whose id a later, committed create reused: only the old record goes', () => {
  const gone = rec('old', 7, { state: 'deleting', transactionId: 6 });
  const reuse = rec('abc', 7, { state: 'creating', transactionId: 7 });
  assert.equal(inFlightTransaction([...before, gone, reuse], 7n), undefined);
  assert.equal(reconcile([...before, gone, reuse], undefined, new Set([1, 3, 7]), 7n), [
    { action: 'mark-ready', hash: 'abc', why: 'rollforward-committed-create' },
    { action: 'drop-record', hash: 'old', deviceId: 7, why: 'rollforward-committed-delete' },
  ]);
});

lazy('inFlightTransaction: the creating or deleting (not deferred) record above the committed id', () => {
  assert.equal(inFlightTransaction([...before, rec('abc', 7, { state: 'deleting', transactionId: 6 })], 5n), { openTransactionId: 6, deviceHash: 'abc', deviceId: 7, op: 'delete' });
  assert.equal(inFlightTransaction([...before, rec('abc', 7, { state: 'deleting', deleted: true, transactionId: 6 })], 5n), undefined);
  assert.equal(inFlightTransaction([...before, creating], 4n), { openTransactionId: 5, deviceHash: 'abc', deviceId: 7, op: 'snapshot' });
  assert.equal(inFlightTransaction([rec('', 1, { state: 'creating', transactionId: 2 })], 1n), { openTransactionId: 2, deviceHash: '', deviceId: 1, op: 'create' });
  assert.equal(inFlightTransaction([...before, creating], 5n), undefined);
});

anomalies('a record ahead of the pool raises the pool transaction id', () => {
  assert.equal(reconcile([...before, rec('abc', 7, { transactionId: 9 })], undefined, new Set([1, 3, 7]), 5n), [
    { action: 'set-transaction-id', from: 5n, to: 9n, why: 'record-ahead-of-pool' },
  ]);
});

anomalies('accepts a Map of records', () => {
  const map = new Map(before.map((r) => [r.hash, r]));
  assert.equal(reconcile(map, undefined, new Set([1, 3]), 2n), []);
});

anomalies.run();

// ---- Applying plans: converge and stay idempotent when the application itself is interrupted.

interface World {
  records: Map<string, DeviceRecord>;
  transaction: TransactionRecord | undefined;
  pool: Set<number>;
  txid: bigint;
}

function apply(world: World, actions: readonly ReconcileAction[]): World {
  const w: World = { records: new Map([...world.records].map(([k, v]) => [k, { ...v }])), transaction: world.transaction, pool: new Set(world.pool), txid: world.txid };
  for (const a of actions) {
    switch (a.action) {
      case 'delete-thin': w.pool.delete(a.deviceId); break;
      case 'drop-record': w.records.delete(a.hash); break;
      case 'mark-ready': w.records.get(a.hash)!.state = 'ready'; break;
      case 'mark-faulty': w.records.get(a.hash)!.state = 'faulty'; break;
      case 'set-transaction-id': assert.is(w.txid, a.from); w.txid = a.to; break;
      case 'clear-transaction': w.transaction = undefined; break;
    }
  }
  return w;
}

const run = (w: World): ReconcileAction[] => reconcile(w.records, w.transaction, w.pool, w.txid);

function checkInvariants(w: World, label: string): void {
  const claimed = new Set([...w.records.values()].map((r) => r.deviceId));
  for (const id of w.pool) assert.ok(claimed.has(id), `${label}: thin ${id} has a record`);
  for (const r of w.records.values()) {
    assert.ok(w.pool.has(r.deviceId), `${label}: record ${r.hash} has its thin id`);
    assert.ok(BigInt(r.transactionId) <= w.txid, `${label}: record ${r.hash} not ahead of the pool`);
    assert.is.not(r.state, 'creating', `${label}: no creating record left`);
  }
  assert.is(w.transaction, undefined, `${label}: transaction cleared`);
}

const converge = suite('deviceset/reconcile: applying plans');

converge('every scenario converges, is idempotent, and survives a crash after any action', () => {
  const worlds: [string, World][] = [
    ['create-3', { records: new Map([...before, creating].map((r) => [r.hash, r])), transaction: createTx, pool: new Set([1, 3, 7]), txid: 4n }],
    ['create-4', { records: new Map([...before, creating].map((r) => [r.hash, r])), transaction: createTx, pool: new Set([1, 3, 7]), txid: 5n }],
    ['delete-2', { records: new Map([...before, deleting].map((r) => [r.hash, r])), transaction: deleteTx, pool: new Set([1, 3, 7]), txid: 5n }],
    ['mixed', {
      records: new Map([...before, rec('x', 3), rec('y', 20, { transactionId: 12 }), rec('gone', 30), rec('c', 40, { state: 'creating' })].map((r) => [r.hash, r])),
      transaction: { ...createTx, deviceId: 50 }, pool: new Set([1, 3, 20, 40, 50, 60]), txid: 4n,
    }],
  ];
  for (const [label, world] of worlds) {
    const plan = run(world);
    const done = apply(world, plan);
    checkInvariants(done, label);
    assert.equal(run(done), [], `${label}: idempotent`);
    for (let k = 0; k < plan.length; k++) {
      const half = apply(world, plan.slice(0, k));
      const resumed = apply(half, run(half));
      assert.equal(resumed, done, `${label}: crash after ${k} actions`);
    }
  }
});

converge.run();

const ids = suite('deviceset/ids: allocateDeviceId');

ids('first free id from next; skips used ids; wraps at 2^24', () => {
  assert.equal(allocateDeviceId(new Set(), 1), { id: 1, next: 2 });
  assert.equal(allocateDeviceId(new Set([1, 2, 3]), 1), { id: 4, next: 5 });
  assert.equal(allocateDeviceId(new Set([0xfffffe, 0xffffff]), 0xfffffe), { id: 0, next: 1 });
  assert.equal(allocateDeviceId(new Set([0xfffffe]), 0xffffff), { id: 0xffffff, next: 0 });
  assert.equal(allocateDeviceId(new Set([0, 0xffffff]), 0xffffff), { id: 1, next: 2 });
});

ids('errors when every id is used, or next is out of range', () => {
  const all = { has: (_: number) => true, size: 2 ** 24 } as unknown as ReadonlySet<number>;
  assert.throws(() => allocateDeviceId(all, 5), (e: unknown) => e instanceof DeviceIdsExhaustedError && e.code === 'EDEVICEIDSEXHAUSTED');
  const allButOne = { has: (id: number) => id !== 123, size: 2 ** 24 - 1 } as unknown as ReadonlySet<number>;
  assert.equal(allocateDeviceId(allButOne, 124), { id: 123, next: 124 });
  for (const bad of [-1, 2 ** 24, 1.5, Number.NaN]) assert.throws(() => allocateDeviceId(new Set(), bad), /next device id/);
});

lazy.run();
ids.run();
