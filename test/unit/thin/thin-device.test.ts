// SPDX-License-Identifier: MIT
// ThinDevice over a recording fake DmControl: validation before any call, activation rollback and
// ENODATA mapping, snapshot suspending an active origin, delete/status on inactive handles.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  PoolFailedError,
  PoolOutOfDataSpaceError,
  ThinDevice,
  ThinDeviceBusyError,
  ThinIdInUseError,
  ThinIdNotFoundError,
  ThinPool,
} from '../../../src/thin/index.js';
import { FakeBlockDevices, FakeDm, ioctlError, poolStatusLine } from './fake-dm.js';
import { rejects } from '../../helpers/rejects.js';

async function activePool(): Promise<{ dm: FakeDm; pool: ThinPool }> {
  const dm = new FakeDm();
  const bd = new FakeBlockDevices();
  bd.add('/dev/loop0', 7, 0, 16n << 20n);
  bd.add('/dev/loop1', 7, 1, 64n << 20n);
  const pool = await ThinPool.create(dm, {
    name: 'pool', metadataDev: '7:0', dataDev: '7:1', dataBlockSize: 128, lowWaterMark: 0, metadata: 'new', blockDevices: bd,
  });
  dm.devices.get('pool')!.status = poolStatusLine(0n);
  dm.calls.length = 0;
  return { dm, pool };
}


test('ids are 24-bit and checked before any ioctl', async () => {
  const { dm, pool } = await activePool();
  await rejects(ThinDevice.create(pool, 0x100_0000), InvalidArgumentError);
  assert.throws(() => ThinDevice.of(pool, 1.5), (e: unknown) => e instanceof InvalidArgumentError);
  assert.equal(dm.calls, []);
  const t = await ThinDevice.create(pool, 0xff_ffff);
  assert.is(t.id, 16777215);
  assert.equal(dm.calls, [['targetMessage', 'pool', 0n, 'create_thin 16777215']]);
  dm.fail['targetMessage'] = () => ioctlError('EEXIST', 17);
  await rejects(ThinDevice.create(pool, 1), ThinIdInUseError);
});

test('activate validates first (zero calls), then create → load thin table → resume', async () => {
  const { dm, pool } = await activePool();
  const t = ThinDevice.of(pool, 7);
  await rejects(t.activate('', 0n), InvalidArgumentError);
  await rejects(t.activate('thin', 2048n, { externalOrigin: 'relative/path' }), InvalidArgumentError);
  await rejects(t.activate('thin', 2048n, { externalOrigin: pool.poolDev }), InvalidArgumentError);
  assert.equal(dm.calls, []);
  await t.activate('thin', 2048n, { readOnly: true, externalOrigin: '7:5' });
  assert.equal(dm.methods(), ['deviceCreate', 'tableLoad', 'deviceResume']);
  assert.equal(dm.calls[1], ['tableLoad', 'thin', [{ start: 0n, length: 2048n, type: 'thin', params: '253:0 7 7:5' }], { readOnly: true }]);
  assert.is(t.activeName, 'thin');
  assert.is(t.path, '/dev/mapper/thin');
  dm.calls.length = 0;
  await rejects(t.activate('again', 2048n), InvalidArgumentError);
  assert.equal(dm.calls, []);
});

test('activate of an id the pool does not have: ENODATA → ThinIdNotFoundError, device removed', async () => {
  const { dm, pool } = await activePool();
  dm.fail['tableLoad'] = () => ioctlError('ENODATA', 61, 'DM_TABLE_LOAD');
  const t = ThinDevice.of(pool, 42);
  const e = await rejects(t.activate('thin', 2048n), ThinIdNotFoundError);
  assert.is(e.devId, 42);
  assert.equal(dm.methods(), ['deviceCreate', 'tableLoad', 'deviceRemove']);
  assert.not.ok(dm.devices.has('thin'));
  assert.is(t.activeName, undefined);
});

