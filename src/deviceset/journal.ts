// SPDX-License-Identifier: MIT
// The write side of the DeviceSet's journal: the readable counterpart of reconcile.ts.
/**
 * # Journal
 *
 * Every create_thin / create_snap / delete follows the write order documented in reconcile.ts
 * (intent record → pool message → commit → lazy record write), so after a crash at any point the
 * next init rolls uncommitted creates back, committed ones forward, and deletes forward. A named
 * {@link CrashHook} point sits before every step ({@link CRASH_POINTS}).
 *
 * ## The fewest durable writes (issue 21)
 *
 * Recovery must tell apart, for each operation: nothing happened; the intent is on disk but the
 * pool may or may not have the change (the message may have gone through); the commit landed.
 * The commit is the kernel's (set_transaction_id, committed by pool_message in dm-thin.c) or,
 * on an external pool, a durable deviceset record write. That takes exactly one durable write
 * before the message (the intent) and nothing durable after the commit:
 *
 * | step | create / snapshot | delete |
 * |---|---|---|
 * | intent | record `creating`, txid T: file fsync + rename + dir fsync | record `deleting`, txid T: the same |
 * | kernel | create_thin / create_snap, set_transaction_id | delete, set_transaction_id |
 * | after commit | record `ready`: file fsync + rename, **no dir fsync** | unlink, **no dir fsync** |
 *
 * The intent's directory fsync stays even where the name already existed (delete): the rename
 * must be durable before the kernel acts, else a crash could leave a `ready` record naming a
 * deleted id, which no init can detect (the kernel cannot list thin ids). After the commit a lost
 * rename or unlink brings the intent back, and an intent at or below the committed id is read as
 * done (reconcile.ts). The `ready` record is still fsynced before its rename: without that a
 * crash could leave the new name with no data (a corrupt record), which is worse than the old one.
 *
 * Per operation: addDevice 2 file fsyncs + 1 dir fsync, 2 renames (was 3 + 4, 3 renames and an
 * unlink: transaction record, record, commit, record, clear); deleteDevice 1 + 1, 1 rename,
 * 1 unlink (was 2 + 4). Only the rare paths (EEXIST retry, a failed message or commit, a busy
 * delete deferred) write durably after the intent, because there a lost write would make an
 * intent look like a different state.
 *
 * Roots written before issue 21 keep a separate transaction record; recovery reads and clears
 * it as before (old-layout fixture: test/unit/deviceset/journal-fsync.test.ts).
 *
 * ## Group commit
 *
 * Operations queued on the pool lock at the same time run as one batch ({@link Journal.#runBatch}):
 * N intents at the same T (N file fsyncs + renames, **one** directory fsync), N messages, **one**
 * commit, N lazy writes. The N intent writes run concurrently, and so do the N lazy writes, so
 * their file fsyncs overlap (a journalling filesystem folds concurrent fsyncs into shared commits).
 * 32 concurrent snapshots of one parent: 64 file + 1 directory fsyncs and
 * one set_transaction_id, against 64 + 32 and 32 one at a time (journal-group.test.ts). Recovery
 * reads every in-flight record above the committed id as an open transaction
 * (reconcile.ts, inFlightTransactions). A batch of one makes the writes and reaches the crash
 * points of one operation exactly; two or more also reach `batch:before-intent-sync` and reach
 * `batch:before-commit` instead of the operation's before-commit.
 *
 * The commit is `set_transaction_id` on a pool this DeviceSet owns; an external pool's id
 * belongs to its manager (LVM refuses a pool whose id moved, moby#15629), so there the commit is
 * an atomic write of the journal's own id in the deviceset record.
 *
 * The kernel cannot list thin ids. Only the ids named by the open transactions can be in doubt
 * (every other id is covered by a record written before the pool was touched), so init probes
 * exactly those: `create_thin <id>` answers EEXIST when it exists; when it succeeds the probe
 * device is deleted again (a crash in between leaves the same transaction, and the next probe
 * finds the id and the plan deletes it).
 *
 * The Journal owns the metadata store, the pool handle, the pool lock, the records, the used
 * thin ids and the crash hook. Pool messages, the transaction id and metadata writes happen
 * under its pool lock only.
 */
