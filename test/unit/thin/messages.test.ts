// SPDX-License-Identifier: MIT
// Pool message builders: exact strings and validation before building.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  ThinPoolMessages,
  createSnapMessage,
  createThinMessage,
  deleteMessage,
  releaseMetadataSnapMessage,
  reserveMetadataSnapMessage,
  setTransactionIdMessage,
} from '../../../src/thin/index.js';

function invalid(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('no error thrown');
}

test('exact message strings', () => {
  assert.is(createThinMessage(0), 'create_thin 0');
  assert.is(createThinMessage(16777215), 'create_thin 16777215');
  assert.is(createSnapMessage(2, 1), 'create_snap 2 1');
  assert.is(deleteMessage(629), 'delete 629');
  assert.is(setTransactionIdMessage(0n, 1n), 'set_transaction_id 0 1');
  assert.is(setTransactionIdMessage(3379n, 3380n), 'set_transaction_id 3379 3380');
  assert.is(reserveMetadataSnapMessage(), 'reserve_metadata_snap');
  assert.is(releaseMetadataSnapMessage(), 'release_metadata_snap');
});

test('ThinPoolMessages uses the kernel verbs', () => {
  assert.is(ThinPoolMessages.createThin(1), 'create_thin 1');
  assert.is(ThinPoolMessages.createSnap(3, 1), 'create_snap 3 1');
  assert.is(ThinPoolMessages.delete(1), 'delete 1');
  assert.is(ThinPoolMessages.setTransactionId(1n, 2n), 'set_transaction_id 1 2');
  assert.is(ThinPoolMessages.reserveMetadataSnap(), 'reserve_metadata_snap');
  assert.is(ThinPoolMessages.releaseMetadataSnap(), 'release_metadata_snap');
  assert.ok(Object.isFrozen(ThinPoolMessages));
});

test('ids are validated first (24-bit)', () => {
  for (const bad of [-1, 16777216, 1.5, NaN]) {
    assert.equal(invalid(() => createThinMessage(bad)).problems.map((p) => p.path), ['/devId'], String(bad));
    assert.equal(invalid(() => deleteMessage(bad)).problems.map((p) => p.path), ['/devId'], String(bad));
  }
  assert.equal(invalid(() => createThinMessage('1' as unknown as number)).problems.map((p) => p.path), ['/devId']);
});

test('create_snap lists both bad ids at once, and refuses a snapshot of itself', () => {
  assert.equal(invalid(() => createSnapMessage(-1, 16777216)).problems.map((p) => p.path), ['/devId', '/originId']);
  assert.equal(invalid(() => createSnapMessage(4, 4)).problems, [{ path: '/devId', message: 'must differ from originId', value: 4 }]);
  assert.is(createSnapMessage(16777215, 0), 'create_snap 16777215 0');
});

test('set_transaction_id: u64 range', () => {
  const max = 2n ** 64n - 1n;
  assert.is(setTransactionIdMessage(max - 1n, max), 'set_transaction_id 18446744073709551614 18446744073709551615');
  assert.is(setTransactionIdMessage(5n, 5n), 'set_transaction_id 5 5');
  assert.equal(invalid(() => setTransactionIdMessage(0n, 2n ** 64n)).problems.map((p) => p.path), ['/next']);
  assert.equal(invalid(() => setTransactionIdMessage(-1n, 2n ** 64n)).problems.map((p) => p.path), ['/current', '/next']);
  assert.equal(invalid(() => setTransactionIdMessage(1 as unknown as bigint, 2n)).problems.map((p) => p.path), ['/current']);
});

test.run();
