import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
const isInvalid = (e: unknown): boolean => e instanceof InvalidArgumentError;
import { decodeDevNum, encodeDevNum, formatDevNum, parseDevNum, sameDevNum } from '../../../src/dm/devnum.js';

test('format and parse major:minor', () => {
  assert.is(formatDevNum({ major: 253, minor: 0 }), '253:0');
  assert.equal(parseDevNum('7:12'), { major: 7, minor: 12 });
  assert.equal(parseDevNum('4095:1048575'), { major: 4095, minor: 1048575 });
});

test('parse refuses malformed and out-of-range numbers', () => {
  for (const bad of ['', '7', '7:', ':1', '7:1 ', 'a:b', '-1:0', '/dev/loop0', '4096:0', '1:1048576'])
    assert.throws(() => parseDevNum(bad), isInvalid, bad);
});

test('huge encoding matches the kernel examples', () => {
  assert.is(encodeDevNum({ major: 253, minor: 0 }), 0xfd00n);
  assert.is(encodeDevNum({ major: 253, minor: 300 }), 0x10fd2cn);
  assert.is(encodeDevNum({ major: 7, minor: 3 }), 0x703n);
  assert.is(encodeDevNum({ major: 10, minor: 236 }), 0xaecn);
  assert.is(encodeDevNum({ major: 4095, minor: 1048575 }), 0xffffffffn);
  assert.equal(decodeDevNum(0xffffffffn), { major: 4095, minor: 1048575 });
  assert.equal(decodeDevNum(0x10fd2cn), { major: 253, minor: 300 });
});

test('sameDevNum compares both parts', () => {
  assert.ok(sameDevNum({ major: 1, minor: 2 }, { major: 1, minor: 2 }));
  assert.not.ok(sameDevNum({ major: 1, minor: 2 }, { major: 2, minor: 1 }));
});

test.run();
