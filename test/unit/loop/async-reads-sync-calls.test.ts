// SPDX-License-Identifier: MIT
// Issue #17 §2, no synchronous I/O on the event loop in the async API: LoopControl's reads
// (status, sizeOf, getFree, list, findByBackingFile) and the sysfs readers, recorded on the
// FakeKernel at the two seams a read can block the thread through: the Syscalls seam (sync
// `ioctl`/`stat` against `ioctlAsync`/`statAsync`) and node:fs's synchronous calls. The async
// forms make no synchronous ioctl, stat or node:fs call; what they keep on the thread is the
// open(2)/close(2) of the device nodes (the seam has no asynchronous open; the
// autoextend-sync-calls test allows the same). The Sync twins, recorded the same way, make the
// synchronous calls: the recorder sees them, so the empty lists above it mean something.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopControl, listBoundLoops, listBoundLoopsSync, listLoopIndexes, listLoopIndexesSync, listLoops, listLoopsSync, readLoopSysfs, readLoopSysfsSync } from '../../../src/loop/index.js';
import { FakeKernel } from '../../../src/testing/index.js';
import { FS_SYNC_CALLS, recordFs, recordingKernel, syncCallRecorder } from '../../helpers/sync-calls.js';

const DEV = '/fakedev';
const MiB = 1024 * 1024;

/** Synchronous seam calls the async forms may make: the device nodes' open and close. */
const NODE_CALLS = new Set(['open', 'close']);

/** node:fs's synchronous calls, and the realpath LoopControl's path fallback uses. */
const FS_SYNC = [...FS_SYNC_CALLS, 'realpathSync', 'readlinkSync'];

test('async reads: ioctls and stats on the worker, no synchronous node:fs call; the Sync twins do call them', async () => {
  const tmp = nodeFs.mkdtempSync(join(tmpdir(), 'loop-async-reads-'));
  const fake = new FakeKernel({ sysfs: true, devDir: DEV });
  const rec = syncCallRecorder();
  const restore = recordFs(rec, FS_SYNC);
  try {
    const sysfsRoot = fake.sysfsRoot!;
    const loops = new LoopControl({ syscalls: recordingKernel(fake, rec), devDir: DEV, sysfsRoot });
    const file = join(tmp, 'backing');
    nodeFs.writeFileSync(file, Buffer.alloc(MiB));
    const a = await loops.attach(file, { autoclear: false, hold: false });
    const gone = join(tmp, 'gone');
    nodeFs.writeFileSync(gone, Buffer.alloc(MiB));
    await loops.attach(gone, { autoclear: false, hold: false });
    nodeFs.unlinkSync(gone); // findByBackingFile(gone) takes the sysfs path fallback (realpath)

    rec.on = true;
    const asyncAnswers = [
      await loops.status(a.path),
      await loops.sizeOf(a.path),
      await loops.getFree(),
      await loops.list(),
      await loops.list({ all: true }),
      await loops.findByBackingFile(file),
      await loops.findByBackingFile(gone),
      await readLoopSysfs(a.index, sysfsRoot),
      await listLoopIndexes(sysfsRoot),
      await listLoops(sysfsRoot),
      await listBoundLoops(sysfsRoot),
    ];
    rec.on = false;
    const asyncSys = rec.syscalls.splice(0);
    const asyncFs = rec.fs.splice(0);

    rec.on = true;
    const syncAnswers = [
      loops.statusSync(a.path),
      loops.sizeOfSync(a.path),
      loops.getFreeSync(),
      loops.listSync(),
      loops.listSync({ all: true }),
      loops.findByBackingFileSync(file),
      loops.findByBackingFileSync(gone),
      readLoopSysfsSync(a.index, sysfsRoot),
      listLoopIndexesSync(sysfsRoot),
      listLoopsSync(sysfsRoot),
      listBoundLoopsSync(sysfsRoot),
    ];
    rec.on = false;

    assert.equal(syncAnswers, asyncAnswers, 'each Sync twin answers what its async form answers');
    assert.equal((asyncAnswers[5] as { matchedBy: string }[]).map((m) => m.matchedBy), ['inode']);
    assert.equal((asyncAnswers[6] as { matchedBy: string }[]).map((m) => m.matchedBy), ['path']);

    assert.equal(asyncSys.filter((c) => !c.includes('Async') && !NODE_CALLS.has(c)), [], 'no synchronous ioctl or stat');
    assert.equal(asyncFs, [], 'no synchronous node:fs call');
    // status, sizeOf, getFree, then one status per bound device for findByBackingFile(file)
    // (two bound devices; the deleted file's lookup makes none: it cannot be stat'ed).
    assert.equal(asyncSys.filter((c) => c.startsWith('ioctlAsync')), [
      'ioctlAsync LOOP_GET_STATUS64',
      'ioctlAsync BLKGETSIZE64',
      'ioctlAsync LOOP_CTL_GET_FREE',
      'ioctlAsync LOOP_GET_STATUS64',
      'ioctlAsync LOOP_GET_STATUS64',
    ]);
    assert.equal(asyncSys.filter((c) => c === 'statAsync').length, 2, 'the backing files stat()ed on the worker');

    // The recorder works: the Sync twins' calls are on the thread.
    assert.equal(rec.syscalls.filter((c) => c.startsWith('ioctl ')), [
      'ioctl LOOP_GET_STATUS64',
      'ioctl BLKGETSIZE64',
      'ioctl LOOP_CTL_GET_FREE',
      'ioctl LOOP_GET_STATUS64',
      'ioctl LOOP_GET_STATUS64',
    ]);
    assert.equal(rec.syscalls.filter((c) => c === 'stat').length, 2);
    const fsNames = new Set(rec.fs.map((c) => c.split(' ')[0]));
    assert.ok(fsNames.has('readFileSync') && fsNames.has('readdirSync') && fsNames.has('realpathSync.native'), rec.fs.join(' '));
  } finally {
    restore();
    fake.dispose();
    nodeFs.rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
