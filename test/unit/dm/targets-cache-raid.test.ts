// SPDX-License-Identifier: MIT
// cache, writecache, raid and integrity: params codecs (the kernel's table form), validation
// listing every problem, status parsers, messages.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  cacheInvalidateCblocksMessage,
  cacheMigrationThresholdMessage,
  cacheParamsProblems,
  cacheTarget,
  formatCacheParams,
  formatIntegrityParams,
  formatRaidParams,
  formatWritecacheParams,
  integrityParamsProblems,
  integrityTarget,
  parseCacheParams,
  parseCacheStatus,
  parseIntegrityParams,
  parseIntegrityStatus,
  parseRaidParams,
  parseRaidStatus,
  parseWritecacheParams,
  parseWritecacheStatus,
  raidInSync,
  raidMessage,
  raidParamsProblems,
  raidTarget,
  writecacheMessage,
  writecacheParamsProblems,
  writecacheTarget,
  type CacheParams,
  type IntegrityParams,
  type RaidParams,
  type WritecacheParams,
} from '../../../src/dm/index.js';
import { d, isInvalid, isKernelOutput, problemPaths } from './target-helpers.js';


// ---- cache ----

const cache: CacheParams = { metadataDevice: d(7, 0), cacheDevice: d(7, 1), originDevice: d(7, 2), blockSize: 64n, policy: 'smq' };

test('cache: encodes the words the kernel echoes back, in one canonical order', () => {
  assert.is(formatCacheParams(cache), '7:0 7:1 7:2 64 0 smq 0');
  assert.is(
    formatCacheParams({ ...cache, blockSize: 128n, ioMode: 'writethrough', metadata2: true, noDiscardPassdown: true, policyArgs: [['migration_threshold', 4096n]] }),
    '7:0 7:1 7:2 128 3 writethrough metadata2 no_discard_passdown smq 2 migration_threshold 4096',
  );
  assert.equal(cacheTarget(0n, 16384n, { ...cache, ioMode: 'writeback' }), { start: 0n, length: 16384n, type: 'cache', params: '7:0 7:1 7:2 64 1 writeback smq 0' });
});

test('cache: parses its own form and what cache_ctr accepts (case-insensitive features)', () => {
  const p: CacheParams = { ...cache, ioMode: 'passthrough', metadata2: true, policy: 'cleaner', policyArgs: [['migration_threshold', 0n]] };
  assert.equal(parseCacheParams(formatCacheParams(p)), p);
  assert.equal(parseCacheParams('7:0\t7:1  7:2 64 1 WriteBack smq 0'), { ...cache, ioMode: 'writeback' });
});

test('cache: every problem is listed; bad text is refused', () => {
  assert.equal(cacheParamsProblems({ ...cache, blockSize: 65n, ioMode: 'fast', metadata2: false, policy: 'lru', policyArgs: [['sequential_threshold', -1n]] }).map((p) => p.path), [
    '/blockSize',
    '/ioMode',
    '/metadata2',
    '/policy',
    '/policyArgs/0/0',
    '/policyArgs/0/1',
  ]);
  assert.equal(problemPaths(() => formatCacheParams({ ...cache, blockSize: 32n })), ['/blockSize']);
  assert.equal(problemPaths(() => formatCacheParams({ ...cache, blockSize: 2097152n + 64n })), ['/blockSize']);
  for (const bad of ['', '7:0 7:1 7:2 64 2 writeback smq 0', '7:0 7:1 7:2 64 2 writeback writethrough smq 0', '7:0 7:1 7:2 64 0 smq 1 x', '7:0 7:1 7:2 64 0 smq 2 foo 1', '7:0 7:1 7:2 64 1 fast smq 0'])
    assert.throws(() => parseCacheParams(bad), isInvalid, bad);
});

