// SPDX-License-Identifier: MIT
// ensureSparseFile: create, grow, never shrink, refuse non-regular files; in a temp dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, lstatSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSparseFile } from '../../../src/loop/sparse.js';
import {
  BackingFileLinkError,
  BackingFileNotFoundError,
  BackingFileNotRegularError,
  SparseFileShrinkError,
} from '../../../src/loop/errors.js';
import { InvalidArgumentError } from '../../../src/errors.js';

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'devmapper-sparse-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

test('creates a missing file at the requested size, sparse', async () => {
  const p = join(dir, 'data');
  const r = await ensureSparseFile(p, 64 * MiB);
  assert.is(r.created, true);
  assert.is(r.grown, false);
  assert.is(r.apparentSize, BigInt(64 * MiB));
  assert.ok(r.allocatedSize < BigInt(MiB), `allocated ${r.allocatedSize} should be tiny`);
  const st = statSync(p);
  assert.is(st.size, 64 * MiB);
  assert.is(st.mode & 0o777, 0o600);
});

test('honours the mode option for new files', async () => {
  const p = join(dir, 'm');
  await ensureSparseFile(p, 4096, { mode: 0o640 });
  assert.is(statSync(p).mode & 0o777, 0o640 & ~process.umask());
});

test('grows an existing smaller file and keeps its content', async () => {
  const p = join(dir, 'g');
  writeFileSync(p, 'hello');
  const r = await ensureSparseFile(p, 10n * BigInt(MiB));
  assert.is(r.created, false);
  assert.is(r.grown, true);
  assert.is(r.apparentSize, 10n * BigInt(MiB));
  const { readFileSync } = await import('node:fs');
  assert.is(readFileSync(p).subarray(0, 5).toString(), 'hello');
});

test('same size: neither created nor grown', async () => {
  const p = join(dir, 's');
  await ensureSparseFile(p, 8192);
  const r = await ensureSparseFile(p, 8192n);
  assert.equal([r.created, r.grown, r.apparentSize], [false, false, 8192n]);
});

test('never shrinks: typed error carrying the current size', async () => {
  const p = join(dir, 'big');
  await ensureSparseFile(p, 2 * MiB);
  try {
    await ensureSparseFile(p, MiB);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, SparseFileShrinkError);
    const e = err as SparseFileShrinkError;
    assert.is(e.code, 'ESPARSESHRINK');
    assert.is(e.currentSize, BigInt(2 * MiB));
    assert.is(e.requestedSize, BigInt(MiB));
    assert.match(e.message, String(2 * MiB));
  }
  assert.is(statSync(p).size, 2 * MiB);
});

test('refuses a directory', async () => {
  const p = join(dir, 'adir');
  mkdirSync(p);
  try {
    await ensureSparseFile(p, 4096);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, BackingFileNotRegularError);
    assert.is((err as BackingFileNotRegularError).fileType, 'directory');
  }
});

test('refuses a character device', async () => {
  try {
    await ensureSparseFile('/dev/null', 4096);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, BackingFileNotRegularError);
    assert.is((err as BackingFileNotRegularError).fileType, 'character device');
  }
});

test('missing parent directory: BackingFileNotFoundError with the ENOENT as cause', async () => {
  try {
    await ensureSparseFile(join(dir, 'nope', 'file'), 4096);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, BackingFileNotFoundError);
    assert.is(((err as Error).cause as { code?: string }).code, 'ENOENT');
  }
});

test('rejects bad sizes before touching the disk', async () => {
  for (const bad of [-1, 1.5, Number.NaN, -1n, 2n ** 60n]) {
    try {
      await ensureSparseFile(join(dir, 'x'), bad as number);
      assert.unreachable(`size ${String(bad)} should have been refused`);
    } catch (err) {
      assert.instance(err, InvalidArgumentError);
    }
  }
  assert.throws(() => statSync(join(dir, 'x')));
});

test('noFollow: a link to an existing file is refused and its target left as it was', async () => {
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');
  const link = join(dir, 'data');
  symlinkSync(victim, link);
  try {
    await ensureSparseFile(link, 64 * MiB, { noFollow: true });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, BackingFileLinkError);
    assert.is((err as BackingFileLinkError).code, 'EBACKINGLINK');
    assert.is((err as BackingFileLinkError).path, link);
  }
  assert.is(statSync(victim).size, 9);
  assert.is(readFileSync(victim, 'utf8'), 'precious\n');
  assert.ok(lstatSync(link).isSymbolicLink());
});

test('noFollow: a dangling link is refused, its target not created', async () => {
  const target = join(dir, 'would-be-created');
  const link = join(dir, 'data');
  symlinkSync(target, link);
  try {
    await ensureSparseFile(link, 4096, { noFollow: true });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, BackingFileLinkError);
  }
  assert.is(existsSync(target), false);
});

test('noFollow: a link to a FIFO is refused as a link, without opening the FIFO', async () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const link = join(dir, 'data');
  symlinkSync(fifo, link);
  try {
    await ensureSparseFile(link, 4096, { noFollow: true });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, BackingFileLinkError);
  }
});

test('noFollow: a regular file is created and grown as without it', async () => {
  const p = join(dir, 'data');
  const r = await ensureSparseFile(p, 8192, { noFollow: true });
  assert.equal([r.created, r.grown, r.apparentSize], [true, false, 8192n]);
  const g = await ensureSparseFile(p, 16384, { noFollow: true });
  assert.equal([g.created, g.grown, g.apparentSize], [false, true, 16384n]);
});

test('without noFollow a link is followed (the default, for callers that name a link on purpose)', async () => {
  const target = join(dir, 'target');
  writeFileSync(target, 'x');
  const link = join(dir, 'link');
  symlinkSync(target, link);
  const r = await ensureSparseFile(link, 4096);
  assert.is(r.apparentSize, 4096n);
  assert.is(statSync(target).size, 4096);
});

test.run();
