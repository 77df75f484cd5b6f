// SPDX-License-Identifier: MIT
// Device numbers: the kernel's "huge" encoding (include/linux/kdev_t.h) used inside ioctl
// structs, and glibc's dev_t (sys/sysmacros.h) used by stat(2) and mknod(2).
//
// JS caveat: an encoded number can reach 0xffffffff, past the int32 range of JS bit operators.
// Every shift here is `>>>` (unsigned) and every result ends with `>>> 0`; glibc's 64-bit dev_t
// is handled as bigint.
import { InvalidArgumentError } from '../errors.js';

/** Largest major the kernel can hand out (12 bits, MINORBITS = 20 in kdev_t.h). */
export const MAX_MAJOR = 0xfff;
/** Largest minor the kernel can hand out (20 bits). */
export const MAX_MINOR = 0xfffff;

/** A device number split into its parts. */
export interface DevParts {
  readonly major: number;
  readonly minor: number;
}

function checkPart(what: 'major' | 'minor', value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidArgumentError('device number', [
      { path: `/${what}`, message: `must be an integer in 0..${max}`, value },
    ]);
  }
}

/**
 * `huge_encode_dev(MKDEV(major, minor))` — the encoding in `dm_ioctl.dev`, `dm_name_list.dev`,
 * `dm_target_deps.dev[]` and `loop_info64.lo_device`/`lo_rdevice`. Identical to
 * `new_encode_dev`: `(minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)`, a 32-bit value
 * carried in a u64. Example: 253:0 → 0xfd00n, 253:300 → 0x10fd2cn.
 * @throws InvalidArgumentError when major > 4095 or minor > 1048575 (the kernel cannot represent them).
 */
export function huge_encode_dev(major: number, minor: number): bigint {
  checkPart('major', major, MAX_MAJOR);
  checkPart('minor', minor, MAX_MINOR);
  return BigInt(((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0);
}

/**
 * `huge_decode_dev`: the inverse of {@link huge_encode_dev}. Like the kernel (`new_decode_dev`
 * takes a u32), only the low 32 bits are looked at.
 */
export function huge_decode_dev(dev: bigint): DevParts {
  const n = Number(BigInt.asUintN(32, dev));
  return { major: (n >>> 8) & 0xfff, minor: ((n & 0xff) | ((n >>> 12) & 0xfff00)) >>> 0 };
}

/**
 * glibc `makedev(major, minor)` → 64-bit dev_t (what `st_rdev` and `mknod` use):
 * `((major & 0xfff) << 8) | ((major & ~0xfff) << 32) | (minor & 0xff) | ((minor & ~0xff) << 12)`.
 * For every number the kernel can produce (major ≤ 4095, minor ≤ 1048575) this is bit-identical
 * to {@link huge_encode_dev}, so `st_rdev` can be compared with `dm_ioctl.dev` directly.
 * major and minor are unsigned 32-bit values.
 */
export function makedev(major: number, minor: number): bigint {
  checkPart('major', major, 0xffffffff);
  checkPart('minor', minor, 0xffffffff);
  // Kernel-valid numbers (every statx st_dev/st_rdev on Linux) fit 32 bits: number arithmetic and
  // one BigInt, several times cheaper than the eight BigInt operations below (four stats per loop
  // attach decode two device numbers each).
  if (major <= MAX_MAJOR && minor <= MAX_MINOR) return BigInt(((minor & 0xff) | (major << 8) | ((minor & 0xfff00) << 12)) >>> 0);
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/**
 * glibc `major()`/`minor()` of the 64-bit dev_t whose low and high 32 bits are `lo` and `hi`
 * (unsigned), without a BigInt: for decoders that read a u64 device number as two u32 halves.
 */
export function devPartsFromU32(lo: number, hi: number): DevParts {
  return { major: majorU32(lo, hi), minor: minorU32(lo, hi) };
}

/** glibc `major()` of a dev_t given as its two u32 halves. */
function majorU32(lo: number, hi: number): number {
  return (((lo >>> 8) & 0xfff) | (hi & 0xfffff000)) >>> 0;
}

/** glibc `minor()` of a dev_t given as its two u32 halves. */
function minorU32(lo: number, hi: number): number {
  return ((lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)) >>> 0;
}

/** glibc `major(dev)` for a 64-bit dev_t. */
export function major(dev: bigint): number {
  // Every device number the kernel hands out fits 32 bits (huge_encode_dev): plain number
  // arithmetic then, which is several times cheaper than BigInt shifts (listDevices decodes one
  // per device).
  if (dev >= 0n && dev <= 0xffffffffn) return majorU32(Number(dev), 0);
  const d = BigInt.asUintN(64, dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n));
}

/** glibc `minor(dev)` for a 64-bit dev_t. */
export function minor(dev: bigint): number {
  if (dev >= 0n && dev <= 0xffffffffn) return minorU32(Number(dev), 0);
  const d = BigInt.asUintN(64, dev);
  return Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n));
}

/** Formats a dev_t (either encoding, for kernel-valid numbers) the way the kernel prints it: "253:0". */
export function formatDev(dev: bigint): string {
  return `${major(dev)}:${minor(dev)}`;
}
