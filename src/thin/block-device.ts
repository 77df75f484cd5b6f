// SPDX-License-Identifier: MIT
// The few block-device facts the thin layer needs without ioctls: maj:min ↔ /dev path (sysfs),
// size (sysfs `size`), and reading/zeroing the metadata superblock block with plain node:fs I/O.
import { constants as fsConstants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';
import { parseDevNumber } from './device-ref.js';
import { BlockDeviceBusyError } from './errors.js';

/** Size of one thin metadata block, and of the superblock area that must be zero for a new pool. */
export const METADATA_BLOCK_BYTES = 4096;
/**
 * The most metadata dm-thin uses: 255 × (16384 − 64) blocks of 4 KiB (dm-space-map-metadata.h
 * DM_SM_METADATA_MAX_BLOCKS); a larger metadata device is accepted, the rest ignored.
 */
export const THIN_METADATA_MAX_BYTES = 255n * (16384n - 64n) * BigInt(METADATA_BLOCK_BYTES);

/** A block device as the thin layer sees it. */
export interface BlockDeviceInfo {
  readonly major: number;
  readonly minor: number;
  /** A device node for it (`/dev/<DEVNAME>` from sysfs, or the path the caller gave). */
  readonly path: string;
  /** Current size in bytes (sysfs `size` × 512). */
  readonly sizeBytes: bigint;
}

/**
 * The side-effecting primitives, injectable so that ThinPool's checks can be unit-tested
 * without devices. {@link realBlockDevices} is the default.
 */
export interface BlockDevices {
  /**
   * Resolves `'major:minor'` or a device path. Regular files are refused: the thin layer runs
   * over block devices only (attach a loop device first).
   * @throws InvalidArgumentError when `ref` names no block device.
   */
  inspect(ref: string): Promise<BlockDeviceInfo>;
  /** Reads the first `bytes` bytes (opened O_EXCL). @throws BlockDeviceBusyError when held. */
  readHead(path: string, bytes: number): Promise<Buffer>;
  /** Writes `bytes` zero bytes at offset 0 and fsyncs (opened O_EXCL). @throws BlockDeviceBusyError */
  zeroHead(path: string, bytes: number): Promise<void>;
}

/** glibc `major()`/`minor()` of a 64-bit st_rdev (sys/sysmacros.h). */
function splitRdev(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

function notABlockDevice(ref: string, message: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError('block device', [{ path: '', message, value: ref }], cause === undefined ? undefined : { cause });
}

/**
 * Reads /sys/dev/block/MAJ:MIN: `size` (512-byte sectors, whatever the logical block size) and
 * `uevent` DEVNAME. sysfs is used because there is no udev in our test VM, so /dev/block/MAJ:MIN
 * symlinks may not exist, while devtmpfs always provides /dev/<DEVNAME>.
 */
async function sysfsFacts(major: number, minor: number, ref: string): Promise<{ sizeBytes: bigint; devname: string | undefined }> {
  const dir = `/sys/dev/block/${major}:${minor}`;
  let sizeText: string;
  try {
    sizeText = await readFile(`${dir}/size`, 'utf8');
  } catch (err) {
    throw notABlockDevice(ref, `no block device ${major}:${minor} (${dir} is missing)`, err);
  }
  if (!/^\d+\s*$/.test(sizeText)) throw notABlockDevice(ref, `unreadable size in ${dir}/size: ${JSON.stringify(sizeText)}`);
  let devname: string | undefined;
  try {
    const uevent = await readFile(`${dir}/uevent`, 'utf8');
    devname = /^DEVNAME=(.+)$/m.exec(uevent)?.[1]?.trim();
  } catch {
    devname = undefined;
  }
  return { sizeBytes: BigInt(sizeText.trim()) * 512n, devname };
}

async function openExclusive(path: string, flags: number) {
  try {
    return await open(path, flags | fsConstants.O_EXCL);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'EBUSY') throw new BlockDeviceBusyError(path, { cause: err });
    throw err;
  }
}

/**
 * The real implementation over node:fs and sysfs.
 *
 * Reading and zeroing go through the block device's page cache, which is safe here because the
 * kernel drops a block device's cache on its last close (blkdev_put → kill_bdev), and both
 * operations open the device with O_EXCL: they fail (BlockDeviceBusyError) while a pool, another
 * dm table or a mount holds it, so they never race with dm-thin's own (uncached) metadata I/O.
 */
export const realBlockDevices: BlockDevices = Object.freeze({
  async inspect(ref: string): Promise<BlockDeviceInfo> {
    const num = parseDevNumber(ref);
    if (num) {
      const { sizeBytes, devname } = await sysfsFacts(num.major, num.minor, ref);
      const path = devname ? `/dev/${devname}` : `/dev/block/${ref}`;
      return { ...num, path, sizeBytes };
    }
    if (!ref.startsWith('/')) throw notABlockDevice(ref, "must be 'major:minor' or an absolute device path");
    let st;
    try {
      st = await stat(ref, { bigint: true });
    } catch (err) {
      throw notABlockDevice(ref, `cannot stat: ${(err as Error).message}`, err);
    }
    if (!st.isBlockDevice()) {
      throw notABlockDevice(ref, 'must be a block device (the thin layer never takes files: attach a loop device first)');
    }
    const dev = splitRdev(st.rdev);
    const { sizeBytes } = await sysfsFacts(dev.major, dev.minor, ref);
    return { ...dev, path: ref, sizeBytes };
  },

  async readHead(path: string, bytes: number): Promise<Buffer> {
    const fh = await openExclusive(path, fsConstants.O_RDONLY);
    try {
      const buf = Buffer.alloc(bytes);
      let done = 0;
      while (done < bytes) {
        const { bytesRead } = await fh.read(buf, done, bytes - done, done);
        if (bytesRead === 0) break; // device shorter than `bytes`: the rest stays zero
        done += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  },

  async zeroHead(path: string, bytes: number): Promise<void> {
    const fh = await openExclusive(path, fsConstants.O_WRONLY);
    try {
      const zeros = Buffer.alloc(bytes);
      let done = 0;
      while (done < bytes) {
        const { bytesWritten } = await fh.write(zeros, done, bytes - done, done);
        done += bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
});

/** Offsets in `struct thin_disk_superblock` (drivers/md/dm-thin-metadata.c). */
const SB_MAGIC_OFFSET = 32;
const SB_DATA_BLOCK_SIZE_OFFSET = 336;
/** THIN_SUPERBLOCK_MAGIC in dm-thin-metadata.c. */
export const THIN_SUPERBLOCK_MAGIC = 27022010n;

/** What block 0 of a metadata device holds. */
export type MetadataHead =
  | { readonly kind: 'blank' }
  | { readonly kind: 'thin'; readonly dataBlockSize: number }
  | { readonly kind: 'other' };

/**
 * Classifies block 0 of a metadata device: all zero (the kernel will format it), a thin-pool
 * superblock (magic 27022010 at offset 32; data block size, in sectors, at offset 336), or
 * anything else. The checksum is not verified: the kernel does that at load.
 */
export function classifyMetadataHead(head: Buffer): MetadataHead {
  if (head.every((b) => b === 0)) return { kind: 'blank' };
  if (head.length >= SB_DATA_BLOCK_SIZE_OFFSET + 4 && head.readBigUInt64LE(SB_MAGIC_OFFSET) === THIN_SUPERBLOCK_MAGIC) {
    return { kind: 'thin', dataBlockSize: head.readUInt32LE(SB_DATA_BLOCK_SIZE_OFFSET) };
  }
  return { kind: 'other' };
}
