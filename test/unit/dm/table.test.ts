import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  assertTable,
  formatTable,
  formatTargetLine,
  parseTable,
  parseTargetLine,
  tableProblems,
  tableSize,
  type TargetLine,
} from '../../../src/dm/table.js';

const lin = (start: bigint, length: bigint): TargetLine => ({ start, length, type: 'linear', params: '7:0 0' });

test('format a line and a table', () => {
  assert.is(formatTargetLine({ start: 0n, length: 2048n, type: 'linear', params: '7:0 0' }), '0 2048 linear 7:0 0');
  assert.is(formatTargetLine({ start: 0n, length: 8n, type: 'zero', params: '' }), '0 8 zero');
  assert.is(formatTable([lin(0n, 8n), { start: 8n, length: 8n, type: 'error', params: '' }]), '0 8 linear 7:0 0\n8 8 error\n');
});

test('parse lines: whitespace runs, trailing blanks, params kept verbatim inside', () => {
  assert.equal(parseTargetLine('0 2048 linear 7:0 0'), lin(0n, 2048n));
  assert.equal(parseTargetLine('  0\t8   zero  '), { start: 0n, length: 8n, type: 'zero', params: '' });
  assert.equal(parseTargetLine('0 8 crypt a  b'), { start: 0n, length: 8n, type: 'crypt', params: 'a  b' });
  assert.equal(parseTargetLine('18446744073709551615 1 zero').start, 18446744073709551615n);
});

test('parse a table, skipping blanks and comments, reporting every bad line', () => {
  assert.equal(parseTable('# c\n0 8 linear 7:0 0\n\n8 8 linear 7:0 0\n'), [
    lin(0n, 8n),
    { start: 8n, length: 8n, type: 'linear', params: '7:0 0' },
  ]);
  try {
    parseTable('x\n0 8 zero\n-1 2 zero\n');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, InvalidArgumentError);
    assert.equal((e as InvalidArgumentError).problems.map((p) => p.path), ['/0', '/2']);
  }
});

test('format/parse round-trip', () => {
  const t = [lin(0n, 100n), { start: 100n, length: 28n, type: 'striped', params: '2 4 7:0 0 7:1 0' }];
  assert.equal(parseTable(formatTable(t)), t);
});

test('valid table has no problems; size is the end of the last target', () => {
  assert.equal(tableProblems([lin(0n, 8n), lin(8n, 16n)]), []);
  assertTable([lin(0n, 8n)]);
  assert.is(tableSize([lin(0n, 8n), lin(8n, 16n)]), 24n);
  assert.is(tableSize([]), 0n);
});

test('gaps, overlaps, non-zero start, zero length, empty table', () => {
  assert.equal(tableProblems([]), [{ path: '', message: 'must contain at least one target' }]);
  assert.equal(tableProblems([lin(1n, 8n)]).map((p) => `${p.path} ${p.message}`), ['/0/start gap: expected start 0, got 1']);
  assert.equal(tableProblems([lin(0n, 8n), lin(9n, 8n)]).map((p) => `${p.path} ${p.message}`), [
    '/1/start gap: expected start 8, got 9',
  ]);
  assert.equal(tableProblems([lin(0n, 8n), lin(7n, 8n), lin(15n, 1n)]).map((p) => `${p.path} ${p.message}`), [
    '/1/start overlap: expected start 8, got 7',
  ]);
  assert.equal(tableProblems([lin(0n, 0n)]).map((p) => `${p.path} ${p.message}`), ['/0/length must not be zero']);
});

test('type and params rules', () => {
  const msgs = (t: Partial<TargetLine>) =>
    tableProblems([{ ...lin(0n, 8n), ...t }]).map((p) => `${p.path} ${p.message}`);
  assert.equal(msgs({ type: 'x'.repeat(15) }), []);
  assert.equal(msgs({ type: 'x'.repeat(16) }), ['/0/type must be at most 15 bytes']);
  assert.equal(msgs({ type: '' }), ['/0/type must not be empty']);
  assert.equal(msgs({ type: 'a b' }), ['/0/type must not contain whitespace or NUL']);
  assert.equal(msgs({ params: 'a\nb' }), ['/0/params must not contain NUL or line breaks']);
  assert.equal(msgs({ params: 'a\0' }), ['/0/params must not contain NUL or line breaks']);
  assert.equal(msgs({ start: 0 as unknown as bigint }), ['/0/start must be a bigint sector count in 0..2^64-1']);
});

test('assertTable lists every problem at once', () => {
  try {
    assertTable([lin(0n, 0n), { start: 5n, length: 1n, type: 'x'.repeat(16), params: '' }]);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, InvalidArgumentError);
    assert.equal((e as InvalidArgumentError).problems.map((p) => p.path), ['/0/length', '/1/type', '/1/start']);
  }
});

test.run();
