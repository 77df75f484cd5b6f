// SPDX-License-Identifier: MIT
// Attach option defaults and validation (every problem listed).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveAttachOptions } from '../../../src/loop/options.js';
import { InvalidArgumentError } from '../../../src/errors.js';

function problems(opts: unknown): string[] {
  try {
    resolveAttachOptions(opts as never);
  } catch (err) {
    assert.instance(err, InvalidArgumentError);
    return (err as InvalidArgumentError).problems.map((p) => p.path);
  }
  assert.unreachable('expected InvalidArgumentError');
  return [];
}

test('defaults: autoclear on, partscan off, read-write, auto method, hold', () => {
  assert.equal(resolveAttachOptions(), {
    readOnly: false,
    autoclear: true,
    directIo: false,
    blockSize: 0,
    offset: 0n,
    sizeLimit: 0n,
    partscan: false,
    method: 'auto',
    hold: true,
    noFollow: false,
  });
});

test('noFollow: a boolean, default false', () => {
  assert.is(resolveAttachOptions({ noFollow: true }).noFollow, true);
  assert.equal(problems({ noFollow: 'yes' }), ['/noFollow']);
});

test('accepts a full valid set, numbers converted to bigint', () => {
  const r = resolveAttachOptions({
    readOnly: true,
    autoclear: false,
    directIo: true,
    blockSize: 4096,
    offset: 1048576,
    sizeLimit: 33554432n,
    partscan: true,
    method: 'legacy',
    hold: false,
  });
  assert.is(r.offset, 1048576n);
  assert.is(r.sizeLimit, 33554432n);
  assert.is(r.blockSize, 4096);
  assert.is(r.method, 'legacy');
});

test('block sizes: powers of two 512..4096 only', () => {
  for (const ok of [512, 1024, 2048, 4096]) assert.is(resolveAttachOptions({ blockSize: ok }).blockSize, ok);
  for (const bad of [0, 256, 1000, 8192, 513, 4096.5, '4096']) assert.equal(problems({ blockSize: bad }), ['/blockSize']);
});

test('offset and sizeLimit: non-negative whole sectors, at most LLONG_MAX', () => {
  assert.equal(problems({ offset: -512 }), ['/offset']);
  assert.equal(problems({ offset: 100 }), ['/offset']);
  assert.equal(problems({ offset: 1.5 }), ['/offset']);
  assert.equal(problems({ sizeLimit: 2n ** 63n }), ['/sizeLimit']);
  assert.equal(problems({ sizeLimit: '1' }), ['/sizeLimit']);
  assert.is(resolveAttachOptions({ sizeLimit: (2n ** 63n) - 512n }).sizeLimit, 2n ** 63n - 512n);
});

test('lists every problem at once', () => {
  assert.equal(problems({ readOnly: 'yes', blockSize: 3, offset: -1, sizeLimit: 7, method: 'fast', bogus: 1, partscan: 1 }).sort(), [
    '/blockSize',
    '/bogus',
    '/method',
    '/offset',
    '/partscan',
    '/readOnly',
    '/sizeLimit',
  ]);
});

test('hold: false with autoclear is refused (the device would detach at once)', () => {
  assert.equal(problems({ hold: false }), ['/hold']);
  assert.is(resolveAttachOptions({ hold: false, autoclear: false }).hold, false);
});

test('directIo with a block size needs a block-aligned offset', () => {
  assert.equal(problems({ directIo: true, blockSize: 4096, offset: 512 }), ['/offset']);
  assert.ok(resolveAttachOptions({ directIo: true, blockSize: 4096, offset: 8192 }));
});

test('non-object options refused', () => {
  assert.equal(problems(42), ['']);
  assert.equal(problems([]), ['']);
});

test.run();
