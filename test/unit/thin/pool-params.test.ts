// SPDX-License-Identifier: MIT
// thin-pool params: validation (all problems at once), exact format, kernel table parse, round trips.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';
import {
  formatPoolParams,
  parsePoolParams,
  poolLengthSectors,
  poolParamsProblems,
  validatePoolParams,
  type ThinPoolParams,
} from '../../../src/thin/index.js';

const ALL_OFF = { skipBlockZeroing: false, ignoreDiscard: false, noDiscardPassdown: false, readOnly: false, errorIfNoSpace: false };

function invalid(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('no error thrown');
}

function kernelError(fn: () => unknown): KernelOutputError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, KernelOutputError);
    return e as KernelOutputError;
  }
  throw new Error('no error thrown');
}

const base: ThinPoolParams = { metadataDev: '7:0', dataDev: '7:1', dataBlockSize: 128, lowWaterMark: 32768 };

test('format: Docker-style pool, one feature', () => {
  assert.is(formatPoolParams({ ...base, features: { skipBlockZeroing: true } }), '7:0 7:1 128 32768 1 skip_block_zeroing');
});

test('format: no features still writes the count 0', () => {
  assert.is(formatPoolParams(base), '7:0 7:1 128 32768 0');
  assert.is(formatPoolParams({ ...base, features: {} }), '7:0 7:1 128 32768 0');
});

test('format: paths, bigint low water, features in kernel emit_flags order', () => {
  const p: ThinPoolParams = {
    metadataDev: '/dev/loop0',
    dataDev: '/dev/mapper/data',
    dataBlockSize: 2097152,
    lowWaterMark: 18446744073709551615n,
    features: { errorIfNoSpace: true, readOnly: true, noDiscardPassdown: true, skipBlockZeroing: true },
  };
  assert.is(
    formatPoolParams(p),
    '/dev/loop0 /dev/mapper/data 2097152 18446744073709551615 4 skip_block_zeroing no_discard_passdown read_only error_if_no_space',
  );
});

test('format: ignore_discard with no_discard_passdown is accepted (kernel accepts it)', () => {
  assert.is(
    formatPoolParams({ ...base, features: { ignoreDiscard: true, noDiscardPassdown: true } }),
    '7:0 7:1 128 32768 2 ignore_discard no_discard_passdown',
  );
});

test('parse: kernel table output with trailing space', () => {
  assert.equal(parsePoolParams('253:0 253:1 128 32768 1 skip_block_zeroing '), {
    metadataDev: '253:0',
    dataDev: '253:1',
    dataBlockSize: 128,
    lowWaterMark: 32768n,
    features: { ...ALL_OFF, skipBlockZeroing: true },
  });
  assert.equal(parsePoolParams('7:0 7:1 1024 0 0 '), {
    metadataDev: '7:0',
    dataDev: '7:1',
    dataBlockSize: 1024,
    lowWaterMark: 0n,
    features: ALL_OFF,
  });
});

test('parse: all four-at-a-time feature sets and case-insensitive words', () => {
  const p = parsePoolParams('7:0 7:1 128 10 4 skip_block_zeroing IGNORE_DISCARD read_only error_if_no_space ');
  assert.equal(p.features, { skipBlockZeroing: true, ignoreDiscard: true, noDiscardPassdown: false, readOnly: true, errorIfNoSpace: true });
});

test('parse: missing count means no features', () => {
  assert.equal(parsePoolParams('7:0 7:1 128 10').features, ALL_OFF);
});

test('round trip: format(parse(line)) reproduces the kernel line for every feature subset of size ≤ 4', () => {
  const words = ['skip_block_zeroing', 'ignore_discard', 'no_discard_passdown', 'read_only', 'error_if_no_space'];
  let checked = 0;
  for (let mask = 0; mask < 32; mask++) {
    const chosen = words.filter((_, i) => mask & (1 << i));
    if (chosen.length > 4) continue;
    const line = ['252:3', '252:4', '256', '1024', String(chosen.length), ...chosen].join(' ') + ' ';
    const parsed = parsePoolParams(line);
    assert.is(formatPoolParams(parsed), line.trimEnd());
    assert.equal(parsePoolParams(formatPoolParams(parsed)), parsed);
    checked++;
  }
  assert.is(checked, 31);
});