test('cache: status (cache_status STATUSTYPE_INFO) parsed field by field; Fail and Error states', () => {
  assert.equal(parseCacheStatus('8 27/1024 64 3/128 10 20 30 40 1 2 3 1 writeback 2 migration_threshold 2048 smq 0 rw - '), {
    state: 'ok',
    metadataBlockSize: 8,
    metadata: { used: 27n, total: 1024n },
    cacheBlockSize: 64n,
    cache: { used: 3n, total: 128n },
    readHits: 10n,
    readMisses: 20n,
    writeHits: 30n,
    writeMisses: 40n,
    demotions: 1n,
    promotions: 2n,
    dirty: 3n,
    features: ['writeback'],
    coreArgs: { migration_threshold: '2048' },
    policy: 'smq',
    policyArgs: [],
    metadataMode: 'rw',
    needsCheck: false,
  });
  const ro = parseCacheStatus('8 1/2 64 0/1 0 0 0 0 0 0 0 1 writethrough 2 migration_threshold 1 cleaner 0 ro needs_check ');
  assert.equal(ro.state === 'ok' && [ro.metadataMode, ro.needsCheck, ro.policy], ['ro', true, 'cleaner']);
  assert.equal(parseCacheStatus('Fail'), { state: 'fail' });
  assert.equal(parseCacheStatus('8 1/2 Error'), { state: 'error' });
  for (const bad of ['', '8 1/2 64', '8 1/2 64 0/1 0 0 0 0 0 0 0 1 writeback 2 migration_threshold 2048 smq 0 rw', '8 x 64 0/1 0 0 0 0 0 0 0 0 0 smq 0 rw -', '8 1/2 64 0/1 0 0 0 0 0 0 0 0 4 a 1 a 2 smq 0 rw -'])
    assert.throws(() => parseCacheStatus(bad), isKernelOutput, bad);
});

test('cache: messages', () => {
  assert.is(cacheMigrationThresholdMessage(4096n), 'migration_threshold 4096');
  assert.is(cacheInvalidateCblocksMessage([3n, { begin: 10n, end: 20n }]), 'invalidate_cblocks 3 10-20');
  assert.throws(() => cacheMigrationThresholdMessage(-1n), isInvalid);
  assert.equal(problemPaths(() => cacheInvalidateCblocksMessage([{ begin: 5n, end: 5n }, 1n])), ['/ranges/0']);
  assert.equal(problemPaths(() => cacheInvalidateCblocksMessage([])), ['/ranges']);
});

// ---- writecache ----

const wc: WritecacheParams = { mode: 'ssd', originDevice: d(7, 0), cacheDevice: d(7, 1), blockSize: 4096 };

test('writecache: encodes the optional arguments in writecache_status order, counting words', () => {
  assert.is(formatWritecacheParams(wc), 's 7:0 7:1 4096 0');
  assert.is(
    formatWritecacheParams({ ...wc, pauseWritebackMs: 3000, metadataOnly: true, cleaner: true, maxAgeMs: 5000, autocommitTimeMs: 1000, autocommitBlocks: 64, writebackJobs: 8, lowWatermark: 10, highWatermark: 20, startSector: 8n }),
    's 7:0 7:1 4096 18 start_sector 8 high_watermark 20 low_watermark 10 writeback_jobs 8 autocommit_blocks 64 autocommit_time 1000 max_age 5000 cleaner metadata_only pause_writeback 3000',
  );
  assert.is(formatWritecacheParams({ ...wc, mode: 'pmem', blockSize: 512, fua: false }), 'p 7:0 7:1 512 1 nofua');
  assert.equal(writecacheTarget(0n, 8n, wc), { start: 0n, length: 8n, type: 'writecache', params: 's 7:0 7:1 4096 0' });
});

test('writecache: parses any order and case, re-encodes in the kernel order', () => {
  const p = parseWritecacheParams('S 7:0 7:1 4096 5 CLEANER low_watermark 10 high_watermark 20');
  assert.equal(p, { ...wc, cleaner: true, lowWatermark: 10, highWatermark: 20 });
  assert.is(formatWritecacheParams(p), 's 7:0 7:1 4096 5 high_watermark 20 low_watermark 10 cleaner');
  assert.equal(parseWritecacheParams('p 7:0 7:1 4096 1 fua'), { ...wc, mode: 'pmem', fua: true });
});

