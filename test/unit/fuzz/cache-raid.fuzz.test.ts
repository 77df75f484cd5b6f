// SPDX-License-Identifier: MIT
// Fuzzing the cache, writecache, raid and integrity parsers (issue 18): arbitrary and near-valid
// strings never give an untyped exception; format → parse is the identity on valid params.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  formatCacheParams,
  formatIntegrityParams,
  formatRaidParams,
  formatWritecacheParams,
  parseCacheParams,
  parseCacheStatus,
  parseIntegrityParams,
  parseIntegrityStatus,
  parseRaidParams,
  parseRaidStatus,
  parseWritecacheParams,
  parseWritecacheStatus,
  RAID_TYPES,
  type CacheParams,
  type IntegrityParams,
  type RaidParams,
  type WritecacheParams,
} from '../../../src/dm/index.js';
import { report, tableText, typedOrOk } from './common.js';

const t0 = performance.now();
const RUNS = 6000;
/** A key the near-valid integrity strings contain; no error message may quote it. */
const SECRET = '5ec2e75ec2e75ec2e75ec2e75ec2e75e';

const word = fc.oneof(
  fc.constantFrom(
    '7:0', '7:1', '253:3', '-', '0', '1', '2', '3', '4', '5', '6', '8', '64', '128', '512', '4096', '8192', '2097152', '1/2', '7/1024', '0/128', '8192/8192',
    'writeback', 'writethrough', 'passthrough', 'metadata2', 'no_discard_passdown', 'smq', 'mq', 'cleaner', 'default', 'migration_threshold', 'rw', 'ro',
    'needs_check', 'Fail', 'Error', 's', 'p', 'start_sector', 'high_watermark', 'low_watermark', 'writeback_jobs', 'autocommit_blocks', 'autocommit_time',
    'max_age', 'fua', 'nofua', 'metadata_only', 'pause_writeback', 'raid1', 'raid10', 'raid5_ls', 'nosync', 'sync', 'rebuild', 'write_mostly',
    'region_size', 'daemon_sleep', 'min_recovery_rate', 'max_recovery_rate', 'max_write_behind', 'stripe_cache', 'raid10_copies', 'raid10_format',
    'near', 'far', 'delta_disks', 'data_offset', 'journal_dev', 'journal_mode', 'AA', 'aD', 'A-', 'idle', 'check', 'resync', 'frozen', 'J', 'D', 'B',
    'R', 'I', 'journal_sectors:176', 'interleave_sectors:32768', 'buffer_sectors:128', 'journal_watermark:50', 'commit_time:10000',
    'internal_hash:crc32c', `journal_mac:hmac(sha256):${SECRET}`, `internal_hash:hmac(sha256):${SECRET}`, `journal_crypt:cbc(aes):${SECRET}0`,
    'meta_device:7:1', 'block_size:4096', 'recalculate', 'allow_discards', 'fix_padding', 'fix_hmac', 'legacy_recalculate', 'sectors_per_bit:8',
    'bitmap_flush_interval:100', '__proto__', 'constructor', '18446744073709551615', '18446744073709551616', '-1', '',
  ),
  fc.bigInt({ min: 0n, max: 1n << 70n }).map(String),
  fc.string({ maxLength: 8 }),
);
const { nearValid, anyText } = tableText(word, 24);

const parsers: Record<string, (s: string) => unknown> = {
  parseCacheParams,
  parseCacheStatus,
  parseWritecacheParams,
  parseWritecacheStatus,
  parseRaidParams,
  parseRaidStatus,
  parseIntegrityParams,
  parseIntegrityStatus,
};

for (const [name, parse] of Object.entries(parsers)) {
  test(`${name}: any string parses or throws a typed error`, () => {
    fc.assert(fc.property(anyText, (s) => void typedOrOk(name, () => parse(s))), { numRuns: RUNS });
  });
}

test('parseIntegrityParams: no error quotes a key', () => {
  fc.assert(
    fc.property(nearValid, (s) => {
      try {
        parseIntegrityParams(`7:0 0 4 J 2 journal_mac:hmac(sha256):${SECRET} ${s}`);
      } catch (e) {
        assert.ok(e instanceof InvalidArgumentError);
        assert.is(e.message.includes(SECRET), false, e.message);
      }
    }),
    { numRuns: RUNS },
  );
});

const devNum = fc.record({ major: fc.nat(4095), minor: fc.nat((1 << 20) - 1) });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const flag = fc.option(fc.constant(true as const), { nil: undefined });
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
const defined = <T>(r: Record<string, unknown>): T => structuredClone(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))) as T;

test('formatCacheParams → parseCacheParams is the identity (valid params)', () => {
  const params = fc
    .record({
      metadataDevice: devNum,
      cacheDevice: devNum,
      originDevice: devNum,
      blockSize: fc.bigInt({ min: 1n, max: 32768n }).map((n) => n * 64n),
      ioMode: opt(fc.constantFrom('writeback' as const, 'writethrough' as const, 'passthrough' as const)),
      metadata2: flag,
      noDiscardPassdown: flag,
      policy: fc.constantFrom('smq' as const, 'mq' as const, 'default' as const, 'cleaner' as const),
      policyArgs: opt(fc.array(u64.map((v) => ['migration_threshold', v] as const), { minLength: 1, maxLength: 2 })),
    })
    .map((r) => defined<CacheParams>(r));
  fc.assert(
    fc.property(params, (p) => {
      const text = formatCacheParams(p);
      assert.equal(parseCacheParams(text), p);
      assert.is(formatCacheParams(parseCacheParams(text.replace(/ /g, '\t'))), text);
    }),
    { numRuns: RUNS },
  );
});

