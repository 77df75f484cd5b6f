// SPDX-License-Identifier: MIT
// snapshot-origin, snapshot, snapshot-merge and mirror: params codecs (the kernel's table form),
// validation listing every problem, status parsers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SNAPSHOT_MAX_CHUNK_SECTORS,
  formatMirrorParams,
  formatSnapshotOriginParams,
  formatSnapshotParams,
  isSnapshotMergeComplete,
  mirrorParamsProblems,
  mirrorTarget,
  parseMirrorParams,
  parseMirrorStatus,
  parseSnapshotOriginParams,
  parseSnapshotOriginStatus,
  parseSnapshotParams,
  parseSnapshotStatus,
  snapshotMergeTarget,
  snapshotOriginTarget,
  snapshotParamsProblems,
  snapshotTarget,
  type MirrorParams,
  type SnapshotParams,
} from '../../../src/dm/index.js';
import { d, isInvalid, isKernelOutput, problemPaths } from './target-helpers.js';


// ---- snapshot-origin ----

test('snapshot-origin: one device, both ways; status empty', () => {
  assert.is(formatSnapshotOriginParams({ device: d(7, 0) }), '7:0');
  assert.equal(snapshotOriginTarget(0n, 8n, { device: d(253, 1) }), { start: 0n, length: 8n, type: 'snapshot-origin', params: '253:1' });
  assert.equal(parseSnapshotOriginParams(' 7:3 '), { device: d(7, 3) });
  assert.throws(() => parseSnapshotOriginParams('7:3 7:4'), isInvalid);
  assert.throws(() => parseSnapshotOriginParams(''), isInvalid);
  assert.throws(() => formatSnapshotOriginParams({ device: d(-1, 0) }), isInvalid);
  assert.equal(parseSnapshotOriginStatus(''), {});
  assert.throws(() => parseSnapshotOriginStatus('x'), isKernelOutput);
});

// ---- snapshot ----

const snap: SnapshotParams = { origin: d(7, 0), cow: d(7, 1), store: 'persistent', chunkSize: 8 };

test('snapshot: encodes the kernel table form (store letter, chunk, features only when on)', () => {
  assert.is(formatSnapshotParams(snap), '7:0 7:1 P 8');
  assert.is(formatSnapshotParams({ ...snap, store: 'persistent-overflow', chunkSize: 16 }), '7:0 7:1 PO 16');
  assert.is(formatSnapshotParams({ ...snap, store: 'transient', chunkSize: SNAPSHOT_MAX_CHUNK_SECTORS }), '7:0 7:1 N 2097152');
  assert.is(formatSnapshotParams({ ...snap, discardZeroesCow: true }), '7:0 7:1 P 8 1 discard_zeroes_cow');
  assert.is(formatSnapshotParams({ ...snap, discardZeroesCow: true, discardPassdownOrigin: true }), '7:0 7:1 P 8 2 discard_zeroes_cow discard_passdown_origin');
  assert.equal(snapshotTarget(0n, 16n, snap), { start: 0n, length: 16n, type: 'snapshot', params: '7:0 7:1 P 8' });
  assert.equal(snapshotMergeTarget(0n, 16n, snap), { start: 0n, length: 16n, type: 'snapshot-merge', params: '7:0 7:1 P 8' });
  assert.equal(problemPaths(() => snapshotMergeTarget(0n, 16n, { ...snap, store: 'transient' })), ['/store']);
});

test('snapshot: every problem listed', () => {
  assert.equal(snapshotParamsProblems(snap), []);
  assert.equal(
    problemPaths(() =>
      formatSnapshotParams({ origin: d(7, 0), cow: d(7, 0), store: 'Q' as never, chunkSize: 12, discardPassdownOrigin: true }),
    ),
    ['/cow', '/store', '/chunkSize', '/discardPassdownOrigin'],
  );
  for (const chunkSize of [0, 3, -8, 8.5, SNAPSHOT_MAX_CHUNK_SECTORS * 2, Number.NaN])
    assert.equal(problemPaths(() => formatSnapshotParams({ ...snap, chunkSize })), ['/chunkSize'], String(chunkSize));
  assert.equal(problemPaths(() => formatSnapshotParams({ ...snap, discardZeroesCow: false as never })), ['/discardZeroesCow']);
  assert.equal(snapshotParamsProblems(null), [{ path: '', message: 'must be a snapshot params object', value: null }]);
  assert.equal(snapshotParamsProblems({}).map((p) => p.path), ['/origin', '/cow', '/store', '/chunkSize']);
});

