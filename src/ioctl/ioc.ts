// SPDX-License-Identifier: MIT
// Mirrors include/uapi/asm-generic/ioctl.h: how an ioctl request number is built.
//
// This is the layout used by x86_64, arm64, riscv and most other Linux architectures. powerpc,
// mips, sparc and alpha use a different split of the dir/size bits; this library does not
// support them (request numbers would be wrong there).

/** Bits of the command number (the `nr` in _IOWR(type, nr, size)). */
export const _IOC_NRBITS = 8;
/** Bits of the type ("magic") byte, e.g. 0xfd for device-mapper, 0x12 for block ioctls. */
export const _IOC_TYPEBITS = 8;
/** Bits of the argument size field. */
export const _IOC_SIZEBITS = 14;
/** Bits of the direction field. */
export const _IOC_DIRBITS = 2;

export const _IOC_NRSHIFT = 0;
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;

/** No data transfer. */
export const _IOC_NONE = 0;
/** Userspace writes, the kernel reads (from the kernel's point of view: "write to the kernel"). */
export const _IOC_WRITE = 1;
/** The kernel writes, userspace reads. */
export const _IOC_READ = 2;

function field(name: string, value: number, bits: number): number {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    // A programming error in a constant table, never user input: a plain RangeError is right.
    throw new RangeError(`_IOC: ${name}=${value} does not fit in ${bits} bits`);
  }
  return value;
}

/**
 * `_IOC(dir, type, nr, size)`. Returns the request as an **unsigned** 32-bit number: with dir=3
 * the top bit is set, and JS `<<` would make it negative, hence the final `>>> 0`.
 * (The kernel's ioctl syscall takes the command as `unsigned int`; glibc's prototype says
 * `unsigned long`, whose upper 32 bits the kernel ignores.)
 */
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  return (
    ((field('dir', dir, _IOC_DIRBITS) << _IOC_DIRSHIFT) |
      (field('size', size, _IOC_SIZEBITS) << _IOC_SIZESHIFT) |
      (field('type', type, _IOC_TYPEBITS) << _IOC_TYPESHIFT) |
      (field('nr', nr, _IOC_NRBITS) << _IOC_NRSHIFT)) >>>
    0
  );
}

/** `_IO(type, nr)`: no argument data. */
export function _IO(type: number, nr: number): number {
  return _IOC(_IOC_NONE, type, nr, 0);
}

/** `_IOR(type, nr, sizeof(T))`: the kernel writes `size` bytes to the argument. */
export function _IOR(type: number, nr: number, size: number): number {
  return _IOC(_IOC_READ, type, nr, size);
}

/** `_IOW(type, nr, sizeof(T))`: the kernel reads `size` bytes from the argument. */
export function _IOW(type: number, nr: number, size: number): number {
  return _IOC(_IOC_WRITE, type, nr, size);
}

/** `_IOWR(type, nr, sizeof(T))`: both directions. */
export function _IOWR(type: number, nr: number, size: number): number {
  return _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);
}

/** `_IOC_DIR(nr)`. */
export const _IOC_DIR = (req: number): number => (req >>> _IOC_DIRSHIFT) & ((1 << _IOC_DIRBITS) - 1);
/** `_IOC_TYPE(nr)`. */
export const _IOC_TYPE = (req: number): number => (req >>> _IOC_TYPESHIFT) & ((1 << _IOC_TYPEBITS) - 1);
/** `_IOC_NR(nr)`. */
export const _IOC_NR = (req: number): number => (req >>> _IOC_NRSHIFT) & ((1 << _IOC_NRBITS) - 1);
/** `_IOC_SIZE(nr)`. */
export const _IOC_SIZE = (req: number): number => (req >>> _IOC_SIZESHIFT) & ((1 << _IOC_SIZEBITS) - 1);
