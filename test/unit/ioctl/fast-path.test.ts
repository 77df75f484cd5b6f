// The hand-coded fast paths of src/ioctl (dm_ioctl header, dm_target_spec, loop structs) against
// the buffer-layout reference encoders/decoders: byte-identical buffers and equal decoded structs
// for random headers and the edges (u64 max dev, 127-byte names, 128-byte uuids, dirty buffers),
// and the same typed errors for what the reference refuses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rng } from '../../helpers/rng.js';
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';
import * as io from '../../../src/ioctl/index.js';

const U64_MAX = 2n ** 64n - 1n;

// Code points, not UTF-16 units: an emoji must not be split into lone surrogates.
const ALPHABET = Array.from('abcdefghijklmnopqrstuvwxyz0123456789-_.+:éß€😀');

function randomString(r: () => number, maxBytes: number): string {
  let s = '';
  const target = Math.floor(r() * (maxBytes + 1));
  for (;;) {
    const ch = ALPHABET[Math.floor(r() * ALPHABET.length)] ?? 'a';
    if (Buffer.byteLength(s + ch) > target) return s;
    s += ch;
  }
}
const u32 = (r: () => number): number => Math.floor(r() * 2 ** 32);
const u64 = (r: () => number): bigint => (BigInt(u32(r)) << 32n) | BigInt(u32(r));

function randomHeader(r: () => number): io.RawDmIoctl {
  return {
    version: [u32(r), u32(r), u32(r)],
    data_size: u32(r),
    data_start: u32(r),
    target_count: u32(r),
    open_count: u32(r) - 2 ** 31,
    flags: u32(r),
    event_nr: u32(r),
    dev: u64(r),
    name: randomString(r, 127),
    uuid: randomString(r, 128),
  };
}

function errorOf(fn: () => unknown): Error | undefined {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  return undefined;
}