test('snapshot: parses the kernel form and what snapshot_ctr accepts', () => {
  assert.equal(parseSnapshotParams('7:0 7:1 P 8'), snap);
  assert.equal(parseSnapshotParams('7:0 7:1 p 8'), snap);
  assert.equal(parseSnapshotParams('7:0 7:1 po 8'), { ...snap, store: 'persistent-overflow' });
  assert.equal(parseSnapshotParams('7:0 7:1 POx 8'), { ...snap, store: 'persistent-overflow' }); // persistent_ctr reads options[0] only
  assert.equal(parseSnapshotParams('7:0 7:1 Nothing 8'), { ...snap, store: 'transient' }); // transient_ctr ignores options
  assert.equal(parseSnapshotParams('7:0\t7:1  P 8 0'), snap);
  assert.equal(parseSnapshotParams('7:0 7:1 P 8 2 DISCARD_PASSDOWN_ORIGIN discard_zeroes_cow'), { ...snap, discardZeroesCow: true, discardPassdownOrigin: true });
  for (const bad of ['7:0 7:1 P', '7:0 7:1 PX 8', '7:0 7:1 X 8', '7:0 7:1 P 0', '7:0 7:1 P 6', '7:0 7:1 P 8 3 a b c', '7:0 7:1 P 8 1', '7:0 7:1 P 8 1 nope', '7:0 7:1 P 8 1 discard_passdown_origin', '7:0 7:0 P 8', '/dev/loop0 7:1 P 8', '7:0 7:1 P -8'])
    assert.throws(() => parseSnapshotParams(bad), isInvalid, bad);
  for (const p of [snap, { ...snap, store: 'transient' as const, discardZeroesCow: true as const }, { ...snap, store: 'persistent-overflow' as const, chunkSize: 1 }])
    assert.equal(parseSnapshotParams(formatSnapshotParams(p)), p);
});

test('snapshot: status, every form snapshot_status prints', () => {
  assert.equal(parseSnapshotStatus('16/8192 16'), { state: 'active', allocatedSectors: 16n, totalSectors: 8192n, metadataSectors: 16n });
  assert.equal(parseSnapshotStatus('18446744073709551615/18446744073709551615 0'), {
    state: 'active',
    allocatedSectors: 18446744073709551615n,
    totalSectors: 18446744073709551615n,
    metadataSectors: 0n,
  });
  assert.equal(parseSnapshotStatus('Invalid'), { state: 'invalid' });
  assert.equal(parseSnapshotStatus('Merge failed'), { state: 'merge-failed' });
  assert.equal(parseSnapshotStatus('Overflow'), { state: 'overflow' });
  assert.equal(parseSnapshotStatus('Unknown'), { state: 'unknown' });
  for (const bad of ['', '16/8192', '16 8192 16', '16/x 16', '18446744073709551616/1 0', '1/1 -1', 'Merge', 'invalid', '1/1 1 1'])
    assert.throws(() => parseSnapshotStatus(bad), isKernelOutput, bad);
  assert.is(isSnapshotMergeComplete(parseSnapshotStatus('16/8192 16')), true);
  assert.is(isSnapshotMergeComplete(parseSnapshotStatus('32/8192 16')), false);
  assert.is(isSnapshotMergeComplete({ state: 'merge-failed' }), false);
});

// ---- mirror ----

const legs = [{ device: d(7, 2), offset: 0n }, { device: d(7, 3), offset: 2048n }];
const mirror: MirrorParams = { log: { type: 'core', regionSize: 1024 }, legs };

test('mirror: encodes the kernel table form (log first, with its trailing blank as separator)', () => {
  assert.is(formatMirrorParams(mirror), 'core 1 1024 2 7:2 0 7:3 2048');
  assert.is(formatMirrorParams({ ...mirror, log: { type: 'core', regionSize: 1024, sync: 'nosync' } }), 'core 2 1024 nosync 2 7:2 0 7:3 2048');
  assert.is(formatMirrorParams({ ...mirror, log: { type: 'disk', device: d(7, 4), regionSize: 512 } }), 'disk 2 7:4 512 2 7:2 0 7:3 2048');
  assert.is(
    formatMirrorParams({ ...mirror, log: { type: 'disk', device: d(7, 4), regionSize: 512, sync: 'sync' }, handleErrors: true, keepLog: true }),
    'disk 3 7:4 512 sync 2 7:2 0 7:3 2048 2 handle_errors keep_log',
  );
  assert.is(formatMirrorParams({ ...mirror, handleErrors: true }), 'core 1 1024 2 7:2 0 7:3 2048 1 handle_errors');
  assert.equal(mirrorTarget(0n, 1024n, mirror), { start: 0n, length: 1024n, type: 'mirror', params: 'core 1 1024 2 7:2 0 7:3 2048' });
  assert.equal(problemPaths(() => mirrorTarget(0n, 1023n, mirror)), ['/log/regionSize']);
});

