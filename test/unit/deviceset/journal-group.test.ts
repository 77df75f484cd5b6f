// SPDX-License-Identifier: MIT
// The journal's group commit (issue 21 §3): concurrent addDevice / deleteDevice calls queued on
// the pool lock run as one batch: every intent renamed, ONE directory fsync, every message, ONE
// commit (set_transaction_id), every lazy write. Counted through the metadata store's fs seam
// (recording-fs.ts), on the FakeKernel. Before the group commit 32 concurrent addDevice calls of
// one parent ran one after the other (the parent's device lock was exclusive): 32 × (2 file + 1
// directory fsyncs) = 96 fsyncs and 32 set_transaction_id. Now: 64 + 1 = 65 fsyncs, one commit.
// And a crash at each point of the batched path (its own crash points batch:before-intent-sync and
// batch:before-commit, and a lazy write lost after the commit) is recovered: every uncommitted
// create rolled back, every delete rolled forward, every committed create kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimulatedCrash } from '../../../src/testing/index.js';
import type { CrashPointName } from '../../../src/deviceset/crash.js';
import type { DeviceSet } from '../../../src/deviceset/device-set.js';
import { World, checkInvariants, writeData, type DataMarks } from '../sweep/harness.js';
import { RecordingFs } from './recording-fs.js';

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

test('32 concurrent addDevice calls of one parent: one batch, 65 fsyncs (one alone: 3), one commit', async () => {
  const w = new World();
  try {
    const fs = new RecordingFs();
    const set = await w.init({ metadataFs: fs });
    const pool = (): bigint => w.fake.pool(set.poolName)!.transactionId;
    fs.take();
    const tx0 = pool();
    await set.addDevice('one', '');
    const one = { cost: fs.take(), commits: pool() - tx0 };
    const tx1 = pool();
    const hashes = names('g', 32);
    const recs = await Promise.all(hashes.map((h) => set.addDevice(h, '')));
    const many = { cost: fs.take(), commits: pool() - tx1 };
    assert.equal(one, { cost: { fileFsyncs: 2, dirFsyncs: 1, renames: 2, unlinks: 0 }, commits: 1n });
    // 32 intents (file fsync + rename each) and one directory fsync; 32 lazy ready writes.
    assert.equal(many, { cost: { fileFsyncs: 64, dirFsyncs: 1, renames: 64, unlinks: 0 }, commits: 1n });
    assert.ok(many.cost.fileFsyncs + many.cost.dirFsyncs < 32 * (one.cost.fileFsyncs + one.cost.dirFsyncs));
    // Every device made, ready, at the one transaction id, on its own thin id (the base is 1, 'one' 2).
    assert.equal(recs.map((r) => r.deviceId), Array.from({ length: 32 }, (_, i) => i + 3));
    assert.equal(set.list(), [...hashes, 'one'].sort());
    for (const h of hashes) {
      const disk = JSON.parse(readFileSync(join(w.root, 'metadata', h), 'utf8'));
      assert.equal([disk.state, disk.transactionId], ['ready', Number(tx1) + 1], h);
    }
    assert.equal([...w.fake.pool(set.poolName)!.thins.keys()].sort((a, b) => a - b), Array.from({ length: 34 }, (_, i) => i + 1));
    await set.shutdown();
  } finally {
    w.dispose();
  }
});

test('32 concurrent deleteDevice calls: one batch, 33 fsyncs (one alone: 2), one commit', async () => {
  const w = new World();
  try {
    const fs = new RecordingFs();
    const set = await w.init({ metadataFs: fs });
    const hashes = names('d', 33);
    await Promise.all(hashes.map((h) => set.addDevice(h, '')));
    const pool = (): bigint => w.fake.pool(set.poolName)!.transactionId;
    fs.take();
    const tx0 = pool();
    assert.is(await set.deleteDevice('d32'), 'deleted');
    const one = { cost: fs.take(), commits: pool() - tx0 };
    const tx1 = pool();
    const outcomes = await Promise.all(hashes.slice(0, 32).map((h) => set.deleteDevice(h)));
    const many = { cost: fs.take(), commits: pool() - tx1 };
    assert.equal(one, { cost: { fileFsyncs: 1, dirFsyncs: 1, renames: 1, unlinks: 1 }, commits: 1n });
    assert.equal(many, { cost: { fileFsyncs: 32, dirFsyncs: 1, renames: 32, unlinks: 32 }, commits: 1n });
    assert.equal(outcomes, Array.from({ length: 32 }, () => 'deleted'));
    assert.equal(set.list(), []);
    assert.equal([...w.fake.pool(set.poolName)!.thins.keys()], [1]);
    await set.shutdown();
  } finally {
    w.dispose();
  }
});

