// SPDX-License-Identifier: MIT
// ThinPool over a recording fake DmControl: validation before any call, metadata-head checks,
// create rollback, message error mapping, createSnap's suspend/resume guarantee, resize, remove.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  PoolBusyError,
  PoolMetadataMismatchError,
  PoolMetadataNotEmptyError,
  PoolNeedsCheckError,
  PoolShrinkError,
  ThinIdInUseError,
  ThinIdNotFoundError,
  ThinPool,
  TransactionIdMismatchError,
  UnexpectedTargetError,
  type ThinPoolCreateOptions,
} from '../../../src/thin/index.js';
import { FakeBlockDevices, FakeDm, ioctlError, poolStatusLine, thinSuperblockHead } from './fake-dm.js';
import { rejects } from '../../helpers/rejects.js';

const MiB = 1024n * 1024n;

function setup(metaHead?: Buffer): { dm: FakeDm; bd: FakeBlockDevices; opts: ThinPoolCreateOptions } {
  const dm = new FakeDm();
  const bd = new FakeBlockDevices();
  bd.add('/dev/loop0', 7, 0, 16n * MiB, metaHead);
  bd.add('/dev/loop1', 7, 1, 64n * MiB + 1000n);
  const opts: ThinPoolCreateOptions = {
    name: 'pool',
    metadataDev: '/dev/loop0',
    dataDev: '/dev/loop1',
    dataBlockSize: 128,
    lowWaterMark: 16,
    metadata: 'new',
    blockDevices: bd,
  };
  return { dm, bd, opts };
}


async function activePool(): Promise<{ dm: FakeDm; bd: FakeBlockDevices; pool: ThinPool }> {
  const { dm, bd, opts } = setup();
  const pool = await ThinPool.create(dm, opts);
  dm.devices.get('pool')!.status = poolStatusLine(0n);
  dm.calls.length = 0;
  bd.calls.length = 0;
  return { dm, bd, pool };
}

test('create validates every option before any kernel or disk access, listing all problems', async () => {
  const { dm, bd, opts } = setup();
  const err = await rejects(
    ThinPool.create(dm, {
      ...opts,
      name: '',
      dataBlockSize: 100,
      lowWaterMark: -1,
      features: { skipBlockZeroing: true, ignoreDiscard: true, noDiscardPassdown: true, readOnly: true, errorIfNoSpace: true },
      metadata: 'reuse',
      zeroMetadata: true,
      lengthSectors: 1001n,
    }),
    InvalidArgumentError,
  );
  const paths = err.problems.map((p) => p.path);
  for (const p of ['/name', '/dataBlockSize', '/lowWaterMark', '/features', '/zeroMetadata', '/lengthSectors']) {
    assert.ok(paths.includes(p), `missing problem at ${p}: ${paths.join(', ')}`);
  }
  assert.equal(dm.calls, []);
  assert.equal(bd.calls, []);
});

test('create refuses block sizes outside 128..2097152 or not a multiple of 128, with zero calls', async () => {
  for (const dataBlockSize of [64, 192 + 1, 2_097_152 + 128, 1.5]) {
    const { dm, bd, opts } = setup();
    await rejects(ThinPool.create(dm, { ...opts, dataBlockSize }), InvalidArgumentError);
    assert.equal(dm.calls, [], `dm calls for ${dataBlockSize}`);
    assert.equal(bd.calls, []);
  }
});

test('create refuses a metadata device whose first 4 KiB are not zero (metadata: new)', async () => {
  const head = Buffer.alloc(4096);
  head[4095] = 1;
  const { dm, bd, opts } = setup(head);
  const err = await rejects(ThinPool.create(dm, opts), PoolMetadataNotEmptyError);
  assert.is(err.metadataDev, '7:0');
  assert.equal(dm.calls, [], 'no dm call after the refusal');
  assert.not.ok(bd.calls.some((c) => c[0] === 'zeroHead'), 'must not zero without being asked');
});