test('formatWritecacheParams → parseWritecacheParams is the identity (valid params)', () => {
  const params = fc
    .record({
      mode: fc.constant('ssd' as const),
      originDevice: devNum,
      cacheDevice: devNum,
      blockSize: fc.constantFrom(512, 1024, 2048, 4096),
      startSector: opt(u64),
      highWatermark: opt(fc.constant(100)),
      lowWatermark: opt(fc.integer({ min: 0, max: 100 })),
      writebackJobs: opt(fc.nat()),
      autocommitBlocks: opt(fc.nat()),
      autocommitTimeMs: opt(fc.integer({ min: 0, max: 3600000 })),
      maxAgeMs: opt(fc.integer({ min: 0, max: 86400000 })),
      cleaner: flag,
      metadataOnly: flag,
      pauseWritebackMs: opt(fc.integer({ min: 0, max: 60000 })),
    })
    .map((r) => defined<WritecacheParams>(r));
  fc.assert(
    fc.property(params, (p) => {
      const text = formatWritecacheParams(p);
      assert.equal(parseWritecacheParams(text), p);
    }),
    { numRuns: RUNS },
  );
});

test('formatRaidParams → parseRaidParams is the identity (valid params)', () => {
  const params = fc
    .record({
      raidType: fc.constantFrom(...RAID_TYPES.filter((t) => t !== 'raid1' && t !== 'raid10')),
      chunkSize: fc.integer({ min: 3, max: 20 }).map((e) => 2 ** e),
      sync: opt(fc.constantFrom('sync' as const, 'nosync' as const)),
      regionSize: opt(fc.integer({ min: 0, max: 40 }).map((e) => 1n << BigInt(e))),
      dataOffset: opt(u64),
      daemonSleepMs: opt(fc.integer({ min: 1, max: 100000 })),
      deltaDisks: opt(fc.integer({ min: -3, max: 3 })),
      stripeCache: opt(fc.nat(100000)),
      maxRecoveryRate: opt(fc.constant(100000)),
      minRecoveryRate: opt(fc.nat(100000)),
      journalDevice: opt(devNum),
      legs: fc.array(fc.record({ meta: fc.option(devNum, { nil: null }), data: devNum }), { minLength: 3, maxLength: 6 }),
    })
    .chain((r) => fc.record({ rebuild: opt(fc.uniqueArray(fc.nat(r.legs.length - 1), { minLength: 1, maxLength: r.legs.length })) }).map((x) => ({ ...r, ...x })))
    .map((r) => {
      const p = defined<RaidParams>(r);
      return p.rebuild !== undefined ? { ...p, rebuild: [...p.rebuild].sort((a, b) => a - b) } : p;
    });
  fc.assert(
    fc.property(params, (p) => {
      const text = formatRaidParams(p);
      assert.equal(parseRaidParams(text), p);
    }),
    { numRuns: RUNS },
  );
});

test('formatIntegrityParams → parseIntegrityParams is the identity (valid params)', () => {
  const alg = fc.record({ algorithm: fc.constantFrom('crc32c', 'sha256', 'hmac(sha256)'), keyHex: opt(fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'))) }).map((a) => defined<{ algorithm: string; keyHex?: string }>(a));
  const params = fc
    .record({
      device: devNum,
      offset: u64,
      tagSize: fc.integer({ min: 1, max: 64 }),
      mode: fc.constantFrom('J' as const, 'D' as const, 'R' as const, 'B' as const, 'I' as const),
      metaDevice: opt(devNum),
      blockSize: opt(fc.constantFrom(1024, 2048, 4096)),
      allowDiscards: flag,
      journalSectors: opt(fc.integer({ min: 1, max: 1 << 20 })),
      interleaveSectors: opt(fc.integer({ min: 0, max: 20 }).map((e) => 2 ** e)),
      bufferSectors: opt(fc.integer({ min: 0, max: 20 }).map((e) => 2 ** e)),
      journalWatermark: opt(fc.integer({ min: 0, max: 100 })),
      commitTimeMs: opt(fc.nat()),
      sectorsPerBit: opt(u64),
      bitmapFlushIntervalMs: opt(fc.nat()),
      fixPadding: flag,
      fixHmac: flag,
      legacyRecalculate: flag,
      internalHash: opt(alg),
      journalCrypt: opt(alg),
      journalMac: opt(alg),
    })
    .map((r) => defined<IntegrityParams>(r));
  fc.assert(
    fc.property(params, (p) => {
      const text = formatIntegrityParams(p);
      assert.equal(parseIntegrityParams(text), p);
    }),
    { numRuns: RUNS },
  );
});

test.after(() => report('cache-raid.fuzz', t0));
test.run();