test('a batch writes its records concurrently: its 8 intent fsyncs are in flight together, then its 8 ready fsyncs', async () => {
  // Each file fsync is held until 8 are held at once (or 500 ms pass): records written one after
  // another never get there, and the maximum in flight stays 1.
  const w = new World();
  try {
    const fs = new RecordingFs(undefined, { count: 8, timeoutMs: 500 });
    const set = await w.init({ metadataFs: fs });
    await set.addDevice('one', '');
    fs.maxFileSyncsInFlight = 0;
    fs.take();
    const hashes = names('p', 8);
    const recs = await Promise.all(hashes.map((h) => set.addDevice(h, '')));
    assert.is(fs.maxFileSyncsInFlight, 8);
    assert.equal(fs.take(), { fileFsyncs: 16, dirFsyncs: 1, renames: 16, unlinks: 0 });
    assert.equal(recs.map((r) => [r.deviceId, r.state]), hashes.map((_, i) => [i + 3, 'ready']));
    fs.maxFileSyncsInFlight = 0;
    assert.equal(await Promise.all(hashes.map((h) => set.deleteDevice(h))), hashes.map(() => 'deleted'));
    // The deletes' intents (8 file fsyncs) overlap too; their lazy unlinks have none.
    assert.is(fs.maxFileSyncsInFlight, 8);
    assert.equal(set.list(), ['one']);
    await set.shutdown();
  } finally {
    w.dispose();
  }
});

/** A hook that, once armed, kills the "process" at the `occurrence`-th hit of `point` (as safety.test.ts). */
function crashAt(w: World, point: CrashPointName, occurrence = 1): { hook: (name: CrashPointName) => void; arm: () => void; dead: () => boolean } {
  let hits = 0;
  let armed = false;
  let dead = false;
  return {
    arm: () => void (armed = true),
    dead: () => dead,
    hook: (name) => {
      if (!armed || name !== point || ++hits !== occurrence) return;
      // Dead: no syscall and no metadata write after this one.
      dead = true;
      w.fake.crashAfter(0);
      throw new SimulatedCrash(-1, 'before', `kill -9 at ${name}`);
    },
  };
}

interface Scenario {
  readonly name: string;
  readonly point: CrashPointName;
  readonly occurrence?: number;
  /** Lose every rename and unlink since the last directory fsync (and reboot). */
  readonly powerCut: boolean;
  /** The names the power cut loses. */
  readonly lost: readonly string[];
  /** What runs concurrently in the dying process: hashes to add (of 'a') and to delete. */
  readonly add: readonly string[];
  readonly del: readonly string[];
  /** After recovery: the hashes that must exist and those that must not. */
  readonly kept: readonly string[];
  readonly gone: readonly string[];
  /** The transaction ids the crash leaves above the committed one (none: the batch committed). */
  readonly inFlight: number;
}

