// SPDX-License-Identifier: MIT
// thin INFO status: literal kernel lines and malformed input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelOutputError } from '../../../src/errors.js';
import { parseThinStatus } from '../../../src/thin/index.js';

test('nothing mapped', () => {
  assert.equal(parseThinStatus('0 -'), { kind: 'working', mappedSectors: 0n, highestMappedSector: null });
});

test('mapped blocks, with and without trailing blanks', () => {
  assert.equal(parseThinStatus('2048 4095'), { kind: 'working', mappedSectors: 2048n, highestMappedSector: 4095n });
  assert.equal(parseThinStatus('128 20971519 '), { kind: 'working', mappedSectors: 128n, highestMappedSector: 20971519n });
  assert.equal(parseThinStatus('18446744073709551615 18446744073709551615'), {
    kind: 'working',
    mappedSectors: 18446744073709551615n,
    highestMappedSector: 18446744073709551615n,
  });
});

test('special forms: Fail, Error, partial line then Error, - (inactive)', () => {
  assert.equal(parseThinStatus('Fail'), { kind: 'fail' });
  assert.equal(parseThinStatus('Error'), { kind: 'error' });
  assert.equal(parseThinStatus('2048 Error'), { kind: 'error' });
  assert.equal(parseThinStatus('-'), { kind: 'inactive' });
  assert.equal(parseThinStatus(' - '), { kind: 'inactive' });
});

test('malformed lines give KernelOutputError', () => {
  const cases: Array<[string, string]> = [
    ['', 'thin status field 1 (mapped sectors): got nothing, expected an unsigned 64-bit decimal (or Fail / Error / -)'],
    ['abc 12', 'thin status field 1 (mapped sectors): got "abc", expected an unsigned 64-bit decimal (or Fail / Error / -)'],
    ['- -', 'thin status field 1 (mapped sectors): got "-", expected an unsigned 64-bit decimal (or Fail / Error / -)'],
    ['2048', 'thin status field 2 (highest mapped sector): got nothing, expected an unsigned 64-bit decimal or -'],
    ['2048 x', 'thin status field 2 (highest mapped sector): got "x", expected an unsigned 64-bit decimal or -'],
    ['2048 18446744073709551616', 'thin status field 2 (highest mapped sector): got "18446744073709551616", expected an unsigned 64-bit decimal or -'],
    ['2048 4095 1', 'thin status field 3 (end of line): got "1", expected exactly 2 fields'],
  ];
  for (const [line, message] of cases) {
    let caught: unknown;
    try {
      parseThinStatus(line);
    } catch (e) {
      caught = e;
    }
    assert.instance(caught, KernelOutputError, line);
    assert.is((caught as KernelOutputError).message, message);
    assert.is((caught as KernelOutputError).raw, line);
  }
});

test.run();
