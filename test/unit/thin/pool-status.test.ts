// SPDX-License-Identifier: MIT
// thin-pool INFO status: literal kernel lines, older kernels, special forms, malformed input, helpers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelOutputError } from '../../../src/errors.js';
import {
  PoolFailedError,
  PoolNeedsCheckError,
  PoolOutOfDataSpaceError,
  PoolReadOnlyError,
  isBelowLowWater,
  isOutOfDataSpace,
  isPoolReadOnly,
  parseThinPoolStatus,
  poolDataFree,
  poolMetadataFree,
  poolStatusError,
  type ThinPoolWorkingStatus,
} from '../../../src/thin/index.js';

function working(line: string): ThinPoolWorkingStatus {
  const s = parseThinPoolStatus(line);
  if (s.kind !== 'working') throw new Error(`not working: ${s.kind}`);
  return s;
}

function kernelError(line: string): KernelOutputError {
  try {
    parseThinPoolStatus(line);
  } catch (e) {
    assert.instance(e, KernelOutputError);
    return e as KernelOutputError;
  }
  throw new Error(`accepted ${JSON.stringify(line)}`);
}

test('fresh pool, current kernel, trailing space', () => {
  assert.equal(parseThinPoolStatus('0 1/1024 0/8192 - rw discard_passdown queue_if_no_space - 1024 '), {
    kind: 'working',
    transactionId: 0n,
    usedMetadataBlocks: 1n,
    totalMetadataBlocks: 1024n,
    usedDataBlocks: 0n,
    totalDataBlocks: 8192n,
    heldMetadataRoot: null,
    mode: 'rw',
    discardPassdown: 'discard_passdown',
    noSpacePolicy: 'queue_if_no_space',
    needsCheck: false,
    metadataLowWatermark: 1024n,
  });
});

test('full pool with held root and needs_check', () => {
  assert.equal(parseThinPoolStatus('5 100/4096 2000/2000 42 out_of_data_space no_discard_passdown error_if_no_space needs_check 1024 '), {
    kind: 'working',
    transactionId: 5n,
    usedMetadataBlocks: 100n,
    totalMetadataBlocks: 4096n,
    usedDataBlocks: 2000n,
    totalDataBlocks: 2000n,
    heldMetadataRoot: 42n,
    mode: 'out_of_data_space',
    discardPassdown: 'no_discard_passdown',
    noSpacePolicy: 'error_if_no_space',
    needsCheck: true,
    metadataLowWatermark: 1024n,
  });
});

test('read-only pool with ignore_discard, u64 extremes, no trailing space', () => {
  const s = working('18446744073709551615 4161600/4161600 0/18446744073709551615 - ro ignore_discard queue_if_no_space - 4096');
  assert.is(s.transactionId, 18446744073709551615n);
  assert.is(s.totalDataBlocks, 18446744073709551615n);
  assert.is(s.mode, 'ro');
  assert.is(s.discardPassdown, 'ignore_discard');
  assert.is(s.metadataLowWatermark, 4096n);
});

test('older kernel without the metadata low watermark', () => {
  const s = working('3 10/512 7/100 - rw discard_passdown queue_if_no_space needs_check ');
  assert.is(s.needsCheck, true);
  assert.is(s.metadataLowWatermark, null);
});

test('older kernel without needs_check and low watermark: defaults false / null', () => {
  const s = working('3 10/512 7/100 - rw discard_passdown queue_if_no_space ');
  assert.is(s.needsCheck, false);
  assert.is(s.metadataLowWatermark, null);
  assert.is(s.transactionId, 3n);
});

test('extra fields from a future kernel are ignored', () => {
  const s = working('0 1/1024 0/8192 - rw discard_passdown queue_if_no_space - 1024 something_new 7 ');
  assert.is(s.metadataLowWatermark, 1024n);
});

test('Fail and Error special forms, with or without blanks', () => {
  assert.equal(parseThinPoolStatus('Fail'), { kind: 'fail' });
  assert.equal(parseThinPoolStatus('Fail '), { kind: 'fail' });
  assert.equal(parseThinPoolStatus('Error'), { kind: 'error' });
  assert.equal(parseThinPoolStatus(' Error\n'), { kind: 'error' });
});

