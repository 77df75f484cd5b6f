// loop.h / fs.h layouts and helpers, device-number encodings, IoctlError.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KernelOutputError, errnoCode } from '../../../src/errors.js';
import * as io from '../../../src/ioctl/index.js';

const U64_MAX = 2n ** 64n - 1n;

test('loop_info64 round trip, offsets of the golden bytes', () => {
  const info: io.RawLoopInfo64 = {
    lo_device: 0xfe00n,
    lo_inode: U64_MAX,
    lo_rdevice: 0n,
    lo_offset: 1n << 20n,
    lo_sizelimit: 1n << 25n,
    lo_number: 3,
    lo_encrypt_type: 0,
    lo_encrypt_key_size: 0,
    lo_flags: io.LO_FLAGS_AUTOCLEAR | io.LO_FLAGS_DIRECT_IO,
    lo_file_name: '/'.padEnd(63, 'f'),
  };
  const b = io.encodeLoopInfo64(info);
  assert.is(b.length, 232);
  assert.equal(io.decodeLoopInfo64(b), info);
  assert.is(b.readBigUInt64LE(24), 1n << 20n);
  assert.is(b.readUInt32LE(52), 20);
  assert.is(b[56 + 63], 0);
  assert.throws(() => io.encodeLoopInfo64({ lo_file_name: 'x'.repeat(64) }), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => io.decodeLoopInfo64(Buffer.alloc(231)), (e: unknown) => e instanceof KernelOutputError);
});

test('loop_config: fd, block_size, nested info at 8, reserved zeroed', () => {
  const dirty = Buffer.alloc(304, 0xff);
  io.encodeLoopConfig({ fd: 7, block_size: 4096, info: { lo_flags: io.LO_FLAGS_AUTOCLEAR, lo_file_name: 'back' } }, dirty);
  assert.is(dirty.readUInt32LE(0), 7);
  assert.is(dirty.readUInt32LE(4), 4096);
  assert.is(dirty.readUInt32LE(8 + 52), io.LO_FLAGS_AUTOCLEAR);
  assert.is(dirty.toString('latin1', 8 + 56, 8 + 61), 'back\0');
  assert.ok(dirty.subarray(240, 304).every((x) => x === 0), '__reserved zeroed');
  assert.ok(dirty.subarray(8 + 120, 8 + 232).every((x) => x === 0), 'crypt fields zeroed');
  const d = io.decodeLoopConfig(dirty);
  assert.is(d.fd, 7);
  assert.is(d.info.lo_file_name, 'back');
  assert.not.ok('__reserved' in d);
  assert.not.ok('lo_crypt_name' in d.info);
});

test('loop flag masks', () => {
  assert.is(io.LOOP_CONFIGURE_SETTABLE_FLAGS, 0x1d);
  assert.is(io.LOOP_SET_STATUS_SETTABLE_FLAGS, 0x0c);
  assert.is(io.LOOP_SET_STATUS_CLEARABLE_FLAGS, 0x04);
  assert.is(io.LOOP_REQUEST_NAMES.get(0x4c0a), 'LOOP_CONFIGURE');
});

test('block range and u64 args', () => {
  const r = io.encodeBlkRange(4096n, 1n << 20n);
  assert.is(r.length, 16);
  assert.is(r.readBigUInt64LE(0), 4096n);
  assert.is(r.readBigUInt64LE(8), 1n << 20n);
  io.encodeBlkRange(0n, U64_MAX);
  assert.throws(() => io.encodeBlkRange(1n, U64_MAX), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => io.encodeBlkRange(-1n, 0n), (e: unknown) => e instanceof InvalidArgumentError);
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(U64_MAX);
  assert.is(io.decodeU64Arg(b), U64_MAX);
  assert.throws(() => io.decodeU64Arg(Buffer.alloc(4)), (e: unknown) => e instanceof KernelOutputError);
  assert.is(io.BLK_REQUEST_NAMES.get(io.BLKGETSIZE64), 'BLKGETSIZE64');
});

