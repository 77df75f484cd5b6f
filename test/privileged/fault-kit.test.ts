// SPDX-License-Identifier: MIT
// The fault kit (devmapper/testing, issue 18) on the real kernel: flakeyOver drops writes while
// down and only then; delayOver holds writes at least the configured time; and ext4 on a
// logWritesOver device, a mark after each fsync, replayed with replayLog onto a zeroed loop device
// up to each mark: the filesystem recovers (mount replays its journal, as fstests does) and
// `e2fsck -fn` finds it clean at every mark, with exactly the files fsynced before that mark; the
// whole log gives the logged device byte for byte; a replay target too small is refused untouched.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../src/errors.js';
import { DmControl, linearTarget } from '../../src/dm/index.js';
import { major, minor, realSyscalls } from '../../src/ioctl/index.js';
import { discardBlockDevice } from '../../src/loop/index.js';
import { delayOver, flakeyOver, logWritesOver, readWriteLog, replayLog } from '../../src/testing/index.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';
import { makeLoop } from '../helpers/loop-files.js';

const test = withSweep(privilegedSuite('fault-kit'));

const MiB = 1 << 20;
let dm: DmControl;
const sys = realSyscalls();
/** The device under flakey and delay, and later the replay target (each replay zeroes it first). */
let data: { dev: string; file: string };
/** The logged device of the ext4 test: fresh, so its whole content is what the log recorded. */
let lwData: { dev: string; file: string };
let log: { dev: string; file: string };

test.before(() => {
  dm = new DmControl();
  // The kernel would load them on the first table load (request_module); one spawn makes it explicit.
  spawnSync('modprobe', ['-a', 'dm-flakey', 'dm-delay', 'dm-log-writes'], { stdio: 'ignore' });
  data = makeLoop('fk-data', 8 * MiB);
  lwData = makeLoop('fk-lwdata', 8 * MiB);
  log = makeLoop('fk-log', 32 * MiB);
});

test.after(() => {
  dm.close();
  for (const l of [data, lwData, log]) if (l) spawnSync('losetup', ['-d', l.dev], { stdio: 'ignore' });
});

/** `len` bytes of a file at `at`, read with pread. */
function pread(path: string, at: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  const fd = openSync(path, 'r');
  try {
    assert.is(readSync(fd, out, 0, len, at), len);
  } finally {
    closeSync(fd);
  }
  return out;
}

/** A buffered write through the device node, then fsync (the write reaches the target, then a flush). */
function writeThrough(path: string, buf: Buffer, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    assert.is(writeSync(fd, buf, 0, buf.length, at), buf.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

test('flakeyOver: writes reach the disk while up, are dropped after goDown and only then, reach it again after goUp', async () => {
  const name = testName('fk-flakey');
  const at = 1 * MiB;
  const block = (b: number): Buffer => Buffer.alloc(4096, b);
  {
    await using f = await flakeyOver(data.dev, { up: 3600, down: 1, mode: 'drop', name, dm });
    assert.is(f.path, `/dev/mapper/${name}`);
    assert.is(f.sectors, 16384n);
    writeThrough(f.path, block(0x11), at);
    // The backing file is read past every block-device cache: what the loop device wrote.
    assert.ok(pread(data.file, at, 4096).equals(block(0x11)), 'intervals (up): the write reached the disk');
    await f.goDown();
    writeThrough(f.path, block(0x22), at); // succeeds: drop_writes completes the bio unwritten
    assert.ok(pread(data.file, at, 4096).equals(block(0x11)), 'down: the write was dropped');
    await f.goUp();
    writeThrough(f.path, block(0x33), at);
    assert.ok(pread(data.file, at, 4096).equals(block(0x33)), 'up again: the write reached the disk');
    assert.match((await dm.tableStatus(name, { mode: 'table' }))[0]?.params ?? '', /^\d+:\d+ 0 4294967295 0 1 drop_writes ?$/);
  }
  assert.is(await dm.findDevice(name), null, 'disposed: the device is gone');
  assert.ok(pread(data.file, at, 4096).equals(block(0x33)), 'the underlying device is untouched by the removal');
});

test('delayOver: a write and its fsync take at least the configured write delay', async () => {
  const name = testName('fk-delay');
  // Write and flush classes both 250 ms: fsync waits for the data write (write class), then sends
  // an empty REQ_PREFLUSH bio (flush class). dm-delay counts in jiffies (msecs_to_jiffies), so
  // each hold can fall short of its milliseconds by less than one tick; the two together cannot
  // fall short of 250 ms. Lower bound only: how much longer it takes depends on the machine.
  await using d = await delayOver(data.dev, { readMs: 0, writeMs: 250, flushMs: 250, name, dm });
  const started = performance.now();
  writeThrough(d.path, Buffer.alloc(4096, 0x5a), 2 * MiB);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 250, `write + fsync took ${elapsed.toFixed(1)} ms, expected at least 250`);
  assert.ok(pread(data.file, 2 * MiB, 4096).equals(Buffer.alloc(4096, 0x5a)), 'and the write arrived');
});

/** sha256 of every regular file in `dir` (lost+found aside), by name. */
function digests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) if (n !== 'lost+found') out[n] = createHash('sha256').update(readFileSync(join(dir, n))).digest('hex');
  return out;
}

