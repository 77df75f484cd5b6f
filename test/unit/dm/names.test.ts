import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
const isInvalid = (e: unknown): boolean => e instanceof InvalidArgumentError;
import {
  DM_NAME_MAX_BYTES,
  DM_UUID_MAX_BYTES,
  dmNameProblems,
  dmUuidProblems,
  isDmName,
  lookupProblems,
  toDmName,
  toDmUuid,
} from '../../../src/dm/names.js';

test('limits mirror DM_NAME_LEN - 1 and DM_UUID_LEN - 1', () => {
  assert.is(DM_NAME_MAX_BYTES, 127);
  assert.is(DM_UUID_MAX_BYTES, 128);
});

test('accepts every whitelisted character and the length limits exactly', () => {
  assert.is(toDmName('a#b+c-d.e:f=g@h_i'), 'a#b+c-d.e:f=g@h_i');
  assert.is(toDmName('AZaz09'), 'AZaz09');
  assert.is(toDmName('x'.repeat(127)).length, 127);
  assert.is(toDmUuid('LVM-' + 'u'.repeat(124)).length, 128);
  assert.ok(isDmName('pool-1'));
});

test('refuses one byte over the limit, counting UTF-8 bytes', () => {
  assert.equal(dmNameProblems('x'.repeat(128)).map((p) => p.message), ['must be at most 127 bytes (is 128)']);
  assert.equal(dmUuidProblems('u'.repeat(129)).map((p) => p.message), ['must be at most 128 bytes (is 129)']);
  // 64 × 'é' is 64 characters but 128 bytes.
  const msgs = dmNameProblems('é'.repeat(64)).map((p) => p.message);
  assert.equal(msgs, ['must be at most 127 bytes (is 128)', 'contains characters outside [0-9A-Za-z#+-.:=@_]: "é"']);
});

test('refuses empty, reserved names and slash', () => {
  assert.equal(dmNameProblems('').map((p) => p.message), ['must not be empty']);
  assert.equal(dmNameProblems('.').map((p) => p.message), ["'.' is reserved by the kernel"]);
  assert.equal(dmNameProblems('..').map((p) => p.message), ["'..' is reserved by the kernel"]);
  assert.equal(dmNameProblems('control').map((p) => p.message), ["'control' is reserved by the kernel"]);
  assert.equal(dmNameProblems('a/b').map((p) => p.message), ["must not contain '/'"]);
  assert.equal(dmUuidProblems('').map((p) => p.message), ['must not be empty']);
  // 'control' is only reserved as a name; uuids may be anything whitelisted.
  assert.equal(dmUuidProblems('control'), []);
});

test('refuses whitespace, control characters, backslash and non-ASCII, naming each once', () => {
  assert.equal(dmNameProblems('a b\tc\nd\x01e\\f€ a').map((p) => p.message), [
    'contains characters outside [0-9A-Za-z#+-.:=@_]: " ", "\\t", "\\n", "\\u0001", "\\\\", "€"',
  ]);
  assert.equal(dmUuidProblems('x y').map((p) => p.message), ['contains characters outside [0-9A-Za-z#+-.:=@_]: " "']);
});

test('lists every problem at once', () => {
  const err = (() => {
    try {
      toDmName('/'.repeat(130) + ' ');
    } catch (e) {
      return e;
    }
  })();
  assert.instance(err, InvalidArgumentError);
  const e = err as InvalidArgumentError;
  assert.is(e.code, 'EINVALIDARG');
  assert.equal(e.problems.map((p) => p.message), [
    'must be at most 127 bytes (is 131)',
    "must not contain '/'",
    'contains characters outside [0-9A-Za-z#+-.:=@_]: " "',
  ]);
  assert.ok(e.message.startsWith('invalid device-mapper name: '));
});

test('non-strings are refused', () => {
  assert.equal(dmNameProblems(5), [{ path: '', message: 'must be a string', value: 5 }]);
  assert.throws(() => toDmUuid(undefined as unknown as string), isInvalid);
});

test('lookup validation is looser: only what the header cannot carry', () => {
  assert.equal(lookupProblems('foo\\x20bar', 'name'), []);
  assert.equal(lookupProblems('a b', 'uuid'), []);
  assert.equal(lookupProblems('', 'name').map((p) => p.message), ['must not be empty']);
  assert.equal(lookupProblems('a\0b', 'name').map((p) => p.message), ['must not contain NUL']);
  assert.equal(lookupProblems('x'.repeat(128), 'name').map((p) => p.message), ['must be at most 127 bytes (is 128)']);
  assert.equal(lookupProblems('x'.repeat(128), 'uuid'), []);
  // The kernel never names a device with '/' (dm-ioctl.c check_name): refused for lookups too; a uuid may hold one.
  assert.equal(lookupProblems('mapper/vol', 'name').map((p) => p.message), ["must not contain '/': no device-mapper device has such a name (give NAME, not /dev/mapper/NAME)"]);
  assert.equal(lookupProblems('a/b', 'uuid'), []);
});

test.run();
