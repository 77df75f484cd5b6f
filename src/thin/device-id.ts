// SPDX-License-Identifier: MIT
// ThinDeviceId: the 24-bit thin device identifier used by dm-thin (drivers/md/dm-thin.c MAX_DEV_ID).
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';

/**
 * Largest thin device id the kernel accepts: `MAX_DEV_ID = (1 << 24) - 1` in
 * drivers/md/dm-thin.c. The metadata btree keys are 64-bit, but the target
 * constructor and every pool message refuse anything wider than 24 bits
 * (`read_dev_id()` → EINVAL), so we refuse it before the kernel does.
 */
export const MAX_DEV_ID = 0xff_ffff; // 16777215

/** A thin device id that has been checked to lie in 0 … {@link MAX_DEV_ID}. */
export type ThinDeviceId = number & { readonly __brand: 'ThinDeviceId' };

/**
 * The problem with `value` as a thin device id, or `undefined` when it is valid.
 * Used by the validators that collect every problem at once.
 * @internal
 */
export function thinDeviceIdProblem(value: unknown, path: string): ValidationProblem | undefined {
  // Strings are refused on purpose, even "5": ids flow into message strings
  // verbatim, so only a real number whose decimal form we control is accepted.
  if (typeof value !== 'number' || Number.isNaN(value)) {
    return { path, message: 'must be a number', value };
  }
  if (!Number.isInteger(value)) return { path, message: 'must be an integer', value };
  if (value < 0) return { path, message: 'must not be negative', value };
  if (value > MAX_DEV_ID) {
    return { path, message: `must be at most ${MAX_DEV_ID} (24 bits, dm-thin MAX_DEV_ID)`, value };
  }
  return undefined;
}

/** True when `value` is a valid thin device id. */
export function isThinDeviceId(value: unknown): value is ThinDeviceId {
  return thinDeviceIdProblem(value, '') === undefined;
}

/**
 * Checks and brands a thin device id.
 * @throws InvalidArgumentError when `value` is not an integer in 0 … 16777215.
 */
export function thinDeviceId(value: unknown): ThinDeviceId {
  const problem = thinDeviceIdProblem(value, '');
  if (problem) throw new InvalidArgumentError('thin device id', [problem]);
  return value as ThinDeviceId;
}
