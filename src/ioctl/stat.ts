// SPDX-License-Identifier: MIT
// Mirrors struct statx from include/uapi/linux/stat.h (256 bytes, identical on every
// architecture — the reason this library uses statx(2) rather than hand-laying the per-arch
// `struct stat`), plus the S_IF* file type bits and AT_* flags it needs.
import { u16, u32 } from './buffer-layout.js';
import type { StatResult } from './syscalls.js';
import { makedev } from './kdev.js';
import { asBuffer, decodeStruct, defineStruct, fieldOffset, pad, u64 } from './layout.js';

/** `AT_FDCWD`: resolve relative paths against the working directory. */
export const AT_FDCWD = -100;
/** `AT_SYMLINK_NOFOLLOW`. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** `AT_EMPTY_PATH`: with path "", operate on the dirfd itself (fstat). */
export const AT_EMPTY_PATH = 0x1000;
/** `STATX_BASIC_STATS`: everything `struct stat` has. */
export const STATX_BASIC_STATS = 0x7ff;

/** `S_IFMT`: file type mask of st_mode. */
export const S_IFMT = 0o170000;
/** `S_IFBLK`: block device. */
export const S_IFBLK = 0o060000;
/** `S_IFCHR`: character device. */
export const S_IFCHR = 0o020000;
/** `S_IFDIR`: directory. */
export const S_IFDIR = 0o040000;
/** `S_IFREG`: regular file. */
export const S_IFREG = 0o100000;
/** `S_IFLNK`: symbolic link. */
export const S_IFLNK = 0o120000;
/** `S_IFIFO`: FIFO. */
export const S_IFIFO = 0o010000;
/** `S_IFSOCK`: socket. */
export const S_IFSOCK = 0o140000;

/** The statx fields this library reads (timestamps and spare space are padding here). */
export interface RawStatx {
  stx_mask: number;
  stx_blksize: number;
  stx_attributes: bigint;
  stx_nlink: number;
  stx_uid: number;
  stx_gid: number;
  stx_mode: number;
  stx_ino: bigint;
  stx_size: bigint;
  stx_blocks: bigint;
  stx_attributes_mask: bigint;
  stx_rdev_major: number;
  stx_rdev_minor: number;
  stx_dev_major: number;
  stx_dev_minor: number;
}

/** buffer-layout of `struct statx`. */
export const StatxLayout = defineStruct<RawStatx>(
  'statx',
  [
    u32('stx_mask'),
    u32('stx_blksize'),
    u64('stx_attributes'),
    u32('stx_nlink'),
    u32('stx_uid'),
    u32('stx_gid'),
    u16('stx_mode'),
    pad(2, '__spare0'),
    u64('stx_ino'),
    u64('stx_size'),
    u64('stx_blocks'),
    u64('stx_attributes_mask'),
    pad(64, '_timestamps'), // stx_atime, stx_btime, stx_ctime, stx_mtime: 4 × struct statx_timestamp (16)
    u32('stx_rdev_major'),
    u32('stx_rdev_minor'),
    u32('stx_dev_major'),
    u32('stx_dev_minor'),
    pad(112, '_rest'), // stx_mnt_id, stx_dio_*_align, __spare3[] — not used here
  ],
  256,
);
/** `sizeof(struct statx)` = 256. */
export const STATX_SIZE = StatxLayout.span;