test('round trip: parse(format(p)) for paths', () => {
  const p: ThinPoolParams = { metadataDev: '/dev/loop8', dataDev: '/dev/loop9', dataBlockSize: 384, lowWaterMark: 5, features: { readOnly: true } };
  assert.equal(parsePoolParams(formatPoolParams(p)), {
    metadataDev: '/dev/loop8',
    dataDev: '/dev/loop9',
    dataBlockSize: 384,
    lowWaterMark: 5n,
    features: { ...ALL_OFF, readOnly: true },
  });
});

test('validate: block size edges', () => {
  for (const ok of [128, 256, 384, 2097152, 2097152 - 128]) assert.equal(poolParamsProblems({ ...base, dataBlockSize: ok }), []);
  assert.equal(poolParamsProblems({ ...base, dataBlockSize: 64 }).map((p) => p.path), ['/dataBlockSize', '/dataBlockSize']);
  assert.equal(poolParamsProblems({ ...base, dataBlockSize: 0 }).map((p) => p.path), ['/dataBlockSize']);
  assert.equal(poolParamsProblems({ ...base, dataBlockSize: 2097280 }).map((p) => p.path), ['/dataBlockSize']);
  assert.equal(poolParamsProblems({ ...base, dataBlockSize: 200 }).map((p) => p.message), ['must be a multiple of 128 sectors']);
  assert.equal(poolParamsProblems({ ...base, dataBlockSize: 128.5 }).map((p) => p.path), ['/dataBlockSize']);
});

test('validate: low water mark', () => {
  for (const ok of [0, 1, Number.MAX_SAFE_INTEGER, 0n, 18446744073709551615n]) {
    assert.equal(poolParamsProblems({ ...base, lowWaterMark: ok }), []);
  }
  for (const bad of [-1, 1.5, NaN, 2 ** 60, -1n, 18446744073709551616n, '10', undefined]) {
    assert.equal(poolParamsProblems({ ...base, lowWaterMark: bad }).map((p) => p.path), ['/lowWaterMark'], String(bad));
  }
});

test('validate: device strings', () => {
  for (const ok of ['0:0', '4095:1048575', '/dev/loop0', '/dev/mapper/x-y']) {
    assert.equal(poolParamsProblems({ ...base, metadataDev: ok }), [], ok);
  }
  for (const bad of ['', 'loop0', 'dev/loop0', '4096:0', '7:1048576', '7:', ':1', '/dev/my disk', '/dev/a\\b', '/dev/a\tb', 7]) {
    assert.equal(poolParamsProblems({ ...base, metadataDev: bad }).map((p) => p.path), ['/metadataDev'], String(bad));
  }
});

test('validate: metadata and data device must differ (same string)', () => {
  const problems = poolParamsProblems({ ...base, dataDev: '7:0' });
  assert.equal(problems, [{ path: '/dataDev', message: 'must differ from metadataDev', value: '7:0' }]);
});

test('validate: all five features exceed the kernel limit of four', () => {
  const features = { skipBlockZeroing: true, ignoreDiscard: true, noDiscardPassdown: true, readOnly: true, errorIfNoSpace: true };
  const problems = poolParamsProblems({ ...base, features });
  assert.is(problems.length, 1);
  assert.is(problems[0]?.path, '/features');
  assert.is(problems[0]?.value, 5);
  assert.match(problems[0]?.message ?? '', /at most 4 feature args/);
});

test('validate: unknown and non-boolean features', () => {
  const problems = poolParamsProblems({ ...base, features: { zeroing: true, readOnly: 'yes' } });
  assert.equal(problems.map((p) => p.path), ['/features/zeroing', '/features/readOnly']);
});

