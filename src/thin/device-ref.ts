// SPDX-License-Identifier: MIT
// Device references in dm table lines: `major:minor` or an absolute path (dm_get_device() in drivers/md/dm-table.c).
import type { ValidationProblem } from '../errors.js';

/**
 * Kernel `dev_t` limits: 12-bit major, 20-bit minor (`MINORBITS = 20`,
 * include/linux/kdev_t.h). A `maj:min` outside them can never name a device.
 */
export const MAX_MAJOR = 0xfff;
export const MAX_MINOR = 0xf_ffff;

const MAJ_MIN = /^(\d+):(\d+)$/;

/** A `major:minor` pair as printed by the kernel's `format_dev_t()`. */
export interface DevNumber {
  readonly major: number;
  readonly minor: number;
}

/** Parses `"253:4"`; returns `undefined` for anything else (including out-of-range numbers). */
export function parseDevNumber(text: string): DevNumber | undefined {
  const m = MAJ_MIN.exec(text);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > MAX_MAJOR || minor > MAX_MINOR) return undefined;
  return { major, minor };
}

/**
 * The problem with `value` as a device reference in a table line, or `undefined`.
 *
 * Accepted: `major:minor` within the dev_t limits, or an absolute path. The
 * kernel splits table params on whitespace and treats a backslash as an escape
 * (`dm_split_args()` in dm-table.c), so paths containing either would be cut or
 * rewritten; we refuse them rather than quoting, because no device node under
 * /dev needs them. Relative paths are refused: `dm_get_device()` resolves them
 * against nothing useful.
 * @internal
 */
export function deviceRefProblem(value: unknown, path: string): ValidationProblem | undefined {
  if (typeof value !== 'string') return { path, message: 'must be a string', value };
  if (MAJ_MIN.test(value)) {
    return parseDevNumber(value)
      ? undefined
      : { path, message: `major must be ≤ ${MAX_MAJOR} and minor ≤ ${MAX_MINOR}`, value };
  }
  if (!value.startsWith('/')) {
    return { path, message: "must be 'major:minor' or an absolute path", value };
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\\\u0000-\u001f\u007f]/.test(value)) {
    return { path, message: 'must not contain whitespace, backslashes or control characters', value };
  }
  return undefined;
}
