// SPDX-License-Identifier: MIT
// Fuzzing the status and table parsers (issue 10): arbitrary and near-valid strings never give an
// untyped exception; formatPoolParams → parsePoolParams is the identity.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { formatPoolParams, parsePoolParams, parseThinParams, parseThinPoolStatus, parseThinStatus } from '../../../src/thin/index.js';
import {
  decodeLogWritesLog,
  formatDelayParams,
  LOG_WRITES_FLAGS,
  WriteLogCorruptError,
  formatFlakeyParams,
  LOG_WRITES_MAGIC,
  parseDelayParams,
  parseDelayStatus,
  parseDevNum,
  parseFlakeyParams,
  parseFlakeyStatus,
  parseLinearParams,
  parseLogWritesParams,
  parseLogWritesStatus,
  parseStripedParams,
  parseStripedStatus,
  parseTable,
  parseTargetLine,
} from '../../../src/dm/index.js';
import { readWriteLog } from '../../../src/testing/index.js';
import { counts, report, typedOrOk } from './common.js';

const t0 = performance.now();
const RUNS = 6000;

/** Words that appear in thin/thin-pool status and table lines, plus numbers and junk. */
const word = fc.oneof(
  fc.constantFrom(
    'rw', 'ro', 'out_of_data_space', 'Fail', 'Error', 'fail', '-', 'needs_check', 'discard_passdown', 'no_discard_passdown',
    'queue_if_no_space', 'error_if_no_space', 'skip_block_zeroing', 'ignore_discard', 'read_only', 'metadata_low_watermark',
    'drop_writes', 'error_writes', 'corrupt_bio_byte', 'DROP_WRITES', 'r', 'w', 'W', '6', '255', '256', '4294967295', '4294967296', 'logging_disabled',
    '0', '1', '2', '5', '128', '7:0', '7:1', '253:3', '/dev/loop0', '', '18446744073709551615', '18446744073709551616', '-1', '0x10', '1e3',
  ),
  fc.bigInt({ min: 0n, max: (1n << 70n) }).map(String),
  fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}/${b}`),
  fc.tuple(fc.nat(4096), fc.nat(1 << 20)).map(([a, b]) => `${a}:${b}`),
  fc.string({ maxLength: 8 }),
);
const sep = fc.constantFrom(' ', '  ', '\t', '\n', ' \u00a0');
const nearValid = fc.array(fc.tuple(word, sep), { maxLength: 14 }).map((ws) => ws.map(([w, s]) => w + s).join(''));
const anyText = fc.oneof(nearValid, fc.string({ maxLength: 64 }), fc.string({ maxLength: 32, unit: 'grapheme' }));

const parsers: Record<string, (s: string) => unknown> = {
  parsePoolParams,
  parseThinPoolStatus,
  parseThinStatus,
  parseThinParams,
  parseTargetLine: (s) => parseTargetLine(s),
  parseTable,
  parseLinearParams,
  parseStripedParams,
  parseStripedStatus,
  parseDevNum,
  parseFlakeyParams,
  parseFlakeyStatus,
  parseDelayParams,
  parseDelayStatus,
  parseLogWritesParams,
  parseLogWritesStatus,
};

for (const [name, parse] of Object.entries(parsers)) {
  test(`${name}: any string parses or throws a typed error`, () => {
    fc.assert(fc.property(anyText, (s) => void typedOrOk(name, () => parse(s))), { numRuns: RUNS });
  });
}

test('parseTable: multi-line near-valid tables', () => {
  const line = fc.tuple(fc.bigInt({ min: 0n, max: 1n << 66n }), fc.bigInt({ min: 0n, max: 1n << 66n }), fc.constantFrom('linear', 'thin', 'thin-pool', 'zero', 'striped', '#x', ''), nearValid)
    .map(([a, b, t, p]) => `${a} ${b} ${t} ${p}`);
  fc.assert(fc.property(fc.array(fc.oneof(line, anyText), { maxLength: 6 }), (ls) => void typedOrOk('parseTable(multi)', () => parseTable(ls.join('\n')))), { numRuns: RUNS });
});

const devRef = fc.oneof(
  fc.tuple(fc.nat(4095), fc.nat((1 << 20) - 1)).map(([a, b]) => `${a}:${b}`),
  fc.stringMatching(/^\/dev\/[a-z0-9]{1,8}$/),
);

test('formatPoolParams → parsePoolParams is the identity (valid params)', () => {
  const params = fc.record({
    metadataDev: devRef,
    dataDev: devRef,
    dataBlockSize: fc.integer({ min: 1, max: 16384 }).map((k) => k * 128).filter((n) => n <= 2097152),
    lowWaterMark: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    features: fc.record({
      skipBlockZeroing: fc.boolean(),
      ignoreDiscard: fc.boolean(),
      noDiscardPassdown: fc.boolean(),
      readOnly: fc.boolean(),
      errorIfNoSpace: fc.boolean(),
    }),
  });
  fc.assert(
    fc.property(params, (p) => {
      const text = typedOrOk('formatPoolParams', () => formatPoolParams(p));
      if (text === undefined) return; // invalid combination: refused, typed
      const back = parsePoolParams(text);
      assert.is(back.metadataDev, p.metadataDev);
      assert.is(back.dataDev, p.dataDev);
      assert.is(back.dataBlockSize, p.dataBlockSize);
      assert.is(BigInt(back.lowWaterMark), p.lowWaterMark);
      assert.is(formatPoolParams(back), text);
      // Kernel form: trailing space, extra blanks.
      assert.is(formatPoolParams(parsePoolParams(`${text.replace(/ /g, '  ')} `)), text);
    }),
    { numRuns: RUNS },
  );
});

const devNum = fc.record({ major: fc.nat(4095), minor: fc.nat((1 << 20) - 1) });
const u32 = fc.nat(0xffffffff);

test('formatFlakeyParams → parseFlakeyParams is the identity (valid params)', () => {
  const params = fc.record(
    {
      device: devNum,
      offset: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      upInterval: u32,
      downInterval: u32,
      writes: fc.constantFrom('drop' as const, 'error' as const),
      corruptBioByte: fc.record({ byte: fc.integer({ min: 1, max: 0xffffffff }), direction: fc.constantFrom('read' as const, 'write' as const), value: fc.nat(255), flags: u32 }),
    },
    { requiredKeys: ['device', 'offset', 'upInterval', 'downInterval'] },
  );
  fc.assert(
    fc.property(params, (p) => {
      const text = typedOrOk('formatFlakeyParams', () => formatFlakeyParams(p));
      if (text === undefined) return; // zero/overflowing interval or a write corruption with drop/error: refused, typed
      assert.equal(parseFlakeyParams(text), structuredClone(p)); // structuredClone: fast-check's records have a null prototype
      assert.is(formatFlakeyParams(parseFlakeyParams(text.toUpperCase().replace(/ /g, '\t'))), text);
    }),
    { numRuns: RUNS },
  );
});

test('formatDelayParams → parseDelayParams is the identity', () => {
  const cls = fc.record({ device: devNum, offset: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), delayMs: u32 });
  const params = fc.tuple(cls, fc.option(fc.tuple(cls, fc.option(cls, { nil: undefined })), { nil: undefined })).map(([r, rest]) => ({
    ...r,
    ...(rest ? { write: rest[0], ...(rest[1] ? { flush: rest[1] } : {}) } : {}),
  }));
  fc.assert(fc.property(params, (p) => assert.equal(parseDelayParams(formatDelayParams(p)), structuredClone(p))), { numRuns: RUNS });
});

test('decodeLogWritesLog: random bytes after a valid super never give an untyped exception', () => {
  const log = fc.tuple(fc.bigInt({ min: 0n, max: 1n << 40n }), fc.constantFrom(512, 4096, 0, 7), fc.uint8Array({ maxLength: 4096 }), fc.option(fc.nat(40), { nil: undefined })).map(([n, ss, rest, limit]) => {
    const sup = Buffer.alloc(32);
    sup.writeBigUInt64LE(LOG_WRITES_MAGIC, 0);
    sup.writeBigUInt64LE(1n, 8);
    sup.writeBigUInt64LE(n, 16);
    sup.writeUInt32LE(ss, 24);
    return { buf: Buffer.concat([sup, Buffer.from(rest)]), limit };
  });
  fc.assert(fc.property(log, ({ buf, limit }) => void typedOrOk('decodeLogWritesLog', () => decodeLogWritesLog(buf, limit))), { numRuns: RUNS });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => void typedOrOk('decodeLogWritesLog(raw)', () => decodeLogWritesLog(Buffer.from(b)))), { numRuns: RUNS });
});

/** A well-formed log as dm-log-writes writes it, from random entries (512-byte blocks). */
const wellFormedLog = fc
  .array(
    fc.oneof(
      fc.record({ kind: fc.constant('write' as const), sector: fc.bigInt({ min: 0n, max: 1000n }), nr: fc.bigInt({ min: 1n, max: 3n }), flags: fc.constantFrom(0n, 1n, 2n, 16n, 18n) }),
      fc.record({ kind: fc.constant('discard' as const), sector: fc.bigInt({ min: 0n, max: 1000n }), nr: fc.bigInt({ min: 1n, max: 64n }) }),
      fc.record({ kind: fc.constant('flush' as const) }),
      fc.record({ kind: fc.constant('mark' as const), name: fc.stringMatching(/^[a-z0-9-]{1,40}$/) }),
    ),
    { maxLength: 6 },
  )
  .map((specs) => {
    const ss = 512;
    const sup = Buffer.alloc(ss);
    sup.writeBigUInt64LE(LOG_WRITES_MAGIC, 0);
    sup.writeBigUInt64LE(1n, 8);
    sup.writeBigUInt64LE(BigInt(specs.length), 16);
    sup.writeUInt32LE(ss, 24);
    const parts = [sup];
    for (const e of specs) {
      const h = Buffer.alloc(ss);
      if (e.kind === 'write' || e.kind === 'discard') {
        h.writeBigUInt64LE(e.sector, 0);
        h.writeBigUInt64LE(e.nr, 8);
        h.writeBigUInt64LE(e.kind === 'discard' ? LOG_WRITES_FLAGS.discard : e.flags, 16);
      } else if (e.kind === 'flush') h.writeBigUInt64LE(LOG_WRITES_FLAGS.flush, 16);
      else {
        h.writeBigUInt64LE(LOG_WRITES_FLAGS.mark, 16);
        h.writeBigUInt64LE(BigInt(e.name.length), 24);
        h.write(e.name, 32);
      }
      parts.push(h);
      if (e.kind === 'write') parts.push(Buffer.alloc(Number(e.nr) * ss, 0x5a));
    }
    return { log: Buffer.concat(parts), count: specs.length };
  });

/** What a decode gives: the log, or the corruption's problem/entry/offset (any other error fails). */
function outcome(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    if (e instanceof WriteLogCorruptError) return [e.code, e.problem, e.entry, e.offset];
    throw e;
  }
}

test('decodeLogWritesLog: a well-formed log decodes whole; one flipped byte gives the log or a WriteLogCorruptError, the same from bytes, a reader and readWriteLog', () => {
  fc.assert(
    fc.property(wellFormedLog, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ log, count }, at, xor) => {
      assert.is(decodeLogWritesLog(log).entries.length, count);
      const bad = Buffer.from(log);
      bad[at % bad.length]! ^= xor;
      const fromBytes = outcome(() => decodeLogWritesLog(bad));
      assert.equal(outcome(() => decodeLogWritesLog((pos, n) => bad.subarray(Number(pos), Number(pos) + n))), fromBytes);
      assert.equal(outcome(() => readWriteLog(bad)), fromBytes);
      const label = 'decodeLogWritesLog(one byte flipped)';
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }),
    { numRuns: RUNS },
  );
});

test.after(() => report('parsers.fuzz', t0));
test.run();
