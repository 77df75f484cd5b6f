// SPDX-License-Identifier: MIT
// The volume targets snapshot-origin, snapshot, snapshot-merge and mirror (issue 18, "volumes") on
// the real kernel, over 4 MiB loop devices. Writes through the origin copy the old chunk into the
// COW device and the snapshot keeps the old data (bytes compared on the dm devices and on the COW
// device itself); the status usage fields are parsed and exact; tables read back through DmControl
// equal our encoders' output and what dmsetup prints; a snapshot-merge completes and leaves the
// origin with the snapshot's data. A 2-leg mirror with a core log resynchronises leg 2 from leg 1
// (bytes compared on the leg) and reports `AA` and a full sync ratio; a disk log with features.
import * as assert from 'uvu/assert';
import { release } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DmControl,
  formatMirrorParams,
  formatSnapshotOriginParams,
  formatSnapshotParams,
  formatTable,
  isSnapshotMergeComplete,
  mirrorTarget,
  parseMirrorParams,
  parseMirrorStatus,
  parseSnapshotOriginParams,
  parseSnapshotOriginStatus,
  parseSnapshotParams,
  parseSnapshotStatus,
  snapshotMergeTarget,
  snapshotOriginTarget,
  snapshotTarget,
  type DevNum,
  type MirrorParams,
  type MirrorStatus,
  type SnapshotParams,
  type SnapshotStatus,
  type TargetLine,
} from '../../src/dm/index.js';
import { errnoCode } from '../../src/errors.js';
import { BLKFLSBUF, realSyscalls } from '../../src/ioctl/index.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';
import { rdevOf } from '../helpers/loop-files.js';

const test = withSweep(privilegedSuite('targets-snapshot'));

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const [kMajor = 0, kMinor = 0] = release().split(/[.-]/).map(Number);
const KERNEL = `${kMajor}.${kMinor}`;


/** 4 MiB = 8192 sectors per loop device. */
const SECTORS = 8192n;
/** 8 sectors = 4 KiB chunks. */
const CHUNK = 8;
let dm: DmControl;
const sys = realSyscalls();
/** origin (mirror leg A), cow (mirror leg B), mirror log. */
const loops: { dev: string; file: string; num: DevNum }[] = [];

test.before(() => {
  dm = new DmControl();
  spawnSync('modprobe', ['-a', 'dm-snapshot', 'dm-mirror'], { stdio: 'ignore' });
  // Few processes: each spawn costs in the TCG guest. The mirror reuses the first two as legs.
  for (const n of ['origin', 'cow', 'mlog']) {
    const file = join(testTmpDir(), `snap-${n}.img`);
    closeSync(openSync(file, 'w'));
    truncateSync(file, n === 'mlog' ? 1 << 20 : 4 << 20);
    const dev = sh('losetup', ['-f', '--show', file]).trim();
    loops.push({ dev, file, num: rdevOf(dev) });
  }
});

test.after(() => {
  dm.close();
  for (const l of loops) spawnSync('losetup', ['-d', l.dev], { stdio: 'ignore' });
});