// Fast path: direct reads at the layout's offsets. The buffer-layout decode (a Buffer per field,
// then the pads stripped) made every stat cost ~0.5 ms in the TCG guest, and a loop attach makes
// four. decodeStatxLayout stays as the reference the unit tests compare against.
const X_MASK = fieldOffset(StatxLayout, 'stx_mask');
const X_BLKSIZE = fieldOffset(StatxLayout, 'stx_blksize');
const X_ATTRIBUTES = fieldOffset(StatxLayout, 'stx_attributes');
const X_NLINK = fieldOffset(StatxLayout, 'stx_nlink');
const X_UID = fieldOffset(StatxLayout, 'stx_uid');
const X_GID = fieldOffset(StatxLayout, 'stx_gid');
const X_MODE = fieldOffset(StatxLayout, 'stx_mode');
const X_INO = fieldOffset(StatxLayout, 'stx_ino');
const X_SIZE = fieldOffset(StatxLayout, 'stx_size');
const X_BLOCKS = fieldOffset(StatxLayout, 'stx_blocks');
const X_ATTRIBUTES_MASK = fieldOffset(StatxLayout, 'stx_attributes_mask');
const X_RDEV_MAJOR = fieldOffset(StatxLayout, 'stx_rdev_major');
const X_RDEV_MINOR = fieldOffset(StatxLayout, 'stx_rdev_minor');
const X_DEV_MAJOR = fieldOffset(StatxLayout, 'stx_dev_major');
const X_DEV_MINOR = fieldOffset(StatxLayout, 'stx_dev_minor');

/** Decodes a `struct statx`. @throws KernelOutputError when `buf` is shorter than 256 bytes. */
export function decodeStatx(buf: Uint8Array): RawStatx {
  if (buf.length < STATX_SIZE) return decodeStatxLayout(buf); // its typed error
  const b = asBuffer(buf);
  return {
    stx_mask: b.readUInt32LE(X_MASK),
    stx_blksize: b.readUInt32LE(X_BLKSIZE),
    stx_attributes: b.readBigUInt64LE(X_ATTRIBUTES),
    stx_nlink: b.readUInt32LE(X_NLINK),
    stx_uid: b.readUInt32LE(X_UID),
    stx_gid: b.readUInt32LE(X_GID),
    stx_mode: b.readUInt16LE(X_MODE),
    stx_ino: b.readBigUInt64LE(X_INO),
    stx_size: b.readBigUInt64LE(X_SIZE),
    stx_blocks: b.readBigUInt64LE(X_BLOCKS),
    stx_attributes_mask: b.readBigUInt64LE(X_ATTRIBUTES_MASK),
    stx_rdev_major: b.readUInt32LE(X_RDEV_MAJOR),
    stx_rdev_minor: b.readUInt32LE(X_RDEV_MINOR),
    stx_dev_major: b.readUInt32LE(X_DEV_MAJOR),
    stx_dev_minor: b.readUInt32LE(X_DEV_MINOR),
  };
}

/** The buffer-layout decode of `struct statx` (the reference for {@link decodeStatx}). */
export function decodeStatxLayout(buf: Uint8Array): RawStatx {
  return decodeStruct(StatxLayout, buf, 0);
}

/** Converts statx output to the `StatResult` of the Syscalls seam (glibc dev_t for dev/rdev). */
export function statxToStatResult(s: RawStatx): StatResult {
  return {
    dev: makedev(s.stx_dev_major, s.stx_dev_minor),
    ino: s.stx_ino,
    rdev: makedev(s.stx_rdev_major, s.stx_rdev_minor),
    mode: s.stx_mode,
    size: s.stx_size,
    blocks: s.stx_blocks,
  };
}

/**
 * `statxToStatResult(decodeStatx(buf))` without the intermediate record: reads only the fields a
 * `StatResult` has (three BigInts instead of five, no object in between). What the real seam's
 * stat/fstat/lstat return; the unit tests compare it with the two-step decode.
 * @throws KernelOutputError when `buf` is shorter than 256 bytes.
 */
export function statResultFromStatx(buf: Uint8Array): StatResult {
  if (buf.length < STATX_SIZE) return statxToStatResult(decodeStatxLayout(buf)); // its typed error
  const b = asBuffer(buf);
  return {
    dev: makedev(b.readUInt32LE(X_DEV_MAJOR), b.readUInt32LE(X_DEV_MINOR)),
    ino: b.readBigUInt64LE(X_INO),
    rdev: makedev(b.readUInt32LE(X_RDEV_MAJOR), b.readUInt32LE(X_RDEV_MINOR)),
    mode: b.readUInt16LE(X_MODE),
    size: b.readBigUInt64LE(X_SIZE),
    blocks: b.readBigUInt64LE(X_BLOCKS),
  };
}
