// SPDX-License-Identifier: MIT
// Thin domain errors and the errno → domain mapping for pool messages and pool removal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DevmapperError } from '../../../src/errors.js';
import {
  PoolBusyError,
  PoolFailedError,
  PoolNeedsCheckError,
  PoolOutOfDataSpaceError,
  PoolOutOfMetadataSpaceError,
  PoolReadOnlyError,
  ThinDeviceBusyError,
  ThinError,
  ThinIdInUseError,
  ThinIdNotFoundError,
  mapPoolRemoveError,
  mapThinMessageError,
  parseThinPoolStatus,
} from '../../../src/thin/index.js';

/** Stand-in for the ioctl layer's IoctlError: only `.code` / `.errno` matter. */
function ioctlError(code: string, errno: number): Error & { code: string; errno: number } {
  return Object.assign(new Error(`ioctl DM_TARGET_MSG failed: ${code}`), { code, errno });
}

test('every class has a stable code, a name, and extends DevmapperError', () => {
  const all = [
    [new ThinIdInUseError(), 'ThinIdInUseError', 'ETHINIDINUSE'],
    [new ThinIdNotFoundError(), 'ThinIdNotFoundError', 'ETHINIDNOTFOUND'],
    [new ThinDeviceBusyError(), 'ThinDeviceBusyError', 'ETHINBUSY'],
    [new PoolOutOfDataSpaceError(), 'PoolOutOfDataSpaceError', 'EPOOLNODATASPACE'],
    [new PoolOutOfMetadataSpaceError(), 'PoolOutOfMetadataSpaceError', 'EPOOLNOMETASPACE'],
    [new PoolReadOnlyError(), 'PoolReadOnlyError', 'EPOOLREADONLY'],
    [new PoolNeedsCheckError(), 'PoolNeedsCheckError', 'EPOOLNEEDSCHECK'],
    [new PoolFailedError(), 'PoolFailedError', 'EPOOLFAILED'],
    [new PoolBusyError(), 'PoolBusyError', 'EPOOLBUSY'],
  ] as const;
  for (const [err, name, code] of all) {
    assert.instance(err, ThinError);
    assert.instance(err, DevmapperError);
    assert.is(err.name, name);
    assert.is(err.code, code);
  }
});

test('context and cause are kept', () => {
  const cause = new Error('low level');
  const e = new ThinIdInUseError({ pool: 'pool0', devId: 7, message: 'create_thin 7' }, { cause });
  assert.is(e.message, 'thin device id 7 is already in use in pool pool0');
  assert.is(e.pool, 'pool0');
  assert.is(e.devId, 7);
  assert.is(e.thinMessage, 'create_thin 7');
  assert.is(e.cause, cause);
});

test('EEXIST on create_thin / create_snap → ThinIdInUseError with the new id', () => {
  const cause = ioctlError('EEXIST', 17);
  const a = mapThinMessageError(cause, 'create_thin 5', { pool: 'p' });
  assert.instance(a, ThinIdInUseError);
  assert.is((a as ThinIdInUseError).devId, 5);
  assert.is((a as ThinIdInUseError).pool, 'p');
  assert.is((a as ThinIdInUseError).thinMessage, 'create_thin 5');
  assert.is((a as ThinIdInUseError).cause, cause);
  const b = mapThinMessageError(cause, 'create_snap 9 1');
  assert.instance(b, ThinIdInUseError);
  assert.is((b as ThinIdInUseError).devId, 9);
});

test('ENODATA on delete → ThinIdNotFoundError; on create_snap it is the origin that is missing', () => {
  const cause = ioctlError('ENODATA', 61);
  const a = mapThinMessageError(cause, 'delete 12');
  assert.instance(a, ThinIdNotFoundError);
  assert.is((a as ThinIdNotFoundError).devId, 12);
  assert.is((a as ThinIdNotFoundError).message, 'thin device id 12 does not exist');
  const b = mapThinMessageError(cause, 'create_snap 9 1');
  assert.instance(b, ThinIdNotFoundError);
  assert.is((b as ThinIdNotFoundError).devId, 1);
});