import { ThinDeviceBusyError, ThinIdInUseError, ThinIdNotFoundError, type ThinPool, type ThinPoolWorkingStatus } from '../thin/index.js';
import type { CrashHook, CrashPointName } from './crash.js';
import { PoolFreeSpaceError, UnknownDeviceError } from './errors.js';
import { allocateDeviceId } from './ids.js';
import type { DeviceRecord, DeviceSetRecord, LoadedMetadata, MetadataStore, TransactionRecord } from './metadata.js';
import { AsyncMutex } from './mutex.js';
import { freeSpaceShortfall } from './pool-sizing.js';
import { inFlightTransactions, reconcile, type ReconcileAction } from './reconcile.js';
import type { DeviceSetLog } from './types.js';

/** The lowest thin id the DeviceSet allocates. */
export const MIN_DEVICE_ID = 1;
const EEXIST_RETRIES = 1000;

/** What a {@link Journal} is built from. */
export interface JournalInit {
  readonly store: MetadataStore;
  readonly crash: CrashHook;
  readonly log: DeviceSetLog;
  /** dm.min_free_space, checked before each snapshot. */
  readonly minFreeSpacePercent: number;
  /** The deviceset record to start from (replaced by the loaded one at init). */
  readonly deviceSet: DeviceSetRecord;
}

export class Journal {
  readonly store: MetadataStore;
  readonly poolLock = new AsyncMutex();
  /** The device records, by hash, as last written. */
  readonly records = new Map<string, DeviceRecord>();
  /** Thin ids that are (or may be) taken: never allocated. */
  readonly usedIds = new Set<number>();
  readonly #crash: CrashHook;
  readonly #log: DeviceSetLog;
  readonly #minFreeSpacePercent: number;
  /** The deviceset record as last written (or about to be: see {@link commit}). */
  deviceSet: DeviceSetRecord;
  /** The pool, once found or created. */
  pool!: ThinPool;
  /** True when this DeviceSet owns the pool (its transaction id is the journal's). */
  owned = true;
  /** Operations waiting for the next batch ({@link Journal.#runBatch}). */
  readonly #queue: Queued[] = [];
  /** A batch is queued on the pool lock and has not taken the queue yet. */
  #scheduled = false;

  constructor(init: JournalInit) {
    this.store = init.store;
    this.#crash = init.crash;
    this.#log = init.log;
    this.#minFreeSpacePercent = init.minFreeSpacePercent;
    this.deviceSet = init.deviceSet;
  }

  /** The record of `hash`. @throws UnknownDeviceError */
  record(hash: string): DeviceRecord {
    const rec = this.records.get(hash);
    if (!rec) throw new UnknownDeviceError(hash);
    return rec;
  }

  /** The hashes of the devices marked deleted (a deferred deletion pending). */
  deletedHashes(): string[] {
    return [...this.records.values()].filter((r) => r.deleted).map((r) => r.hash);
  }

  /**
   * Saves `rec` under the pool lock. `durable: false` skips the directory fsync (see
   * MetadataStore.saveDevice): only for a write whose loss the next init repairs.
   */
  async saveRecord(rec: DeviceRecord, opts: { readonly durable?: boolean } = {}): Promise<void> {
    await this.poolLock.run(async () => {
      await this.store.saveDevice(rec, opts);
      this.records.set(rec.hash, rec);
    });
  }

  /**
   * The transaction id the journal counts from: the pool's when this DeviceSet owns the pool,
   * otherwise its own marker in the deviceset record (see DeviceSetRecord.transactionId).
   */
  txid(status: ThinPoolWorkingStatus): bigint {
    if (this.owned) return status.transactionId;
    return BigInt(this.deviceSet.transactionId ?? 0);
  }

