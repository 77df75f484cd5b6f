// SPDX-License-Identifier: MIT
// Startup recovery: compare the metadata records with the pool and plan the repairs. Pure.
/**
 * # The write protocol this recovery assumes (the DeviceSet follows it; journal.ts)
 *
 * Every pool mutation runs under the journal's pool lock, in batches (group commit: every
 * operation of a batch shares T, the directory fsync of step 1 and the commit of step 3; a batch
 * is often one operation). T = the journal's committed id + 1. Since issue 21 the device record
 * itself is the intent (one file, one rename):
 *
 * **create / snapshot** of hash H with id I:
 * 1. intent: save H's record `{state: 'creating', transactionId: T, deviceId: I}` (durable:
 *    file fsync, rename, directory fsync: the name is new);
 * 2. send `create_thin I` or `create_snap I <origin>` (on EEXIST: pick a new id, rewrite the
 *    intent durably, resend; on another error: remove the record durably);
 * 3. commit T: **the commit point** (`set_transaction_id T-1 T` on an owned pool; on an external
 *    pool, whose id is its manager's, an atomic write of T into the deviceset record);
 * 4. save H's record with `state: 'ready'`: file fsync and rename, no directory fsync. A crash
 *    may bring the intent back: `creating` with `transactionId` ≤ the committed id **is** ready.
 *
 * **delete** of hash H with id I:
 * 1. intent: save H's record `{state: 'deleting', deleted: false, transactionId: T}` (durable);
 * 2. send `delete I` (ENODATA counts as done; EBUSY with deferred deletion: save
 *    `deleted: true` with the old transaction id, durably, and let the worker retry; another
 *    error: save the old record back, durably);
 * 3. commit T;
 * 4. unlink H's record, no directory fsync: a crash may bring it back, and `deleting`,
 *    `deleted: false` with `transactionId` ≤ the committed id is a finished delete.
 *
 * So an in-flight record (`creating`, or `deleting` without `deleted`) above the committed id is
 * an open transaction (`inFlightTransactions`: one per operation of the interrupted batch);
 * at or below it, the operation committed and only its last, lazy write may be missing.
 *
 * **Older roots** (before issue 21) wrote a separate `transaction-metadata` record first, then
 * the record, and cleared it at the end; such a transaction is passed as `transaction` and
 * handled exactly as before (`creating`/`deleting` records of older roots exist only inside one).
 *
  * Creates that did not reach their commit point are rolled **back**; deletes are always rolled
 * **forward** (a half-deleted device has lost its data anyway). Docker rolled every open
 * transaction back, deleting both the thin device and the record, whatever the operation was.
 *
 * # What {@link reconcile} guarantees once its plan is applied in order
 * - no thin id in the pool without a record (orphans are deleted);
 * - no record whose thin id is missing from the pool (such records are dropped);
 * - no thin id claimed by two records (all claimants become `faulty`, keeping the id reserved);
 * - a `creating` record outside a transaction (cannot happen under the protocol) becomes
 *   `faulty`: we cannot know whether its user recorded it;
 * - no record carries a transaction id above the journal's (the journal's is raised), and the
 *   transaction record is cleared;
 * - a thin id is deleted only when no surviving record claims it.
 *
 * The plan is idempotent under crashes: if applying it stops half-way, reconciling again from the
 * resulting state yields the rest of it. Thin deletes come before record drops, so an id stays
 * reserved on disk until the pool has really freed it.
 *
 * Not decided here (the DeviceSet does it): a base record that is `ready` but not `initialized`
 * (mkfs never finished) is deleted and recreated; `deleting` records are retried by the deferred
 * deletion worker.
 *
 * Applying `delete-thin` can meet EBUSY when only the process died and a device is still open:
 * the executor then saves the record with `deleted: true, state: 'deleting'` instead of
 * dropping it, and the deferred deletion worker finishes later.
 *
 * `poolThinIds` must be every thin id in the pool (from the pool's metadata), and the pool must be
 * owned by this DeviceSet: ids without a record are deleted.
 */
import type { DeviceRecord, TransactionRecord } from './metadata.js';

/** Why an action is planned. */
export type ReconcileReason =
  /** An open create/snapshot never reached its commit: undo it. */
  | 'rollback-uncommitted-create'
  /** An open create/snapshot committed but its record still says 'creating': finish it. */
  | 'rollforward-committed-create'
  /** An open delete: finish it, whatever step it reached. */
  | 'rollforward-delete'
  /** An in-flight delete record whose commit landed: only the record's unlink was lost. */
  | 'rollforward-committed-delete'
  /** A thin id in the pool that no record claims. */
  | 'orphan-thin'
  /** A record whose thin id is not in the pool. */
  | 'missing-thin'
  /** Several records claim the same thin id. */
  | 'duplicate-id'
  /** A 'creating' record with no transaction for it. */
  | 'interrupted-create'
  /** A record's transaction id is above the journal's. */
  | 'record-ahead-of-pool'
  /** The transaction has been dealt with. */
  | 'transaction-done';

