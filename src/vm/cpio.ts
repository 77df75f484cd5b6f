// SPDX-License-Identifier: MIT
// Writes (and, for tests, reads) "newc" cpio archives, the format the kernel unpacks as an initramfs.
// Reference: the kernel's Documentation/driver-api/early-userspace/buffer-format.rst.

/** File-type bits of `mode` (as in <sys/stat.h>). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

/** The magic string that starts every newc header (no CRC variant). */
export const CPIO_NEWC_MAGIC = '070701';
/** A newc header is the magic plus 13 eight-digit hex fields. */
export const CPIO_NEWC_HEADER_SIZE = 110;
/** The name of the record that ends an archive. */
export const CPIO_TRAILER = 'TRAILER!!!';

/** One archive member. `data` is the file body, or the link target for a symlink. */
export interface CpioEntry {
  readonly name: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly nlink?: number;
  readonly mtime?: number;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly rdevmajor?: number;
  readonly rdevminor?: number;
  readonly data?: Uint8Array;
}

/** A decoded member, every header field present. */
export interface DecodedCpioEntry extends Required<CpioEntry> {
  readonly ino: number;
  readonly data: Buffer;
}

function hex8(n: number, field: string): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio ${field} out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Helpers that build common entries. */
export const cpio = {
  dir: (name: string, mode = 0o755): CpioEntry => ({ name, mode: S_IFDIR | mode, nlink: 2 }),
  file: (name: string, data: Uint8Array, mode = 0o644): CpioEntry => ({ name, mode: S_IFREG | mode, data }),
  symlink: (name: string, target: string): CpioEntry => ({ name, mode: S_IFLNK | 0o777, data: Buffer.from(target) }),
  charDev: (name: string, major: number, minor: number, mode = 0o600): CpioEntry => ({
    name,
    mode: S_IFCHR | mode,
    rdevmajor: major,
    rdevminor: minor,
  }),
};

/**
 * Encodes entries as a newc archive ending with the TRAILER!!! record. Inode numbers are assigned
 * sequentially from 1 (hard links are not supported; every file gets its own inode). Names must
 * be relative ("bin/busybox", not "/bin/busybox"), as the kernel and GNU cpio expect.
 */
export function encodeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const emit = (e: CpioEntry, inode: number): void => {
    const name = Buffer.from(e.name + '\0');
    const data = e.data ? Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) : Buffer.alloc(0);
    const header =
      CPIO_NEWC_MAGIC +
      hex8(inode, 'ino') +
      hex8(e.mode, 'mode') +
      hex8(e.uid ?? 0, 'uid') +
      hex8(e.gid ?? 0, 'gid') +
      hex8(e.nlink ?? 1, 'nlink') +
      hex8(e.mtime ?? 0, 'mtime') +
      hex8(data.length, 'filesize') +
      hex8(e.devmajor ?? 0, 'devmajor') +
      hex8(e.devminor ?? 0, 'devminor') +
      hex8(e.rdevmajor ?? 0, 'rdevmajor') +
      hex8(e.rdevminor ?? 0, 'rdevminor') +
      hex8(name.length, 'namesize') +
      hex8(0, 'check');
    parts.push(Buffer.from(header, 'ascii'), name, Buffer.alloc(pad4(CPIO_NEWC_HEADER_SIZE + name.length)));
    parts.push(data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    if (e.name.startsWith('/') || e.name === '' || e.name === CPIO_TRAILER) {
      throw new RangeError(`bad cpio member name: ${JSON.stringify(e.name)}`);
    }
    emit(e, ino++);
  }
  emit({ name: CPIO_TRAILER, mode: 0, nlink: 1 }, 0);
  return Buffer.concat(parts);
}

/** Decodes a newc archive (stops at TRAILER!!!). Used by tests to check the writer. */
export function decodeCpio(buf: Buffer): DecodedCpioEntry[] {
  const out: DecodedCpioEntry[] = [];
  let off = 0;
  for (;;) {
    if (off + CPIO_NEWC_HEADER_SIZE > buf.length) throw new RangeError(`cpio truncated at ${off}`);
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== CPIO_NEWC_MAGIC) throw new RangeError(`bad cpio magic ${JSON.stringify(magic)} at ${off}`);
    const f = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const [ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize] = [
      f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11),
    ] as [number, number, number, number, number, number, number, number, number, number, number, number];
    const nameStart = off + CPIO_NEWC_HEADER_SIZE;
    const name = buf.toString('utf8', nameStart, nameStart + namesize - 1);
    const dataStart = nameStart + namesize + pad4(CPIO_NEWC_HEADER_SIZE + namesize);
    const data = buf.subarray(dataStart, dataStart + filesize);
    off = dataStart + filesize + pad4(filesize);
    if (name === CPIO_TRAILER) return out;
    out.push({ name, ino, mode, uid, gid, nlink, mtime, devmajor, devminor, rdevmajor, rdevminor, data });
  }
}
