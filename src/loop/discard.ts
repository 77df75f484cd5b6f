// SPDX-License-Identifier: MIT
// BLKDISCARD over a block device (block/ioctl.c blk_ioctl_discard): the loop driver punches the
// range out of its backing file (drivers/block/loop.c lo_fallocate, FALLOC_FL_PUNCH_HOLE), so a
// sparse loop file gets its space back. Built here so that layers above never assemble ioctl
// arguments themselves.
import * as fs from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { BLKDISCARD, O_CLOEXEC, type Syscalls } from '../ioctl/index.js';
import { checkLoopAbort } from './errors.js';
import type { LoopProgressCallback } from './progress.js';

/**
 * Bytes per BLKDISCARD call (1 GiB): the unit of cancellation and progress. blk_ioctl_discard
 * takes any 512-aligned range and the block layer splits it anyway (block/blk-lib.c
 * __blkdev_issue_discard loops over max_discard_sectors), so chunking costs one syscall per GiB.
 */
export const DISCARD_CHUNK_BYTES = 1n << 30n;

/** Options of {@link discardBlockDevice}. */
export interface DiscardOptions {
  /** Checked between chunks: the call then rejects with LoopAbortedError (the chunks done stay discarded). */
  readonly signal?: AbortSignal;
  /** `{ step: 'discard', done, total }` in chunks of {@link DiscardOptions.chunkBytes}: done 0 first, total last. */
  readonly onProgress?: LoopProgressCallback;
  /** Bytes per BLKDISCARD, a positive multiple of 512. Default {@link DISCARD_CHUNK_BYTES}. */
  readonly chunkBytes?: bigint;
}

/**
 * Discards bytes `[0, lengthBytes)` of the block device at `path` and fsyncs it, one
 * BLKDISCARD per chunk. The device is opened O_RDWR (blk_ioctl_discard answers EBADF on a
 * read-only fd). Errors are the seam's; an abort between chunks is LoopAbortedError.
 */
export async function discardBlockDevice(sys: Syscalls, path: string, lengthBytes: bigint, options: DiscardOptions = {}): Promise<void> {
  const { signal, onProgress } = options;
  const chunk = options.chunkBytes ?? DISCARD_CHUNK_BYTES;
  if (typeof chunk !== 'bigint' || chunk <= 0n || chunk % 512n !== 0n) {
    throw new InvalidArgumentError('discard options', [{ path: '/chunkBytes', message: 'must be a positive multiple of 512 (bigint)', value: chunk }]);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('discard options', [{ path: '/signal', message: 'must be an AbortSignal', value: signal }]);
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new InvalidArgumentError('discard options', [{ path: '/onProgress', message: 'must be a function', value: onProgress }]);
  }
  checkLoopAbort(signal, 'discard');
  const total = lengthBytes <= 0n ? 0 : Number((lengthBytes + chunk - 1n) / chunk);
  onProgress?.({ step: 'discard', done: 0, total });
  const fd = sys.open(path, fs.constants.O_RDWR | O_CLOEXEC);
  try {
    let done = 0;
    for (let start = 0n; start < lengthBytes; start += chunk) {
      if (done > 0) checkLoopAbort(signal, 'discard');
      const len = lengthBytes - start < chunk ? lengthBytes - start : chunk;
      // struct { u64 start; u64 len; } (uint64_t range[2] in blk_ioctl_discard)
      const range = Buffer.alloc(16);
      range.writeBigUInt64LE(start, 0);
      range.writeBigUInt64LE(len, 8);
      await sys.ioctlAsync(fd, BLKDISCARD, range, 'BLKDISCARD');
      onProgress?.({ step: 'discard', done: ++done, total });
    }
    sys.fsync(fd);
  } finally {
    sys.close(fd);
  }
}
