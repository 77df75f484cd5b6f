// SPDX-License-Identifier: MIT
// Mirrors include/uapi/linux/loop.h: loop and loop-control ioctl numbers, LO_FLAGS_* and the
// structs loop_info64 (232 bytes) and loop_config (304 bytes). Kernel side: drivers/block/loop.c.
import { u32 } from './buffer-layout.js';
import {
  U64,
  asBuffer,
  charArrayField,
  charArray,
  decodeStruct,
  defineStruct,
  encodeFailure,
  encodeStruct,
  fieldOffset,
  pad,
  shortStructError,
  u64,
} from './layout.js';

/** `LO_NAME_SIZE`: size of lo_file_name / lo_crypt_name (63 bytes + NUL). */
export const LO_NAME_SIZE = 64;
/** `LO_KEY_SIZE`: size of lo_encrypt_key. */
export const LO_KEY_SIZE = 32;

/** The loop device is read-only. Settable only by LOOP_CONFIGURE (SET_STATUS64 ignores it). */
export const LO_FLAGS_READ_ONLY = 1;
/** Detach automatically when the last opener closes the device. */
export const LO_FLAGS_AUTOCLEAR = 4;
/** Scan for partitions. */
export const LO_FLAGS_PARTSCAN = 8;
/** Use direct I/O on the backing file. */
export const LO_FLAGS_DIRECT_IO = 16;

/** `LOOP_SET_STATUS_SETTABLE_FLAGS` = AUTOCLEAR | PARTSCAN (0x0c). */
export const LOOP_SET_STATUS_SETTABLE_FLAGS = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN;
/** `LOOP_SET_STATUS_CLEARABLE_FLAGS` = AUTOCLEAR (0x04). */
export const LOOP_SET_STATUS_CLEARABLE_FLAGS = LO_FLAGS_AUTOCLEAR;
/** `LOOP_CONFIGURE_SETTABLE_FLAGS` = READ_ONLY | AUTOCLEAR | PARTSCAN | DIRECT_IO (0x1d). Other bits → EINVAL. */
export const LOOP_CONFIGURE_SETTABLE_FLAGS = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | LO_FLAGS_DIRECT_IO;

/** `LO_CRYPT_NONE`: the only encryption type current kernels accept. */
export const LO_CRYPT_NONE = 0;

// Request numbers: plain numbers in loop.h (not _IO-encoded), identical on every architecture.
/** Bind a backing fd (passed by value). */
export const LOOP_SET_FD = 0x4c00;
/** Unbind (arg 0). With other openers: sets AUTOCLEAR and returns 0 (lazy detach). */
export const LOOP_CLR_FD = 0x4c01;
/** Legacy `struct loop_info` (avoid). */
export const LOOP_SET_STATUS = 0x4c02;
/** Legacy `struct loop_info` (avoid). */
export const LOOP_GET_STATUS = 0x4c03;
/** Set status from a `struct loop_info64 *`. */
export const LOOP_SET_STATUS64 = 0x4c04;
/** Read status into a `struct loop_info64 *`. Unbound → ENXIO. */
export const LOOP_GET_STATUS64 = 0x4c05;
/** Replace the backing fd (read-only loops only). */
export const LOOP_CHANGE_FD = 0x4c06;
/** Re-read the backing file size. */
export const LOOP_SET_CAPACITY = 0x4c07;
/** Enable/disable direct I/O (0/1 by value). */
export const LOOP_SET_DIRECT_IO = 0x4c08;
/** Logical block size by value. */
export const LOOP_SET_BLOCK_SIZE = 0x4c09;
/** Atomic bind + configure from a `struct loop_config *` (Linux ≥ 5.8). */
export const LOOP_CONFIGURE = 0x4c0a;
/** On /dev/loop-control: create loopN (index by value); returns N; exists → EEXIST. */
export const LOOP_CTL_ADD = 0x4c80;
/** On /dev/loop-control: delete loopN; bound/open → EBUSY, missing → ENODEV. */
export const LOOP_CTL_REMOVE = 0x4c81;
/** On /dev/loop-control: index of a free loop device (created if needed). Reserves nothing. */
export const LOOP_CTL_GET_FREE = 0x4c82;

