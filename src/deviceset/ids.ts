// SPDX-License-Identifier: MIT
// Thin device id allocation (24-bit ids, wrapping, skipping ids still in use). Pure.
import { InvalidArgumentError } from '../errors.js';
import { DeviceIdsExhaustedError } from './errors.js';
import { MAX_DEVICE_ID } from './metadata.js';

/** The number of thin device ids: 2^24. */
export const DEVICE_ID_COUNT = MAX_DEVICE_ID + 1;

/**
 * Pick a free thin device id, starting at `next` and wrapping at 2^24. `used` must hold every id
 * that is still allocated: the ids of all records (deleted-but-deferred and faulty ones included)
 * and any id seen in the pool. The DeviceSet starts `next` at 1, so the base device gets id 1 as
 * in Docker.
 * @returns the id and the `next` to store (the id after it, wrapped).
 * @throws DeviceIdsExhaustedError when all 2^24 ids are used; InvalidArgumentError for a bad `next`.
 */
export function allocateDeviceId(used: ReadonlySet<number>, next: number): { id: number; next: number } {
  if (!Number.isInteger(next) || next < 0 || next > MAX_DEVICE_ID) {
    throw new InvalidArgumentError('next device id', [
      { path: '/next', message: `must be an integer between 0 and ${MAX_DEVICE_ID}`, value: next },
    ]);
  }
  for (let i = 0, id = next; i < DEVICE_ID_COUNT; i++, id = (id + 1) & MAX_DEVICE_ID) {
    if (!used.has(id)) return { id, next: (id + 1) & MAX_DEVICE_ID };
  }
  throw new DeviceIdsExhaustedError();
}