  /**
   * The journal's commit point: `set_transaction_id from to` on an owned pool; on an external
   * pool an atomic, fsynced write of the deviceset record (the pool's id is its manager's).
   */
  async commit(from: bigint, to: bigint): Promise<void> {
    if (this.owned) {
      await this.pool.setTransactionId(from, to);
      return;
    }
    const next: DeviceSetRecord = { ...this.deviceSet, transactionId: Number(to) };
    const written = this.store.saveDeviceSet(next);
    // In memory at once (the store lands writes in call order, so a later write of the record,
    // made from this copy, lands after this one), and even when the write fails: the rename may
    // have landed (a failed directory fsync), so the next transaction opens above whatever the
    // disk holds. Only monotonicity matters; a record never claims an id the journal did not open.
    this.deviceSet = next;
    await written;
  }

  /** True when thin `id` exists in the pool (create_thin answers EEXIST); leaves the pool as found. */
  async probe(id: number): Promise<boolean> {
    try {
      await this.pool.createThin(id);
    } catch (err) {
      if (err instanceof ThinIdInUseError) return true;
      throw err;
    }
    await this.pool.deleteThin(id);
    return false;
  }

  /**
   * On an external pool (shared with its manager and maybe other users), whether the open
   * transaction's thin id is provably ours. Only the journal's commit proves it: a create whose
   * commit landed made the id (the pool refused create_thin with EEXIST otherwise and the id was
   * never recorded). Before the commit an existing id may be ours (the message went through, then
   * the crash) or someone else's (made while our message was never sent): that cannot be told
   * apart from the pool, so it is quarantined, never deleted. A delete that committed already
   * removed our id; an id found again under that number belongs to someone else.
   */
  provablyOurs(tx: TransactionRecord, status: ThinPoolWorkingStatus): boolean {
    const committed = this.txid(status) >= BigInt(tx.openTransactionId);
    if (tx.op === 'delete') return !committed;
    return committed;
  }

  /** Records `tx`'s thin id as in doubt: never deleted, never reused, reported by status(). */
  async quarantine(tx: TransactionRecord): Promise<void> {
    const reason = `${tx.op} of ${tx.deviceHash || 'base'} (transaction ${tx.openTransactionId}) was interrupted before its commit; the id exists in the pool and may belong to another user`;
    const list = (this.deviceSet.quarantinedIds ?? []).filter((q) => q.deviceId !== tx.deviceId);
    this.deviceSet = { ...this.deviceSet, quarantinedIds: [...list, { deviceId: tx.deviceId, reason, since: new Date().toISOString() }] };
    await this.store.saveDeviceSet(this.deviceSet);
    this.#log('warn', `recovery: thin ${tx.deviceId} of the external pool ${this.pool.name} is quarantined: ${reason}`);
  }

  /**
   * Init's recovery: probes the thin id named by the open transaction (the only one that can be
   * in doubt), plans with {@link reconcile} and applies the plan. `newPool`: the pool was just
   * created with fresh metadata (it holds no thin ids). `quietDeactivate` removes an unopened
   * device before its thin id is deleted. Resolves true when there was recovery work (an open
   * transaction or a plan to apply): the base check is not skipped then (base-image.ts).
   */
  async recover(loaded: LoadedMetadata, status: ThinPoolWorkingStatus, newPool: boolean, quietDeactivate: (hash: string) => Promise<void>): Promise<boolean> {
    if (!this.owned && this.deviceSet.transactionId === undefined) {
      // First use (the ownership check above saw 0), or a root written before the journal kept its
      // own id (it moved the pool's): carry on from the pool's id, and never touch it again.
      this.deviceSet = { ...this.deviceSet, transactionId: Number(status.transactionId) };
    }
    const committed = this.txid(status);
    const poolIds = new Set<number>();
    // The kernel cannot list thin ids: every recorded id counts as present. On an external pool an
    // uncommitted 'creating' record's id is not proven ours (only the commit proves it; the open
    // transaction's id is probed below), so it is left out: reconcile then never deletes it as an orphan.
    if (!newPool) {
      for (const r of loaded.devices.values()) {
        if (this.owned || r.state !== 'creating' || BigInt(r.transactionId) <= committed) poolIds.add(r.deviceId);
      }
    }
    // An older root's transaction record, else those the in-flight records carry (reconcile.ts):
    // one per operation of the batch a crash interrupted (group commit), all at the same id.
    const txs = loaded.transaction ? [loaded.transaction] : inFlightTransactions(loaded.devices, committed);
    if (!newPool) {
      for (const tx of txs) {
        this.#crash('init:before-probe');
        const exists = await this.probe(tx.deviceId);
        if (exists && !this.owned && !this.provablyOurs(tx, status)) {
          await this.quarantine(tx);
          poolIds.delete(tx.deviceId); // so that no plan deletes it
        } else if (exists) poolIds.add(tx.deviceId);
        else poolIds.delete(tx.deviceId);
      }
    }
    for (const q of this.deviceSet.quarantinedIds ?? []) this.usedIds.add(q.deviceId);
    const plan = reconcile(loaded.devices, txs, poolIds, committed);
    for (const r of loaded.devices.values()) this.records.set(r.hash, r);
    if (plan.length > 0) this.#log('info', `recovery: ${plan.map(describeAction).join('; ')}`);
    await this.#applyPlan(plan, txs, quietDeactivate);
    for (const r of this.records.values()) this.usedIds.add(r.deviceId);
    return plan.length > 0 || txs.length > 0;
  }

