// SPDX-License-Identifier: MIT
// BLKDISCARD over a block device (block/ioctl.c blk_ioctl_discard): the loop driver punches the
// range out of its backing file (drivers/block/loop.c lo_fallocate, FALLOC_FL_PUNCH_HOLE), so a
// sparse loop file gets its space back. Built here so that layers above never assemble ioctl
// arguments themselves.
import * as fs from 'node:fs';
import { BLKDISCARD, O_CLOEXEC, type Syscalls } from '../ioctl/index.js';

/**
 * Discards bytes `[0, lengthBytes)` of the block device at `path` and fsyncs it. The device is
 * opened O_RDWR (blk_ioctl_discard answers EBADF on a read-only fd). Errors are the seam's.
 */
export async function discardBlockDevice(sys: Syscalls, path: string, lengthBytes: bigint): Promise<void> {
  const fd = sys.open(path, fs.constants.O_RDWR | O_CLOEXEC);
  try {
    // struct { u64 start; u64 len; } (uint64_t range[2] in blk_ioctl_discard)
    const range = Buffer.alloc(16);
    range.writeBigUInt64LE(0n, 0);
    range.writeBigUInt64LE(lengthBytes, 8);
    await sys.ioctlAsync(fd, BLKDISCARD, range, 'BLKDISCARD');
    sys.fsync(fd);
  } finally {
    sys.close(fd);
  }
}
