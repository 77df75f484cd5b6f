// SPDX-License-Identifier: MIT
// sysfs readers against a fake /sys tree in a temp dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  listBoundLoops,
  listBoundLoopsSync,
  listLoopIndexes,
  listLoopIndexesSync,
  listLoops,
  listLoopsSync,
  parseBackingFile,
  parseDevAttr,
  parseLoopName,
  readLoopSysfs,
  readLoopSysfsSync,
} from '../../../src/loop/sysfs.js';
import { KernelOutputError } from '../../../src/errors.js';

let root = '';

interface FakeLoop {
  index: number;
  size?: string;
  ro?: string;
  lbs?: string;
  loop?: Record<string, string>;
}

function mkLoop(l: FakeLoop): void {
  const d = join(root, 'block', `loop${l.index}`);
  mkdirSync(join(d, 'queue'), { recursive: true });
  writeFileSync(join(d, 'dev'), `7:${l.index}\n`);
  writeFileSync(join(d, 'size'), `${l.size ?? '0'}\n`);
  writeFileSync(join(d, 'ro'), `${l.ro ?? '0'}\n`);
  if (l.lbs !== undefined) writeFileSync(join(d, 'queue', 'logical_block_size'), `${l.lbs}\n`);
  if (l.loop) {
    mkdirSync(join(d, 'loop'));
    for (const [k, v] of Object.entries(l.loop)) writeFileSync(join(d, 'loop', k), `${v}\n`);
  }
}

const bound = (file: string, extra: Record<string, string> = {}) => ({
  backing_file: file,
  offset: '0',
  sizelimit: '0',
  autoclear: '1',
  partscan: '0',
  dio: '0',
  ...extra,
});

test.before.each(() => {
  root = mkdtempSync(join(tmpdir(), 'devmapper-sysfs-'));
  mkdirSync(join(root, 'block'));
});
test.after.each(() => rmSync(root, { recursive: true, force: true }));

test('parseLoopName accepts loopN only', () => {
  assert.is(parseLoopName('loop0'), 0);
  assert.is(parseLoopName('loop123'), 123);
  assert.is(parseLoopName('loop0p1'), undefined);
  assert.is(parseLoopName('loop-control'), undefined);
  assert.is(parseLoopName('vda'), undefined);
});

test('parseDevAttr and parseBackingFile', () => {
  assert.equal(parseDevAttr('7:12\n'), { major: 7, minor: 12 });
  assert.throws(() => parseDevAttr('garbage'), (e: unknown) => e instanceof KernelOutputError);
  assert.equal(parseBackingFile('/tmp/a b (deleted)'), { backingFile: '/tmp/a b', deleted: true });
  assert.equal(parseBackingFile('/tmp/x'), { backingFile: '/tmp/x', deleted: false });
});

test('reads a bound device with every attribute', async () => {
  mkLoop({
    index: 3,
    size: '65536',
    ro: '1',
    lbs: '4096',
    loop: bound('/var/lib/data file', { offset: '1048576', sizelimit: '33554432', autoclear: '0', partscan: '1', dio: '1' }),
  });
  const info = await readLoopSysfs(3, root);
  assert.equal(readLoopSysfsSync(3, root), info, 'the Sync twin reads the same');
  assert.equal(info, {
    name: 'loop3',
    index: 3,
    major: 7,
    minor: 3,
    sizeSectors: 65536n,
    readOnly: true,
    logicalBlockSize: 4096,
    bound: true,
    binding: {
      backingFile: '/var/lib/data file',
      backingFileDeleted: false,
      offset: 1048576n,
      sizeLimit: 33554432n,
      autoclear: false,
      partscan: true,
      directIo: true,
    },
  });
});

test('unbound device: no loop/ directory', async () => {
  mkLoop({ index: 0, lbs: '512' });
  const info = await readLoopSysfs(0, root);
  assert.equal(readLoopSysfsSync(0, root), info);
  assert.is(info?.bound, false);
  assert.is(info?.binding, undefined);
  assert.is(info?.sizeSectors, 0n);
});

test('missing device → undefined; old kernel without dio → directIo false', async () => {
  assert.is(await readLoopSysfs(9, root), undefined);
  assert.is(readLoopSysfsSync(9, root), undefined);
  const loop = bound('/f') as Record<string, string>;
  delete loop['dio'];
  mkLoop({ index: 1, loop });
  assert.is((await readLoopSysfs(1, root))?.binding?.directIo, false);
  assert.is(readLoopSysfsSync(1, root)?.binding?.directIo, false);
});

test('half-vanished binding (detached mid-read) reads as unbound', async () => {
  mkLoop({ index: 2, loop: { backing_file: '/f' } });
  assert.is((await readLoopSysfs(2, root))?.bound, false);
  assert.is(readLoopSysfsSync(2, root)?.bound, false);
});

test('garbage attribute → KernelOutputError with the raw text', async () => {
  mkLoop({ index: 4, loop: bound('/f', { offset: 'lots' }) });
  try {
    await readLoopSysfs(4, root);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, KernelOutputError);
    assert.is((err as KernelOutputError).raw, 'lots');
  }
  assert.throws(() => readLoopSysfsSync(4, root), (err: unknown) => err instanceof KernelOutputError && err.raw === 'lots');
});

test('enumeration uses /sys/block entries, so gaps hide nothing', async () => {
  mkLoop({ index: 0 });
  mkLoop({ index: 2, loop: bound('/a') });
  mkLoop({ index: 10, loop: bound('/b (deleted)') });
  mkLoop({ index: 7 });
  mkdirSync(join(root, 'block', 'vda'));
  assert.equal(await listLoopIndexes(root), [0, 2, 7, 10]);
  assert.equal(listLoopIndexesSync(root), [0, 2, 7, 10]);
  const all = await listLoops(root);
  assert.equal(all.map((l) => l.index), [0, 2, 7, 10]);
  assert.equal(listLoopsSync(root), all);
  const b = await listBoundLoops(root);
  assert.equal(listBoundLoopsSync(root), b);
  assert.equal(b.map((l) => [l.index, l.binding.backingFile, l.binding.backingFileDeleted]), [
    [2, '/a', false],
    [10, '/b', true],
  ]);
});

test('no /sys/block at all → empty', async () => {
  assert.equal(await listLoopIndexes(join(root, 'nothing')), []);
  assert.equal(listLoopIndexesSync(join(root, 'nothing')), []);
  assert.equal(await listLoops(join(root, 'nothing')), []);
});

test.run();