  async #applyPlan(plan: readonly ReconcileAction[], txs: readonly TransactionRecord[], quietDeactivate: (hash: string) => Promise<void>): Promise<void> {
    const keep = new Set<string>();
    for (const a of plan) {
      this.#crash('init:before-reconcile-action');
      switch (a.action) {
        case 'delete-thin': {
          const tx = txs.find((t) => t.deviceId === a.deviceId);
          const owner = [...this.records.values()].find((r) => r.deviceId === a.deviceId) ?? (tx ? this.records.get(tx.deviceHash) : undefined);
          if (owner) await quietDeactivate(owner.hash);
          try {
            await this.pool.deleteThin(a.deviceId);
          } catch (err) {
            if (err instanceof ThinIdNotFoundError) break;
            if (!(err instanceof ThinDeviceBusyError) || !owner) throw err;
            // Still open (the dead process left it mounted): keep the record, deferred.
            const deferred: DeviceRecord = { ...owner, state: 'deleting', deleted: true, lastError: 'busy during crash recovery' };
            await this.store.saveDevice(deferred);
            this.records.set(owner.hash, deferred);
            keep.add(owner.hash);
            this.#log('warn', `thin ${a.deviceId} (${owner.hash || 'base'}) is busy; marked for deferred deletion`);
          }
          break;
        }
        case 'drop-record':
          if (keep.has(a.hash)) break;
          await this.store.removeDevice(a.hash);
          this.records.delete(a.hash);
          break;
        case 'mark-ready':
        case 'mark-faulty': {
          const r = this.records.get(a.hash);
          if (!r) break;
          const next: DeviceRecord =
            a.action === 'mark-ready' ? { ...r, state: 'ready' } : { ...r, state: 'faulty', deleted: false, lastError: `recovery: ${a.why}` };
          await this.store.saveDevice(next);
          this.records.set(a.hash, next);
          break;
        }
        case 'set-transaction-id':
          await this.commit(a.from, a.to);
          break;
        case 'clear-transaction':
          await this.store.clearTransaction();
          break;
      }
    }
  }

  /** create_thin of `hash` (the base device) through the journal. Caller holds its device lock. */
  createThin(hash: string, size: bigint): Promise<DeviceRecord> {
    return this.#submit<DeviceRecord>({ kind: 'create', hash, size, origin: undefined, originActiveName: undefined, growTo: undefined });
  }

  /**
   * create_snap of `origin` as `hash` through the journal (dm.min_free_space checked first).
   * `originActiveName`: the origin's dm name when it is active (suspended around the message).
   * `growTo`: the grow intent the new record carries. Caller holds both device locks (the
   * origin's may be shared: snapshots of one origin are batched together).
   */
  createSnap(hash: string, size: bigint, origin: DeviceRecord, originActiveName: string | undefined, growTo?: number): Promise<DeviceRecord> {
    return this.#submit<DeviceRecord>({ kind: 'snapshot', hash, size, origin, originActiveName, growTo });
  }

  /**
   * delete of `rec`'s thin id through the journal. With `deferOnBusy`, a pool that says busy
   * marks the record deleted (retried later) and resolves 'deferred'.
   */
  delete(rec: DeviceRecord, deferOnBusy: boolean): Promise<'deleted' | 'deferred'> {
    return this.#submit<'deleted' | 'deferred'>({ kind: 'delete', rec, deferOnBusy });
  }

  /**
   * Queues a journalled operation for the next batch (group commit): the first submitter schedules
   * a batch on the pool lock; whatever is queued when it starts runs in it.
   */
  #submit<T>(spec: JobSpec): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ spec, resolve: resolve as (v: unknown) => void, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      const batch: Queued[] = [];
      this.poolLock
        .run(() => this.#runBatch(batch))
        .catch((err: unknown) => {
          // Not reached by design (#runBatch settles every job itself); if it is, no caller hangs.
          this.#scheduled = false;
          for (const j of [...batch, ...this.#queue.splice(0)]) j.reject(err);
        });
    });
  }

  /**
   * One group commit, under the pool lock. For the N operations queued when it starts (after the
   * pool status, so that those arriving meanwhile join):
   * 1. every intent record written and renamed (its file fsynced), then **one** directory fsync;
   * 2. every pool message, in queue order (a failed one undoes its own intent durably);
   * 3. **one** commit of T for all that went through;
   * 4. every lazy record write (`ready`, or the unlink of a deleted record).
   * Every operation of the batch carries the same T: before the commit every in-flight record at T
   * is an open transaction, after it every one is done (reconcile.ts, inFlightTransactions). A
   * batch of one makes exactly the writes and reaches exactly the crash points of one operation.
   */
  async #runBatch(taken: Queued[]): Promise<void> {
    let status: ThinPoolWorkingStatus;
    try {
      status = await this.pool.assertWritable();
    } catch (err) {
      this.#scheduled = false;
      for (const j of this.#queue.splice(0)) j.reject(err);
      return;
    }
    this.#scheduled = false;
    taken.push(...this.#queue.splice(0));
    const jobs: Work[] = taken.map((j) => ({ ...j, id: -1, rec: undefined, outcome: 'pending' }));
    const group = jobs.length > 1;
    const current = this.txid(status);
    const open = current + 1n;
    const fail = (w: Work, err: unknown): void => {
      w.outcome = 'failed';
      w.error = err;
    };

    // 1. The intents: each record `creating` / `deleting` at T, renamed; one directory fsync.
    // The records are written concurrently (each write starts right after its crash point), so the
    // N file fsyncs overlap: on a journalling filesystem concurrent fsyncs share commits (ext4's
    // jbd2 joins the ones that arrive while a commit runs). Nothing of them is durable before the
    // one directory fsync below anyway, so a crash amid them leaves any subset, as it did before.
    let next = this.deviceSet.nextDeviceId || MIN_DEVICE_ID;
    const intentWrites: Promise<void>[] = [];
    for (const w of jobs) {
      const { spec } = w;
      const undo = (err: unknown): void => {
        if (spec.kind !== 'delete' && w.id >= 0) this.usedIds.delete(w.id);
        fail(w, err);
      };
      try {
        if (spec.kind === 'delete') {
          this.#crash('delete:before-intent');
          w.rec = { ...spec.rec, state: 'deleting', deleted: false, transactionId: Number(open) };
        } else {
          if (spec.kind === 'snapshot') {
            const short = freeSpaceShortfall(status, this.#minFreeSpacePercent);
            if (short) throw new PoolFreeSpaceError(short.what, short.free, short.required);
          }
          ({ id: w.id, next } = allocateDeviceId(this.usedIds, next));
          // Taken from now on (a later job of this batch must not pick it); freed again on failure.
          this.usedIds.add(w.id);
          this.#crash(`${spec.kind}:before-intent` as CrashPointName);
          w.rec = this.#intentRecord(spec, w.id, open);
        }
        intentWrites.push(
          this.store.saveDevice(w.rec, { durable: false }).then(
            () => void (w.outcome = 'intent'),
            (err: unknown) => undo(err),
          ),
        );
      } catch (err) {
        undo(err);
      }
    }
    await Promise.all(intentWrites);
    this.deviceSet = { ...this.deviceSet, nextDeviceId: next };
    const written = jobs.filter((w) => w.outcome === 'intent');
    if (written.length > 0) {
      try {
        if (group) this.#crash('batch:before-intent-sync');
        await this.store.syncDir();
      } catch (err) {
        // Not durable: nothing may be sent. Undo the intents (best effort; init rolls back the rest).
        for (const w of written) {
          fail(w, err);
          try {
            if (w.spec.kind === 'delete') await this.store.saveDevice(w.spec.rec);
            else {
              await this.store.removeDevice(w.spec.hash);
              this.usedIds.delete(w.id);
            }
          } catch (undoErr) {
            this.#log('error', `could not undo the intent of ${describeSpec(w.spec)} after its directory fsync failed (init will): ${String(undoErr)}`);
          }
        }
      }
    }

    // 2. The pool messages, one at a time (the pool serializes them anyway).
    for (const w of jobs) {
      if (w.outcome !== 'intent') continue;
      try {
        w.outcome = await (w.spec.kind === 'delete' ? this.#deleteMessage(w, w.spec) : this.#createMessage(w, w.spec, open));
      } catch (err) {
        fail(w, err);
      }
    }

    // 3. One commit for every operation that changed the pool.
    const done = jobs.filter((w) => w.outcome === 'sent');
    if (done.length > 0) {
      try {
        if (group) this.#crash('batch:before-commit');
        else this.#crash(`${done[0]!.spec.kind}:before-commit` as CrashPointName);
        await this.commit(current, open);
      } catch (err) {
        for (const w of done) {
          fail(w, err);
          if (w.spec.kind === 'delete') continue; // the thin is gone: init rolls the delete forward
          try {
            await this.pool.deleteThin(w.id);
            await this.store.removeDevice(w.spec.hash);
            this.usedIds.delete(w.id);
          } catch (undoErr) {
            this.#log('error', `could not undo create of thin ${w.id} after its commit failed (init will): ${String(undoErr)}`);
          }
        }
      }
    }

    // 4. Committed: the lazy writes, concurrently as the intents (each starts right after its
    // crash point). A crash that loses one brings back the intent, which now reads as done.
    const lazyWrites: Promise<void>[] = [];
    for (const w of jobs) {
      if (w.outcome !== 'sent') continue;
      const { spec } = w;
      try {
        let write: Promise<void>;
        let landed: () => void;
        if (spec.kind === 'delete') {
          this.#crash('delete:before-remove-record');
          write = this.store.removeDevice(spec.rec.hash, { durable: false });
          landed = () => {
            this.records.delete(spec.rec.hash);
            this.usedIds.delete(spec.rec.deviceId);
            w.resolve('deleted');
          };
        } else {
          this.#crash(`${spec.kind}:before-ready` as CrashPointName);
          const rec: DeviceRecord = { ...w.rec!, state: 'ready' };
          write = this.store.saveDevice(rec, { durable: false });
          landed = () => {
            this.records.set(spec.hash, rec);
            w.resolve(rec);
          };
        }
        // A failed write fails its own operation only.
        lazyWrites.push(
          write.then(
            () => {
              landed();
              w.outcome = 'resolved';
            },
            (err: unknown) => fail(w, err),
          ),
        );
      } catch (err) {
        fail(w, err);
      }
    }
    await Promise.all(lazyWrites);
    for (const w of jobs) {
      if (w.outcome === 'failed') w.reject(w.error);
      else if (w.outcome === 'deferred') w.resolve('deferred');
    }
  }

  #intentRecord(spec: CreateSpec, id: number, open: bigint): DeviceRecord {
    const fsType = spec.origin?.filesystem ?? this.deviceSet.baseFilesystem;
    return {
      hash: spec.hash,
      deviceId: id,
      size: Number(spec.size),
      transactionId: Number(open),
      initialized: false,
      deleted: false,
      state: 'creating',
      ...(fsType && spec.kind === 'snapshot' ? { filesystem: fsType } : {}),
      createdAt: new Date().toISOString(),
      ...(spec.growTo !== undefined ? { growTo: spec.growTo } : {}),
    };
  }

  /** create_thin / create_snap of one job whose intent is durable: 'sent', or throws (intent undone). */
  async #createMessage(w: Work, spec: CreateSpec, open: bigint): Promise<'sent'> {
    this.#crash(`${spec.kind}:before-message` as CrashPointName);
    for (let attempt = 0; ; attempt++) {
      try {
        if (spec.kind === 'create') await this.pool.createThin(w.id);
        else await this.pool.createSnap(w.id, spec.origin?.deviceId ?? 0, spec.originActiveName ? { origin: spec.originActiveName } : {});
        return 'sent';
      } catch (err) {
        if (err instanceof ThinIdInUseError && attempt < EEXIST_RETRIES) {
          // Docker: "Device ID exists in pool but it is supposed to be unused". The id stays in usedIds.
          this.#log('warn', `thin id ${w.id} exists in the pool but has no record; trying another id`);
          const { id, next } = allocateDeviceId(this.usedIds, this.deviceSet.nextDeviceId || MIN_DEVICE_ID);
          w.id = id;
          this.usedIds.add(id);
          this.deviceSet = { ...this.deviceSet, nextDeviceId: next };
          // Durable: a lost rename would leave the intent naming the id that is not ours.
          w.rec = this.#intentRecord(spec, id, open);
          await this.store.saveDevice(w.rec);
          continue;
        }
        // Nothing was created: undo the intent, durably (a lost unlink would read as done once a
        // later operation commits T).
        await this.store.removeDevice(spec.hash);
        this.usedIds.delete(w.id);
        throw err;
      }
    }
  }

  /** delete of one job whose intent is durable: 'sent', 'deferred' (busy), or throws (record restored). */
  async #deleteMessage(w: Work, spec: DeleteSpec): Promise<'sent' | 'deferred'> {
    const { rec } = spec;
    this.#crash('delete:before-message');
    try {
      await this.pool.deleteThin(rec.deviceId);
    } catch (err) {
      if (!(err instanceof ThinIdNotFoundError)) {
        if (err instanceof ThinDeviceBusyError && spec.deferOnBusy) {
          // Nothing changed in the pool: no commit. Durable, so that the intent cannot come
          // back and be read as done once a later operation commits T.
          const deferred: DeviceRecord = { ...rec, state: 'deleting', deleted: true, lastError: 'busy: deletion deferred' };
          await this.store.saveDevice(deferred);
          this.records.set(rec.hash, deferred);
          w.rec = deferred;
          return 'deferred';
        }
        // Abort: the device stays as it was (durably, for the same reason).
        await this.store.saveDevice(rec);
        throw err;
      }
    }
    return 'sent';
  }
}