test('activate EINVAL over a failed pool → PoolFailedError; over a working pool → the original error', async () => {
  const { dm, pool } = await activePool();
  const einval = ioctlError('EINVAL', 22, 'DM_TABLE_LOAD');
  dm.fail['tableLoad'] = () => einval;
  try {
    await ThinDevice.of(pool, 1).activate('thin', 2048n);
    assert.unreachable();
  } catch (err) {
    assert.is(err, einval);
  }
  dm.devices.get('pool')!.status = 'Fail';
  await rejects(ThinDevice.of(pool, 1).activate('thin', 2048n), PoolFailedError);
});

test('snapshot of an active device suspends it around create_snap and resumes it even on failure', async () => {
  const { dm, pool } = await activePool();
  const t = ThinDevice.of(pool, 1);
  await t.activate('thin', 2048n);
  dm.calls.length = 0;
  const snap = await t.snapshot(2);
  assert.is(snap.id, 2);
  assert.is(snap.activeName, undefined);
  // The handle is trusted (no table read of the origin); the info read tells whether to suspend.
  assert.equal(dm.methods(), ['deviceInfo', 'deviceSuspend', 'targetMessage', 'deviceResume']);
  dm.calls.length = 0;
  dm.fail['targetMessage'] = () => ioctlError('EEXIST', 17);
  await rejects(t.snapshot(2), ThinIdInUseError);
  assert.equal(dm.methods().slice(-2), ['targetMessage', 'deviceResume']);
  assert.not.ok(dm.devices.get('thin')!.suspended);
});

test('snapshot of an already-suspended active device leaves it suspended', async () => {
  const { dm, pool } = await activePool();
  const t = ThinDevice.of(pool, 1);
  await t.activate('thin', 2048n);
  dm.devices.get('thin')!.suspended = true;
  dm.calls.length = 0;
  await t.snapshot(2);
  assert.equal(dm.methods(), ['deviceInfo', 'targetMessage']);
  assert.ok(dm.devices.get('thin')!.suspended);
});

test('snapshot of an inactive device sends create_snap only', async () => {
  const { dm, pool } = await activePool();
  await ThinDevice.of(pool, 1).snapshot(2);
  assert.equal(dm.calls, [['targetMessage', 'pool', 0n, 'create_snap 2 1']]);
});

test('delete refuses an active handle without a kernel call; deactivate then delete works', async () => {
  const { dm, pool } = await activePool();
  const t = ThinDevice.of(pool, 1);
  await t.activate('thin', 2048n);
  dm.calls.length = 0;
  await rejects(t.delete(), ThinDeviceBusyError);
  assert.equal(dm.calls, []);
  await t.deactivate();
  await t.delete();
  assert.equal(dm.calls, [['deviceRemove', 'thin'], ['targetMessage', 'pool', 0n, 'delete 1']]);
  await t.deactivate(); // no-op
  assert.is(dm.calls.length, 2);
});

test('status: inactive without a call; parsed thin status when active', async () => {
  const { dm, pool } = await activePool();
  const t = ThinDevice.of(pool, 1);
  assert.equal(await t.status(), { kind: 'inactive' });
  assert.equal(dm.calls, []);
  await t.activate('thin', 2048n);
  dm.devices.get('thin')!.status = '1024 1023';
  assert.equal(await t.status(), { kind: 'working', mappedSectors: 1024n, highestMappedSector: 1023n });
  dm.devices.get('thin')!.status = 'Fail';
  assert.equal(await t.status(), { kind: 'fail' });
});

test('assertWritable throws the typed pool error the status shows', async () => {
  const { dm, pool } = await activePool();
  const t = ThinDevice.of(pool, 1);
  await t.assertWritable();
  dm.devices.get('pool')!.status = poolStatusLine(0n, '- out_of_data_space discard_passdown error_if_no_space - 1024');
  await rejects(t.assertWritable(), PoolOutOfDataSpaceError);
});

test('open reads an active thin device back and checks it maps this pool', async () => {
  const { dm, pool } = await activePool();
  dm.add('t9', [{ start: 0n, length: 4096n, type: 'thin', params: '253:0 9' }]);
  const t = await ThinDevice.open(pool, 't9');
  assert.is(t.id, 9);
  assert.is(t.activeName, 't9');
  dm.add('other', [{ start: 0n, length: 4096n, type: 'thin', params: '253:77 9' }]);
  await rejects(ThinDevice.open(pool, 'other'), InvalidArgumentError);
});

test.run();
