// SPDX-License-Identifier: MIT
// Fuzzing the dm ioctl payload decoders (issue 10) on arbitrary buffers, data_start, data_size and
// counts, and on valid encodings with mutated bytes: a result or KernelOutputError, never a
// RangeError/TypeError or a hang.
import { test } from 'uvu';
import fc from 'fast-check';
import {
  decodeTargetDeps,
  encodeNameList,
  encodeTargetDeps,
  encodeTargetSpecs,
  encodeTargetVersions,
  walkNameList,
  walkTargetSpecs,
  walkTargetVersions,
} from '../../../src/ioctl/index.js';
import { report, typedOrOk } from './common.js';

const t0 = performance.now();
const RUNS = 5000;

const offset = fc.oneof(fc.integer({ min: -16, max: 700 }), fc.constantFrom(305, 312, 0, Number.MAX_SAFE_INTEGER, -1, 2 ** 32, NaN, 1.5));
const rawBuf = fc.uint8Array({ maxLength: 700 });

/** A valid payload placed at data_start 312 inside a header-sized prefix, then mutated. */
function mutated(payload: Buffer): fc.Arbitrary<{ buf: Uint8Array; start: number; size: number }> {
  const start = 312;
  return fc
    .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.integer({ min: -16, max: 16 }))
    .map(([flips, delta]) => {
      const buf = Buffer.alloc(start + payload.length);
      payload.copy(buf, start);
      for (const [i, v] of flips) if (payload.length > 0) buf[start + (i % payload.length)] = v;
      return { buf, start, size: start + payload.length + delta };
    });
}

const names = fc.array(fc.record({ name: fc.stringMatching(/^[a-z0-9-]{1,20}$/), dev: fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }) }), { maxLength: 4 });

test('walkNameList: arbitrary buffers and offsets', () => {
  fc.assert(fc.property(rawBuf, offset, offset, fc.integer({ min: 0, max: 60 }), (b, s, z, minor) => void typedOrOk('walkNameList', () => walkNameList(b, s, z, minor))), { numRuns: RUNS });
});
test('walkNameList: mutated valid lists', () => {
  fc.assert(
    fc.property(names.chain((es) => fc.tuple(fc.constantFrom(37, 38, 47), fc.constant(es))).chain(([minor, es]) => fc.tuple(fc.constant(minor), mutated(encodeNameList(es, minor)))), ([minor, m]) =>
      void typedOrOk('walkNameList(mutated)', () => walkNameList(m.buf, m.start, m.size, minor)),
    ),
    { numRuns: RUNS },
  );
});
test('decodeTargetDeps: arbitrary and mutated', () => {
  fc.assert(fc.property(rawBuf, offset, offset, (b, s, z) => void typedOrOk('decodeTargetDeps', () => decodeTargetDeps(b, s, z))), { numRuns: RUNS });
  fc.assert(
    fc.property(fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { maxLength: 5 }).chain((d) => mutated(encodeTargetDeps(d))), (m) =>
      void typedOrOk('decodeTargetDeps(mutated)', () => decodeTargetDeps(m.buf, m.start, m.size)),
    ),
    { numRuns: RUNS },
  );
});
const versions = fc.array(fc.record({ name: fc.stringMatching(/^[a-z-]{1,15}$/), version: fc.tuple(fc.nat(), fc.nat(), fc.nat()) }), { maxLength: 4 });
test('walkTargetVersions: arbitrary and mutated', () => {
  fc.assert(fc.property(rawBuf, offset, offset, (b, s, z) => void typedOrOk('walkTargetVersions', () => walkTargetVersions(b, s, z))), { numRuns: RUNS });
  fc.assert(
    fc.property(versions.chain((v) => mutated(encodeTargetVersions(v as never))), (m) =>
      void typedOrOk('walkTargetVersions(mutated)', () => walkTargetVersions(m.buf, m.start, m.size)),
    ),
    { numRuns: RUNS },
  );
});
const specs = fc.array(
  fc.record({
    sector_start: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    length: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    target_type: fc.constantFrom('linear', 'thin', 'thin-pool', 'zero'),
    params: fc.string({ maxLength: 40 }).map((s) => s.replace(/\0/g, '')),
  }),
  { maxLength: 4 },
);
test('walkTargetSpecs: arbitrary, with any count and next base', () => {
  fc.assert(
    fc.property(rawBuf, offset, offset, fc.oneof(fc.integer({ min: -2, max: 10 }), fc.constantFrom(2 ** 31, NaN, 1.5)), fc.constantFrom('data_start', 'spec') as fc.Arbitrary<'data_start' | 'spec'>, (b, s, z, n, base) =>
      void typedOrOk('walkTargetSpecs', () => walkTargetSpecs(b, s, z, n, base)),
    ),
    { numRuns: RUNS },
  );
});
test('walkTargetSpecs: mutated valid spec lists', () => {
  fc.assert(
    fc.property(specs.chain((sp) => fc.tuple(fc.constant(sp.length), fc.integer({ min: -1, max: 2 }), mutated(encodeTargetSpecs(sp, 'data_start')))), ([count, dc, m]) =>
      void typedOrOk('walkTargetSpecs(mutated)', () => walkTargetSpecs(m.buf, m.start, m.size, count + dc, 'data_start')),
    ),
    { numRuns: RUNS },
  );
});

test.after(() => report('decoders.fuzz', t0));
test.run();