test('zeroMetadata: zeroes the first 4 KiB, then create → load → resume with the exact table line', async () => {
  const { dm, bd, opts } = setup(Buffer.alloc(4096, 0xaa));
  const pool = await ThinPool.create(dm, { ...opts, zeroMetadata: true, features: { errorIfNoSpace: true } });
  assert.equal(bd.calls.filter((c) => c[0] === 'zeroHead'), [['zeroHead', '/dev/loop0', 4096]]);
  assert.equal(dm.methods(), ['deviceCreate', 'tableLoad', 'deviceResume']);
  // 64 MiB + 1000 bytes → 131073 sectors → 1024 blocks of 128 → 131072 sectors.
  assert.equal(dm.calls[1], ['tableLoad', 'pool', [{ start: 0n, length: 131072n, type: 'thin-pool', params: '7:0 7:1 128 16 1 error_if_no_space' }], undefined]);
  assert.is(pool.poolDev, '253:0');
  assert.is(pool.lengthSectors, 131072n);
});

test('metadata: reuse checks for a thin superblock with the same block size', async () => {
  {
    const { dm, opts } = setup();
    const e = await rejects(ThinPool.create(dm, { ...opts, metadata: 'reuse' }), PoolMetadataMismatchError);
    assert.is(e.reason, 'blank');
    assert.equal(dm.calls, []);
  }
  {
    const { dm, opts } = setup(Buffer.alloc(4096, 1));
    const e = await rejects(ThinPool.create(dm, { ...opts, metadata: 'reuse' }), PoolMetadataMismatchError);
    assert.is(e.reason, 'not-thin-metadata');
  }
  {
    const { dm, opts } = setup(thinSuperblockHead(256));
    const e = await rejects(ThinPool.create(dm, { ...opts, metadata: 'reuse' }), PoolMetadataMismatchError);
    assert.is(e.reason, 'data-block-size');
    assert.equal(dm.calls, []);
  }
  {
    const { dm, opts } = setup(thinSuperblockHead(128));
    await ThinPool.create(dm, { ...opts, metadata: 'reuse' });
    assert.equal(dm.methods(), ['deviceCreate', 'tableLoad', 'deviceResume']);
  }
});

test('create refuses a length beyond the data device and the same device twice, before any dm call', async () => {
  const { dm, bd, opts } = setup();
  await rejects(ThinPool.create(dm, { ...opts, lengthSectors: 131072n * 2n }), InvalidArgumentError);
  bd.add('/dev/alias', 7, 0, 16n * MiB);
  await rejects(ThinPool.create(dm, { ...opts, dataDev: '/dev/alias' }), InvalidArgumentError);
  assert.equal(dm.calls, []);
});

test('create rolls back (removes the device) when the table load fails, and rethrows the original', async () => {
  const { dm, opts } = setup();
  const loadErr = ioctlError('EBUSY', 16, 'DM_TABLE_LOAD');
  dm.fail['tableLoad'] = () => loadErr;
  try {
    await ThinPool.create(dm, opts);
    assert.unreachable();
  } catch (err) {
    assert.is(err, loadErr);
  }
  assert.equal(dm.methods(), ['deviceCreate', 'tableLoad', 'deviceRemove']);
  assert.not.ok(dm.devices.has('pool'));
});

test('create rolls back when the resume fails', async () => {
  const { dm, opts } = setup();
  dm.fail['deviceResume'] = () => ioctlError('EINVAL', 22, 'DM_DEV_SUSPEND');
  await rejects(ThinPool.create(dm, opts), Error);
  assert.equal(dm.methods(), ['deviceCreate', 'tableLoad', 'deviceResume', 'deviceRemove']);
  assert.not.ok(dm.devices.has('pool'));
});

