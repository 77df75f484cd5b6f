// SPDX-License-Identifier: MIT
// flakey, delay and log-writes: params codecs (the kernel's table form), validation listing every
// problem, status parsers, the log-writes mark message and on-disk log decoder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import { buildLogWritesLog } from '../../helpers/log-writes-log.js';
import {
  decodeLogWritesLog,
  delayTarget,
  flakeyParamsProblems,
  flakeyTarget,
  formatDelayParams,
  formatFlakeyParams,
  formatLogWritesParams,
  logWritesMarkMessage,
  logWritesTarget,
  parseDelayParams,
  parseDelayStatus,
  parseFlakeyParams,
  parseFlakeyStatus,
  parseLogWritesParams,
  parseLogWritesStatus,
  replayLogWrites,
  WriteLogCorruptError,
  type FlakeyParams,
  type LogWritesReplayOp,
} from '../../../src/dm/index.js';
import { d, isInvalid, isKernelOutput, problemPaths } from './target-helpers.js';

/** The problem paths of an InvalidArgumentError thrown by fn. */

// ---- flakey ----

test('flakey: encodes the kernel table form (every field followed by a blank, count always present)', () => {
  const base = { device: d(7, 0), offset: 0n, upInterval: 180, downInterval: 0 };
  assert.is(formatFlakeyParams(base), '7:0 0 180 0 0 ');
  assert.is(formatFlakeyParams({ ...base, upInterval: 0, downInterval: 180, writes: 'drop' }), '7:0 0 0 180 1 drop_writes ');
  assert.is(formatFlakeyParams({ ...base, writes: 'error' }), '7:0 0 180 0 1 error_writes ');
  assert.is(
    formatFlakeyParams({ ...base, offset: 2048n, corruptBioByte: { byte: 32, direction: 'write', value: 1, flags: 0 } }),
    '7:0 2048 180 0 5 corrupt_bio_byte 32 w 1 0 ',
  );
  assert.is(
    formatFlakeyParams({ ...base, writes: 'drop', corruptBioByte: { byte: 1, direction: 'read', value: 255, flags: 4294967295 } }),
    '7:0 0 180 0 6 drop_writes corrupt_bio_byte 1 r 255 4294967295 ',
  );
  assert.equal(flakeyTarget(8n, 16n, base), { start: 8n, length: 16n, type: 'flakey', params: '7:0 0 180 0 0 ' });
});

test('flakey: parses the kernel form and what flakey_ctr accepts, back to the same params', () => {
  const p: FlakeyParams = { device: d(253, 4), offset: 8n, upInterval: 5, downInterval: 7, writes: 'drop', corruptBioByte: { byte: 3, direction: 'read', value: 7, flags: 0 } };
  assert.equal(parseFlakeyParams('253:4 8 5 7 6 drop_writes corrupt_bio_byte 3 r 7 0 '), p);
  // case-insensitive names and direction (strcasecmp), any order, any blanks
  assert.equal(parseFlakeyParams('  253:4\t8 5 7 6 CORRUPT_BIO_BYTE 3 R 7 0 Drop_Writes'), p);
  assert.equal(parseFlakeyParams('7:0 0 1 1'), { device: d(7, 0), offset: 0n, upInterval: 1, downInterval: 1 });
  assert.equal(parseFlakeyParams('7:0 0 1 1 0'), { device: d(7, 0), offset: 0n, upInterval: 1, downInterval: 1 });
  assert.equal(parseFlakeyParams('7:0 0 0 9 1 error_writes '), { device: d(7, 0), offset: 0n, upInterval: 0, downInterval: 9, writes: 'error' });
  assert.is(formatFlakeyParams(parseFlakeyParams('7:0 0 9 1 6 CORRUPT_BIO_BYTE 3 R 7 0 DROP_WRITES')), '7:0 0 9 1 6 drop_writes corrupt_bio_byte 3 r 7 0 ');
});

test('flakey: error_reads, as 6.12 reports a table given without features, round-trips', () => {
  const text = '7:0 0 9 1 2 error_reads error_writes ';
  const p = parseFlakeyParams(text);
  assert.equal(p, { device: { major: 7, minor: 0 }, offset: 0n, upInterval: 9, downInterval: 1, writes: 'error', errorReads: true });
  assert.is(formatFlakeyParams(p), text);
  assert.is(formatFlakeyParams({ ...p, writes: 'drop' }), '7:0 0 9 1 2 error_reads drop_writes ');
  assert.equal(parseFlakeyParams('7:0 0 9 1 1 ERROR_READS'), { device: { major: 7, minor: 0 }, offset: 0n, upInterval: 9, downInterval: 1, errorReads: true });
  assert.throws(() => parseFlakeyParams('7:0 0 9 1 2 error_reads error_reads'), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => formatFlakeyParams({ ...p, errorReads: false as never }), (e: unknown) => e instanceof InvalidArgumentError);
});

