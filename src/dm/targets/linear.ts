// SPDX-License-Identifier: MIT
// The `linear` target (Documentation/admin-guide/device-mapper/linear.rst): `<dev> <offset>`.
import { InvalidArgumentError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';

/** Parameters of a linear target: map onto `device` starting at sector `offset`. */
export interface LinearParams {
  readonly device: DevNum;
  readonly offset: bigint;
}

export const LINEAR_TARGET = 'linear';

function problems(p: LinearParams): ValidationProblem[] {
  const out = devNumProblems(p.device, '/device');
  if (typeof p.offset !== 'bigint' || p.offset < 0n)
    out.push({ path: '/offset', message: 'must be a non-negative bigint sector', value: p.offset });
  return out;
}

/**
 * `{device: {major: 7, minor: 0}, offset: 0n}` → `'7:0 0'`.
 * @throws InvalidArgumentError on a bad device number or offset.
 */
export function formatLinearParams(p: LinearParams): string {
  const found = problems(p);
  if (found.length > 0) throw new InvalidArgumentError('linear params', found);
  return `${formatDevNum(p.device)} ${p.offset}`;
}

/**
 * Parses linear params as the kernel reports them (`7:0 2048`).
 * @throws InvalidArgumentError when the string is not `<major:minor> <offset>`.
 */
export function parseLinearParams(params: string): LinearParams {
  const parts = params.trim().split(/\s+/);
  if (parts.length !== 2 || !/^\d+$/.test(parts[1]!))
    throw new InvalidArgumentError('linear params', [
      { path: '', message: "must be '<major:minor> <offset>'", value: params },
    ]);
  return { device: parseDevNum(parts[0]!), offset: BigInt(parts[1]!) };
}

/** A complete linear target line. */
export function linearTarget(start: bigint, length: bigint, p: LinearParams): TargetLine {
  return { start, length, type: LINEAR_TARGET, params: formatLinearParams(p) };
}
