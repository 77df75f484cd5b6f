// SPDX-License-Identifier: MIT
// ThinDeviceId: 24-bit edges and refusals.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import { MAX_DEV_ID, isThinDeviceId, thinDeviceId } from '../../../src/thin/index.js';

function refusal(value: unknown): InvalidArgumentError {
  try {
    thinDeviceId(value);
  } catch (e) {
    assert.instance(e, InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error(`accepted ${String(value)}`);
}

test('MAX_DEV_ID is 2^24 - 1', () => {
  assert.is(MAX_DEV_ID, 16777215);
});

test('accepts 0, 1 and 16777215', () => {
  assert.is(thinDeviceId(0), 0);
  assert.is(thinDeviceId(1), 1);
  assert.is(thinDeviceId(16777215), 16777215);
  assert.ok(isThinDeviceId(16777215));
});

test('refuses -1, 16777216, 1.5, NaN, Infinity, strings, bigint, null', () => {
  for (const v of [-1, 16777216, 1.5, NaN, Infinity, '5', 5n, null, undefined]) {
    const e = refusal(v);
    assert.is(e.code, 'EINVALIDARG');
    assert.is(e.problems.length, 1);
    assert.ok(!isThinDeviceId(v));
  }
});

test('problem messages say why', () => {
  assert.is(refusal(-1).problems[0]?.message, 'must not be negative');
  assert.is(refusal(1.5).problems[0]?.message, 'must be an integer');
  assert.is(refusal(NaN).problems[0]?.message, 'must be a number');
  assert.is(refusal('5').problems[0]?.message, 'must be a number');
  assert.match(refusal(16777216).problems[0]?.message ?? '', /at most 16777215/);
  assert.is(refusal(16777216).problems[0]?.value, 16777216);
});

test.run();