test('malformed lines give KernelOutputError with field index, raw value and expectation', () => {
  const cases: Array<[string, string]> = [
    ['', 'thin-pool status field 1 (transaction id): got nothing, expected an unsigned 64-bit decimal'],
    ['fail', 'thin-pool status field 1 (transaction id): got "fail", expected an unsigned 64-bit decimal'],
    ['0 1/1024', 'thin-pool status field 3 (data blocks): got nothing, expected "<used>/<total>" unsigned decimals'],
    ['0 1/1024 0/8192 - rw discard_passdown', 'thin-pool status field 7 (no-space policy): got nothing, expected error_if_no_space | queue_if_no_space'],
    ['x 1/1024 0/8192 - rw discard_passdown queue_if_no_space', 'thin-pool status field 1 (transaction id): got "x", expected an unsigned 64-bit decimal'],
    ['-1 1/1024 0/8192 - rw discard_passdown queue_if_no_space', 'thin-pool status field 1 (transaction id): got "-1", expected an unsigned 64-bit decimal'],
    ['18446744073709551616 1/1024 0/8192 - rw discard_passdown queue_if_no_space', 'thin-pool status field 1 (transaction id): got "18446744073709551616", expected an unsigned 64-bit decimal'],
    ['0 1024 0/8192 - rw discard_passdown queue_if_no_space', 'thin-pool status field 2 (metadata blocks): got "1024", expected "<used>/<total>" unsigned decimals'],
    ['0 1/2/3 0/8192 - rw discard_passdown queue_if_no_space', 'thin-pool status field 2 (metadata blocks): got "1/2/3", expected "<used>/<total>" unsigned decimals'],
    ['0 1/1024 0/ - rw discard_passdown queue_if_no_space', 'thin-pool status field 3 (data blocks): got "0/", expected "<used>/<total>" unsigned decimals'],
    ['0 1/1024 0/8192 none rw discard_passdown queue_if_no_space', 'thin-pool status field 4 (held metadata root): got "none", expected an unsigned 64-bit decimal'],
    ['0 1/1024 0/8192 - RW discard_passdown queue_if_no_space', 'thin-pool status field 5 (mode): got "RW", expected rw | ro | out_of_data_space'],
    ['0 1/1024 0/8192 - rw discard queue_if_no_space', 'thin-pool status field 6 (discard): got "discard", expected discard_passdown | no_discard_passdown | ignore_discard'],
    ['0 1/1024 0/8192 - rw discard_passdown queue', 'thin-pool status field 7 (no-space policy): got "queue", expected error_if_no_space | queue_if_no_space'],
    ['0 1/1024 0/8192 - rw discard_passdown queue_if_no_space check 1024', 'thin-pool status field 8 (needs_check): got "check", expected needs_check | -'],
    ['0 1/1024 0/8192 - rw discard_passdown queue_if_no_space - -', 'thin-pool status field 9 (metadata low watermark): got "-", expected an unsigned 64-bit decimal'],
  ];
  for (const [line, message] of cases) {
    const e = kernelError(line);
    assert.is(e.message, message);
    assert.is(e.raw, line);
    assert.is(e.code, 'EKERNELOUTPUT');
  }
});

test('free-space helpers', () => {
  const s = working('0 100/1024 300/8192 - rw discard_passdown queue_if_no_space - 256 ');
  assert.is(poolDataFree(s), 7892n);
  assert.is(poolMetadataFree(s), 924n);
  assert.is(isBelowLowWater(s, 7893), true);
  assert.is(isBelowLowWater(s, 7892n), false);
  const odd = working('0 2000/1024 9000/8192 - rw discard_passdown queue_if_no_space');
  assert.is(poolDataFree(odd), 0n);
  assert.is(poolMetadataFree(odd), 0n);
});

test('mode helpers and poolStatusError', () => {
  const rw = parseThinPoolStatus('0 1/1024 0/8192 - rw discard_passdown queue_if_no_space - 1024 ');
  const ro = parseThinPoolStatus('0 1/1024 0/8192 - ro discard_passdown queue_if_no_space - 1024 ');
  const full = parseThinPoolStatus('5 100/4096 2000/2000 - out_of_data_space discard_passdown queue_if_no_space - 1024 ');
  const check = parseThinPoolStatus('5 100/4096 20/2000 - ro discard_passdown queue_if_no_space needs_check 1024 ');
  const fail = parseThinPoolStatus('Fail');
  const error = parseThinPoolStatus('Error');

  assert.equal([rw, ro, full, check, fail, error].map(isOutOfDataSpace), [false, false, true, false, false, false]);
  assert.equal([rw, ro, full, check, fail, error].map(isPoolReadOnly), [false, true, false, true, true, true]);

  assert.is(poolStatusError(rw), null);
  assert.instance(poolStatusError(ro, 'pool0'), PoolReadOnlyError);
  assert.instance(poolStatusError(full), PoolOutOfDataSpaceError);
  assert.instance(poolStatusError(check), PoolNeedsCheckError);
  assert.instance(poolStatusError(fail), PoolFailedError);
  assert.instance(poolStatusError(error), PoolFailedError);
  assert.is(poolStatusError(ro, 'pool0')?.message, 'pool pool0 is read-only');
  assert.is(poolStatusError(ro, 'pool0')?.pool, 'pool0');
  assert.is(poolStatusError(full)?.code, 'EPOOLNODATASPACE');
});

test.run();
