import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import { formatLinearParams, linearTarget, parseLinearParams } from '../../../src/dm/targets/linear.js';
import { formatStripedParams, parseStripedParams, parseStripedStatus, stripedTarget } from '../../../src/dm/targets/striped.js';
import { KernelOutputError } from '../../../src/errors.js';
import { parseZeroParams, zeroTarget } from '../../../src/dm/targets/zero.js';
import { errorTarget, parseErrorParams } from '../../../src/dm/targets/error.js';
import { d, isInvalid } from './target-helpers.js';


test('linear format/parse', () => {
  assert.is(formatLinearParams({ device: d(7, 0), offset: 0n }), '7:0 0');
  assert.is(formatLinearParams({ device: d(253, 300), offset: 123456789012n }), '253:300 123456789012');
  assert.equal(parseLinearParams('7:0 2048'), { device: d(7, 0), offset: 2048n });
  assert.equal(linearTarget(0n, 2048n, { device: d(7, 0), offset: 8n }), {
    start: 0n,
    length: 2048n,
    type: 'linear',
    params: '7:0 8',
  });
  for (const bad of ['', '7:0', '7:0 x', '7:0 1 2', '/dev/loop0 0'])
    assert.throws(() => parseLinearParams(bad), isInvalid, bad);
  assert.throws(() => formatLinearParams({ device: d(4096, 0), offset: -1n }), (e: unknown) => {
    return e instanceof InvalidArgumentError && e.problems.map((p) => p.path).join() === '/device/major,/offset';
  });
});

test('striped status (stripe_status): devices and health; any other shape is a KernelOutputError', () => {
  assert.equal(parseStripedStatus('3 7:0 7:1 7:2 1 AAD'), { devices: [d(7, 0), d(7, 1), d(7, 2)], health: ['A', 'A', 'D'] });
  assert.equal(parseStripedStatus('1 253:10 1 A\n'), { devices: [d(253, 10)], health: ['A'] });
  for (const bad of ['', '2 7:0 7:1 1 A', '2 7:0 7:1 2 AA', '2 7:0 x 1 AA', '2 7:0 7:1 1 AX', '0 1 ', '3 7:0 7:1 1 AA'])
    assert.throws(() => parseStripedStatus(bad), (e: unknown) => e instanceof KernelOutputError, bad);
});

test('striped format/parse', () => {
  const p = { chunkSectors: 128, stripes: [{ device: d(7, 0), offset: 0n }, { device: d(7, 1), offset: 2048n }] };
  assert.is(formatStripedParams(p), '2 128 7:0 0 7:1 2048');
  assert.equal(parseStripedParams('2 128 7:0 0 7:1 2048'), p);
  // Non-power-of-two chunks are valid since Linux 3.6.
  assert.is(formatStripedParams({ chunkSectors: 24, stripes: [{ device: d(7, 0), offset: 0n }] }), '1 24 7:0 0');
  assert.is(stripedTarget(0n, 512n, p).params, '2 128 7:0 0 7:1 2048');
});

test('striped refuses bad shapes and sizes', () => {
  for (const bad of ['', '2', '2 128 7:0 0', '1 128 7:0 x', '0 128', '1 0 7:0 0'])
    assert.throws(() => parseStripedParams(bad), isInvalid, bad);
  assert.throws(() => formatStripedParams({ chunkSectors: 1.5, stripes: [] }), (e: unknown) => {
    return e instanceof InvalidArgumentError && e.problems.map((p) => p.path).join() === '/chunkSectors,/stripes';
  });
  const p = { chunkSectors: 8, stripes: [{ device: d(7, 0), offset: 0n }, { device: d(7, 1), offset: 0n }] };
  assert.throws(() => stripedTarget(0n, 24n, p), /multiple of #stripes × chunk \(16\)/);
});

test('zero and error take no params', () => {
  assert.equal(zeroTarget(0n, 8n), { start: 0n, length: 8n, type: 'zero', params: '' });
  assert.equal(errorTarget(8n, 8n), { start: 8n, length: 8n, type: 'error', params: '' });
  assert.equal(parseZeroParams(''), {});
  assert.equal(parseErrorParams(' '), {});
  assert.throws(() => parseZeroParams('x'), isInvalid);
  assert.throws(() => parseErrorParams('7:0 0'), isInvalid);
});

test.run();