test('writecache: every problem is listed; bad text is refused', () => {
  assert.equal(writecacheParamsProblems({ ...wc, blockSize: 8192, highWatermark: 101, lowWatermark: 50, autocommitTimeMs: 3600001, fua: true, cleaner: 1 }).map((p) => p.path), [
    '/blockSize',
    '/highWatermark',
    '/autocommitTimeMs',
    '/cleaner',
    '/fua',
  ]);
  assert.equal(problemPaths(() => formatWritecacheParams({ ...wc, highWatermark: 10, lowWatermark: 20 })), ['/lowWatermark']);
  assert.equal(problemPaths(() => formatWritecacheParams({ ...wc, mode: 'pmem', metadataOnly: true, pauseWritebackMs: 1 })), ['/metadataOnly', '/pauseWritebackMs']);
  for (const bad of ['s 7:0 7:1 4096', 'x 7:0 7:1 4096 0', 's 7:0 7:1 4096 1 cleaner cleaner', 's 7:0 7:1 4096 2 cleaner cleaner', 's 7:0 7:1 4096 1 start_sector', 's 7:0 7:1 4096 1 bogus'])
    assert.throws(() => parseWritecacheParams(bad), isInvalid, bad);
});

test('writecache: status with and without the 5.19 counters; messages', () => {
  assert.equal(parseWritecacheStatus('0 1000 984 0'), { error: 0, blocks: 1000n, freeBlocks: 984n, writebackBlocks: 0n });
  assert.equal(parseWritecacheStatus('-5 1000 984 2 1 2 3 4 5 6 7 8 9 10'), {
    error: -5,
    blocks: 1000n,
    freeBlocks: 984n,
    writebackBlocks: 2n,
    stats: { reads: 1n, readHits: 2n, writes: 3n, writeHitsUncommitted: 4n, writeHitsCommitted: 5n, writesAround: 6n, writesAllocate: 7n, writesBlockedOnFreelist: 8n, flushes: 9n, discards: 10n },
  });
  for (const bad of ['', '0 1 2', '0 1 2 3 4', 'x 1 2 3', '0 1 2 -3', '99999 1 2 3']) assert.throws(() => parseWritecacheStatus(bad), isKernelOutput, bad);
  assert.equal((['flush', 'flush_on_suspend', 'cleaner', 'clear_stats'] as const).map(writecacheMessage), ['flush', 'flush_on_suspend', 'cleaner', 'clear_stats']);
  assert.throws(() => writecacheMessage('drop' as 'flush'), isInvalid);
});

// ---- raid ----

const raid1: RaidParams = { raidType: 'raid1', chunkSize: 0, legs: [{ meta: null, data: d(7, 0) }, { meta: d(7, 2), data: d(7, 1) }] };

test('raid: encodes the raid_status table order, counting the chunk size as a parameter', () => {
  assert.is(formatRaidParams(raid1), 'raid1 1 0 2 - 7:0 7:2 7:1');
  assert.is(
    formatRaidParams({ ...raid1, minRecoveryRate: 1, maxRecoveryRate: 10, maxWriteBehind: 256, writeMostly: [1], rebuild: [1, 0], daemonSleepMs: 5000, regionSize: 1024n, sync: 'nosync' }),
    'raid1 18 0 nosync rebuild 0 rebuild 1 daemon_sleep 5000 min_recovery_rate 1 max_recovery_rate 10 write_mostly 1 max_write_behind 256 region_size 1024 2 - 7:0 7:2 7:1',
  );
  assert.is(
    formatRaidParams({ raidType: 'raid10', chunkSize: 64, raid10Copies: 2, raid10Format: 'far', legs: [{ meta: null, data: d(7, 0) }, { meta: null, data: d(7, 1) }] }),
    'raid10 5 64 raid10_copies 2 raid10_format far 2 - 7:0 - 7:1',
  );
  assert.equal(raidTarget(0n, 8192n, raid1), { start: 0n, length: 8192n, type: 'raid', params: 'raid1 1 0 2 - 7:0 7:2 7:1' });
});