/** C names of the loop requests, by number (for error messages). */
export const LOOP_REQUEST_NAMES: ReadonlyMap<number, string> = new Map([
  [LOOP_SET_FD, 'LOOP_SET_FD'],
  [LOOP_CLR_FD, 'LOOP_CLR_FD'],
  [LOOP_SET_STATUS, 'LOOP_SET_STATUS'],
  [LOOP_GET_STATUS, 'LOOP_GET_STATUS'],
  [LOOP_SET_STATUS64, 'LOOP_SET_STATUS64'],
  [LOOP_GET_STATUS64, 'LOOP_GET_STATUS64'],
  [LOOP_CHANGE_FD, 'LOOP_CHANGE_FD'],
  [LOOP_SET_CAPACITY, 'LOOP_SET_CAPACITY'],
  [LOOP_SET_DIRECT_IO, 'LOOP_SET_DIRECT_IO'],
  [LOOP_SET_BLOCK_SIZE, 'LOOP_SET_BLOCK_SIZE'],
  [LOOP_CONFIGURE, 'LOOP_CONFIGURE'],
  [LOOP_CTL_ADD, 'LOOP_CTL_ADD'],
  [LOOP_CTL_REMOVE, 'LOOP_CTL_REMOVE'],
  [LOOP_CTL_GET_FREE, 'LOOP_CTL_GET_FREE'],
]);

/**
 * `struct loop_info64`. lo_crypt_name, lo_encrypt_key and lo_init[2] are unused by current
 * kernels: they are encoded as zeros and not decoded.
 */
export interface RawLoopInfo64 {
  /** out: st_dev of the backing file (huge encoding). */
  lo_device: bigint;
  /** out: inode of the backing file. */
  lo_inode: bigint;
  /** out: st_rdev of the backing file (0 for regular files). */
  lo_rdevice: bigint;
  /** Byte offset into the backing file. */
  lo_offset: bigint;
  /** Bytes to use, 0 = to the end of the file. */
  lo_sizelimit: bigint;
  /** out: N of /dev/loopN. */
  lo_number: number;
  /** Must be LO_CRYPT_NONE. */
  lo_encrypt_type: number;
  /** Must be 0. */
  lo_encrypt_key_size: number;
  /** LO_FLAGS_*. */
  lo_flags: number;
  /** Informational name (≤ 63 bytes; util-linux stores the backing path). */
  lo_file_name: string;
}

/** buffer-layout of `struct loop_info64`. */
export const LoopInfo64Layout = defineStruct<RawLoopInfo64>(
  'loop_info64',
  [
    u64('lo_device'),
    u64('lo_inode'),
    u64('lo_rdevice'),
    u64('lo_offset'),
    u64('lo_sizelimit'),
    u32('lo_number'),
    u32('lo_encrypt_type'),
    u32('lo_encrypt_key_size'),
    u32('lo_flags'),
    charArray(LO_NAME_SIZE, 'lo_file_name', 'loop_info64.lo_file_name'),
    pad(LO_NAME_SIZE, 'lo_crypt_name'),
    pad(LO_KEY_SIZE, 'lo_encrypt_key'),
    pad(16, 'lo_init'),
  ],
  232,
);
/** `sizeof(struct loop_info64)` = 232. */
export const LOOP_INFO64_SIZE = LoopInfo64Layout.span;

/** Defaults for a loop_info64: all zero, empty name. */
export function loopInfo64(fields: Partial<RawLoopInfo64> = {}): RawLoopInfo64 {
  return {
    lo_device: 0n,
    lo_inode: 0n,
    lo_rdevice: 0n,
    lo_offset: 0n,
    lo_sizelimit: 0n,
    lo_number: 0,
    lo_encrypt_type: LO_CRYPT_NONE,
    lo_encrypt_key_size: 0,
    lo_flags: 0,
    lo_file_name: '',
    ...fields,
  };
}