const SCENARIOS: readonly Scenario[] = [
  // Before the one directory fsync: the intents may or may not be on disk; nothing was sent.
  { name: 'intents renamed, not synced', point: 'batch:before-intent-sync', powerCut: false, lost: [], add: ['c0', 'c1', 'c2'], del: [], kept: ['a', 'b'], gone: ['c0', 'c1', 'c2'], inFlight: 3 },
  { name: 'intents renamed, not synced, lost', point: 'batch:before-intent-sync', powerCut: true, lost: ['c0', 'c1', 'c2'], add: ['c0', 'c1', 'c2'], del: [], kept: ['a', 'b'], gone: ['c0', 'c1', 'c2'], inFlight: 0 },
  // Some messages sent: the batch is uncommitted, every create is rolled back.
  { name: 'second message', point: 'snapshot:before-message', occurrence: 2, powerCut: true, lost: [], add: ['c0', 'c1', 'c2'], del: [], kept: ['a', 'b'], gone: ['c0', 'c1', 'c2'], inFlight: 3 },
  { name: 'every message sent, not committed', point: 'batch:before-commit', powerCut: true, lost: [], add: ['c0', 'c1', 'c2'], del: [], kept: ['a', 'b'], gone: ['c0', 'c1', 'c2'], inFlight: 3 },
  // Committed, the lazy writes not landed: they run concurrently, each started right after its
  // crash point, so at the second one the first has not landed and the power cut finds nothing to
  // lose. Every intent at the committed id reads as done.
  { name: 'committed, ready writes lost', point: 'snapshot:before-ready', occurrence: 2, powerCut: true, lost: [], add: ['c0', 'c1', 'c2'], del: [], kept: ['a', 'b', 'c0', 'c1', 'c2'], gone: [], inFlight: 0 },
  // Deletes in one batch: rolled forward whether the batch committed or not.
  { name: 'deletes, not committed', point: 'batch:before-commit', powerCut: true, lost: [], add: [], del: ['e0', 'e1', 'e2'], kept: ['a', 'b'], gone: ['e0', 'e1', 'e2'], inFlight: 3 },
  { name: 'deletes, committed, lazy unlinks lost', point: 'delete:before-remove-record', occurrence: 2, powerCut: true, lost: [], add: [], del: ['e0', 'e1', 'e2'], kept: ['a', 'b'], gone: ['e0', 'e1', 'e2'], inFlight: 0 },
];

for (const s of SCENARIOS) {
  test(`a crash in a batch (${s.name}: ${s.point}${s.occurrence ? `@${s.occurrence}` : ''}${s.powerCut ? ', power cut' : ''}) is recovered`, async () => {
    const w = new World();
    try {
      const crash = crashAt(w, s.point, s.occurrence);
      const fs = new RecordingFs(crash.dead);
      const set: DeviceSet = await w.init({ metadataFs: fs, crashPoint: crash.hook });
      const marks: DataMarks = new Map();
      await set.addDevice('a', '');
      marks.set('a', await writeData(w, set, 'a', 0, 3));
      await set.addDevice('b', 'a');
      marks.set('b', await writeData(w, set, 'b', 5, 2));
      for (const h of s.del) await set.addDevice(h, 'a');
      const committed = w.fake.pool(set.poolName)!.transactionId;
      fs.pending = [];
      crash.arm();
      const results = await Promise.allSettled([...s.add.map((h) => set.addDevice(h, 'a')), ...s.del.map((h) => set.deleteDevice(h))]);
      assert.ok(crash.dead(), `the crash point was reached: ${results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok")).join("; ")}`);
      assert.ok(results.some((r) => r.status === 'rejected'));
      // Sorted: the records are written concurrently, so their renames land in any order.
      assert.equal(s.powerCut ? fs.powerCut().sort() : [], [...s.lost].sort());
      // The records a new process finds above the committed id: the open transactions.
      const onDisk = [...s.add, ...s.del].map((h) => {
        try {
          return JSON.parse(readFileSync(join(w.root, 'metadata', h), 'utf8')) as { transactionId: number; state: string; deleted: boolean };
        } catch {
          return undefined;
        }
      });
      const open = onDisk.filter((r) => r && BigInt(r.transactionId) > w.fake.pool(set.poolName)!.transactionId && (r.state === 'creating' || (r.state === 'deleting' && !r.deleted)));
      assert.is(open.length, s.inFlight);
      w.die(true);
      const again = await w.init();
      assert.equal(await checkInvariants(w, again, marks, new Set(s.gone)), []);
      for (const h of s.kept) assert.ok(again.hasDevice(h), `${h} kept`);
      for (const h of s.gone) assert.is(again.hasDevice(h), false, `${h} gone`);
      const after = w.fake.pool(again.poolName)!.transactionId;
      assert.ok(after === committed || after === committed + 1n, `transaction id ${after} (was ${committed})`);
      await again.shutdown();
    } finally {
      w.dispose();
    }
  });
}

test.run();