test('dm_ioctl: fast encode/decode = buffer-layout encode/decode, random headers', () => {
  const r = rng(9);
  for (let i = 0; i < 500; i++) {
    const h = randomHeader(r);
    const fast = io.encodeDmIoctl(h, Buffer.alloc(312, i & 0xff));
    const ref = io.encodeDmIoctlLayout(h, Buffer.alloc(312, (i + 1) & 0xff));
    assert.ok(fast.equals(ref), `bytes differ for ${JSON.stringify(h, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    assert.equal(io.decodeDmIoctl(fast), io.decodeDmIoctlLayout(ref));
    assert.equal(io.decodeDmIoctl(fast), h);
  }
});

test('dm_ioctl: fast = layout at the edges (u64 max dev, 127-byte name, 128-byte uuid, defaults)', () => {
  const edges: io.DmIoctlInput[] = [
    {},
    { name: 'x' },
    { dev: U64_MAX, name: 'n'.repeat(127), uuid: 'u'.repeat(128) },
    { dev: 0n, name: '', uuid: '' },
    { name: 'é'.repeat(63) + 'a', uuid: '😀'.repeat(32) },
    { version: [4, 0xffffffff, 0], open_count: -(2 ** 31), flags: 0xffffffff, event_nr: 0xffffffff, target_count: 0xffffffff },
  ];
  for (const h of edges) {
    for (const fill of [0, 0xaa]) {
      const fast = io.encodeDmIoctl(h, Buffer.alloc(312, fill));
      const ref = io.encodeDmIoctlLayout(h, Buffer.alloc(312, fill));
      assert.ok(fast.equals(ref), `bytes differ for ${Object.keys(h).join(',')} fill ${fill}`);
      assert.equal(io.decodeDmIoctl(fast), io.decodeDmIoctlLayout(ref));
    }
  }
  // buildDmRequest (which sets data_size/data_start) matches the reference too.
  const b = io.buildDmRequest({ name: 'pool', flags: io.DM_NOFLUSH_FLAG, dev: U64_MAX }, Buffer.from('payload\0'), 4096);
  const ref = Buffer.alloc(4096);
  io.encodeDmIoctlLayout({ name: 'pool', flags: io.DM_NOFLUSH_FLAG, dev: U64_MAX, data_size: 4096, data_start: 312 }, ref);
  ref.write('payload\0', 312, 'latin1');
  assert.ok(b.equals(ref));
});

test('dm_ioctl: fast and layout refuse the same inputs with the same typed error', () => {
  const bad: io.DmIoctlInput[] = [
    { name: 'a'.repeat(128) },
    { uuid: 'b'.repeat(129) },
    { name: 'a\0b' },
    { uuid: '\0' },
    { name: 'é'.repeat(64) },
    { name: '😀'.repeat(32) },
    { dev: U64_MAX + 1n },
    { dev: -1n },
    { dev: 5 as unknown as bigint },
    { flags: 2 ** 32 },
    { open_count: 2 ** 31 },
    { version: [4, -1, 0] },
    { name: 7 as unknown as string },
  ];
  for (const h of bad) {
    const ef = errorOf(() => io.encodeDmIoctl(h));
    const er = errorOf(() => io.encodeDmIoctlLayout(h));
    assert.instance(er, InvalidArgumentError, `reference refuses ${Object.keys(h)}`);
    assert.instance(ef, InvalidArgumentError, `fast refuses ${Object.keys(h)}`);
    assert.is(ef?.message, er?.message);
    assert.equal((ef as InvalidArgumentError).problems, (er as InvalidArgumentError).problems);
  }
  const small = Buffer.alloc(311);
  assert.is(errorOf(() => io.encodeDmIoctl({}, small))?.message, errorOf(() => io.encodeDmIoctlLayout({}, small))?.message);
});

test('dm_ioctl: fast and layout decode errors agree (short buffer, missing NULs)', () => {
  const short = Buffer.alloc(311);
  const cases: Buffer[] = [short];
  const noNulName = io.encodeDmIoctl({});
  noNulName.fill(0x41, 48, 176);
  cases.push(noNulName);
  const noNulUuid = io.encodeDmIoctl({});
  noNulUuid.fill(0x42, 176, 305);
  cases.push(noNulUuid);
  for (const b of cases) {
    const ef = errorOf(() => io.decodeDmIoctl(b));
    const er = errorOf(() => io.decodeDmIoctlLayout(b));
    assert.instance(ef, KernelOutputError);
    assert.is(ef?.message, er?.message);
  }
  // A name that fills all 128 bytes but the NUL is in the uuid's first byte: still unterminated.
  const edge = io.encodeDmIoctl({});
  edge.fill(0x41, 48, 176);
  assert.is(errorOf(() => io.decodeDmIoctl(edge))?.message, errorOf(() => io.decodeDmIoctlLayout(edge))?.message);
  // A plain Uint8Array (not a Buffer) decodes the same.
  const h = { name: 'u8', uuid: 'v', dev: 42n };
  const enc = io.encodeDmIoctl(h);
  assert.equal(io.decodeDmIoctl(new Uint8Array(enc)), io.decodeDmIoctlLayout(enc));
});

test('dm_target_spec: fast = layout (random, edges, errors)', () => {
  const r = rng(17);
  for (let i = 0; i < 300; i++) {
    const spec: io.RawDmTargetSpec = {
      sector_start: i === 0 ? U64_MAX : u64(r),
      length: u64(r),
      status: u32(r) - 2 ** 31,
      next: u32(r),
      target_type: i === 1 ? 't'.repeat(15) : randomString(r, 15),
    };
    const off = (i % 3) * 8;
    const fast = io.encodeDmTargetSpec(spec, Buffer.alloc(64, 0x55), off);
    const ref = io.encodeStruct(io.DmTargetSpecLayout, spec, Buffer.alloc(64, 0x55), off);
    assert.ok(fast.equals(ref));
    assert.equal(io.decodeDmTargetSpec(fast, off), io.decodeStruct(io.DmTargetSpecLayout, ref, off));
  }
  const bad = { sector_start: 0n, length: 0n, status: 0, next: 0, target_type: 'x'.repeat(16) };
  assert.is(
    errorOf(() => io.encodeDmTargetSpec(bad))?.message,
    errorOf(() => io.encodeStruct(io.DmTargetSpecLayout, bad))?.message,
  );
  assert.is(
    errorOf(() => io.decodeDmTargetSpec(Buffer.alloc(50), 16))?.message,
    errorOf(() => io.decodeStruct(io.DmTargetSpecLayout, Buffer.alloc(50), 16))?.message,
  );
});

test('loop_info64 and loop_config: fast = layout (random, edges, errors)', () => {
  const r = rng(23);
  for (let i = 0; i < 300; i++) {
    const info: io.RawLoopInfo64 = {
      lo_device: i === 0 ? U64_MAX : u64(r),
      lo_inode: u64(r),
      lo_rdevice: u64(r),
      lo_offset: u64(r),
      lo_sizelimit: u64(r),
      lo_number: u32(r),
      lo_encrypt_type: u32(r),
      lo_encrypt_key_size: u32(r),
      lo_flags: u32(r),
      lo_file_name: i === 1 ? 'f'.repeat(63) : randomString(r, 63),
    };
    const fast = io.encodeLoopInfo64(info, Buffer.alloc(240, 0x77), 8);
    const ref = io.encodeStruct(io.LoopInfo64Layout, info, Buffer.alloc(240, 0x77), 8);
    assert.ok(fast.equals(ref));
    assert.equal(io.decodeLoopInfo64(fast, 8), io.decodeStruct(io.LoopInfo64Layout, ref, 8));
    assert.equal(io.decodeLoopInfo64(fast, 8), info);
    const cfg = { fd: u32(r), block_size: u32(r), info };
    const cf = io.encodeLoopConfig(cfg, Buffer.alloc(304, 0x33));
    const cr = io.encodeStruct(io.LoopConfigLayout, cfg, Buffer.alloc(304, 0x33), 0);
    assert.ok(cf.equals(cr));
  }
  // Partial input: the defaults match loopInfo64() through the layout.
  assert.ok(io.encodeLoopInfo64({ lo_offset: 4096n }).equals(io.encodeStruct(io.LoopInfo64Layout, io.loopInfo64({ lo_offset: 4096n }))));
  assert.ok(io.encodeLoopConfig({ fd: 3 }).equals(io.encodeStruct(io.LoopConfigLayout, { fd: 3, block_size: 0, info: io.loopInfo64() })));
  for (const bad of [{ lo_file_name: 'x'.repeat(64) }, { lo_offset: -1n }, { lo_flags: 2 ** 32 }] as Partial<io.RawLoopInfo64>[]) {
    const ef = errorOf(() => io.encodeLoopInfo64(bad));
    const er = errorOf(() => io.encodeStruct(io.LoopInfo64Layout, io.loopInfo64(bad)));
    assert.instance(ef, InvalidArgumentError);
    assert.is(ef?.message, er?.message);
  }
  assert.is(
    errorOf(() => io.decodeLoopInfo64(Buffer.alloc(231)))?.message,
    errorOf(() => io.decodeStruct(io.LoopInfo64Layout, Buffer.alloc(231)))?.message,
  );
});

test('statx: fast decode = buffer-layout decode (random bytes, all-ones, short buffer error)', () => {
  const r = rng(0x57a7);
  for (let i = 0; i < 300; i++) {
    const b = Buffer.alloc(io.STATX_SIZE);
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(r() * 256);
    assert.equal(io.decodeStatx(b), io.decodeStatxLayout(b));
    // a view at an offset into a larger ArrayBuffer decodes the same
    const big = new Uint8Array(io.STATX_SIZE + 24);
    big.set(b, 24);
    assert.equal(io.decodeStatx(big.subarray(24)), io.decodeStatxLayout(b));
  }
  const ones = Buffer.alloc(io.STATX_SIZE, 0xff);
  assert.equal(io.decodeStatx(ones), io.decodeStatxLayout(ones));
  assert.is(io.decodeStatx(ones).stx_ino, U64_MAX);
  const short = Buffer.alloc(io.STATX_SIZE - 1);
  assert.instance(errorOf(() => io.decodeStatx(short)), KernelOutputError);
  assert.is(errorOf(() => io.decodeStatx(short))?.message, errorOf(() => io.decodeStatxLayout(short))?.message);
});

test('loop_config / loop_info64 with zero and missing u64s (skipped over the one zero fill) = the reference; a number 0 is still refused', () => {
  const r = rng(0x10c0);
  const keys = ['lo_device', 'lo_inode', 'lo_rdevice', 'lo_offset', 'lo_sizelimit'] as const;
  for (let i = 0; i < 300; i++) {
    const info: Partial<io.RawLoopInfo64> = { lo_flags: u32(r), lo_file_name: randomString(r, 63) };
    for (const k of keys) {
      const pick = Math.floor(r() * 3);
      if (pick === 1) info[k] = 0n;
      else if (pick === 2) info[k] = u64(r);
    }
    const cfg = { fd: u32(r), block_size: u32(r), info };
    const fast = io.encodeLoopConfig(cfg, Buffer.alloc(304, 0x5a));
    const ref = io.encodeStruct(io.LoopConfigLayout, { ...cfg, info: io.loopInfo64(info) }, Buffer.alloc(304, 0x5a), 0);
    assert.ok(fast.equals(ref), `case ${i}`);
    assert.ok(io.encodeLoopInfo64(info, Buffer.alloc(240, 0x5a), 8).equals(io.encodeStruct(io.LoopInfo64Layout, io.loopInfo64(info), Buffer.alloc(240, 0x5a), 8)));
  }
  for (const k of keys) {
    const bad = { [k]: 0 } as unknown as Partial<io.RawLoopInfo64>;
    const ef = errorOf(() => io.encodeLoopConfig({ fd: 3, info: bad }));
    const er = errorOf(() => io.encodeStruct(io.LoopInfo64Layout, io.loopInfo64(bad)));
    assert.instance(ef, InvalidArgumentError, k);
    assert.is(ef?.message, er?.message);
  }
});

test('statx: statResultFromStatx = statxToStatResult(decodeStatx) (random bytes, majors past 12 bits, all-ones, short buffer error)', () => {
  const r = rng(0x57a8);
  for (let i = 0; i < 300; i++) {
    const b = Buffer.alloc(io.STATX_SIZE);
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(r() * 256);
    // Every third buffer with kernel-valid device numbers (the number-arithmetic makedev path).
    if (i % 3 === 0) {
      for (const off of [128, 136]) {
        b.writeUInt32LE(Math.floor(r() * 0x1000), off);
        b.writeUInt32LE(Math.floor(r() * 0x100000), off + 4);
      }
    }
    assert.equal(io.statResultFromStatx(b), io.statxToStatResult(io.decodeStatx(b)));
  }
  const ones = Buffer.alloc(io.STATX_SIZE, 0xff);
  assert.equal(io.statResultFromStatx(ones), io.statxToStatResult(io.decodeStatx(ones)));
  const short = Buffer.alloc(io.STATX_SIZE - 1);
  assert.instance(errorOf(() => io.statResultFromStatx(short)), KernelOutputError);
  assert.is(errorOf(() => io.statResultFromStatx(short))?.message, errorOf(() => io.decodeStatx(short))?.message);
});

test('makedev: the 32-bit number path = the BigInt formula of sys/sysmacros.h (random and edge numbers)', () => {
  const glibc = (ma: number, mi: number): bigint => {
    const a = BigInt(ma);
    const b = BigInt(mi);
    return ((a & 0xfffn) << 8n) | ((a & ~0xfffn) << 32n) | (b & 0xffn) | ((b & ~0xffn) << 12n);
  };
  const r = rng(0xde7);
  const cases: [number, number][] = [[0, 0], [0xfff, 0xfffff], [0xfff, 0], [0, 0xfffff], [7, 255], [7, 256], [0x1000, 0], [0, 0x100000], [0xffffffff, 0xffffffff]];
  for (let i = 0; i < 2000; i++) cases.push([Math.floor(r() * 0x1000), Math.floor(r() * 0x100000)], [u32(r), u32(r)]);
  for (const [ma, mi] of cases) assert.is(io.makedev(ma, mi), glibc(ma, mi), `${ma}:${mi}`);
});

test.run();
