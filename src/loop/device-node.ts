// SPDX-License-Identifier: MIT
// Opening a loop device node, with one errno mapping for every operation on it.
import { errnoCode } from '../errors.js';
import { O_CLOEXEC, type Syscalls } from '../ioctl/index.js';
import { LoopDeviceNotFoundError } from './errors.js';

/**
 * The error of a failed open(2) of the loop node `path`: LoopDeviceNotFoundError for ENOENT (no
 * node), ENXIO and ENODEV (a node whose device is gone: block/bdev.c finds no gendisk for its
 * dev_t, e.g. after LOOP_CTL_REMOVE); anything else unchanged.
 */
export function loopOpenError(path: string, err: unknown): unknown {
  const code = errnoCode(err);
  if (code === 'ENOENT' || code === 'ENXIO' || code === 'ENODEV') return new LoopDeviceNotFoundError(path, { cause: err });
  return err;
}

/** open(2) of the loop node `path` with `flags | O_CLOEXEC`; failures mapped by {@link loopOpenError}. */
export function openLoopDevice(sys: Syscalls, path: string, flags: number): number {
  try {
    return sys.open(path, flags | O_CLOEXEC);
  } catch (err) {
    throw loopOpenError(path, err);
  }
}