test('open reads the table back', async () => {
  const dm = new FakeDm();
  dm.add('p', [{ start: 0n, length: 262144n, type: 'thin-pool', params: '7:0 7:1 256 100 1 skip_block_zeroing ' }]);
  const bd = new FakeBlockDevices();
  bd.add('/dev/loop0', 7, 0, 16n * MiB);
  const pool = await ThinPool.open(dm, 'p', { blockDevices: bd });
  // A port without tableStatusWithInfo: the device number from a DM_DEV_STATUS of its own.
  assert.equal(dm.methods(), ['tableStatus', 'deviceInfo']);
  assert.equal(pool.dev, dm.devices.get('p')?.dev);
  assert.is(pool.dataBlockSize, 256);
  assert.is(pool.params.lowWaterMark, 100n);
  assert.ok(pool.params.features.skipBlockZeroing);
  assert.is(pool.lengthSectors, 262144n);
  dm.add('lin', [{ start: 0n, length: 8n, type: 'linear', params: '7:0 0' }]);
  await rejects(ThinPool.open(dm, 'lin', { blockDevices: bd }), UnexpectedTargetError);
});

test('status parses the pool line (noflush passed through)', async () => {
  const { dm, pool } = await activePool();
  const s = await pool.status({ noflush: true });
  assert.is(s.kind, 'working');
  assert.equal(dm.calls, [['tableStatus', 'pool', { mode: 'status', noflush: true }]]);
});

test('messages: ids validated before any ioctl; EEXIST / ENODATA mapped', async () => {
  const { dm, pool } = await activePool();
  await rejects(pool.createThin(1 << 24), InvalidArgumentError);
  await rejects(pool.createSnap(1, 1), InvalidArgumentError);
  await rejects(pool.deleteThin(-1), InvalidArgumentError);
  assert.equal(dm.calls, []);
  await pool.createThin(1);
  assert.equal(dm.calls, [['targetMessage', 'pool', 0n, 'create_thin 1']]);
  dm.fail['targetMessage'] = () => ioctlError('EEXIST', 17);
  const e1 = await rejects(pool.createThin(1), ThinIdInUseError);
  assert.is(e1.devId, 1);
  dm.fail['targetMessage'] = () => ioctlError('ENODATA', 61);
  const e2 = await rejects(pool.deleteThin(9), ThinIdNotFoundError);
  assert.is(e2.devId, 9);
});

test('EOPNOTSUPP is told apart by the status: needs_check → PoolNeedsCheckError', async () => {
  const { dm, pool } = await activePool();
  dm.devices.get('pool')!.status = poolStatusLine(0n, '- ro discard_passdown queue_if_no_space needs_check 1024');
  dm.fail['targetMessage'] = () => ioctlError('EOPNOTSUPP', 95);
  await rejects(pool.createThin(3), PoolNeedsCheckError);
});

test('createSnap with an active origin: suspend → message → resume', async () => {
  const { dm, pool } = await activePool();
  dm.add('thin1', [{ start: 0n, length: 2048n, type: 'thin', params: '253:0 1' }]);
  await pool.createSnap(2, 1, { origin: 'thin1' });
  assert.equal(dm.methods(), ['tableStatus', 'deviceInfo', 'deviceSuspend', 'targetMessage', 'deviceResume']);
  assert.equal(dm.calls[3], ['targetMessage', 'pool', 0n, 'create_snap 2 1']);
  assert.not.ok(dm.devices.get('thin1')!.suspended);
});

test('createSnap ALWAYS resumes the origin, also when the message fails, and throws the typed error', async () => {
  const { dm, pool } = await activePool();
  dm.add('thin1', [{ start: 0n, length: 2048n, type: 'thin', params: '253:0 1' }]);
  dm.fail['targetMessage'] = () => ioctlError('EEXIST', 17);
  const err = await rejects(pool.createSnap(2, 1, { origin: 'thin1' }), ThinIdInUseError);
  assert.is(err.devId, 2);
  assert.equal(dm.methods(), ['tableStatus', 'deviceInfo', 'deviceSuspend', 'targetMessage', 'deviceResume']);
  assert.not.ok(dm.devices.get('thin1')!.suspended, 'origin left suspended');

  dm.calls.length = 0;
  dm.fail['targetMessage'] = () => ioctlError('ENODATA', 61);
  const e2 = await rejects(pool.createSnap(2, 1, { origin: 'thin1' }), ThinIdNotFoundError);
  assert.is(e2.devId, 1, 'ENODATA on create_snap names the origin');
  assert.ok(dm.methods().includes('deviceResume'));
});