test('raid: parses any order and case, re-encodes in the kernel order', () => {
  const p = parseRaidParams('RAID1 6 0 min_recovery_rate 1 NOSYNC rebuild 1 2 - 7:0 7:2 7:1');
  assert.equal(p, { ...raid1, minRecoveryRate: 1, sync: 'nosync', rebuild: [1] });
  assert.is(formatRaidParams(p), 'raid1 6 0 nosync rebuild 1 min_recovery_rate 1 2 - 7:0 7:2 7:1');
  const r5: RaidParams = { raidType: 'raid5_ls', chunkSize: 128, deltaDisks: -1, stripeCache: 256, dataOffset: 2048n, journalDevice: d(7, 9), journalMode: 'writeback', legs: [0, 1, 2].map((i) => ({ meta: d(8, i), data: d(7, i) })) };
  assert.equal(parseRaidParams(formatRaidParams(r5)), r5);
});

test('raid: every problem is listed; bad text is refused', () => {
  assert.equal(raidParamsProblems({ ...raid1, raidType: 'raid1', chunkSize: 64, sync: 'yes', regionSize: 1000n, rebuild: [2], raid10Copies: 2 }).map((p) => p.path), [
    '/chunkSize',
    '/sync',
    '/regionSize',
    '/rebuild/0',
    '/raid10Copies',
  ]);
  assert.equal(problemPaths(() => formatRaidParams({ raidType: 'raid5_ls', chunkSize: 12, writeMostly: [0], journalMode: 'writeback', legs: [{ meta: d(7, 0), data: null }] })), [
    '/chunkSize',
    '/legs/0/meta',
    '/writeMostly',
    '/journalMode',
  ]);
  assert.equal(problemPaths(() => formatRaidParams({ ...raid1, legs: [{ meta: null, data: d(7, 0) }] })), ['/legs']);
  for (const bad of ['raid1', 'raid1 1 0 2 - 7:0', 'raid1 2 0 2 - 7:0 - 7:1', 'raid1 3 0 bogus 1 2 - 7:0 - 7:1', 'raid9 1 0 2 - 7:0 - 7:1', 'raid1 0 2 - 7:0 - 7:1'])
    assert.throws(() => parseRaidParams(bad), isInvalid, bad);
});

test('raid: status (raid_status STATUSTYPE_INFO), in sync or not; messages', () => {
  const s = parseRaidStatus('raid1 2 AA 8192/8192 idle 0 0 -');
  assert.equal(s, { raidType: 'raid1', legs: 2, health: ['A', 'A'], syncDone: 8192n, syncTotal: 8192n, syncAction: 'idle', mismatches: 0n, dataOffset: 0n, journal: '-' });
  assert.is(raidInSync(s), true);
  const r = parseRaidStatus('raid1 2 aD 512/8192 recover 0');
  assert.equal(r, { raidType: 'raid1', legs: 2, health: ['a', 'D'], syncDone: 512n, syncTotal: 8192n, syncAction: 'recover', mismatches: 0n });
  assert.is(raidInSync(r), false);
  assert.is(raidInSync(parseRaidStatus('raid1 2 Aa 8192/8192 idle 0 0 -')), false);
  for (const bad of ['', 'raid1 2 A 1/2 idle 0', 'raid1 2 AX 1/2 idle 0', 'raid1 2 AA 1-2 idle 0', 'raid1 2 AA 1/2 busy 0', 'raid1 2 AA 1/2 idle 0 0 Z', 'raid1 2 AA 1/2 idle 0 0 - x'])
    assert.throws(() => parseRaidStatus(bad), isKernelOutput, bad);
  assert.equal((['idle', 'frozen', 'resync', 'recover', 'check', 'repair'] as const).map(raidMessage), ['idle', 'frozen', 'resync', 'recover', 'check', 'repair']);
  assert.throws(() => raidMessage('reshape' as 'idle'), isInvalid);
});

// ---- integrity ----

const integ: IntegrityParams = { device: d(7, 0), offset: 0n, tagSize: 4, mode: 'J', internalHash: { algorithm: 'crc32c' } };

