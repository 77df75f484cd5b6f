// SPDX-License-Identifier: MIT
// The `error` target: fails every I/O (drivers/md/dm-target.c, io_err_*).
// We always send no parameters. Recent kernels optionally accept `<dev> <offset>` so that the target
// can inherit a zoned device's limits; the kernel never reports them back (io_err has no status).
import { InvalidArgumentError } from '../../errors.js';
import type { TargetLine } from '../table.js';

export const ERROR_TARGET = 'error';

/** The `error` target takes no parameters, so its parameter string is always empty. */
export function formatErrorParams(): string {
  return '';
}

/**
 * Checks that an `error` target's parameter string is empty, as the kernel reports it.
 * @throws InvalidArgumentError when parameters are present (the kernel reports none).
 */
export function parseErrorParams(params: string): Record<string, never> {
  if (params.trim() !== '')
    throw new InvalidArgumentError('error params', [{ path: '', message: 'must be empty', value: params }]);
  return {};
}

/** A complete `error` target line. */
export function errorTarget(start: bigint, length: bigint): TargetLine {
  return { start, length, type: ERROR_TARGET, params: '' };
}