test('flakey: malformed or invalid table text is refused with InvalidArgumentError', () => {
  for (const bad of [
    '',
    '7:0 0 1',
    '/dev/loop0 0 1 1',
    '7:0 -1 1 1',
    '7:0 0 x 1',
    '7:0 0 4294967296 0',
    '7:0 0 0 0', // total interval zero
    '7:0 0 4294967295 1', // interval overflow
    '7:0 0 1 1 1', // count 1, nothing follows
    '7:0 0 1 1 7 a b c d e f g', // count above 6
    '7:0 0 1 1 2 drop_writes', // count does not match
    '7:0 0 1 1 1 random_read_corrupt', // 6.5+ only
    '7:0 0 1 1 2 drop_writes error_writes',
    '7:0 0 1 1 2 drop_writes drop_writes',
    '7:0 0 1 1 5 corrupt_bio_byte 0 r 1 0', // Nth byte counts from 1
    '7:0 0 1 1 5 corrupt_bio_byte 1 x 1 0',
    '7:0 0 1 1 5 corrupt_bio_byte 1 r 256 0',
    '7:0 0 1 1 6 error_writes corrupt_bio_byte 1 w 1 0', // write corruption + error_writes
  ])
    assert.throws(() => parseFlakeyParams(bad), isInvalid, bad);
});

test('flakey: the builder lists every problem before anything reaches the kernel', () => {
  const bad = {
    device: d(4096, 0),
    offset: -1n,
    upInterval: 1.5,
    downInterval: -1,
    writes: 'drop',
    corruptBioByte: { byte: 0, direction: 'write', value: 256, flags: -1 },
  } as const;
  assert.equal(problemPaths(() => formatFlakeyParams(bad)), [
    '/device/major',
    '/offset',
    '/upInterval',
    '/downInterval',
    '/corruptBioByte/byte',
    '/corruptBioByte/value',
    '/corruptBioByte/flags',
    '/corruptBioByte/direction',
  ]);
  assert.equal(problemPaths(() => formatFlakeyParams({ device: d(7, 0), offset: 0n, upInterval: 0, downInterval: 0 })), ['/downInterval']);
  assert.equal(
    flakeyParamsProblems({ device: d(7, 0), offset: 0n, upInterval: 4294967295, downInterval: 1 }).map((p) => p.message),
    ['upInterval + downInterval must be at most 4294967295'],
  );
  assert.equal(problemPaths(() => formatFlakeyParams({ device: d(7, 0), offset: 0n, upInterval: 1, downInterval: 1, writes: 'lose' as never })), ['/writes']);
  assert.equal(flakeyParamsProblems(null), [{ path: '', message: 'must be a flakey params object', value: null }]);
});

test('flakey: INFO status is empty', () => {
  assert.equal(parseFlakeyStatus(''), {});
  assert.equal(parseFlakeyStatus(' \n'), {});
  assert.throws(() => parseFlakeyStatus('0'), isKernelOutput);
});

// ---- delay ----

test('delay: 3, 6 and 9 field forms, exactly as delay_status prints them', () => {
  const one = { device: d(7, 0), offset: 0n, delayMs: 100 };
  assert.is(formatDelayParams(one), '7:0 0 100');
  const two = { ...one, write: { device: d(7, 1), offset: 2048n, delayMs: 0 } };
  assert.is(formatDelayParams(two), '7:0 0 100 7:1 2048 0');
  const three = { ...two, flush: { device: d(8, 16), offset: 1n, delayMs: 4294967295 } };
  assert.is(formatDelayParams(three), '7:0 0 100 7:1 2048 0 8:16 1 4294967295');
  for (const p of [one, two, three]) assert.equal(parseDelayParams(` ${formatDelayParams(p)}  `), p);
  assert.equal(delayTarget(0n, 8n, one), { start: 0n, length: 8n, type: 'delay', params: '7:0 0 100' });
});