// Fast path (as for dm_ioctl in dm-ioctl.ts): fixed offsets taken once from LoopInfo64Layout, so
// the ABI tests that pin the layout pin these too; the name goes through the layout's CharArray.
// The buffer-layout path stays as the reference (encodeStruct/decodeStruct with the layouts), and
// test/unit/ioctl/fast-path.test.ts checks that both agree byte for byte.
const I_DEVICE = fieldOffset(LoopInfo64Layout, 'lo_device');
const I_INODE = fieldOffset(LoopInfo64Layout, 'lo_inode');
const I_RDEVICE = fieldOffset(LoopInfo64Layout, 'lo_rdevice');
const I_OFFSET = fieldOffset(LoopInfo64Layout, 'lo_offset');
const I_SIZELIMIT = fieldOffset(LoopInfo64Layout, 'lo_sizelimit');
const I_NUMBER = fieldOffset(LoopInfo64Layout, 'lo_number');
const I_ENCRYPT_TYPE = fieldOffset(LoopInfo64Layout, 'lo_encrypt_type');
const I_ENCRYPT_KEY_SIZE = fieldOffset(LoopInfo64Layout, 'lo_encrypt_key_size');
const I_FLAGS = fieldOffset(LoopInfo64Layout, 'lo_flags');
const I_FILE_NAME = fieldOffset(LoopInfo64Layout, 'lo_file_name');
const I_FILE_NAME_FIELD = charArrayField(LoopInfo64Layout, 'lo_file_name');
// One U64 per field: its error names the field, as the layout's own u64 fields do.
const I_DEVICE_U64 = new U64('lo_device');
const I_INODE_U64 = new U64('lo_inode');
const I_RDEVICE_U64 = new U64('lo_rdevice');
const I_OFFSET_U64 = new U64('lo_offset');
const I_SIZELIMIT_U64 = new U64('lo_sizelimit');

/** A u64 field into a buffer already zeroed there: a missing or 0n value writes nothing. */
function writeU64Zeroed(field: U64, v: bigint | undefined, b: Buffer, o: number): void {
  // `0 === 0n` is false: a number (or any other wrong type) still reaches encode and its error.
  if (v === undefined || v === 0n) return;
  field.encode(v, b, o);
}

/**
 * Writes a loop_info64 at `o`. `zeroed`: the caller has just zero-filled these 232 bytes (as
 * encodeLoopConfig does for its 304 in one call), so the fill here and zero u64s are skipped: a
 * LOOP_CONFIGURE encode was ~0.7 µs hot and 6 µs cold natively, mostly per-field native calls.
 */
function writeLoopInfo64(info: Partial<RawLoopInfo64>, b: Buffer, o: number, zeroed = false): void {
  if (!zeroed) b.fill(0, o, o + LOOP_INFO64_SIZE);
  writeU64Zeroed(I_DEVICE_U64, info.lo_device, b, o + I_DEVICE);
  writeU64Zeroed(I_INODE_U64, info.lo_inode, b, o + I_INODE);
  writeU64Zeroed(I_RDEVICE_U64, info.lo_rdevice, b, o + I_RDEVICE);
  writeU64Zeroed(I_OFFSET_U64, info.lo_offset, b, o + I_OFFSET);
  writeU64Zeroed(I_SIZELIMIT_U64, info.lo_sizelimit, b, o + I_SIZELIMIT);
  b.writeUInt32LE(info.lo_number ?? 0, o + I_NUMBER);
  b.writeUInt32LE(info.lo_encrypt_type ?? LO_CRYPT_NONE, o + I_ENCRYPT_TYPE);
  b.writeUInt32LE(info.lo_encrypt_key_size ?? 0, o + I_ENCRYPT_KEY_SIZE);
  b.writeUInt32LE(info.lo_flags ?? 0, o + I_FLAGS);
  // The pads after the name (lo_crypt_name, lo_encrypt_key, lo_init) stay as zeroed above.
  I_FILE_NAME_FIELD.writeTo(b, o + I_FILE_NAME, info.lo_file_name ?? '');
}