test('validate: every problem listed at once', () => {
  const e = invalid(() =>
    validatePoolParams({
      metadataDev: 'loop0',
      dataDev: '/dev/a b',
      dataBlockSize: 100,
      lowWaterMark: -5,
      features: { skipBlockZeroing: true, ignoreDiscard: true, noDiscardPassdown: true, readOnly: true, errorIfNoSpace: true, bogus: 1 },
    }),
  );
  assert.equal(e.problems.map((p) => p.path), [
    '/metadataDev',
    '/dataDev',
    '/dataBlockSize',
    '/dataBlockSize',
    '/lowWaterMark',
    '/features/bogus',
    '/features',
  ]);
  assert.is(e.code, 'EINVALIDARG');
  assert.match(e.message, /^invalid thin-pool params: metadataDev: /);
});

test('validate: non-object input', () => {
  assert.equal(invalid(() => validatePoolParams(null)).problems, [{ path: '', message: 'must be an object', value: null }]);
});

test('format refuses invalid params with InvalidArgumentError', () => {
  const e = invalid(() => formatPoolParams({ ...base, dataDev: base.metadataDev, dataBlockSize: 64 }));
  assert.equal(e.problems.map((p) => p.path), ['/dataDev', '/dataBlockSize', '/dataBlockSize']);
});

test('parse: malformed lines give KernelOutputError naming field, raw value and expectation', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /field 1 \(metadata device\): got nothing/],
    ['garbage 7:1 128 0 0 ', /field 1 \(metadata device\): got "garbage", expected 'major:minor'/],
    ['7:0', /field 2 \(data device\): got nothing/],
    ['7:0 7:1 abc 0 0', /field 3 \(data block size\): got "abc"/],
    ['7:0 7:1 128 -1 0', /field 4 \(low water mark\): got "-1", expected an unsigned 64-bit decimal/],
    ['7:0 7:1 128 18446744073709551616 0', /field 4 \(low water mark\)/],
    ['7:0 7:1 128 0 x', /field 5 \(feature count\): got "x"/],
    ['7:0 7:1 128 0 6 a b c d e f', /field 5 \(feature count\): got "6"/],
    ['7:0 7:1 128 0 2 read_only ', /field 7 \(feature\): got nothing/],
    ['7:0 7:1 128 0 1 read_only extra', /field 7 \(end of line\): got "extra"/],
    ['7:0 7:1 128 0 1 turbo', /field 6 \(feature\): got "turbo", expected skip_block_zeroing \| /],
  ];
  for (const [line, re] of cases) {
    const e = kernelError(() => parsePoolParams(line));
    assert.match(e.message, re, line);
    assert.is(e.raw, line);
    assert.is(e.code, 'EKERNELOUTPUT');
  }
});

test('poolLengthSectors: whole data blocks of the device', () => {
  assert.is(poolLengthSectors(1024 * 1024 * 1024, 128), 2097152n); // 1 GiB, 64 KiB blocks
  assert.is(poolLengthSectors(100n * 1024n ** 3n, 128), 209715200n);
  assert.is(poolLengthSectors(65536 + 65535, 128), 128n); // partial trailing block dropped
  assert.is(poolLengthSectors(10 * 1024 * 1024 + 511, 384), 20352n); // 20480 sectors → 53 blocks of 384
  assert.is(poolLengthSectors(65536, 128), 128n);
});

test('poolLengthSectors: refusals', () => {
  assert.equal(invalid(() => poolLengthSectors(65535, 128)).problems.map((p) => p.path), ['/dataDevBytes']);
  assert.equal(invalid(() => poolLengthSectors(-1, 100)).problems.map((p) => p.path), ['/dataDevBytes', '/dataBlockSize']);
  assert.equal(invalid(() => poolLengthSectors(1.5, 128)).problems.map((p) => p.path), ['/dataDevBytes']);
});

test.run();