test('delay: bad params are refused, every problem listed', () => {
  for (const bad of ['', '7:0 0', '7:0 0 1 7:1', '7:0 0 1 7:1 0 1 7:2 0', '7:0 x 1', '7:0 0 -1', '7:0 0 4294967296', 'loop0 0 1', '7:0 0 1 7:1 0 1 7:2 0 1 7:3'])
    assert.throws(() => parseDelayParams(bad), isInvalid, bad);
  assert.equal(
    problemPaths(() =>
      formatDelayParams({ device: d(7, 0), offset: -1n, delayMs: 0.5, flush: { device: d(7, 1), offset: 0n, delayMs: 1 } }),
    ),
    ['/offset', '/delayMs', '/flush'],
  );
  assert.equal(
    problemPaths(() => formatDelayParams({ device: d(7, 0), offset: 0n, delayMs: 1, write: { device: d(7, 1048576), offset: 0n, delayMs: 4294967296 } })),
    ['/write/device/minor', '/write/delayMs'],
  );
});

test('delay: INFO status counts held bios per class', () => {
  assert.equal(parseDelayStatus('0 0 0'), { reads: 0, writes: 0, flushes: 0 });
  assert.equal(parseDelayStatus('3 12 1\n'), { reads: 3, writes: 12, flushes: 1 });
  for (const bad of ['', '1 2', '1 2 3 4', '1 x 3', '1 2 4294967296', '-1 0 0'])
    assert.throws(() => parseDelayStatus(bad), isKernelOutput, bad);
});

// ---- log-writes ----

test('log-writes: params codec', () => {
  const p = { device: d(7, 0), logDevice: d(7, 1) };
  assert.is(formatLogWritesParams(p), '7:0 7:1');
  assert.equal(parseLogWritesParams('7:0 7:1'), p);
  assert.equal(logWritesTarget(0n, 8n, p), { start: 0n, length: 8n, type: 'log-writes', params: '7:0 7:1' });
  for (const bad of ['', '7:0', '7:0 7:1 7:2', '7:0 /dev/loop1', '7:0 7:0'])
    assert.throws(() => parseLogWritesParams(bad), isInvalid, bad);
  assert.equal(problemPaths(() => formatLogWritesParams({ device: d(7, 0), logDevice: d(7, 0) })), ['/logDevice']);
  assert.equal(problemPaths(() => formatLogWritesParams({ device: d(-1, 0), logDevice: d(0, -1) })), ['/device/major', '/logDevice/minor']);
});

test('log-writes: INFO status', () => {
  assert.equal(parseLogWritesStatus('0 0'), { loggedEntries: 0n, highestSector: 0n, loggingEnabled: true });
  assert.equal(parseLogWritesStatus('5 21 logging_disabled'), { loggedEntries: 5n, highestSector: 21n, loggingEnabled: false });
  assert.equal(parseLogWritesStatus('18446744073709551615 1'), { loggedEntries: 18446744073709551615n, highestSector: 1n, loggingEnabled: true });
  for (const bad of ['', '1', '1 2 x', '1 2 logging_disabled x', '18446744073709551616 0', 'a 0'])
    assert.throws(() => parseLogWritesStatus(bad), isKernelOutput, bad);
});

test('log-writes: mark message', () => {
  assert.is(logWritesMarkMessage('fsync-1'), 'mark fsync-1');
  assert.is(logWritesMarkMessage('x'.repeat(479)), `mark ${'x'.repeat(479)}`);
  for (const bad of ['', 'a b', 'a\\b', 'a\0', 'x'.repeat(480), 'é'.repeat(240)])
    assert.throws(() => logWritesMarkMessage(bad), isInvalid, JSON.stringify(bad).slice(0, 20));
});

/** A log as the kernel writes it (512-byte blocks), then 4 blocks of zeroes. */
function buildLog(entries: { sector: bigint; nr: bigint; flags: number; mark?: string; fill?: number }[], nrEntries = BigInt(entries.length)): Buffer {
  const specs = entries.map((e) => ({ sector: e.sector, nrSectors: e.nr, flags: BigInt(e.flags), ...(e.mark !== undefined ? { mark: e.mark } : {}), ...(e.fill !== undefined ? { fill: e.fill } : {}) }));
  return Buffer.concat([buildLogWritesLog(512, specs, nrEntries), Buffer.alloc(512 * 4)]);
}

