// SPDX-License-Identifier: MIT
// thin target params: format, parse (kernel table output), validation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';
import { formatThinParams, parseThinParams, thinDeviceId, validateThinParams } from '../../../src/thin/index.js';

test('format: with and without external origin', () => {
  assert.is(formatThinParams({ poolDev: '253:0', devId: thinDeviceId(7) }), '253:0 7');
  assert.is(formatThinParams({ poolDev: '/dev/mapper/pool', devId: thinDeviceId(16777215), externalOriginDev: '8:16' }), '/dev/mapper/pool 16777215 8:16');
});

test('parse: kernel table output and round trip', () => {
  assert.equal(parseThinParams('253:0 7'), { poolDev: '253:0', devId: 7 });
  assert.equal(parseThinParams('253:0 0 8:16 '), { poolDev: '253:0', devId: 0, externalOriginDev: '8:16' });
  for (const line of ['253:0 7', '253:2 16777215 7:3', '/dev/mapper/pool 1']) {
    assert.is(formatThinParams(parseThinParams(line)), line);
  }
});

test('validate: every problem at once', () => {
  let caught: unknown;
  try {
    validateThinParams({ poolDev: 'pool', devId: 16777216, externalOriginDev: 'x' });
  } catch (e) {
    caught = e;
  }
  assert.instance(caught, InvalidArgumentError);
  assert.equal((caught as InvalidArgumentError).problems.map((p) => p.path), ['/poolDev', '/devId', '/externalOriginDev']);
});

test('validate: origin must differ from pool (kernel strcmp)', () => {
  let caught: unknown;
  try {
    formatThinParams({ poolDev: '253:0', devId: thinDeviceId(1), externalOriginDev: '253:0' });
  } catch (e) {
    caught = e;
  }
  assert.instance(caught, InvalidArgumentError);
  assert.equal((caught as InvalidArgumentError).problems, [{ path: '/externalOriginDev', message: 'must differ from poolDev', value: '253:0' }]);
});

test('parse: malformed lines give KernelOutputError', () => {
  const cases: Array<[string, string]> = [
    ['', 'thin table field 1 (pool device): got nothing, expected \'major:minor\' or an absolute path'],
    ['253:0', 'thin table field 2 (device id): got nothing, expected a decimal in 0 … 16777215'],
    ['253:0 16777216', 'thin table field 2 (device id): got "16777216", expected a decimal in 0 … 16777215'],
    ['253:0 -1', 'thin table field 2 (device id): got "-1", expected a decimal in 0 … 16777215'],
    ['253:0 1 origin', 'thin table field 3 (external origin): got "origin", expected \'major:minor\' or an absolute path'],
    ['253:0 1 8:16 x', 'thin table field 4 (end of line): got "x", expected at most 3 fields'],
  ];
  for (const [line, message] of cases) {
    let caught: unknown;
    try {
      parseThinParams(line);
    } catch (e) {
      caught = e;
    }
    assert.instance(caught, KernelOutputError, line);
    assert.is((caught as KernelOutputError).message, message);
  }
});

test.run();
