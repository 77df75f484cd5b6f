// SPDX-License-Identifier: MIT
// The `zero` target: returns zeroes on read and discards writes (drivers/md/dm-zero.c). It takes no parameters.
import { InvalidArgumentError } from '../../errors.js';
import type { TargetLine } from '../table.js';

export const ZERO_TARGET = 'zero';

/** The `zero` target takes no parameters, so its parameter string is always empty. */
export function formatZeroParams(): string {
  return '';
}

/**
 * Checks that a `zero` target's parameter string is empty, as the kernel reports it.
 * @throws InvalidArgumentError when parameters are present (`zero_ctr` refuses any: "No arguments required").
 */
export function parseZeroParams(params: string): Record<string, never> {
  if (params.trim() !== '')
    throw new InvalidArgumentError('zero params', [{ path: '', message: 'must be empty', value: params }]);
  return {};
}

/** A complete `zero` target line. */
export function zeroTarget(start: bigint, length: bigint): TargetLine {
  return { start, length, type: ZERO_TARGET, params: '' };
}