test('log-writes: on-disk log decoder', () => {
  const log = buildLog([
    { sector: 0n, nr: 8n, flags: 0, fill: 0xa1 },
    { sector: 0n, nr: 0n, flags: 1 },
    { sector: 100n, nr: 16n, flags: 4 }, // discard: no data follows
    { sector: 16n, nr: 2n, flags: 2 | 16, fill: 0xb2 },
    { sector: 0n, nr: 0n, flags: 8, mark: 'm1' },
  ]);
  const out = decodeLogWritesLog(log);
  assert.equal([out.version, out.nrEntries, out.sectorSize, out.endOffset], [1n, 5n, 512, 8192n]);
  const none = { flush: false, fua: false, discard: false, metadata: false, dataLen: 0n };
  assert.equal(out.entries, [
    { index: 0, sector: 0n, nrSectors: 8n, flags: 0n, ...none, offset: 512n, dataOffset: 1024n },
    { index: 1, sector: 0n, nrSectors: 0n, flags: 1n, ...none, flush: true, offset: 5120n, dataOffset: 5632n },
    { index: 2, sector: 100n, nrSectors: 16n, flags: 4n, ...none, discard: true, offset: 5632n, dataOffset: 6144n },
    { index: 3, sector: 16n, nrSectors: 2n, flags: 18n, ...none, fua: true, metadata: true, offset: 6144n, dataOffset: 6656n },
    { index: 4, sector: 0n, nrSectors: 0n, flags: 8n, ...none, mark: 'm1', dataLen: 2n, offset: 7680n, dataOffset: 8192n },
  ]);
  assert.ok(log.subarray(1024, 1024 + 4096).equals(Buffer.alloc(4096, 0xa1)));
  assert.ok(log.subarray(6656, 6656 + 1024).equals(Buffer.alloc(1024, 0xb2)));
  // A limit reads past a lagging super; a reader gives what the bytes give.
  assert.is(decodeLogWritesLog(log, 2).entries.length, 2);
  assert.equal(decodeLogWritesLog((at, n) => log.subarray(Number(at), Number(at) + n)), out);
  // A bad magic, an overlong count or a truncated log are typed, with the problem, entry and offset.
  const corrupt = (bytes: Buffer): [string, number | undefined, bigint] => {
    try {
      decodeLogWritesLog(bytes);
    } catch (e) {
      if (!(e instanceof WriteLogCorruptError)) throw e;
      assert.is(e.code, 'EWRITELOGCORRUPT');
      return [e.problem, e.entry, e.offset];
    }
    throw new Error('expected a WriteLogCorruptError');
  };
  const badMagic = Buffer.from(log);
  badMagic[0] = 0;
  assert.equal(corrupt(badMagic), ['bad-magic', undefined, 0n]);
  // Past the one real entry, the zero padding is no entry (replay-log's log_entry_valid).
  assert.equal(corrupt(buildLog([{ sector: 0n, nr: 8n, flags: 0 }], 1000n)), ['bad-entry', 1, 5120n]);
  assert.equal(corrupt(log.subarray(0, 2048)), ['truncated', 0, 512n]);
  assert.equal(corrupt(Buffer.alloc(10)), ['truncated', undefined, 0n]);
  assert.throws(() => decodeLogWritesLog(log, -1), isInvalid);
  assert.throws(() => decodeLogWritesLog('log' as unknown as Buffer), isInvalid);
});

test('log-writes: replay up to a mark or an entry count', () => {
  const log = buildLog([
    { sector: 0n, nr: 2n, flags: 0, fill: 0x01 },
    { sector: 0n, nr: 0n, flags: 1 },
    { sector: 0n, nr: 0n, flags: 8, mark: 'one' },
    { sector: 4n, nr: 1n, flags: 0, fill: 0x02 },
    { sector: 0n, nr: 4n, flags: 4 },
    { sector: 0n, nr: 0n, flags: 8, mark: 'two' },
  ]);
  const decoded = decodeLogWritesLog(log);
  const ops = (until: { mark: string } | { entries: number }): [number, LogWritesReplayOp[]] => {
    const out: LogWritesReplayOp[] = [];
    return [replayLogWrites(log, decoded, until, (op) => out.push(op)), out];
  };
  const [n1, one] = ops({ mark: 'one' });
  assert.is(n1, 3);
  assert.equal(one.map((o) => [o.kind, o.entry, o.byteOffset]), [['write', 0, 0n]]);
  assert.ok(one[0]!.kind === 'write' && one[0]!.data.equals(Buffer.alloc(1024, 0x01)));
  const [n2, two] = ops({ mark: 'two' });
  assert.is(n2, 6);
  assert.equal(two.map((o) => (o.kind === 'write' ? [o.kind, o.entry, o.byteOffset, o.data.length] : [o.kind, o.entry, o.byteOffset, o.byteLength])), [
    ['write', 0, 0n, 1024],
    ['write', 3, 2048n, 512],
    ['discard', 4, 0n, 2048n],
  ]);
  assert.equal(ops({ entries: 0 }), [0, []]);
  assert.is(ops({ entries: 4 })[1].length, 2);
  assert.throws(() => ops({ mark: 'three' }), isInvalid);
  assert.throws(() => ops({ entries: 7 }), isInvalid);
  assert.throws(() => ops({ entries: -1 }), isInvalid);
});

test.run();