test('EBUSY on delete → ThinDeviceBusyError; on reserve_metadata_snap unchanged', () => {
  const cause = ioctlError('EBUSY', 16);
  assert.instance(mapThinMessageError(cause, 'delete 3'), ThinDeviceBusyError);
  assert.is(mapThinMessageError(cause, 'reserve_metadata_snap'), cause);
});

test('EOPNOTSUPP → failed / needs-check / read-only, chosen by the status if given', () => {
  const cause = ioctlError('EOPNOTSUPP', 95);
  assert.instance(mapThinMessageError(cause, 'create_thin 1'), PoolReadOnlyError);
  assert.instance(mapThinMessageError(cause, 'create_thin 1', { status: parseThinPoolStatus('Fail') }), PoolFailedError);
  assert.instance(mapThinMessageError(cause, 'create_thin 1', { status: parseThinPoolStatus('Error') }), PoolFailedError);
  const check = parseThinPoolStatus('1 10/100 1/100 - ro discard_passdown queue_if_no_space needs_check 25 ');
  assert.instance(mapThinMessageError(cause, 'delete 1', { status: check }), PoolNeedsCheckError);
  const ro = parseThinPoolStatus('1 10/100 1/100 - ro discard_passdown queue_if_no_space - 25 ');
  const e = mapThinMessageError(cause, 'set_transaction_id 1 2', { status: ro, pool: 'pool0' });
  assert.instance(e, PoolReadOnlyError);
  assert.is((e as PoolReadOnlyError).message, 'pool pool0 is read-only');
  assert.is((e as PoolReadOnlyError).cause, cause);
});

test('ENOSPC → PoolOutOfMetadataSpaceError', () => {
  const e = mapThinMessageError(ioctlError('ENOSPC', 28), 'create_snap 2 1');
  assert.instance(e, PoolOutOfMetadataSpaceError);
});

test('numeric errno alone is enough (positive or negative)', () => {
  assert.instance(mapThinMessageError({ errno: 17 }, 'create_thin 1'), ThinIdInUseError);
  assert.instance(mapThinMessageError({ errno: -61 }, 'delete 1'), ThinIdNotFoundError);
});

test('everything else is returned unchanged', () => {
  const einval = ioctlError('EINVAL', 22);
  assert.is(mapThinMessageError(einval, 'set_transaction_id 1 2'), einval);
  const eexistOnDelete = ioctlError('EEXIST', 17);
  assert.is(mapThinMessageError(eexistOnDelete, 'delete 1'), eexistOnDelete);
  const plain = new Error('boom');
  assert.is(mapThinMessageError(plain, 'create_thin 1'), plain);
  assert.is(mapThinMessageError('string', 'create_thin 1'), 'string');
  assert.is(mapThinMessageError(null, 'create_thin 1'), null);
  const domain = { code: 'EINVALIDARG' };
  assert.is(mapThinMessageError(domain, 'create_thin 1'), domain);
});

test('the errno is read under a wrapping error, which stays the cause', () => {
  const wrapped = new Error('dm context', { cause: ioctlError('EEXIST', 17) });
  const e = mapThinMessageError(wrapped, 'create_thin 4', { pool: 'p' });
  assert.instance(e, ThinIdInUseError);
  assert.is((e as ThinIdInUseError).devId, 4);
  assert.is((e as ThinIdInUseError).cause, wrapped);
  const busy = new Error('remove', { cause: ioctlError('EBUSY', 16) });
  assert.instance(mapPoolRemoveError(busy), PoolBusyError);
});

test('mapPoolRemoveError: EBUSY → PoolBusyError, others unchanged', () => {
  const busy = ioctlError('EBUSY', 16);
  const e = mapPoolRemoveError(busy, { pool: 'pool0' });
  assert.instance(e, PoolBusyError);
  assert.is((e as PoolBusyError).message, 'pool pool0 is busy: thin devices are still active');
  assert.is((e as PoolBusyError).cause, busy);
  const enxio = ioctlError('ENXIO', 6);
  assert.is(mapPoolRemoveError(enxio), enxio);
});

test.run();
