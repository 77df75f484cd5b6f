// SPDX-License-Identifier: MIT
// Startup recovery: compare the metadata records with the pool and plan the repairs. Pure.
/**
 * # The write protocol this recovery assumes (the DeviceSet follows it)
 *
 * Every pool mutation runs under the DeviceSet lock, one at a time:
 *
 * **create / snapshot** of hash H with id I (T = the journal's committed id + 1):
 * 1. save the transaction `{openTransactionId: T, deviceHash: H, deviceId: I, op}`;
 * 2. save H's record with `state: 'creating'`, `transactionId: T`;
 * 3. send `create_thin I` or `create_snap I <origin>` (on EEXIST: pick a new id, rewrite the
 *    transaction, then the record, then resend);
 * 4. commit T: **the commit point** (`set_transaction_id T-1 T` on an owned pool; on an external
 *    pool, whose id is its manager's, an atomic write of T into the deviceset record);
 * 5. save H's record with `state: 'ready'`;
 * 6. clear the transaction.
 *
 * **delete** of hash H with id I:
 * 1. save the transaction `{op: 'delete', …}`; 2. save H's record with `state: 'deleting'`;
 * 3. send `delete I` (ENODATA counts as done; EBUSY with deferred deletion: save
 *    `deleted: true`, commit, clear, and let the worker retry); 4. commit T;
 * 5. remove H's record; 6. clear the transaction.
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
 * @param transaction the open transaction, if any.
 * @param poolThinIds every thin device id in the pool.
 * @param poolTransactionId the journal's committed transaction id: the pool's (thin-pool status)
 *   when the DeviceSet owns it, else the deviceset record's.
 */
export function reconcile(
  records: ReadonlyMap<string, DeviceRecord> | readonly DeviceRecord[],
  transaction: TransactionRecord | undefined,
  poolThinIds: ReadonlySet<number>,
  poolTransactionId: bigint,
): ReconcileAction[] {
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

  if (transaction) {
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
      if (poolTransactionId < open) {
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
  if (transaction) plan.push({ action: 'clear-transaction', why: 'transaction-done' });
  return plan;
}
