// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import { DM_NAME_MAX_BYTES } from '../../../src/dm/index.js';
import {
  MAX_HASH_LENGTH,
  MAX_PREFIX_BYTES,
  assertValidHash,
  devMajor,
  devMinor,
  dmNameFor,
  hashProblem,
  isValidHash,
  poolNameFor,
  prefixFor,
} from '../../../src/deviceset/index.js';

const test = suite('deviceset/hash');

const dockerId = 'a'.repeat(64);

test('valid hashes', () => {
  for (const h of ['', dockerId, `${dockerId}-init`, 'x', '0', 'a.b_c-d', 'A'.repeat(MAX_HASH_LENGTH), 'base1', 'pool-x']) {
    assert.ok(isValidHash(h), h);
  }
  assert.is(MAX_HASH_LENGTH, 74);
});

test('invalid hashes', () => {
  const bad: unknown[] = [
    '.', '..', '.tmp', '-x', '_x', 'a/b', '/a', 'a b', 'é', 'a\0', 'A'.repeat(MAX_HASH_LENGTH + 1),
    'base', 'pool', 'deviceset-metadata', 'transaction-metadata', 7, null, undefined,
  ];
  for (const h of bad) assert.not.ok(isValidHash(h), String(h));
  assert.match(hashProblem('A'.repeat(75))!, /at most 74/);
  assert.match(hashProblem('base')!, /reserved/);
  assert.throws(() => assertValidHash('a/b'), (e: unknown) => e instanceof InvalidArgumentError && e.problems[0]!.path === '/hash');
});

test('glibc major/minor decoding', () => {
  // makedev(8, 1) = 0x801; makedev(259, 65536) puts high bits in both halves.
  assert.is(devMajor(0x801n), 8);
  assert.is(devMinor(0x801n), 1);
  const makedev = (ma: bigint, mi: bigint): bigint =>
    ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
  for (const [ma, mi] of [[259n, 65536n], [0xffffffffn, 0xffffffffn], [0n, 0n], [253n, 3n], [4096n, 256n]] as const) {
    const dev = makedev(ma, mi);
    assert.is(devMajor(dev), Number(ma));
    assert.is(devMinor(dev), Number(mi));
  }
});

test('prefix, pool and device names', () => {
  assert.is(prefixFor({ dev: 0x801n, ino: 1234n }), 'devmapper-8:1-1234');
  assert.is(poolNameFor('devmapper-8:1-1234'), 'devmapper-8:1-1234-pool');
  assert.is(dmNameFor('devmapper-8:1-1234', ''), 'devmapper-8:1-1234-base');
  assert.is(dmNameFor('devmapper-8:1-1234', `${dockerId}-init`), `devmapper-8:1-1234-${dockerId}-init`);
  assert.throws(() => dmNameFor('p', '..'), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => prefixFor({ dev: 0n, ino: -1n }), (e: unknown) => e instanceof InvalidArgumentError);
});

test('the longest prefix plus the longest hash is exactly 127 bytes', () => {
  const prefix = prefixFor({ dev: 0xffffffffffffffffn, ino: 0xffffffffffffffffn });
  assert.is(prefix, 'devmapper-4294967295:4294967295-18446744073709551615');
  assert.is(prefix.length, MAX_PREFIX_BYTES);
  const name = dmNameFor(prefix, 'h'.repeat(MAX_HASH_LENGTH));
  assert.is(name.length, DM_NAME_MAX_BYTES);
  assert.throws(() => dmNameFor(`${prefix}x`, 'h'.repeat(MAX_HASH_LENGTH)), /127/);
});

test.run();