/** Encodes a loop_info64 (missing fields zero). @throws InvalidArgumentError (e.g. lo_file_name > 63 bytes). */
export function encodeLoopInfo64(info: Partial<RawLoopInfo64>, buf?: Buffer, offset = 0): Buffer {
  const out = buf ?? Buffer.alloc(LOOP_INFO64_SIZE);
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < LOOP_INFO64_SIZE) {
    return encodeStruct(LoopInfo64Layout, loopInfo64(info), out, offset); // its typed error
  }
  try {
    writeLoopInfo64(info, out, offset);
  } catch (err) {
    throw encodeFailure(LoopInfo64Layout, err);
  }
  return out;
}
/** Decodes a loop_info64 (LOOP_GET_STATUS64 output). @throws KernelOutputError when too short. */
export function decodeLoopInfo64(buf: Uint8Array, offset = 0): RawLoopInfo64 {
  if (!Number.isInteger(offset) || offset < 0 || buf.length - offset < LOOP_INFO64_SIZE) {
    throw shortStructError(LoopInfo64Layout, buf, offset);
  }
  const b = asBuffer(buf);
  return {
    lo_device: b.readBigUInt64LE(offset + I_DEVICE),
    lo_inode: b.readBigUInt64LE(offset + I_INODE),
    lo_rdevice: b.readBigUInt64LE(offset + I_RDEVICE),
    lo_offset: b.readBigUInt64LE(offset + I_OFFSET),
    lo_sizelimit: b.readBigUInt64LE(offset + I_SIZELIMIT),
    lo_number: b.readUInt32LE(offset + I_NUMBER),
    lo_encrypt_type: b.readUInt32LE(offset + I_ENCRYPT_TYPE),
    lo_encrypt_key_size: b.readUInt32LE(offset + I_ENCRYPT_KEY_SIZE),
    lo_flags: b.readUInt32LE(offset + I_FLAGS),
    lo_file_name: I_FILE_NAME_FIELD.readFrom(b, offset + I_FILE_NAME),
  };
}

/** `struct loop_config` (LOOP_CONFIGURE). `__reserved[8]` is always zero. */
export interface RawLoopConfig {
  /** Backing file descriptor. */
  fd: number;
  /** Logical block size; 0 = default (512). */
  block_size: number;
  info: RawLoopInfo64;
}
/** buffer-layout of `struct loop_config`. */
export const LoopConfigLayout = defineStruct<RawLoopConfig>(
  'loop_config',
  [u32('fd'), u32('block_size'), LoopInfo64Layout.replicate('info'), pad(64, '__reserved')],
  304,
);
/** `sizeof(struct loop_config)` = 304. */
export const LOOP_CONFIG_SIZE = LoopConfigLayout.span;

const C_FD = fieldOffset(LoopConfigLayout, 'fd');
const C_BLOCK_SIZE = fieldOffset(LoopConfigLayout, 'block_size');
const C_INFO = fieldOffset(LoopConfigLayout, 'info');

/** Encodes a loop_config. @throws InvalidArgumentError */
export function encodeLoopConfig(cfg: { fd: number; block_size?: number; info?: Partial<RawLoopInfo64> }, buf?: Buffer): Buffer {
  const out = buf ?? Buffer.alloc(LOOP_CONFIG_SIZE);
  if (out.length < LOOP_CONFIG_SIZE) {
    return encodeStruct(LoopConfigLayout, { fd: cfg.fd, block_size: cfg.block_size ?? 0, info: loopInfo64(cfg.info) }, out, 0);
  }
  try {
    // One fill for the whole struct (info's pads and __reserved included), then the fields.
    out.fill(0, 0, LOOP_CONFIG_SIZE);
    out.writeUInt32LE(cfg.fd, C_FD);
    out.writeUInt32LE(cfg.block_size ?? 0, C_BLOCK_SIZE);
    writeLoopInfo64(cfg.info ?? {}, out, C_INFO, true);
  } catch (err) {
    throw encodeFailure(LoopConfigLayout, err);
  }
  return out;
}
/** Decodes a loop_config (what a fake kernel receives). */
export function decodeLoopConfig(buf: Uint8Array, offset = 0): RawLoopConfig {
  return decodeStruct(LoopConfigLayout, buf, offset);
}