/** One repair step. Apply the actions of a plan in order. */
export type ReconcileAction =
  | { readonly action: 'delete-thin'; readonly deviceId: number; readonly why: ReconcileReason }
  | { readonly action: 'drop-record'; readonly hash: string; readonly deviceId: number; readonly why: ReconcileReason }
  | { readonly action: 'mark-ready'; readonly hash: string; readonly why: ReconcileReason }
  | { readonly action: 'mark-faulty'; readonly hash: string; readonly why: ReconcileReason }
  | { readonly action: 'set-transaction-id'; readonly from: bigint; readonly to: bigint; readonly why: ReconcileReason }
  | { readonly action: 'clear-transaction'; readonly why: ReconcileReason };

/**
 * Plan the repairs that make the records, the journal and the pool agree. Pure: reads its
 * arguments, returns actions, changes nothing.
 * @param records every device record (by hash, or a list).
 * @param transaction the open transaction, if any, or every open one (a group commit's batch, see
 *   `inFlightTransactions`).
 * @param poolThinIds every thin device id in the pool.
 * @param poolTransactionId the journal's committed transaction id: the pool's (thin-pool status)
 *   when the DeviceSet owns it, else the deviceset record's.
 */
export function reconcile(
  records: ReadonlyMap<string, DeviceRecord> | readonly DeviceRecord[],
  transaction: TransactionRecord | readonly TransactionRecord[] | undefined,
  poolThinIds: ReadonlySet<number>,
  poolTransactionId: bigint,
): ReconcileAction[] {
  const transactions: readonly TransactionRecord[] = transaction === undefined ? [] : Array.isArray(transaction) ? transaction : [transaction as TransactionRecord];
  const inTransaction = new Set(transactions.map((t) => t.deviceHash));
  const list = Array.isArray(records) ? (records as readonly DeviceRecord[]) : [...(records as ReadonlyMap<string, DeviceRecord>).values()];
  const recs = new Map<string, DeviceRecord>(
    [...list].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0)).map((r) => [r.hash, { ...r }]),
  );
  const pool = new Set(poolThinIds);
  const plan: ReconcileAction[] = [];
  let targetTx = poolTransactionId;
  let targetWhy: ReconcileReason = 'record-ahead-of-pool';

  const claimedByOther = (id: number, hash: string): boolean =>
    [...recs.values()].some((r) => r.hash !== hash && r.deviceId === id);

  // Committed operations whose last, lazy write (see above) a crash lost. First, so that a record
  // of a finished delete no longer claims an id that a later create reused.
  for (const rec of [...recs.values()]) {
    if (inTransaction.has(rec.hash)) continue;
    if (BigInt(rec.transactionId) > poolTransactionId) continue;
    if (rec.state === 'creating' && pool.has(rec.deviceId)) {
      plan.push({ action: 'mark-ready', hash: rec.hash, why: 'rollforward-committed-create' });
      rec.state = 'ready';
    } else if (rec.state === 'deleting' && !rec.deleted) {
      plan.push({ action: 'drop-record', hash: rec.hash, deviceId: rec.deviceId, why: 'rollforward-committed-delete' });
      recs.delete(rec.hash);
      if (!claimedByOther(rec.deviceId, rec.hash)) pool.delete(rec.deviceId);
    }
  }

  for (const transaction of transactions) {
    const { deviceHash: hash, deviceId: id } = transaction;
    const open = BigInt(transaction.openTransactionId);
    const rec = recs.get(hash);
    if (transaction.op === 'delete') {
      const why = 'rollforward-delete';
      if (pool.has(id) && !claimedByOther(id, hash)) {
        plan.push({ action: 'delete-thin', deviceId: id, why });
        pool.delete(id);
      }
      if (rec && rec.deviceId === id) {
        plan.push({ action: 'drop-record', hash, deviceId: id, why });
        recs.delete(hash);
      }
      if (poolTransactionId < open && targetTx < open) {
        targetTx = open;
        targetWhy = why;
      }
    } else if (poolTransactionId >= open) {
      if (rec && rec.deviceId === id && rec.state === 'creating' && pool.has(id)) {
        plan.push({ action: 'mark-ready', hash, why: 'rollforward-committed-create' });
        rec.state = 'ready';
      }
    } else {
      const why = 'rollback-uncommitted-create';
      if (pool.has(id) && !claimedByOther(id, hash)) {
        plan.push({ action: 'delete-thin', deviceId: id, why });
        pool.delete(id);
      }
      if (rec && (rec.deviceId === id || rec.state === 'creating')) {
        plan.push({ action: 'drop-record', hash, deviceId: rec.deviceId, why });
        recs.delete(hash);
      }
    }
  }

  for (const rec of [...recs.values()]) {
    if (!pool.has(rec.deviceId)) {
      plan.push({ action: 'drop-record', hash: rec.hash, deviceId: rec.deviceId, why: 'missing-thin' });
      recs.delete(rec.hash);
    }
  }

  const byId = new Map<number, DeviceRecord[]>();
  for (const rec of recs.values()) byId.set(rec.deviceId, [...(byId.get(rec.deviceId) ?? []), rec]);
  for (const rec of recs.values()) {
    if (rec.state === 'faulty') continue;
    if ((byId.get(rec.deviceId)?.length ?? 0) > 1) {
      plan.push({ action: 'mark-faulty', hash: rec.hash, why: 'duplicate-id' });
      rec.state = 'faulty';
    } else if (rec.state === 'creating') {
      plan.push({ action: 'mark-faulty', hash: rec.hash, why: 'interrupted-create' });
      rec.state = 'faulty';
    }
  }

  for (const id of [...pool].sort((a, b) => a - b)) {
    if (!byId.has(id)) plan.push({ action: 'delete-thin', deviceId: id, why: 'orphan-thin' });
  }

  for (const rec of recs.values()) {
    const tx = BigInt(rec.transactionId);
    if (tx > targetTx) {
      targetTx = tx;
      targetWhy = 'record-ahead-of-pool';
    }
  }
  if (targetTx > poolTransactionId) {
    plan.push({ action: 'set-transaction-id', from: poolTransactionId, to: targetTx, why: targetWhy });
  }
  if (transactions.length > 0) plan.push({ action: 'clear-transaction', why: 'transaction-done' });
  return plan;
}