test('huge_encode_dev / decode (include/linux/kdev_t.h new_encode_dev): examples and limits', () => {
  assert.is(io.huge_encode_dev(253, 0), 0xfd00n);
  assert.is(io.huge_encode_dev(253, 300), 0x10fd2cn);
  assert.is(io.huge_encode_dev(7, 3), 0x703n);
  assert.is(io.huge_encode_dev(10, 236), 0xaecn);
  assert.is(io.huge_encode_dev(4095, 1048575), 0xffffffffn);
  assert.equal(io.huge_decode_dev(0xffffffffn), { major: 4095, minor: 1048575 });
  assert.equal(io.huge_decode_dev(0x10fd2cn), { major: 253, minor: 300 });
  assert.throws(() => io.huge_encode_dev(4096, 0), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => io.huge_encode_dev(0, 1 << 20), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => io.huge_encode_dev(-1, 0), (e: unknown) => e instanceof InvalidArgumentError);
});

test('glibc makedev/major/minor: identical to huge encoding for kernel-valid numbers', () => {
  for (const [ma, mi] of [[0, 0], [7, 3], [10, 236], [253, 300], [259, 0x12345], [4095, 1048575]] as const) {
    assert.is(io.makedev(ma, mi), io.huge_encode_dev(ma, mi), `${ma}:${mi}`);
    assert.is(io.major(io.makedev(ma, mi)), ma);
    assert.is(io.minor(io.makedev(ma, mi)), mi);
  }
  // Beyond the kernel's range glibc's 64-bit dev_t still round-trips.
  const d = io.makedev(0xffffffff, 0xffffffff);
  assert.is(d, U64_MAX);
  assert.is(io.major(d), 0xffffffff);
  assert.is(io.minor(d), 0xffffffff);
  assert.is(io.formatDev(0xfd00n), '253:0');
});

test('major/minor: the 32-bit number fast path equals glibc\'s 64-bit formula', () => {
  const refMajor = (d: bigint): number => Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n));
  const refMinor = (d: bigint): number => Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n));
  let x = 0x9e3779b9;
  const values = [0n, 1n, 0xffn, 0x100n, 0xfffffn, 0x100000n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, U64_MAX];
  for (let i = 0; i < 2000; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    values.push(BigInt(x));
  }
  for (const d of values) {
    assert.is(io.major(d), refMajor(d), `major(0x${d.toString(16)})`);
    assert.is(io.minor(d), refMinor(d), `minor(0x${d.toString(16)})`);
  }
});

test('devPartsFromU32 (a u64 read as two u32 halves) equals glibc major/minor of the 64-bit value', () => {
  let x = 0x2545f491;
  const next = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const pairs: [number, number][] = [[0, 0], [0xffffffff, 0xffffffff], [0xfd00, 0], [0x10fd2c, 0], [0, 1], [0xff, 0xfff], [0x100, 0x1000]];
  for (let i = 0; i < 3000; i++) pairs.push([next(), i % 3 === 0 ? 0 : next()]);
  for (const [lo, hi] of pairs) {
    const d = (BigInt(hi) << 32n) | BigInt(lo);
    assert.equal(io.devPartsFromU32(lo, hi), { major: io.major(d), minor: io.minor(d) }, `0x${d.toString(16)}`);
  }
});

test('IoctlError: SystemError shape, message, withHeader, errnoCode', () => {
  const cause = new Error('low');
  const e = new io.IoctlError({ syscall: 'ioctl', errno: 16, request: 'DM_DEV_REMOVE', fd: 3, cause });
  assert.is(e.name, 'IoctlError');
  assert.is(e.code, 'EBUSY');
  assert.is(e.errno, 16);
  assert.is(e.syscall, 'ioctl');
  assert.is(e.request, 'DM_DEV_REMOVE');
  assert.is(e.fd, 3);
  assert.is(e.cause, cause);
  assert.is(e.message, 'ioctl DM_DEV_REMOVE failed: EBUSY (device or resource busy)');
  const h = e.withHeader({ name: 'foo', uuid: '', flags: 0, event_nr: 0, dev: 0n });
  assert.is(h.message, 'ioctl DM_DEV_REMOVE failed: EBUSY (device or resource busy) [name=foo]');
  assert.is(h.header?.name, 'foo');
  assert.is(h.cause, cause);
  assert.is(h.fd, 3);
  assert.is(errnoCode(h), 'EBUSY');
  const o = new io.IoctlError({ syscall: 'open', errno: 2, path: '/dev/mapper/control' });
  assert.is(o.message, "open '/dev/mapper/control' failed: ENOENT (no such file or directory)");
  const weird = new io.IoctlError({ syscall: 'ioctl', errno: 4095, request: 'X' });
  assert.ok(weird.code.length > 0);
});

test.run();
