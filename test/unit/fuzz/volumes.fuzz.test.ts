// SPDX-License-Identifier: MIT
// Fuzzing the snapshot-family and mirror parsers (issue 18, "volumes"): arbitrary and near-valid
// strings never give an untyped exception; format → parse is the identity.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  SNAPSHOT_MAX_CHUNK_SECTORS,
  formatMirrorParams,
  formatSnapshotParams,
  parseMirrorParams,
  parseMirrorStatus,
  parseSnapshotOriginParams,
  parseSnapshotOriginStatus,
  parseSnapshotParams,
  parseSnapshotStatus,
  type MirrorParams,
  type SnapshotParams,
} from '../../../src/dm/index.js';
import { report, tableText, typedOrOk } from './common.js';

const t0 = performance.now();
const RUNS = 6000;

const word = fc.oneof(
  fc.constantFrom(
    'P', 'PO', 'N', 'p', 'po', 'Px', 'X', 'discard_zeroes_cow', 'discard_passdown_origin', 'core', 'disk', 'userspace', 'sync', 'nosync',
    'handle_errors', 'keep_log', 'Invalid', 'Merge', 'failed', 'Overflow', 'Unknown', '16/8192', '8/8', '0/0', '/', '1/', '/1', 'AA', 'ADS',
    'A', 'F', 'D', 'S', 'R', 'U', 'AX', '0', '1', '2', '3', '8', '9', '10', '16', '1024', '2097152', '4194304', '7:0', '7:1', '253:3', '4096:0',
    '18446744073709551615', '18446744073709551616', '4294967295', '4294967296', '-1', '',
  ),
  fc.bigInt({ min: 0n, max: 1n << 70n }).map(String),
  fc.tuple(fc.nat(1 << 20), fc.nat(1 << 20)).map(([a, b]) => `${a}/${b}`),
  fc.string({ maxLength: 8 }),
);
const { anyText } = tableText(word, 22);

const parsers: Record<string, (s: string) => unknown> = {
  parseSnapshotOriginParams,
  parseSnapshotOriginStatus,
  parseSnapshotParams,
  parseSnapshotStatus,
  parseMirrorParams,
  parseMirrorStatus,
};

for (const [name, parse] of Object.entries(parsers)) {
  test(`${name}: any string parses or throws a typed error`, () => {
    fc.assert(fc.property(anyText, (s) => void typedOrOk(name, () => parse(s))), { numRuns: RUNS });
  });
}

const devNum = fc.record({ major: fc.nat(4095), minor: fc.nat((1 << 20) - 1) });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const flag = fc.option(fc.constant(true as const), { nil: undefined });
const strip = <T>(r: Record<string, unknown>): T => structuredClone(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))) as T;

test('formatSnapshotParams → parseSnapshotParams is the identity (valid params)', () => {
  const params = fc
    .record({
      origin: devNum,
      cow: devNum,
      store: fc.constantFrom('persistent' as const, 'persistent-overflow' as const, 'transient' as const),
      chunkSize: fc.integer({ min: 0, max: Math.log2(SNAPSHOT_MAX_CHUNK_SECTORS) }).map((e) => 2 ** e),
      discardZeroesCow: flag,
      discardPassdownOrigin: flag,
    })
    .filter((r) => (r.origin.major !== r.cow.major || r.origin.minor !== r.cow.minor) && (r.discardPassdownOrigin === undefined || r.discardZeroesCow === true))
    .map((r) => strip<SnapshotParams>(r));
  fc.assert(
    fc.property(params, (p) => {
      const text = formatSnapshotParams(p);
      assert.equal(parseSnapshotParams(text), p);
      assert.is(formatSnapshotParams(parseSnapshotParams(text.replace(/ /g, '\t'))), text);
    }),
    { numRuns: RUNS },
  );
});

test('formatMirrorParams → parseMirrorParams is the identity (valid params)', () => {
  const region = fc.integer({ min: 1, max: 31 }).map((e) => 2 ** e);
  const sync = fc.option(fc.constantFrom('sync' as const, 'nosync' as const), { nil: undefined });
  const log = fc.oneof(
    fc.record({ type: fc.constant('core' as const), regionSize: region, sync }),
    fc.record({ type: fc.constant('disk' as const), device: devNum, regionSize: region, sync }),
  );
  const params = fc
    .record({
      log: log.map((l) => strip<MirrorParams['log']>(l)),
      legs: fc.array(fc.record({ device: devNum, offset: u64 }), { minLength: 2, maxLength: 9 }),
      handleErrors: flag,
      keepLog: flag,
    })
    .filter((r) => r.keepLog === undefined || r.handleErrors === true)
    .map((r) => strip<MirrorParams>(r));
  fc.assert(
    fc.property(params, (p) => {
      const text = formatMirrorParams(p);
      assert.equal(parseMirrorParams(text), p);
      assert.is(formatMirrorParams(parseMirrorParams(text.replace(/ /g, '\t'))), text);
    }),
    { numRuns: RUNS },
  );
});

test.after(() => report('volumes.fuzz', t0));
test.run();
