// SPDX-License-Identifier: MIT
// The fault kit's dm-log-writes log reader and replay (src/testing/write-log.ts), on logs built
// byte by byte here as drivers/md/dm-log-writes.c writes them: exact entries, every kind of
// corruption as a typed error, and replay onto a file up to a mark or an entry, byte for byte.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../../src/errors.js';
import { LOG_WRITES_FLAGS } from '../../../src/dm/index.js';
import { buildLogWritesLog, type LogSpec } from '../../helpers/log-writes-log.js';
import { WriteLogCorruptError, readWriteLog, replayLog, type WriteLogProblem } from '../../../src/testing/index.js';

const { flush, fua, discard, mark, metadata } = LOG_WRITES_FLAGS;

type Spec = LogSpec;
const buildLog = buildLogWritesLog;

/** write A (blocks 2-3), flush, mark one, discard block 0-1, FUA|META write B (block 5), mark two. */
const SPECS: Spec[] = [
  { sector: 2n, nrSectors: 2n, flags: 0n, fill: 0xa1 },
  { flags: flush },
  { flags: mark, mark: 'one' },
  { sector: 0n, nrSectors: 2n, flags: discard },
  { sector: 5n, nrSectors: 1n, flags: fua | metadata, fill: 0xb2 },
  { flags: mark, mark: 'two' },
];

const none = { flush: false, fua: false, discard: false, metadata: false };

for (const ss of [512, 4096]) {
  test(`readWriteLog: exact super and entries of a ${ss}-byte-sector log`, () => {
    const B = BigInt(ss);
    const log = readWriteLog(buildLog(ss, SPECS));
    assert.equal(log, {
      version: 1n,
      nrEntries: 6n,
      sectorSize: ss,
      endOffset: 10n * B,
      entries: [
        { index: 0, sector: 2n, nrSectors: 2n, flags: 0n, ...none, dataLen: 0n, offset: B, dataOffset: 2n * B },
        { index: 1, sector: 0n, nrSectors: 0n, flags: 1n, ...none, flush: true, dataLen: 0n, offset: 4n * B, dataOffset: 5n * B },
        { index: 2, sector: 0n, nrSectors: 0n, flags: 8n, ...none, mark: 'one', dataLen: 3n, offset: 5n * B, dataOffset: 6n * B },
        { index: 3, sector: 0n, nrSectors: 2n, flags: 4n, ...none, discard: true, dataLen: 0n, offset: 6n * B, dataOffset: 7n * B },
        { index: 4, sector: 5n, nrSectors: 1n, flags: 18n, ...none, fua: true, metadata: true, dataLen: 0n, offset: 7n * B, dataOffset: 8n * B },
        { index: 5, sector: 0n, nrSectors: 0n, flags: 8n, ...none, mark: 'two', dataLen: 3n, offset: 9n * B, dataOffset: 10n * B },
      ],
    });
  });
}

