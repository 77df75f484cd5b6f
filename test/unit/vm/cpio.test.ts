// SPDX-License-Identifier: MIT
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpio, decodeCpio, encodeCpio, CPIO_NEWC_HEADER_SIZE, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from '../../../src/vm/cpio.js';

test('a newc header is exactly magic + 13 eight-digit hex fields', () => {
  const buf = encodeCpio([{ name: 'init', mode: S_IFREG | 0o755, uid: 1, gid: 2, mtime: 0x5f5e100, data: Buffer.from('hello') }]);
  const hdr = buf.toString('ascii', 0, CPIO_NEWC_HEADER_SIZE);
  assert.is(CPIO_NEWC_HEADER_SIZE, 110);
  assert.is(
    hdr,
    '070701' +
      '00000001' + // ino
      '000081ed' + // mode 0100755
      '00000001' + // uid
      '00000002' + // gid
      '00000001' + // nlink
      '05f5e100' + // mtime
      '00000005' + // filesize
      '00000000' + '00000000' + // devmajor, devminor
      '00000000' + '00000000' + // rdevmajor, rdevminor
      '00000005' + // namesize: "init\0"
      '00000000', // check
  );
  // name + NUL padded so that header+name is a multiple of 4 (110 + 5 = 115 → 116)
  assert.is(buf.toString('ascii', 110, 115), 'init\0');
  assert.is(buf[115], 0);
  // data at 116, padded to 4 (5 → 8)
  assert.is(buf.toString('ascii', 116, 121), 'hello');
  assert.is(buf.subarray(121, 124).toString('hex'), '000000');
  // then the trailer
  assert.is(buf.toString('ascii', 124, 130), '070701');
  assert.is(buf.toString('ascii', 124 + 110, 124 + 110 + 10), 'TRAILER!!!');
  assert.is(buf.length % 4, 0);
});

test('round trip keeps names, modes, device numbers, bodies and symlink targets', () => {
  const entries = [
    cpio.dir('bin'),
    cpio.file('bin/busybox', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]), 0o755),
    cpio.symlink('bin/sh', 'busybox'),
    cpio.charDev('dev/console', 5, 1),
    cpio.file('empty', Buffer.alloc(0)),
    cpio.file('a/name-of-odd-length', Buffer.from('xyz')),
  ];
  const out = decodeCpio(encodeCpio(entries));
  assert.equal(out.map((e) => e.name), ['bin', 'bin/busybox', 'bin/sh', 'dev/console', 'empty', 'a/name-of-odd-length']);
  assert.equal(out.map((e) => e.ino), [1, 2, 3, 4, 5, 6]);
  assert.is(out[0]!.mode, S_IFDIR | 0o755);
  assert.is(out[0]!.nlink, 2);
  assert.is(out[1]!.mode, S_IFREG | 0o755);
  assert.equal([...out[1]!.data], [0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]);
  assert.is(out[2]!.mode, S_IFLNK | 0o777);
  assert.is(out[2]!.data.toString(), 'busybox');
  assert.is(out[3]!.mode, S_IFCHR | 0o600);
  assert.is(out[3]!.rdevmajor, 5);
  assert.is(out[3]!.rdevminor, 1);
  assert.is(out[4]!.data.length, 0);
  assert.is(out[5]!.data.toString(), 'xyz');
});

test('absolute, empty and reserved names are refused', () => {
  assert.throws(() => encodeCpio([cpio.dir('/bin')]), /bad cpio member name/);
  assert.throws(() => encodeCpio([cpio.dir('')]), /bad cpio member name/);
  assert.throws(() => encodeCpio([cpio.dir('TRAILER!!!')]), /bad cpio member name/);
});

test('decode rejects a bad magic', () => {
  const buf = encodeCpio([cpio.dir('x')]);
  buf.write('070707', 0, 'ascii');
  assert.throws(() => decodeCpio(buf), /bad cpio magic/);
});

test.run();