/**
 * Every open transaction the device records carry: each in-flight record (`creating`, or
 * `deleting` without `deleted`) whose transaction id is above the committed one, by hash. A group
 * commit (journal.ts) leaves up to one per operation of its batch, all at the same id; a single
 * operation leaves one. The snapshot's originDeviceId is left out, as in {@link inFlightTransaction}.
 */
export function inFlightTransactions(
  records: ReadonlyMap<string, DeviceRecord> | readonly DeviceRecord[],
  committedTransactionId: bigint,
): TransactionRecord[] {
  const list = Array.isArray(records) ? (records as readonly DeviceRecord[]) : [...(records as ReadonlyMap<string, DeviceRecord>).values()];
  return [...list]
    .filter((r) => BigInt(r.transactionId) > committedTransactionId && (r.state === 'creating' || (r.state === 'deleting' && !r.deleted)))
    .sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))
    .map((r) => ({ openTransactionId: r.transactionId, deviceHash: r.hash, deviceId: r.deviceId, op: r.state !== 'creating' ? 'delete' : r.hash === '' ? 'create' : 'snapshot' }));
}

/**
 * The open transaction the device records carry (the protocol above): the in-flight record —
 * `creating`, or `deleting` without `deleted` — whose transaction id is above the committed one.
 * A single operation leaves at most one; a batch leaves one per operation (use `inFlightTransactions`), and this returns the first by
 * hash. Undefined when none. The result is for recovery only: a snapshot's originDeviceId is not
 * known from the record and is left out.
 */
export function inFlightTransaction(
  records: ReadonlyMap<string, DeviceRecord> | readonly DeviceRecord[],
  committedTransactionId: bigint,
): TransactionRecord | undefined {
  const list = Array.isArray(records) ? (records as readonly DeviceRecord[]) : [...(records as ReadonlyMap<string, DeviceRecord>).values()];
  const open = [...list]
    .filter((r) => BigInt(r.transactionId) > committedTransactionId && (r.state === 'creating' || (r.state === 'deleting' && !r.deleted)))
    .sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  const r = open[0];
  if (!r) return undefined;
  // The journal creates only the base with create_thin; every other device is a snapshot (the
  // origin is not recorded, and recovery needs none).
  const op = r.state !== 'creating' ? 'delete' : r.hash === '' ? 'create' : 'snapshot';
  return { openTransactionId: r.transactionId, deviceHash: r.hash, deviceId: r.deviceId, op };
}
