// SPDX-License-Identifier: MIT
// Fuzzing the status and table parsers (issue 10): arbitrary and near-valid strings never give an
// untyped exception; formatPoolParams → parsePoolParams is the identity.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { formatPoolParams, parsePoolParams, parseThinParams, parseThinPoolStatus, parseThinStatus } from '../../../src/thin/index.js';
import { parseDevNum, parseLinearParams, parseStripedParams, parseTable, parseTargetLine } from '../../../src/dm/index.js';
import { report, typedOrOk } from './common.js';

const t0 = performance.now();
const RUNS = 6000;

/** Words that appear in thin/thin-pool status and table lines, plus numbers and junk. */
const word = fc.oneof(
  fc.constantFrom(
    'rw', 'ro', 'out_of_data_space', 'Fail', 'Error', 'fail', '-', 'needs_check', 'discard_passdown', 'no_discard_passdown',
    'queue_if_no_space', 'error_if_no_space', 'skip_block_zeroing', 'ignore_discard', 'read_only', 'metadata_low_watermark',
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
  parseDevNum,
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

test.after(() => report('parsers.fuzz', t0));
test.run();