test('logWritesOver + replayLog: ext4 replayed to each fsync mark mounts, holds exactly the fsynced files, and e2fsck -fn is clean', async () => {
  const name = testName('fk-logw');
  const mnt = join(testTmpDir(), 'fk-mnt');
  mkdirSync(mnt, { recursive: true });
  /** What was fsynced before each mark. */
  const expected: [string, Record<string, string>][] = [];
  {
    await using lw = await logWritesOver(lwData.dev, log.dev, { name, dm });
    // Everything mkfs writes (discards included) is logged: the replay starts from zeroes. All
    // inode tables and the journal written now, so no ext4lazyinit writes in the background.
    execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', lw.path], { stdio: ['ignore', 'pipe', 'pipe'] });
    await sys.mountAsync(lw.path, mnt, 'ext4', 0n, null);
    try {
      const files: Record<string, string> = {};
      for (let i = 1; i <= 3; i++) {
        const body = Buffer.alloc(48 * 1024 + i * 4096, 0x40 + i);
        body.write(`file ${i}`, 0);
        const fd = openSync(join(mnt, `f${i}`), 'w');
        try {
          writeSync(fd, body);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        // The new name is durable once its directory is fsynced too (POSIX; ext4 commits both anyway).
        const dfd = openSync(mnt, 'r');
        try {
          fsyncSync(dfd);
        } finally {
          closeSync(dfd);
        }
        await lw.mark(`fsync-${i}`);
        files[`f${i}`] = createHash('sha256').update(body).digest('hex');
        expected.push([`fsync-${i}`, { ...files }]);
      }
      const st = await lw.status();
      assert.ok(st.loggingEnabled, 'the log device did not run full');
    } finally {
      await sys.umount2Async(mnt, 0);
    }
  } // removing the target logs dm-log-writes-end and rewrites the super
  assert.is(await dm.findDevice(name), null);
  const decoded = readWriteLog(log.file);
  const marks = decoded.entries.filter((e) => e.mark !== undefined).map((e) => e.mark);
  assert.equal(marks, ['fsync-1', 'fsync-2', 'fsync-3', 'dm-log-writes-end']);
  assert.is(decoded.nrEntries, BigInt(decoded.entries.length));
  assert.ok(decoded.entries.some((e) => e.discard), 'mkfs discarded the device, and the log has it');

  const replay = data;
  const fresh = async (): Promise<void> => {
    // BLKDISCARD on a loop device punches its file's blocks out: it reads back as zeroes.
    await discardBlockDevice(sys, replay.dev, BigInt(8 * MiB));
    assert.ok(pread(replay.file, 0, 8 * MiB).equals(Buffer.alloc(8 * MiB)), 'the replay device is zeroed');
  };
  // Every mark, the kernel's end mark too (the whole log: the device as it was left).
  expected.push(['dm-log-writes-end', expected[expected.length - 1]![1]]);
  for (const [mark, files] of expected) {
    await fresh();
    const r = await replayLog(log.file, replay.dev, { until: { mark } });
    assert.is(r.discardedWith, 'blkdiscard', mark);
    if (mark === 'dm-log-writes-end') {
      assert.is(r.entries, decoded.entries.length);
      assert.ok(pread(replay.file, 0, 8 * MiB).equals(pread(lwData.file, 0, 8 * MiB)), 'the whole log replayed = the logged device');
    }
    await sys.mountAsync(replay.dev, mnt, 'ext4', 0n, null); // recovers the journal
    try {
      assert.equal(digests(mnt), files, `files at ${mark}`);
    } finally {
      await sys.umount2Async(mnt, 0);
    }
    const fsck = spawnSync('e2fsck', ['-fn', replay.dev], { encoding: 'utf8' });
    assert.is(fsck.status, 0, `e2fsck -fn at ${mark}: ${fsck.stdout}${fsck.stderr}`);
  }

  // A block device too small for the log (a 4 MiB linear device over the replay device) is refused
  // before anything is written to it.
  const before = pread(replay.file, 0, 4 * MiB);
  const rdev = sys.stat(replay.dev).rdev;
  const small = testName('fk-small');
  await dm.createDevice(small, [linearTarget(0n, 8192n, { device: { major: major(rdev), minor: minor(rdev) }, offset: 0n })]);
  try {
    const refused = await replayLog(log.file, dm.nodePath(small)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(refused, InvalidArgumentError);
    assert.match((refused as Error).message, /is 4194304 bytes, and the log writes up to byte \d+/);
  } finally {
    await dm.deviceRemove(small);
  }
  assert.ok(pread(replay.file, 0, 4 * MiB).equals(before), 'nothing written');
});

test.run();
