// Encoders, decoders and list walkers of src/ioctl/dm-ioctl.ts: round trips on edge values, the
// worked payload layouts of include/uapi/linux/dm-ioctl.h (dm_target_spec, dm_name_list,
// dm_target_deps, dm_target_versions as drivers/md/dm-ioctl.c writes them), and malformed kernel output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';
import * as io from '../../../src/ioctl/index.js';

const U64_MAX = 2n ** 64n - 1n;

function throwsTyped(fn: () => unknown, cls: abstract new (...a: never[]) => Error, re?: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    if (re) assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected ${cls.name}`);
}

test('dm_ioctl round trip with edge values', () => {
  const h: io.RawDmIoctl = {
    version: [4, 0xffffffff, 7],
    data_size: 16384,
    data_start: 312,
    target_count: 3,
    open_count: -1,
    flags: io.DM_SUSPEND_FLAG | io.DM_IMA_MEASUREMENT_FLAG,
    event_nr: 0xffffffff,
    dev: U64_MAX,
    name: 'n'.repeat(127),
    uuid: 'u'.repeat(128),
  };
  const buf = io.encodeDmIoctl(h);
  assert.is(buf.length, 312);
  assert.equal(io.decodeDmIoctl(buf), h);
  assert.is(buf.readBigUInt64LE(40), U64_MAX);
  assert.is(buf.readInt32LE(24), -1);
  assert.is(buf.toString('latin1', 48, 175), 'n'.repeat(127));
  assert.is(buf[175], 0);
  assert.is(buf[176 + 128], 0);
});

test('dm_ioctl defaults and zeroed padding', () => {
  const dirty = Buffer.alloc(312, 0xaa);
  io.encodeDmIoctl({ name: 'x' }, dirty);
  const d = io.decodeDmIoctl(dirty);
  assert.equal(d.version, [4, 0, 0]);
  assert.is(d.data_size, 312);
  assert.is(d.data_start, 312);
  assert.is(dirty.readUInt32LE(36), 0, 'padding zeroed');
  assert.ok(dirty.subarray(305, 312).every((b) => b === 0), 'data[7] zeroed');
  assert.ok(dirty.subarray(50, 176).every((b) => b === 0), 'rest of name zeroed');
  assert.not.ok('padding' in d);
  assert.not.ok('data' in d);
});

test('name: 127 bytes ok, 128 refused; uuid: 128 ok, 129 refused; NUL refused', () => {
  io.encodeDmIoctl({ name: 'a'.repeat(127) });
  throwsTyped(() => io.encodeDmIoctl({ name: 'a'.repeat(128) }), InvalidArgumentError, /dm_ioctl\.name.*128 bytes; at most 127/);
  io.encodeDmIoctl({ uuid: 'b'.repeat(128) });
  throwsTyped(() => io.encodeDmIoctl({ uuid: 'b'.repeat(129) }), InvalidArgumentError, /dm_ioctl\.uuid/);
  throwsTyped(() => io.encodeDmIoctl({ name: 'a\0b' }), InvalidArgumentError, /NUL/);
  // Multi-byte UTF-8 counts in bytes: 64 × 'é' = 128 bytes.
  throwsTyped(() => io.encodeDmIoctl({ name: 'é'.repeat(64) }), InvalidArgumentError);
  io.encodeDmIoctl({ name: 'é'.repeat(63) });
});

test('numbers out of range are InvalidArgumentError, not RangeError', () => {
  throwsTyped(() => io.encodeDmIoctl({ dev: U64_MAX + 1n }), InvalidArgumentError);
  throwsTyped(() => io.encodeDmIoctl({ dev: -1n }), InvalidArgumentError);
  throwsTyped(() => io.encodeDmIoctl({ flags: 2 ** 32 }), InvalidArgumentError);
});

test('decodeDmIoctl checks the length and the NULs', () => {
  throwsTyped(() => io.decodeDmIoctl(Buffer.alloc(311)), KernelOutputError, /need 312 bytes/);
  const b = io.encodeDmIoctl({});
  b.fill(0x41, 48, 176); // name without NUL
  throwsTyped(() => io.decodeDmIoctl(b), KernelOutputError, /not NUL-terminated/);
});

test('buildDmRequest: payload at 312, data_size = buffer length', () => {
  const b = io.buildDmRequest({ name: 'foo' }, Buffer.from('abc\0'), 16384);
  assert.is(b.length, 16384);
  const h = io.decodeDmIoctl(b);
  assert.is(h.data_size, 16384);
  assert.is(h.data_start, 312);
  assert.is(b.toString('latin1', 312, 315), 'abc');
});

test('buildDmRequest: no stale bytes from the shared allocation slab reach the kernel', () => {
  const payload = Buffer.from('abc\0');
  // allocUnsafe never hands the same slab bytes out twice, so dirtying "the slab" first proves
  // nothing: make every allocUnsafe return garbage instead, then every byte must still equal a
  // zeroed build.
  const realAllocUnsafe = Buffer.allocUnsafe;
  Buffer.allocUnsafe = (n: number) => Buffer.alloc(n, 0xa5);
  try {
  for (const [minSize, p] of [[0, undefined], [0, payload], [400, payload], [16384, payload]] as const) {
    const got = io.buildDmRequest({ name: 'n', uuid: 'u', flags: 4, dev: 0xfd00n }, p, minSize);
    const want = Buffer.alloc(got.length);
    io.encodeDmIoctl({ name: 'n', uuid: 'u', flags: 4, dev: 0xfd00n, data_size: got.length, data_start: 312 }, want);
    if (p) p.copy(want, 312);
    assert.ok(got.equals(want), `minSize ${minSize}, payload ${p ? p.length : 0}`);
  }
  } finally {
    Buffer.allocUnsafe = realAllocUnsafe;
  }
});

test('worked TABLE_LOAD example: linear "0 2048 linear 7:0 0"', () => {
  const payload = io.encodeTargetSpecs([{ sector_start: 0n, length: 2048n, target_type: 'linear', params: '7:0 0' }]);
  const b = io.buildDmRequest({ name: 'x', target_count: 1 }, payload);
  assert.is(b.length, 360, 'data_size 360');
  assert.is(b.readBigUInt64LE(312), 0n);
  assert.is(b.readBigUInt64LE(320), 2048n);
  assert.is(b.readInt32LE(328), 0);
  assert.is(b.readUInt32LE(332), 48, 'next = 48');
  assert.is(b.toString('latin1', 336, 342), 'linear');
  assert.is(b.toString('latin1', 352, 358), '7:0 0\0');
  assert.ok(b.subarray(358, 360).every((x) => x === 0));
  assert.equal(io.walkTargetSpecs(b, 312, 360, 1, 'spec'), [
    { sector_start: 0n, length: 2048n, target_type: 'linear', params: '7:0 0', status: 0 },
  ]);
});

test('target specs: multi-target round trip, both next conventions, u64 max', () => {
  const targets: io.DmTarget[] = [
    { sector_start: 0n, length: 8n, target_type: 'zero', params: '' },
    { sector_start: 8n, length: U64_MAX - 8n, target_type: 'thin-pool', params: '253:1 253:2 128 32768 1 skip_block_zeroing' },
    { sector_start: U64_MAX, length: 1n, target_type: 'a'.repeat(15), params: 'x'.repeat(7) },
  ];
  for (const base of ['spec', 'data_start'] as const) {
    const p = io.encodeTargetSpecs(targets, base);
    assert.is(p.length % 8, 0);
    const b = io.buildDmRequest({}, p);
    const got = io.walkTargetSpecs(b, 312, b.length, targets.length, base);
    assert.equal(got.map(({ status: _s, ...t }) => t), targets);
  }
  // 'zero' with empty params: 40 + 1 → 48; second record's next (data_start-relative) = 48 + its size
  const out = io.encodeTargetSpecs(targets, 'data_start');
  assert.is(out.readUInt32LE(20), 48);
  throwsTyped(() => io.encodeTargetSpecs([{ ...targets[0]!, target_type: 'a'.repeat(16) }]), InvalidArgumentError, /target_type/);
  throwsTyped(() => io.encodeTargetSpecs([{ ...targets[0]!, params: 'a\0' }]), InvalidArgumentError, /NUL/);
});

function statusBuf(): Buffer {
  const p = io.encodeTargetSpecs(
    [
      { sector_start: 0n, length: 8n, target_type: 'zero', params: '' },
      { sector_start: 8n, length: 8n, target_type: 'linear', params: '7:0 0' },
    ],
    'data_start',
  );
  return io.buildDmRequest({}, p);
}

test('walkTargetSpecs refuses malformed output', () => {
  const good = statusBuf();
  assert.is(io.walkTargetSpecs(good, 312, good.length, 2).length, 2);
  // target_count larger than the entries present
  throwsTyped(() => io.walkTargetSpecs(good, 312, good.length, 3), KernelOutputError);
  // next = 0 (would loop back onto itself)
  let b = Buffer.from(good);
  b.writeUInt32LE(0, 312 + 20);
  throwsTyped(() => io.walkTargetSpecs(b, 312, b.length, 2), KernelOutputError, /next=0/);
  // next not advancing past the params
  b = Buffer.from(good);
  b.writeUInt32LE(8, 312 + 20);
  throwsTyped(() => io.walkTargetSpecs(b, 312, b.length, 2), KernelOutputError);
  // next past the end
  b = Buffer.from(good);
  b.writeUInt32LE(0xfffffff0, 312 + 20);
  throwsTyped(() => io.walkTargetSpecs(b, 312, b.length, 2), KernelOutputError);
  // params without NUL before data_size
  b = Buffer.from(good);
  throwsTyped(() => io.walkTargetSpecs(b, 312, b.length - 3, 2), KernelOutputError, /not NUL-terminated|does not fit/);
  // target_type without NUL
  b = Buffer.from(good);
  b.fill(0x41, 312 + 24, 312 + 40);
  throwsTyped(() => io.walkTargetSpecs(b, 312, b.length, 2), KernelOutputError, /target_type/);
  // data_size beyond the buffer, data_start beyond data_size
  throwsTyped(() => io.walkTargetSpecs(good, 312, good.length + 8, 2), KernelOutputError);
  throwsTyped(() => io.walkTargetSpecs(good, 400, 312, 1), KernelOutputError);
  // no targets: fine
  assert.equal(io.walkTargetSpecs(good, 312, 312, 0), []);
});

test('worked LIST_DEVICES example (list_devices() in dm-ioctl.c, struct dm_name_list): offsets and walk', () => {
  const p = io.encodeNameList(
    [
      { name: 'pool', dev: io.huge_encode_dev(253, 0), uuid: 'LVM-abc', event_nr: 5 },
      { name: 'thin1', dev: io.huge_encode_dev(253, 1), event_nr: 0 },
    ],
    47,
    true,
  );
  const b = io.buildDmRequest({}, p);
  assert.is(b.length, 384, 'data_size 384');
  assert.is(b.readBigUInt64LE(312), 0xfd00n);
  assert.is(b.readUInt32LE(320), 40, 'entry0 next');
  assert.is(b.toString('latin1', 324, 329), 'pool\0');
  assert.is(b.readUInt32LE(336), 5, 'event_nr@336');
  assert.is(b.readUInt32LE(340), io.DM_NAME_LIST_FLAG_HAS_UUID, 'flags@340');
  assert.is(b.toString('latin1', 344, 352), 'LVM-abc\0', 'uuid@344');
  assert.is(b.readBigUInt64LE(352), 0xfd01n, 'entry1 @352');
  assert.is(b.readUInt32LE(360), 0, 'entry1 next = 0');
  assert.is(b.toString('latin1', 364, 370), 'thin1\0');
  assert.is(b.readUInt32LE(380), io.DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID, 'flags@380');
  assert.equal(io.walkNameList(b, 312, 384, 47), [
    { name: 'pool', dev: 0xfd00n, event_nr: 5, flags: 1, uuid: 'LVM-abc' },
    { name: 'thin1', dev: 0xfd01n, event_nr: 0, flags: 2 },
  ]);
});

test('walkNameList: a dev with the high 32 bits set survives the two-halves read', () => {
  const devs = [0x1_0000_fd00n, 0xffff_ffff_ffff_ffffn, 0x8000_0000n];
  const b = io.buildDmRequest({}, io.encodeNameList(devs.map((dev, i) => ({ name: `d${i}`, dev, event_nr: i, flags: 0 })), 47));
  assert.equal(io.walkNameList(b, 312, b.length, 47).map((e) => e.dev), devs);
});

test('walkNameList: old kernels (minor < 38) have no trailing fields; empty lists', () => {
  const p = io.encodeNameList([{ name: 'a', dev: 1n }, { name: 'bb', dev: 2n }], 37);
  const b = io.buildDmRequest({}, p);
  assert.is(b.readUInt32LE(320), 16, 'align8(12+2)');
  assert.equal(io.walkNameList(b, 312, b.length, 37), [{ name: 'a', dev: 1n }, { name: 'bb', dev: 2n }]);
  // Empty: kernel writes dev = 0 and data_size = data_start
  const e = io.buildDmRequest({}, io.encodeNameList([], 47), 16384);
  assert.equal(io.walkNameList(e, 312, 312, 47), []);
  assert.equal(io.walkNameList(e, 312, 16384, 47), [], 'first entry dev == 0');
});

test('walkNameList refuses malformed output', () => {
  const p = io.encodeNameList([{ name: 'pool', dev: 1n, uuid: 'U' }, { name: 'thin1', dev: 2n }], 47, true);
  const good = io.buildDmRequest({}, p);
  const end = good.length;
  // next pointing past the end
  let b = Buffer.from(good);
  b.writeUInt32LE(4096, 320);
  throwsTyped(() => io.walkNameList(b, 312, end, 47), KernelOutputError, /next=4096/);
  // next not advancing past the entry's own fields (points into it)
  b = Buffer.from(good);
  b.writeUInt32LE(8, 320);
  throwsTyped(() => io.walkNameList(b, 312, end, 47), KernelOutputError);
  // a self-loop is impossible: next is relative and must be > 0 to continue; 0 ends the list
  // truncated name without NUL
  b = Buffer.from(good);
  b.fill(0x41, 324, end);
  throwsTyped(() => io.walkNameList(b, 312, end, 47), KernelOutputError, /not NUL-terminated/);
  // event_nr/flags cut off by data_size
  throwsTyped(() => io.walkNameList(good, 312, 312 + 20, 47), KernelOutputError);
  // uuid flag set but uuid missing
  b = Buffer.from(good);
  b.writeUInt32LE(io.DM_NAME_LIST_FLAG_HAS_UUID, b.length - 4);
  throwsTyped(() => io.walkNameList(b, 312, end, 47), KernelOutputError);
  // too few payload bytes for an entry
  throwsTyped(() => io.walkNameList(good, 312, 318, 47), KernelOutputError);
});

test('walkNameList on a long random-ish chain terminates', () => {
  const entries = Array.from({ length: 200 }, (_, i) => ({ name: `dev${i}`, dev: BigInt(i + 1), event_nr: i }));
  const b = io.buildDmRequest({}, io.encodeNameList(entries, 47, true));
  const got = io.walkNameList(b, 312, b.length, 47);
  assert.is(got.length, 200);
  assert.is(got[199]?.name, 'dev199');
});

test('target versions: round trip and malformed', () => {
  const v: io.DmTargetVersion[] = [
    { name: 'linear', version: [1, 4, 0] },
    { name: 'thin-pool', version: [1, 23, 0] },
    { name: 'zero', version: [1, 2, 0] },
  ];
  const b = io.buildDmRequest({}, io.encodeTargetVersions(v));
  assert.is(b.readUInt32LE(312), 24, 'align8(16+7)');
  assert.equal(io.walkTargetVersions(b, 312, b.length), v);
  assert.equal(io.walkTargetVersions(b, 312, 312), []);
  const bad = Buffer.from(b);
  bad.writeUInt32LE(4, 312);
  throwsTyped(() => io.walkTargetVersions(bad, 312, bad.length), KernelOutputError);
  bad.writeUInt32LE(1 << 20, 312);
  throwsTyped(() => io.walkTargetVersions(bad, 312, bad.length), KernelOutputError);
  throwsTyped(() => io.walkTargetVersions(b, 312, 312 + 20), KernelOutputError, /not NUL-terminated/);
});

test('target deps: round trip and truncation', () => {
  const devs = [io.huge_encode_dev(7, 0), io.huge_encode_dev(253, 300), U64_MAX];
  const b = io.buildDmRequest({}, io.encodeTargetDeps(devs));
  assert.is(b.length, 312 + 8 + 24);
  assert.equal(io.decodeTargetDeps(b, 312, b.length), devs);
  throwsTyped(() => io.decodeTargetDeps(b, 312, b.length - 8), KernelOutputError, /count 3/);
  throwsTyped(() => io.decodeTargetDeps(b, 312, 316), KernelOutputError);
  const huge = Buffer.from(b);
  huge.writeUInt32LE(0xffffffff, 312);
  throwsTyped(() => io.decodeTargetDeps(huge, 312, huge.length), KernelOutputError);
});

test('a device without the requested table: target_count 0 and data_size 305 decode as empty', () => {
  // What the kernel answers TABLE_STATUS, DEV_WAIT and TABLE_DEPS for a device with no table
  // (seen on Linux 6.1 in the VM): no payload at all, data_size left at offsetof(data) = 305.
  const b = io.buildDmRequest({}, undefined, 16384);
  assert.equal(io.walkTargetSpecs(b, 312, 305, 0), []);
  assert.equal(io.decodeTargetDeps(b, 312, 305), []);
  // …but a claimed target with no payload is still refused.
  throwsTyped(() => io.walkTargetSpecs(b, 312, 305, 1), KernelOutputError);
  throwsTyped(() => io.decodeTargetDeps(b, 312, b.length + 1), KernelOutputError);
});

test('target msg and string payloads', () => {
  const m = io.encodeTargetMsg(U64_MAX, 'create_thin 0');
  assert.is(m.length, 24);
  assert.is(m.readBigUInt64LE(0), U64_MAX);
  const b = io.buildDmRequest({}, m);
  assert.equal(io.decodeTargetMsg(b, 312, b.length), { sector: U64_MAX, message: 'create_thin 0' });
  throwsTyped(() => io.encodeTargetMsg(0n, ''), InvalidArgumentError, /empty/);
  const r = io.buildDmRequest({}, io.encodeDmString('newname', io.DM_NAME_LEN - 1));
  assert.is(io.decodeDmString(r, 312, r.length), 'newname');
  assert.is(io.decodeDmString(r, 312, 312), '');
  throwsTyped(() => io.encodeDmString('x'.repeat(128), io.DM_NAME_LEN - 1), InvalidArgumentError);
  io.encodeDmString('x'.repeat(128), io.DM_UUID_LEN - 1);
});

test('dmFlagNames', () => {
  assert.equal(io.dmFlagNames(io.DM_SUSPEND_FLAG | io.DM_ACTIVE_PRESENT_FLAG | 0x80), [
    'DM_SUSPEND_FLAG',
    'DM_ACTIVE_PRESENT_FLAG',
    '0x80',
  ]);
});

test.run();