test('integrity: encodes the given arguments in dm_integrity_status order', () => {
  assert.is(formatIntegrityParams(integ), '7:0 0 4 J 1 internal_hash:crc32c');
  const full: IntegrityParams = {
    ...integ,
    journalMac: { algorithm: 'hmac(sha256)', keyHex: 'ab01' },
    legacyRecalculate: true,
    fixPadding: true,
    commitTimeMs: 10000,
    journalWatermark: 50,
    bufferSectors: 128,
    interleaveSectors: 32768,
    journalSectors: 120,
    allowDiscards: true,
    recalculate: true,
    blockSize: 4096,
    metaDevice: d(7, 1),
  };
  assert.is(
    formatIntegrityParams(full),
    '7:0 0 4 J 13 meta_device:7:1 block_size:4096 recalculate allow_discards journal_sectors:120 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:10000 fix_padding legacy_recalculate internal_hash:crc32c journal_mac:hmac(sha256):ab01',
  );
  assert.equal(parseIntegrityParams(formatIntegrityParams(full)), full);
  assert.is(formatIntegrityParams({ ...integ, blockSize: 512 }), '7:0 0 4 J 1 internal_hash:crc32c');
  assert.equal(integrityTarget(0n, 8n, integ), { start: 0n, length: 8n, type: 'integrity', params: '7:0 0 4 J 1 internal_hash:crc32c' });
});

test('integrity: parses the kernel table form (defaults filled in) and any order', () => {
  const text = '7:0 0 4 J 6 journal_sectors:120 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:10000 internal_hash:crc32c';
  const p = parseIntegrityParams(text);
  assert.equal(p, { ...integ, journalSectors: 120, interleaveSectors: 32768, bufferSectors: 128, journalWatermark: 50, commitTimeMs: 10000 });
  assert.is(formatIntegrityParams(p), text);
  assert.equal(parseIntegrityParams('7:0 8 0 B 3 internal_hash:sha256 sectors_per_bit:8 bitmap_flush_interval:100'), {
    device: d(7, 0), offset: 8n, tagSize: 0, mode: 'B', internalHash: { algorithm: 'sha256' }, sectorsPerBit: 8n, bitmapFlushIntervalMs: 100,
  });
});

test('integrity: every problem is listed; bad text is refused and never quotes a key', () => {
  assert.equal(integrityParamsProblems({ ...integ, mode: 'X', tagSize: 70000, blockSize: 1000, interleaveSectors: 1000, journalWatermark: 101, internalHash: { algorithm: 'a b', keyHex: 'abc' } }).map((p) => p.path), [
    '/tagSize',
    '/mode',
    '/blockSize',
    '/journalWatermark',
    '/interleaveSectors',
    '/internalHash/algorithm',
    '/internalHash/keyHex',
  ]);
  assert.equal(problemPaths(() => formatIntegrityParams({ device: d(7, 0), offset: 0n, tagSize: 0, mode: 'J', recalculate: true })), ['/recalculate', '/tagSize']);
  for (const bad of ['7:0 0 4 J', '7:0 0 4 J 1', '7:0 0 4 J 1 bogus', '7:0 0 4 J 2 fix_padding fix_padding', '7:0 0 4 J 1 recalculate:1', '7:0 0 4 J 1 journal_sectors:x', '7:0 0 4 Q 0'])
    assert.throws(() => parseIntegrityParams(bad), isInvalid, bad);
  try {
    parseIntegrityParams('7:0 0 4 J 1 journal_mac:hmac(sha256):5ec2e7zz');
    assert.unreachable();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError);
    assert.is(e.message.includes('5ec2e7'), false, e.message);
  }
});

test('integrity: status (dm_integrity_status STATUSTYPE_INFO)', () => {
  assert.equal(parseIntegrityStatus('0 15872 -'), { mismatches: 0n, providedDataSectors: 15872n, recalculateSector: null });
  assert.equal(parseIntegrityStatus('3 15872 1024'), { mismatches: 3n, providedDataSectors: 15872n, recalculateSector: 1024n });
  for (const bad of ['', '0 1', '0 1 - 2', 'x 1 -', '0 1 +']) assert.throws(() => parseIntegrityStatus(bad), isKernelOutput, bad);
});

test.run();
