// SPDX-License-Identifier: MIT
// Mirrors the block-device ioctls of include/uapi/linux/fs.h (type 0x12), x86_64/LP64 sizes.
// Kernel side: block/ioctl.c.
import { InvalidArgumentError, KernelOutputError } from '../errors.js';
import { _IO, _IOR } from './ioc.js';
import { U64_MAX, hexSnippet } from './layout.js';

/** sizeof(size_t) on LP64; BLKGETSIZE64/BLKBSZGET encode it into the request number. */
const SIZEOF_SIZE_T = 8;

/** Logical sector size (`int *`). */
export const BLKSSZGET = _IO(0x12, 104);
/** Flush and invalidate the bdev page cache (arg ignored). Needs CAP_SYS_ADMIN (else EACCES). */
export const BLKFLSBUF = _IO(0x12, 97);
/** Read-only flag (`int *`). */
export const BLKROGET = _IO(0x12, 94);
/** Set read-only flag (`const int *`). */
export const BLKROSET = _IO(0x12, 93);
/** Re-read the partition table. */
export const BLKRRPART = _IO(0x12, 95);
/** Size in 512-byte sectors (`unsigned long *`, legacy). */
export const BLKGETSIZE = _IO(0x12, 96);
/** Soft block size (`int *`, but the request encodes size_t: use an 8-byte buffer). */
export const BLKBSZGET = _IOR(0x12, 112, SIZEOF_SIZE_T);
/** Device size in bytes (`u64 *`): _IOR(0x12,114,size_t) = 0x80081272. */
export const BLKGETSIZE64 = _IOR(0x12, 114, SIZEOF_SIZE_T);
/** Discard a byte range (`u64[2] = {start, len}`); fd must be open for write. */
export const BLKDISCARD = _IO(0x12, 119);
/** Physical block size (`unsigned int *`). */
export const BLKPBSZGET = _IO(0x12, 123);
/** Secure-discard a byte range (`u64[2]`). */
export const BLKSECDISCARD = _IO(0x12, 125);
/** Write zeroes over a byte range (`u64[2]`). */
export const BLKZEROOUT = _IO(0x12, 127);

/** C names of the block requests, by number. */
export const BLK_REQUEST_NAMES: ReadonlyMap<number, string> = new Map([
  [BLKSSZGET, 'BLKSSZGET'],
  [BLKFLSBUF, 'BLKFLSBUF'],
  [BLKROGET, 'BLKROGET'],
  [BLKROSET, 'BLKROSET'],
  [BLKRRPART, 'BLKRRPART'],
  [BLKGETSIZE, 'BLKGETSIZE'],
  [BLKBSZGET, 'BLKBSZGET'],
  [BLKGETSIZE64, 'BLKGETSIZE64'],
  [BLKDISCARD, 'BLKDISCARD'],
  [BLKPBSZGET, 'BLKPBSZGET'],
  [BLKSECDISCARD, 'BLKSECDISCARD'],
  [BLKZEROOUT, 'BLKZEROOUT'],
]);

/** Size of the `u64 range[2]` argument of BLKDISCARD/BLKZEROOUT/BLKSECDISCARD. */
export const BLK_RANGE_SIZE = 16;

/**
 * Encodes `{start, len}` (bytes) for BLKDISCARD/BLKZEROOUT/BLKSECDISCARD. Alignment to the
 * logical block size is checked by the kernel (EINVAL), not here.
 * @throws InvalidArgumentError for negative values, values ≥ 2^64, or start + len overflowing.
 */
export function encodeBlkRange(start: bigint, len: bigint): Buffer {
  const problems = [];
  if (typeof start !== 'bigint' || start < 0n || start > U64_MAX) problems.push({ path: '/start', message: 'must be a bigint in 0..2^64-1', value: start });
  if (typeof len !== 'bigint' || len < 0n || len > U64_MAX) problems.push({ path: '/len', message: 'must be a bigint in 0..2^64-1', value: len });
  if (problems.length === 0 && start + len > U64_MAX) problems.push({ path: '/len', message: 'start + len overflows 64 bits', value: len });
  if (problems.length > 0) throw new InvalidArgumentError('block range', problems);
  const buf = Buffer.alloc(BLK_RANGE_SIZE);
  buf.writeBigUInt64LE(start, 0);
  buf.writeBigUInt64LE(len, 8);
  return buf;
}

/** Reads the u64 a BLKGETSIZE64-style ioctl wrote into an 8-byte buffer. */
export function decodeU64Arg(buf: Uint8Array): bigint {
  if (buf.length < 8) throw new KernelOutputError(`u64 ioctl argument: ${buf.length} bytes, need 8`, hexSnippet(buf, 0, buf.length));
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readBigUInt64LE(0);
}

/** Reads the int a BLKSSZGET-style ioctl wrote into a 4-byte (or larger) buffer. */
export function decodeIntArg(buf: Uint8Array): number {
  if (buf.length < 4) throw new KernelOutputError(`int ioctl argument: ${buf.length} bytes, need 4`, hexSnippet(buf, 0, buf.length));
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readInt32LE(0);
}
