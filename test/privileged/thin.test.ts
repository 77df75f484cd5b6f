// SPDX-License-Identifier: MIT
// ThinPool / ThinDevice against the real dm-thin target, over loop devices on sparse files.
// Oracle: after teardown, thin_check must pass on the metadata device and thin_dump must list
// exactly the thin ids the test expects.
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DmControl } from '../../src/dm/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import {
  PoolBusyError,
  PoolMetadataMismatchError,
  PoolMetadataNotEmptyError,
  PoolOutOfDataSpaceError,
  PoolShrinkError,
  ThinDevice,
  ThinDeviceBusyError,
  ThinIdInUseError,
  ThinIdNotFoundError,
  ThinPool,
  TransactionIdMismatchError,
  type ThinPoolWorkingStatus,
} from '../../src/thin/index.js';
import { makeLoop, run } from '../helpers/loop-files.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';
import { rejects } from '../helpers/rejects.js';

const MiB = 1024 * 1024;
const test = withSweep(privilegedSuite('thin'));



/** Grows a loop's backing file and tells the loop driver (LOOP_SET_CAPACITY via losetup -c). */
function growLoop(loop: { dev: string; file: string }, bytes: number): void {
  run('truncate', ['-s', String(bytes), loop.file]);
  run('losetup', ['-c', loop.dev]);
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function dropCaches(): void {
  run('sync', []);
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

/** thin_check must pass and thin_dump must list exactly `ids` (the pool must be gone). */
function oracle(metadataDev: string, ids: number[]): void {
  const check = spawnSync('thin_check', [metadataDev], { encoding: 'utf8' });
  assert.is(check.status, 0, `thin_check failed: ${check.stdout}${check.stderr}`);
  const xml = run('thin_dump', [metadataDev]);
  const found = [...xml.matchAll(/<device dev_id="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  assert.equal(found, [...ids].sort((a, b) => a - b), `thin_dump device ids:\n${xml.slice(0, 2000)}`);
}

async function working(pool: ThinPool): Promise<ThinPoolWorkingStatus> {
  const s = await pool.status();
  if (s.kind !== 'working') throw new Error(`pool status is ${s.kind}`);
  return s;
}


/** Cleanup actions run last-in first-out, each one attempted even when an earlier one fails. */
class Stack {
  readonly #fns: Array<() => unknown> = [];
  push(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async unwind(): Promise<void> {
    const errors: unknown[] = [];
    for (const fn of this.#fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

interface Rig {
  dm: DmControl;
  meta: { dev: string; file: string };
  data: { dev: string; file: string };
  pool: ThinPool;
  cleanup: Stack;
}

async function rig(dataBytes: number, features: { errorIfNoSpace?: boolean } = {}): Promise<Rig> {
  const cleanup = new Stack();
  const dm = new DmControl();
  cleanup.push(() => dm.close());
  const meta = makeLoop('meta', 16 * MiB);
  cleanup.push(() => run('losetup', ['-d', meta.dev]));
  const data = makeLoop('data', dataBytes);
  cleanup.push(() => run('losetup', ['-d', data.dev]));
  const pool = await ThinPool.create(dm, {
    name: testName('pool'),
    metadataDev: meta.dev,
    dataDev: data.dev,
    dataBlockSize: 128,
    lowWaterMark: 0,
    features,
    metadata: 'new',
    zeroMetadata: true,
  });
  return { dm, meta, data, pool, cleanup };
}

test('data through a snapshot: copy-on-write in both directions, snapshot taken while writing', async () => {
  const r = await rig(512 * MiB);
  const { pool, cleanup } = r;
  const mounts: string[] = [];
  let ok = false;
  try {
    const origin = await ThinDevice.create(pool, 1);
    await origin.activate(testName('origin'), BigInt((256 * MiB) / 512));
    const originPath = origin.path as string;
    run('mkfs.ext4', ['-q', originPath]);
    const mntO = join(testTmpDir(), 'mnt-origin');
    const mntS = join(testTmpDir(), 'mnt-snap');
    mkdirSync(mntO, { recursive: true });
    mkdirSync(mntS, { recursive: true });
    run('mount', [originPath, mntO]);
    mounts.push(mntO);
    writeFileSync(join(mntO, 'a.bin'), randomBytes(3 * MiB));
    writeFileSync(join(mntO, 'b.bin'), randomBytes(2 * MiB));
    run('sync', []);
    const sumA = sha256(join(mntO, 'a.bin'));
    const sumB = sha256(join(mntO, 'b.bin'));

    // A writer keeps the origin busy while the snapshot is taken (suspend freezes the fs).
    const writer = spawn('sh', ['-c', `i=0; while [ $i -lt 64 ]; do dd if=/dev/urandom of=${mntO}/bg.$i bs=64k count=8 conv=fsync 2>/dev/null; i=$((i+1)); done`]);
    const writerDone = new Promise<number | null>((res) => writer.on('exit', (code) => res(code)));
    await new Promise((res) => setTimeout(res, 150));
    const snap = await origin.snapshot(2);
    assert.is(await writerDone, 0, 'background writer failed');
    const st = await origin.status();
    assert.is(st.kind, 'working');

    await snap.activate(testName('snap'), BigInt((256 * MiB) / 512));
    run('mount', [snap.path as string, mntS]);
    mounts.push(mntS);
    assert.is(sha256(join(mntS, 'a.bin')), sumA, 'snapshot sees a.bin as it was');
    assert.is(sha256(join(mntS, 'b.bin')), sumB, 'snapshot sees b.bin as it was');

    // Origin changes after the snapshot do not reach the snapshot …
    writeFileSync(join(mntO, 'a.bin'), randomBytes(3 * MiB));
    const sumA2 = sha256(join(mntO, 'a.bin'));
    assert.is.not(sumA2, sumA);
    // … and snapshot changes do not reach the origin.
    writeFileSync(join(mntS, 'b.bin'), randomBytes(2 * MiB));
    const sumB2 = sha256(join(mntS, 'b.bin'));
    dropCaches();
    assert.is(sha256(join(mntS, 'a.bin')), sumA, 'snapshot a.bin unchanged after origin write');
    assert.is(sha256(join(mntO, 'b.bin')), sumB, 'origin b.bin unchanged after snapshot write');
    assert.is(sha256(join(mntO, 'a.bin')), sumA2);
    assert.is(sha256(join(mntS, 'b.bin')), sumB2);

    for (const m of mounts.splice(0).reverse()) run('umount', [m]);
    const snapStatus = await snap.status();
    assert.ok(snapStatus.kind === 'working' && snapStatus.mappedSectors > 0n);
    await snap.deactivate();
    await origin.deactivate();
    await pool.remove();
    oracle(r.meta.dev, [1, 2]);
    ok = true;
  } finally {
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
    if (!ok) spawnSync('dmsetup', ['remove_all', '--force']); // the sweeper reports leftovers
    await cleanup.unwind();
  }
});

test('space: used data blocks follow writes, copy-on-write and deletes exactly', async () => {
  const r = await rig(64 * MiB);
  const { pool, cleanup } = r;
  try {
    const blocks = (s: ThinPoolWorkingStatus): bigint => s.usedDataBlocks;
    assert.is((await working(pool)).totalDataBlocks, 1024n); // 64 MiB / 64 KiB
    assert.is(blocks(await working(pool)), 0n);
    const t1 = await ThinDevice.create(pool, 1);
    await t1.activate(testName('t1'), BigInt((64 * MiB) / 512));
    run('dd', ['if=/dev/urandom', `of=${t1.path}`, 'bs=1M', 'count=16', 'oflag=direct', 'status=none']);
    assert.is(blocks(await working(pool)), 256n, '16 MiB = 256 blocks of 64 KiB');
    const t1s = await t1.status();
    assert.equal(t1s, { kind: 'working', mappedSectors: BigInt((16 * MiB) / 512), highestMappedSector: BigInt((16 * MiB) / 512 - 1) });

    const t2 = await t1.snapshot(2);
    assert.is(blocks(await working(pool)), 256n, 'a snapshot shares every block');
    run('dd', ['if=/dev/urandom', `of=${t1.path}`, 'bs=1M', 'count=4', 'oflag=direct', 'status=none']);
    assert.is(blocks(await working(pool)), 320n, 'overwriting 4 MiB of a shared origin copies 64 blocks');

    await rejects(t1.delete(), ThinDeviceBusyError);
    await rejects(pool.deleteThin(1), ThinDeviceBusyError); // the kernel's own EBUSY, mapped
    await t1.deactivate();
    await t1.delete();
    assert.is(blocks(await working(pool)), 256n, 'deleting the origin frees only its unshared blocks');
    await t2.delete();
    assert.is(blocks(await working(pool)), 0n, 'deleting the last sharer frees everything');
    await rejects(t2.delete(), ThinIdNotFoundError);
    await pool.remove();
    oracle(r.meta.dev, []);
  } finally {
    await cleanup.unwind();
  }
});

test('out of data space: error_if_no_space fails writes fast, status and typed error say so; resize recovers', async () => {
  const r = await rig(32 * MiB, { errorIfNoSpace: true });
  const { pool, cleanup } = r;
  try {
    assert.is((await working(pool)).noSpacePolicy, 'error_if_no_space');
    const t = await ThinDevice.create(pool, 7);
    await t.activate(testName('fill'), BigInt((128 * MiB) / 512));
    const started = Date.now();
    const dd = spawnSync('dd', ['if=/dev/zero', `of=${t.path}`, 'bs=1M', 'count=128', 'oflag=direct', 'status=none'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const elapsed = Date.now() - started;
    assert.ok(dd.error === undefined, `dd did not finish in time (writes queued?): ${String(dd.error)}`);
    assert.is.not(dd.status, 0, 'writing past the pool must fail');
    assert.ok(elapsed < 20_000, `failing took ${elapsed} ms`);
    const s = await working(pool);
    assert.is(s.mode, 'out_of_data_space');
    assert.is(s.usedDataBlocks, s.totalDataBlocks);
    const err = await rejects(t.assertWritable(), PoolOutOfDataSpaceError);
    assert.is(err.pool, pool.name);

    // Growing the data device brings the pool back to read-write.
    await rejects(pool.resize({ dataLengthSectors: 1024n }), PoolShrinkError);
    growLoop(r.data, 64 * MiB);
    await pool.resize();
    const grown = await working(pool);
    assert.is(grown.totalDataBlocks, 1024n, 'exactly 64 MiB / 64 KiB blocks');
    assert.is(grown.mode, 'rw');
    assert.is(pool.lengthSectors, BigInt((64 * MiB) / 512));

    // A grown metadata device is picked up on the reload too (4 KiB metadata blocks).
    assert.is(grown.totalMetadataBlocks, 4096n);
    growLoop(r.meta, 32 * MiB);
    await pool.resize({ metadataDev: r.meta.dev });
    assert.is((await working(pool)).totalMetadataBlocks, 8192n);
    await t.deactivate();
    await pool.remove();
    oracle(r.meta.dev, [7]);
  } finally {
    await cleanup.unwind();
  }
});

test('transaction ids round-trip; reuse brings the pool back with its metadata', async () => {
  const r = await rig(64 * MiB);
  const { dm, pool, cleanup } = r;
  try {
    assert.is((await working(pool)).transactionId, 0n);
    await pool.setTransactionId(0n, 5n);
    assert.is((await working(pool)).transactionId, 5n);
    const e = await rejects(pool.setTransactionId(0n, 6n), TransactionIdMismatchError);
    assert.is(e.expected, 0n);
    assert.is(e.actual, 5n);
    assert.is((await working(pool)).transactionId, 5n);

    await pool.reserveMetadataSnap();
    assert.ok((await working(pool)).heldMetadataRoot !== null);
    await pool.releaseMetadataSnap();
    assert.is((await working(pool)).heldMetadataRoot, null);

    await ThinDevice.create(pool, 3);
    await rejects(pool.createThin(3), ThinIdInUseError);
    const opened = await ThinPool.open(dm, pool.name);
    assert.equal(opened.params, pool.params);
    assert.is(opened.lengthSectors, pool.lengthSectors);
    await pool.remove();

    const again = { name: testName('pool'), metadataDev: r.meta.dev, dataDev: r.data.dev, dataBlockSize: 128, lowWaterMark: 0 };
    await rejects(ThinPool.create(dm, { ...again, metadata: 'new' }), PoolMetadataNotEmptyError);
    const mm = await rejects(ThinPool.create(dm, { ...again, dataBlockSize: 256, metadata: 'reuse' }), PoolMetadataMismatchError);
    assert.is(mm.reason, 'data-block-size');
    const reused = await ThinPool.create(dm, { ...again, metadata: 'reuse' });
    assert.is((await working(reused)).transactionId, 5n, 'the transaction id survived');
    await rejects(reused.createThin(3), ThinIdInUseError);
    await reused.remove();
    oracle(r.meta.dev, [3]);
  } finally {
    await cleanup.unwind();
  }
});

test('missing ids and busy pools are typed: activate unknown id, remove pool with an active thin', async () => {
  const r = await rig(64 * MiB);
  const { dm, pool, cleanup } = r;
  try {
    const ghost = ThinDevice.of(pool, 99);
    const name = testName('ghost');
    await rejects(ghost.activate(name, 2048n), ThinIdNotFoundError);
    assert.is(await dm.findDevice(name), null, 'the failed activation was rolled back');
    await rejects(pool.createSnap(10, 99), ThinIdNotFoundError);

    const t = await ThinDevice.create(pool, 4);
    await t.activate(testName('busy'), 2048n);
    // A snapshot onto its own id is refused before anything is suspended.
    await rejects(t.snapshot(4), InvalidArgumentError);
    assert.is((await dm.deviceInfo(t.activeName as string)).suspended, false, 'origin left suspended');
    // A failing create_snap (id in use) still resumes the suspended origin.
    await pool.createSnap(5, 4, { origin: t.activeName as string }); // origin named by dm name
    assert.is((await dm.deviceInfo(t.activeName as string)).suspended, false, 'origin left suspended');
    await rejects(pool.createSnap(5, 4, { origin: t }), ThinIdInUseError);
    assert.is((await dm.deviceInfo(t.activeName as string)).suspended, false, 'origin left suspended');
    await rejects(pool.remove(), PoolBusyError);
    assert.ok(await dm.findDevice(pool.name), 'pool still there');
    await t.deactivate();
    await pool.remove();
    oracle(r.meta.dev, [4, 5]);
  } finally {
    await cleanup.unwind();
  }
});

test.run();