test('readWriteLog: reads a path as it reads bytes; an empty log (0 entries) has none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wlog-'));
  try {
    const bytes = buildLog(512, SPECS);
    writeFileSync(join(dir, 'log'), bytes);
    assert.equal(readWriteLog(join(dir, 'log')), readWriteLog(bytes));
    assert.equal(readWriteLog(buildLog(512, [])), { version: 1n, nrEntries: 0n, sectorSize: 512, endOffset: 512n, entries: [] });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

function corrupt(bytes: Uint8Array): WriteLogCorruptError {
  try {
    readWriteLog(bytes);
  } catch (e) {
    if (e instanceof WriteLogCorruptError) return e;
    throw e;
  }
  throw new Error('expected a WriteLogCorruptError');
}

function expectCorrupt(bytes: Uint8Array, problem: WriteLogProblem, entry: number | undefined, offset: bigint, message: RegExp): void {
  const e = corrupt(bytes);
  assert.is(e.code, 'EWRITELOGCORRUPT');
  assert.is(e.problem, problem);
  assert.is(e.entry, entry);
  assert.is(e.offset, offset);
  assert.match(e.message, message);
}

test('readWriteLog: a corrupt super block is a typed error', () => {
  const good = buildLog(512, SPECS);
  expectCorrupt(good.subarray(0, 27), 'truncated', undefined, 0n, /super block needs 28 bytes, the log has 27/);
  const magic = Buffer.from(good);
  magic[0] = 0x73;
  expectCorrupt(magic, 'bad-magic', undefined, 0n, /bad magic 0x6a736677736873/);
  const version = Buffer.from(good);
  version.writeBigUInt64LE(2n, 8);
  expectCorrupt(version, 'bad-version', undefined, 8n, /unknown version 2 \(expected 1\)/);
  for (const ss of [0, 256, 1000, 131072]) {
    const size = Buffer.from(good);
    size.writeUInt32LE(ss, 24);
    expectCorrupt(size, 'bad-sector-size', undefined, 24n, new RegExp(`sector size ${ss} is not a power of two`));
  }
});

test('readWriteLog: truncated entries and data, and nr_entries beyond the log, are typed errors', () => {
  const good = buildLog(512, SPECS);
  // nr_entries says 7: entry 6 would start at block 10, where the log ends.
  expectCorrupt(buildLog(512, SPECS, 7n), 'truncated', 6, 10n * 512n, /entry 6 of 7: the log ends inside its header block at byte 5120/);
  // Entry 0's data is blocks 2-3: cut the log inside block 3.
  expectCorrupt(good.subarray(0, 3 * 512 + 100), 'truncated', 0, 512n, /entry 0: the log ends inside its 1024 bytes of data/);
  // A header block cut short.
  expectCorrupt(good.subarray(0, 4 * 512 + 31), 'truncated', 1, 2048n, /entry 1 of 6/);
  // A huge nr_entries stops at the first missing header, not in memory.
  expectCorrupt(buildLog(512, SPECS, 0xffffffffffffffffn), 'truncated', 6, 5120n, /entry 6 of 18446744073709551615/);
});

test('readWriteLog: headers the kernel cannot have written are bad-entry errors', () => {
  const cases: [string, Spec, RegExp][] = [
    ['all zero', { flags: 0n }, /an all-zero header/],
    ['unknown flags', { sector: 1n, nrSectors: 1n, flags: 0x20n }, /unknown flag bits 0x20/],
    ['data_len outside a mark', { flags: flush, dataLen: 4n }, /data_len 4 outside a mark/],
    ['mark with sectors', { flags: mark, mark: 'x', nrSectors: 1n }, /a mark with 1 sectors/],
    ['mark with other flags', { flags: mark | flush, mark: 'x' }, /a mark with other flags \(0x9\)/],
    ['empty mark', { flags: mark, mark: '' }, /mark name length 0 is not in 1\.\.479/],
    ['mark past its block', { flags: mark, mark: 'x', dataLen: 480n }, /mark name length 480 is not in 1\.\.479/],
  ];
  for (const [what, spec, message] of cases) {
    const bytes = buildLog(512, [SPECS[0]!, spec]);
    const e = corrupt(bytes);
    assert.is(e.problem, 'bad-entry', what);
    assert.is(e.entry, 1, what);
    assert.is(e.offset, 4n * 512n, what);
    assert.match(e.message, message, what);
  }
  // Non-zero padding after the header (write_metadata zeroes the block), and after a mark's name.
  const pad = buildLog(512, SPECS);
  pad[4 * 512 + 100] = 1;
  expectCorrupt(pad, 'bad-entry', 1, 2048n, /non-zero byte at 100 of the header block's padding/);
  const afterName = buildLog(512, SPECS);
  afterName[5 * 512 + 32 + 3] = 0x41; // 'oneA' with data_len 3
  expectCorrupt(afterName, 'bad-entry', 2, 2560n, /non-zero byte at 35/);
  const nul = buildLog(512, [{ flags: mark, mark: 'a\0b' }]);
  expectCorrupt(nul, 'bad-entry', 0, 512n, /the mark name contains NUL/);
});

test('readWriteLog: a sector range beyond 2^53 bytes is out-of-range', () => {
  expectCorrupt(buildLog(512, [{ sector: 1n << 50n, nrSectors: 1n, flags: 0n }]), 'out-of-range', 0, 512n, /entry 0: sectors 1125899906842624\+1 lie beyond 2\^53 bytes/);
});

test('readWriteLog: bad input is an InvalidArgumentError, not a read', () => {
  for (const bad of ['', 42, null, { length: 3 }]) assert.throws(() => readWriteLog(bad as never), (e: unknown) => e instanceof InvalidArgumentError);
});

/** A scratch dir with a 8 KiB target file full of 0xee (so writes, zeroes and untouched bytes all show). */
function scratch(): { dir: string; target: string; log: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'wlog-'));
  const target = join(dir, 'target');
  writeFileSync(target, Buffer.alloc(8192, 0xee));
  writeFileSync(join(dir, 'log'), buildLog(512, SPECS));
  return { dir, target, log: join(dir, 'log'), done: () => rmSync(dir, { recursive: true }) };
}

