// findByBackingFile's `device` filter (issue 21 §4): the loop device named by a number (from a live
// dm table) is read alone, through /sys/dev/block/MAJ:MIN, and proven bound to the file by its
// LOOP_GET_STATUS64 backing dev/ino as in the scan; the scan without the filter is unchanged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';
import { LoopControl, ensureSparseFile, type LoopAttachment } from '../../../src/loop/index.js';
import { FakeKernel } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';

interface World {
  fake: FakeKernel;
  loops: LoopControl;
  files: string[];
  bound: LoopAttachment[];
  /** LOOP_GET_STATUS64 calls made by `fn`. */
  statuses<T>(fn: () => Promise<T> | T): Promise<{ value: T; statuses: number }>;
}

/** Three files, each bound to a loop device (the fake has loops 0… free before). */
async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const tmp = mkdtempSync(join(tmpdir(), 'loop-by-number-'));
  try {
    const loops = new LoopControl({ devDir: '/fakedev', syscalls: fake, sysfsRoot: fake.sysfsRoot, sleep: async () => {} });
    const files = ['a', 'b', 'c'].map((f) => join(tmp, f));
    const bound: LoopAttachment[] = [];
    for (const f of files) {
      await ensureSparseFile(f, 1n << 20n);
      bound.push(await loops.attach(f, { autoclear: false }));
    }
    const statuses = async <T>(run: () => Promise<T> | T) => {
      const before = fake.callCount;
      const value = await run();
      return { value, statuses: fake.calls.filter((c) => c.index >= before && c.request === 'LOOP_GET_STATUS64').length };
    };
    await fn({ fake, loops, files, bound, statuses });
  } finally {
    fake.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const num = (l: LoopAttachment) => ({ major: l.major, minor: l.minor });
const found = (m: ReadonlyArray<{ index: number; matchedBy: string }>) => m.map((x) => [x.index, x.matchedBy]);

test('device: the named loop alone, one LOOP_GET_STATUS64, matched by inode; the scan reads every bound loop', () =>
  withWorld(async ({ loops, files, bound, statuses }) => {
    const [a] = bound;
    assert.ok(a);
    const direct = await statuses(() => loops.findByBackingFile(files[0]!, { device: num(a) }));
    assert.equal(found(direct.value), [[a.index, 'inode']]);
    assert.is(direct.value[0]?.path, a.path);
    assert.is(direct.statuses, 1);
    const scan = await statuses(() => loops.findByBackingFile(files[0]!));
    assert.equal(scan.value, direct.value, 'the scan finds the same match');
    assert.is(scan.statuses, 3, 'one per bound loop');
    const sync = await statuses(() => loops.findByBackingFileSync(files[0]!, { device: num(a) }));
    assert.equal(sync.value, direct.value);
    assert.is(sync.statuses, 1);
  }));

test('device: a loop bound to another file, an unbound loop, a number of no loop: no match', () =>
  withWorld(async ({ loops, files, bound, statuses }) => {
    const [a, b] = bound;
    assert.ok(a && b);
    // b is bound, to another file: its backing dev/ino is not a's file.
    const other = await statuses(() => loops.findByBackingFile(files[0]!, { device: num(b) }));
    assert.equal(other.value, []);
    assert.is(other.statuses, 1);
    // The same with the offset filter: a's own loop at another offset is not a match.
    assert.equal(await loops.findByBackingFile(files[0]!, { device: num(a), offset: 512 }), []);
    // Numbers of no block device (a loop minor past the last loop, an unused major): nothing read.
    for (const device of [{ major: 7, minor: 4000 }, { major: 259, minor: 0 }]) {
      const none = await statuses(() => loops.findByBackingFile(files[0]!, { device }));
      assert.equal(none.value, [], JSON.stringify(device));
      assert.is(none.statuses, 0);
    }
    a.close();
    assert.is(await loops.detach(a), 'detached');
    const freed = await statuses(() => loops.findByBackingFile(files[0]!, { device: num(a) }));
    assert.equal(freed.value, [], 'a free loop is no match');
    assert.is(freed.statuses, 0);
  }));

test('device: the other loops are not read (a broken sysfs entry of another loop fails the scan only)', () =>
  withWorld(async ({ fake, loops, files, bound }) => {
    const [a, , c] = bound;
    assert.ok(a && c && fake.sysfsRoot);
    writeFileSync(join(fake.sysfsRoot, 'block', `loop${c.index}`, 'dev'), 'garbage\n');
    assert.equal(found(await loops.findByBackingFile(files[0]!, { device: num(a) })), [[a.index, 'inode']]);
    await rejects(loops.findByBackingFile(files[0]!), KernelOutputError);
  }));

test('device: a deleted backing file is matched on the path of that one loop', () =>
  withWorld(async ({ loops, files, bound }) => {
    const [a, b] = bound;
    assert.ok(a && b);
    unlinkSync(files[0]!);
    assert.equal(found(await loops.findByBackingFile(files[0]!, { device: num(a) })), [[a.index, 'path']]);
    assert.equal(await loops.findByBackingFile(files[0]!, { device: num(b) }), []);
  }));

test('device: not a pair of non-negative integers → InvalidArgumentError, nothing read', () =>
  withWorld(async ({ loops, files, statuses }) => {
    for (const device of [{ major: -1, minor: 0 }, { major: 7, minor: 1.5 }, { major: 7 }, null, '7:0']) {
      const bad = { device } as unknown as Parameters<LoopControl['findByBackingFile']>[1];
      const r = await statuses(async () => {
        await rejects(loops.findByBackingFile(files[0]!, bad), InvalidArgumentError);
        assert.throws(() => loops.findByBackingFileSync(files[0]!, bad), (e: unknown) => e instanceof InvalidArgumentError);
      });
      assert.is(r.statuses, 0, JSON.stringify(device));
    }
  }));

test.run();