type CreateSpec = {
  readonly kind: 'create' | 'snapshot';
  readonly hash: string;
  readonly size: bigint;
  readonly origin: DeviceRecord | undefined;
  readonly originActiveName: string | undefined;
  readonly growTo: number | undefined;
};
type DeleteSpec = { readonly kind: 'delete'; readonly rec: DeviceRecord; readonly deferOnBusy: boolean };
/** One journalled operation, as queued for a batch. */
type JobSpec = CreateSpec | DeleteSpec;

interface Queued {
  readonly spec: JobSpec;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

/** A queued operation inside its batch. */
interface Work extends Queued {
  /** The thin id a create allocated (-1 before). */
  id: number;
  /** The record as last written for it. */
  rec: DeviceRecord | undefined;
  outcome: 'pending' | 'intent' | 'sent' | 'deferred' | 'failed' | 'resolved';
  error?: unknown;
}

function describeSpec(spec: JobSpec): string {
  return spec.kind === 'delete' ? `delete of ${spec.rec.hash || 'base'}` : `${spec.kind} of ${spec.hash || 'base'}`;
}

function describeAction(a: ReconcileAction): string {
  switch (a.action) {
    case 'delete-thin':
      return `delete thin ${a.deviceId} (${a.why})`;
    case 'drop-record':
      return `drop record ${a.hash || 'base'} (${a.why})`;
    case 'mark-ready':
    case 'mark-faulty':
      return `${a.action} ${a.hash || 'base'} (${a.why})`;
    case 'set-transaction-id':
      return `set transaction id ${a.from} → ${a.to} (${a.why})`;
    case 'clear-transaction':
      return 'clear the transaction';
  }
}