/** What the 8 KiB target holds after replaying SPECS up to entry `last`. */
function expected(last: number): Buffer {
  const img = Buffer.alloc(8192, 0xee);
  if (last >= 0) img.fill(0xa1, 1024, 2048); // write A: sectors 2-3
  if (last >= 3) img.fill(0, 0, 1024); // discard sectors 0-1: zeroes on a file
  if (last >= 4) img.fill(0xb2, 2560, 3072); // write B: sector 5
  return img;
}

test('replayLog: onto a file up to a mark, up to an entry, or all of it, byte for byte', async () => {
  const s = scratch();
  try {
    assert.equal(await replayLog(s.log, s.target, { until: { mark: 'one' } }), { entries: 3, writes: 1, bytesWritten: 1024n, discards: 0, discardedWith: 'none' });
    assert.ok(readFileSync(s.target).equals(expected(2)), 'to mark one: A only');

    writeFileSync(s.target, Buffer.alloc(8192, 0xee));
    assert.equal(await replayLog(readFileSync(s.log), s.target, { until: { entry: 3 } }), { entries: 4, writes: 1, bytesWritten: 1024n, discards: 1, discardedWith: 'zeroes' });
    assert.ok(readFileSync(s.target).equals(expected(3)), 'to entry 3: A, and the discard as zeroes');

    writeFileSync(s.target, Buffer.alloc(8192, 0xee));
    assert.equal(await replayLog(s.log, s.target, { until: { mark: 'two' } }), { entries: 6, writes: 2, bytesWritten: 1536n, discards: 1, discardedWith: 'zeroes' });
    assert.ok(readFileSync(s.target).equals(expected(5)), 'to mark two: everything');

    writeFileSync(s.target, Buffer.alloc(8192, 0xee));
    assert.equal((await replayLog(s.log, s.target)).entries, 6);
    assert.ok(readFileSync(s.target).equals(expected(5)), 'no until: the whole log');

    writeFileSync(s.target, Buffer.alloc(8192, 0xee));
    assert.equal(await replayLog(s.log, s.target, { until: { entry: 0 } }), { entries: 1, writes: 1, bytesWritten: 1024n, discards: 0, discardedWith: 'none' });
    assert.ok(readFileSync(s.target).equals(expected(0)), 'to entry 0: A');

    writeFileSync(s.target, Buffer.alloc(8192, 0xee));
    assert.equal((await replayLog(s.log, s.target, { discards: 'skip' })).discardedWith, 'skipped');
    const skipped = expected(5);
    skipped.fill(0xee, 0, 1024);
    assert.ok(readFileSync(s.target).equals(skipped), "discards: 'skip' leaves the range");
  } finally {
    s.done();
  }
});

test('replayLog: a mark or entry not in the log, a corrupt log or bad options change nothing on the target', async () => {
  const s = scratch();
  try {
    const before = readFileSync(s.target);
    const rejects = async (p: Promise<unknown>): Promise<unknown> => p.then(() => assert.unreachable('expected a rejection'), (e: unknown) => e);
    const noMark = await rejects(replayLog(s.log, s.target, { until: { mark: 'three' } }));
    assert.instance(noMark, InvalidArgumentError);
    assert.match((noMark as Error).message, /no such mark in the log \(its marks: one, two\)/);
    const noEntry = await rejects(replayLog(s.log, s.target, { until: { entry: 6 } }));
    assert.instance(noEntry, InvalidArgumentError);
    assert.match((noEntry as Error).message, /the log has 6 entries \(0\.\.5\)/);
    const torn = buildLog(512, SPECS).subarray(0, 9 * 512 + 1); // B's data complete, mark two's header torn
    const e = await rejects(replayLog(torn, s.target, { until: { entry: 0 } }));
    assert.instance(e, WriteLogCorruptError);
    assert.is((e as WriteLogCorruptError).problem, 'truncated');
    const bad = await rejects(replayLog(s.log, '', { until: { entry: -1 }, discards: 'trim' as never }));
    assert.instance(bad, InvalidArgumentError);
    assert.equal(
      (bad as InvalidArgumentError).problems.map((p) => p.path),
      ['/target', '/options/until', '/options/discards'],
    );
    const both = await rejects(replayLog(s.log, s.target, { until: { mark: 'one', entry: 1 } as never }));
    assert.instance(both, InvalidArgumentError);
    assert.ok(readFileSync(s.target).equals(before), 'the target is untouched');
  } finally {
    s.done();
  }
});

test.run();