test('createSnap leaves an already-suspended origin alone, and refuses an origin mapping another id', async () => {
  const { dm, pool } = await activePool();
  dm.add('thin1', [{ start: 0n, length: 2048n, type: 'thin', params: '253:0 1' }]).suspended = true;
  await pool.createSnap(2, 1, { origin: 'thin1' });
  assert.equal(dm.methods(), ['tableStatus', 'deviceInfo', 'targetMessage']);
  dm.calls.length = 0;
  await rejects(pool.createSnap(3, 5, { origin: 'thin1' }), InvalidArgumentError);
  assert.equal(dm.methods(), ['tableStatus'], 'nothing suspended, no message sent');
});

test('setTransactionId: EINVAL with a different actual id → TransactionIdMismatchError', async () => {
  const { dm, pool } = await activePool();
  await pool.setTransactionId(0n, 5n);
  assert.equal(dm.calls, [['targetMessage', 'pool', 0n, 'set_transaction_id 0 5']]);
  dm.devices.get('pool')!.status = poolStatusLine(5n);
  dm.fail['targetMessage'] = () => ioctlError('EINVAL', 22);
  const e = await rejects(pool.setTransactionId(3, 4), TransactionIdMismatchError);
  assert.is(e.expected, 3n);
  assert.is(e.actual, 5n);
  // EINVAL although the id matches: not a mismatch, the original error stays.
  const raw = await rejects(pool.setTransactionId(5n, 6n), Error);
  assert.not.instance(raw, TransactionIdMismatchError);
  dm.calls.length = 0;
  await rejects(pool.setTransactionId(-1, 2 ** 60), InvalidArgumentError);
  assert.equal(dm.calls, []);
});

test('resize refuses shrinking with a typed error before any ioctl; growing reloads and resumes', async () => {
  const { dm, bd, pool } = await activePool();
  await rejects(pool.resize({ dataLengthSectors: 1024n }), PoolShrinkError);
  await rejects(pool.resize({ dataLengthSectors: 131072n + 5n }), InvalidArgumentError);
  assert.equal(dm.calls, []);
  bd.grow('/dev/loop1', 128n * MiB);
  await pool.resize();
  assert.equal(dm.methods(), ['tableLoad', 'deviceResume']);
  assert.equal(dm.calls[0], ['tableLoad', 'pool', [{ start: 0n, length: 262144n, type: 'thin-pool', params: '7:0 7:1 128 16 0' }], undefined]);
  assert.is(pool.lengthSectors, 262144n);
  dm.calls.length = 0;
  bd.grow('/dev/loop0', 8n * MiB);
  const e = await rejects(pool.resize({ metadataDev: '/dev/loop0' }), PoolShrinkError);
  assert.is(e.device, 'metadata');
  await rejects(pool.resize({ metadataDev: '/dev/loop1' }), InvalidArgumentError);
  assert.equal(dm.calls, []);
});

test('remove: PoolBusyError while thin devices hold the pool (no remove attempted), and from EBUSY', async () => {
  const { dm, pool } = await activePool();
  dm.devices.get('pool')!.openCount = 1;
  await rejects(pool.remove(), PoolBusyError);
  assert.equal(dm.methods(), ['deviceInfo']);
  dm.devices.get('pool')!.openCount = 0;
  const busy = Object.assign(new Error('still in use'), { code: 'EDEVICEBUSY', cause: ioctlError('EBUSY', 16, 'DM_DEV_REMOVE') });
  dm.fail['deviceRemove'] = () => busy;
  const e = await rejects(pool.remove(), PoolBusyError);
  assert.is(e.cause, busy);
  dm.fail = {};
  await pool.remove();
  assert.not.ok(dm.devices.has('pool'));
});

test.run();