function pwrite(path: string, data: Buffer, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    assert.is(writeSync(fd, data, 0, data.length, at), data.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads `length` bytes at `at`, after dropping the block device's page cache (BLKFLSBUF): the kernel wrote below it. */
function pread(path: string, length: number, at: number): Buffer {
  const out = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    sys.ioctl(fd, BLKFLSBUF, 0, 'BLKFLSBUF');
    assert.is(readSync(fd, out, 0, length, at), length);
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Table (mode 'table') and status of a one-target device, each checked against dmsetup's output. */
async function readBack(name: string): Promise<{ table: TargetLine; status: TargetLine }> {
  const table = await dm.tableStatus(name, { mode: 'table' });
  assert.is(sh('dmsetup', ['table', name]), formatTable(table), 'dmsetup table = our table text');
  const status = await dm.tableStatus(name);
  assert.is(sh('dmsetup', ['status', name]).trimEnd(), formatTable(status).trimEnd(), 'dmsetup status = our status text');
  assert.is(table.length, 1);
  assert.is(status.length, 1);
  return { table: table[0]!, status: status[0]! };
}

async function statusOf(name: string): Promise<string> {
  const s = await dm.tableStatus(name);
  assert.is(s.length, 1);
  return s[0]!.params;
}

/**
 * Polls a status until `done` (merge, mirror recovery: kernel work in the background that raises
 * no event we could wait for). Not a timed assertion: the bound only stops a hung test, generous
 * for a loaded TCG guest.
 */
async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await read();
    if (done(v)) return v;
    await sleep(50);
  }
  throw new Error(`${what}: not done after 600 polls`);
}

const fill = (n: number, byte: number): Buffer => Buffer.alloc(n, byte);

/**
 * The target versions of the two CI kernels. Their table and status texts for everything this file
 * loads are the same on both (every assertion below runs unchanged on 6.1 and 6.12); the versions
 * are what tells them apart. Other kernels: the targets only have to exist.
 */
const TARGET_VERSIONS: Record<string, Record<string, readonly [number, number, number]>> = {
  '6.1': { 'snapshot-origin': [1, 9, 0], snapshot: [1, 16, 0], 'snapshot-merge': [1, 5, 0], mirror: [1, 14, 0] },
  '6.12': { 'snapshot-origin': [1, 9, 0], snapshot: [1, 16, 0], 'snapshot-merge': [1, 5, 0], mirror: [1, 14, 0] },
};

test('the snapshot and mirror targets are available, at the versions of the CI kernels', async () => {
  const want = TARGET_VERSIONS[KERNEL];
  for (const t of ['snapshot-origin', 'snapshot', 'snapshot-merge', 'mirror']) {
    const v = await dm.getTargetVersion(t);
    assert.ok(v !== null, `${t} target`);
    if (want !== undefined) assert.equal(v, want[t], `${t} version on ${KERNEL}`);
  }
});

test('snapshot: origin writes copy-on-write into the COW device, the snapshot keeps the old data; merge gives the origin the snapshot', async () => {
  const [o, c] = [loops[0]!, loops[1]!];
  const originName = testName('origin');
  const snapName = testName('snap');
  // The origin holds 0xaa in its first 64 KiB before any snapshot exists.
  pwrite(o.dev, fill(65536, 0xaa), 0);
  const p: SnapshotParams = { origin: o.num, cow: c.num, store: 'persistent', chunkSize: CHUNK };
  // The snapshot first (then the origin): a snapshot-origin only copies for snapshots registered
  // on its device; LVM's order is the same.
  await dm.createDevice(snapName, [snapshotTarget(0n, SECTORS, p)]);
  await dm.createDevice(originName, [snapshotOriginTarget(0n, SECTORS, { device: o.num })]);
  try {
    const orig = await readBack(originName);
    assert.equal(orig.table, { start: 0n, length: SECTORS, type: 'snapshot-origin', params: formatSnapshotOriginParams({ device: o.num }) });
    assert.is(orig.table.params, `${o.num.major}:${o.num.minor}`);
    assert.equal(parseSnapshotOriginParams(orig.table.params), { device: o.num });
    assert.equal(parseSnapshotOriginStatus(orig.status.params), {});

    const snap = await readBack(snapName);
    assert.equal(snap.table, { start: 0n, length: SECTORS, type: 'snapshot', params: formatSnapshotParams(p) });
    assert.is(snap.table.params, `${o.num.major}:${o.num.minor} ${c.num.major}:${c.num.minor} P 8`);
    assert.equal(parseSnapshotParams(snap.table.params), p);
    // A new persistent store: header chunk + first metadata area allocated, both metadata
    // (persistent_usage: next_free = 2 chunks; (current_area + 1 + 1) chunks of metadata).
    const fresh: SnapshotStatus = { state: 'active', allocatedSectors: 16n, totalSectors: SECTORS, metadataSectors: 16n };
    assert.equal(parseSnapshotStatus(snap.status.params), fresh);
    assert.is(snap.status.params, '16/8192 16');

    // Two chunks written through the origin: each is copied to the COW first.
    pwrite(`/dev/mapper/${originName}`, fill(2 * CHUNK * 512, 0x55), 0);
    assert.equal(parseSnapshotStatus(await statusOf(snapName)), { ...fresh, allocatedSectors: 32n });
    assert.ok(pread(`/dev/mapper/${originName}`, 8192, 0).equals(fill(8192, 0x55)), 'origin has the new data');
    assert.ok(pread(`/dev/mapper/${snapName}`, 65536, 0).equals(fill(65536, 0xaa)), 'snapshot keeps the old data');
    assert.ok(pread(o.dev, 8192, 0).equals(fill(8192, 0x55)), 'the origin device itself has the new data');
    // On the COW device (dm-snap-persistent.c layout): chunk 0 the header (magic "SnAp", valid,
    // version 1, chunk size), chunk 1 the first metadata area ({old_chunk, new_chunk} u64 pairs),
    // chunks 2 and 3 the copied old data.
    const cow = pread(c.dev, 4 * CHUNK * 512, 0);
    assert.equal([cow.readUInt32LE(0), cow.readUInt32LE(4), cow.readUInt32LE(8), cow.readUInt32LE(12)], [0x70416e53, 1, 1, CHUNK]);
    const area = cow.subarray(CHUNK * 512, 2 * CHUNK * 512);
    const pairs = [0, 1, 2].map((i) => [area.readBigUInt64LE(16 * i), area.readBigUInt64LE(16 * i + 8)]);
    assert.equal(pairs[2], [0n, 0n], 'two exceptions, then the end marker');
    assert.equal(pairs.slice(0, 2).map((x) => x[0]).sort(), [0n, 1n], 'old chunks 0 and 1');
    assert.equal(pairs.slice(0, 2).map((x) => x[1]).sort(), [2n, 3n], 'copied into chunks 2 and 3');
    assert.ok(cow.subarray(2 * CHUNK * 512).equals(fill(2 * CHUNK * 512, 0xaa)), 'the old data is on the COW device');

    // A write to the snapshot itself (chunk 8, at 32 KiB) is allocated on the COW device too.
    pwrite(`/dev/mapper/${snapName}`, fill(CHUNK * 512, 0x77), 8 * CHUNK * 512);
    assert.equal(parseSnapshotStatus(await statusOf(snapName)), { ...fresh, allocatedSectors: 40n });
    assert.ok(pread(`/dev/mapper/${originName}`, CHUNK * 512, 8 * CHUNK * 512).equals(fill(CHUNK * 512, 0xaa)), 'origin unchanged by a snapshot write');

    // Merge (snapshot.rst, "How snapshot-merge is used by LVM2"): the snapshot device goes, the
    // origin's table becomes snapshot-merge over the same COW; on resume the chunks are copied back.
    await dm.deviceRemove(snapName);
    const merge = snapshotMergeTarget(0n, SECTORS, p);
    await dm.tableLoad(originName, [merge]);
    await dm.deviceResume(originName);
    const m = await readBack(originName);
    assert.equal(m.table, { ...merge });
    const done = await until('merge', async () => parseSnapshotStatus(await statusOf(originName)), isSnapshotMergeComplete);
    assert.equal(done, { state: 'active', allocatedSectors: 16n, totalSectors: SECTORS, metadataSectors: 16n });
    assert.ok(pread(`/dev/mapper/${originName}`, 65536, 0).equals(Buffer.concat([fill(32768, 0xaa), fill(CHUNK * 512, 0x77), fill(65536 - 32768 - CHUNK * 512, 0xaa)])), 'origin = the snapshot');
    assert.ok(pread(o.dev, 65536, 0).equals(pread(`/dev/mapper/${originName}`, 65536, 0)), 'merged onto the origin device itself');
    // After the merge the origin goes back to a plain snapshot-origin (LVM: linear).
    await dm.tableLoad(originName, [snapshotOriginTarget(0n, SECTORS, { device: o.num })]);
    await dm.deviceResume(originName);
  } finally {
    await dm.deviceRemove(snapName).catch(() => undefined);
    await dm.deviceRemove(originName);
  }
});

test('snapshot: table variants (PO, N, features) round-trip exactly; the kernel refuses what the builder refuses', async () => {
  const [o, c] = [loops[0]!, loops[1]!];
  const name = testName('snapvar');
  // A fresh COW header each time (a persistent header's chunk size would override the table's).
  const variants: SnapshotParams[] = [
    { origin: o.num, cow: c.num, store: 'transient', chunkSize: 16 },
    { origin: o.num, cow: c.num, store: 'persistent-overflow', chunkSize: 32 },
    { origin: o.num, cow: c.num, store: 'persistent', chunkSize: 8, discardZeroesCow: true, discardPassdownOrigin: true },
    { origin: o.num, cow: c.num, store: 'transient', chunkSize: 8, discardZeroesCow: true },
  ];
  for (const p of variants) {
    pwrite(c.dev, fill(4096, 0), 0);
    await dm.createDevice(name, [snapshotTarget(0n, SECTORS, p)]);
    try {
      const { table, status } = await readBack(name);
      assert.equal(table, { start: 0n, length: SECTORS, type: 'snapshot', params: formatSnapshotParams(p) });
      assert.equal(parseSnapshotParams(table.params), p);
      // transient_usage: nothing allocated, no metadata; persistent: header + first area.
      const used = p.store === 'transient' ? 0n : 2n * BigInt(p.chunkSize);
      assert.equal(parseSnapshotStatus(status.params), { state: 'active', allocatedSectors: used, totalSectors: SECTORS, metadataSectors: used });
    } finally {
      await dm.deviceRemove(name);
    }
  }
  // discard_passdown_origin alone: parse_snapshot_features refuses it (EINVAL), as the builder does.
  const raw = `${o.num.major}:${o.num.minor} ${c.num.major}:${c.num.minor} P 8 1 discard_passdown_origin`;
  assert.throws(() => parseSnapshotParams(raw));
  const refused = await dm.createDevice(name, [{ start: 0n, length: SECTORS, type: 'snapshot', params: raw }]).catch((e: unknown) => e);
  assert.is(errnoCode(refused), 'EINVAL');
  assert.equal(await dm.listDevices({ namePrefix: name }), []);
});

test('mirror: 2 legs + core log resynchronise leg 2 from leg 1; status AA and sync ratio; disk log with features', async () => {
  const [a, b, l] = [loops[0]!, loops[1]!, loops[2]!];
  const name = testName('mirror');
  pwrite(a.dev, fill(65536, 0xc3), 0);
  const core: MirrorParams = { log: { type: 'core', regionSize: 1024 }, legs: [{ device: a.num, offset: 0n }, { device: b.num, offset: 0n }] };
  await dm.createDevice(name, [mirrorTarget(0n, SECTORS, core)]);
  try {
    const st = await until('mirror sync', async () => parseMirrorStatus(await statusOf(name)), (s: MirrorStatus) => s.inSync);
    const { table, status } = await readBack(name);
    assert.equal(table, { start: 0n, length: SECTORS, type: 'mirror', params: formatMirrorParams(core) });
    assert.is(table.params, `core 1 1024 2 ${a.num.major}:${a.num.minor} 0 ${b.num.major}:${b.num.minor} 0`);
    assert.equal(parseMirrorParams(table.params), core);
    const want: MirrorStatus = {
      legs: [{ device: a.num, health: 'A' }, { device: b.num, health: 'A' }],
      syncedRegions: 8n,
      totalRegions: 8n,
      inSync: true,
      log: { type: 'core' },
    };
    assert.equal(st, want);
    assert.equal(parseMirrorStatus(status.params), want);
    assert.is(status.params, `2 ${a.num.major}:${a.num.minor} ${b.num.major}:${b.num.minor} 8/8 1 AA 1 core`);
    assert.ok(pread(b.dev, 65536, 0).equals(fill(65536, 0xc3)), 'leg 2 was recovered from leg 1');
    // Writes go to both legs.
    pwrite(`/dev/mapper/${name}`, fill(4096, 0x3c), 1 << 20);
    assert.ok(pread(a.dev, 4096, 1 << 20).equals(fill(4096, 0x3c)));
    assert.ok(pread(b.dev, 4096, 1 << 20).equals(fill(4096, 0x3c)));

    // A disk log, nosync (every region in sync at once), handle_errors + keep_log; then core sync.
    const disk: MirrorParams = { ...core, log: { type: 'disk', device: l.num, regionSize: 512, sync: 'nosync' }, handleErrors: true, keepLog: true };
    const coreSync: MirrorParams = { ...core, log: { type: 'core', regionSize: 2048, sync: 'sync' }, handleErrors: true };
    for (const [p, regions] of [[disk, 16n], [coreSync, 4n]] as const) {
      await dm.tableLoad(name, [mirrorTarget(0n, SECTORS, p)]);
      await dm.deviceResume(name);
      const s = await until('mirror sync', async () => parseMirrorStatus(await statusOf(name)), (x: MirrorStatus) => x.inSync);
      const rb = await readBack(name);
      assert.equal(rb.table, { start: 0n, length: SECTORS, type: 'mirror', params: formatMirrorParams(p) });
      assert.equal(parseMirrorParams(rb.table.params), p);
      const log = p.log.type === 'disk' ? { type: 'disk' as const, device: l.num, health: 'A' as const } : { type: 'core' as const };
      assert.equal(s, { ...want, syncedRegions: regions, totalRegions: regions, log });
    }
    const last = await readBack(name);
    assert.is(last.table.params, `core 2 2048 sync 2 ${a.num.major}:${a.num.minor} 0 ${b.num.major}:${b.num.minor} 0 1 handle_errors`);
  } finally {
    await dm.deviceRemove(name);
  }
});

test.run();