test('mirror: every problem listed', () => {
  assert.equal(mirrorParamsProblems(mirror), []);
  assert.equal(
    problemPaths(() =>
      formatMirrorParams({ log: { type: 'core', regionSize: 3, sync: 'maybe' as never }, legs: [legs[0]!], keepLog: true }),
    ),
    ['/log/regionSize', '/log/sync', '/legs', '/keepLog'],
  );
  assert.equal(
    problemPaths(() => formatMirrorParams({ log: { type: 'disk', regionSize: 1 } as never, legs: [{ device: d(7, 1), offset: -1n }, { device: d(1 << 12, 0), offset: 0n }], handleErrors: 1 as never })),
    ['/log/device', '/log/regionSize', '/legs/0/offset', '/legs/1/device/major', '/handleErrors'],
  );
  assert.equal(problemPaths(() => formatMirrorParams({ ...mirror, log: { type: 'core', regionSize: 8, device: d(7, 1) } as never })), ['/log/device']);
  assert.equal(problemPaths(() => formatMirrorParams({ ...mirror, legs: Array(10).fill(legs[0]) })), ['/legs']);
  assert.equal(mirrorParamsProblems('x'), [{ path: '', message: 'must be a mirror params object', value: 'x' }]);
});

test('mirror: parses the kernel form and what mirror_ctr accepts', () => {
  for (const p of [
    mirror,
    { ...mirror, log: { type: 'core' as const, regionSize: 2, sync: 'sync' as const } },
    { ...mirror, log: { type: 'disk' as const, device: d(7, 4), regionSize: 512, sync: 'nosync' as const }, handleErrors: true as const, keepLog: true as const },
  ])
    assert.equal(parseMirrorParams(formatMirrorParams(p)), p);
  assert.equal(parseMirrorParams(' core 1 1024  2 7:2 0 7:3 2048 0 '), mirror);
  assert.equal(parseMirrorParams('core 1 1024 2 7:2 0 7:3 2048 2 handle_errors handle_errors'), { ...mirror, handleErrors: true });
  for (const bad of [
    '',
    'core',
    'core 1',
    'core 0 2 7:2 0 7:3 0',
    'core 1 1024 1 7:2 0',
    'core 1 1024 10 7:2 0 7:3 0',
    'core 1 1024 2 7:2 0 7:3',
    'core 1 1024 2 7:2 0 7:3 x',
    'core 2 1024 SYNC 2 7:2 0 7:3 0',
    'Core 1 1024 2 7:2 0 7:3 0',
    'disk 1 1024 2 7:2 0 7:3 0',
    'disk 2 1024 7:4 2 7:2 0 7:3 0',
    'userspace 2 x y 2 7:2 0 7:3 0',
    'core 1 1000 2 7:2 0 7:3 0',
    'core 1 1024 2 7:2 0 7:3 0 1 HANDLE_ERRORS',
    'core 1 1024 2 7:2 0 7:3 0 1 keep_log',
    'core 1 1024 2 7:2 0 7:3 0 2 handle_errors',
    'core 1 1024 2 7:2 0 7:3 0 1 handle_errors extra',
    'core 4294967295 1024',
  ])
    assert.throws(() => parseMirrorParams(bad), isInvalid, bad);
});

test('mirror: status with a core and a disk log, every health character', () => {
  assert.equal(parseMirrorStatus('2 7:2 7:3 8/8 1 AA 1 core'), {
    legs: [{ device: d(7, 2), health: 'A' }, { device: d(7, 3), health: 'A' }],
    syncedRegions: 8n,
    totalRegions: 8n,
    inSync: true,
    log: { type: 'core' },
  });
  assert.equal(parseMirrorStatus('3 7:2 7:3 253:0 3/16 1 ADS 3 disk 7:4 F'), {
    legs: [{ device: d(7, 2), health: 'A' }, { device: d(7, 3), health: 'D' }, { device: d(253, 0), health: 'S' }],
    syncedRegions: 3n,
    totalRegions: 16n,
    inSync: false,
    log: { type: 'disk', device: d(7, 4), health: 'F' },
  });
  assert.equal(parseMirrorStatus('2 7:2 7:3 0/4 1 RU 1 core').legs.map((l) => l.health), ['R', 'U']);
  for (const bad of [
    '',
    '2 7:2 7:3 8/8 1 AA',
    '2 7:2 7:3 8/8 1 AA 1',
    '2 7:2 7:3 8/8 1 A 1 core',
    '2 7:2 7:3 8/8 1 AX 1 core',
    '2 7:2 7:3 8/8 2 AA 1 core',
    '2 7:2 7:3 8-8 1 AA 1 core',
    '2 7:2 x 8/8 1 AA 1 core',
    '0 8/8 1  1 core',
    '2 7:2 7:3 8/8 1 AA 3 disk 7:4 S',
    '2 7:2 7:3 8/8 1 AA 3 disk x A',
    '2 7:2 7:3 8/8 1 AA 2 core x',
    '2 7:2 7:3 8/8 1 AA 1 userspace',
  ])
    assert.throws(() => parseMirrorStatus(bad), isKernelOutput, bad);
});

test.run();
