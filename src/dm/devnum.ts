// SPDX-License-Identifier: MIT
// DevNum: a block device named by major:minor, plus the kernel's "huge" dev_t encoding.
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import { huge_encode_dev, major, minor } from '../ioctl/index.js';

/**
 * A device number. Device-mapper tables and status lines name devices as `major:minor`, and every
 * device the kernel reports (TABLE_DEPS, LIST_DEVICES, the header's `dev`) is one of these.
 */
export interface DevNum {
  readonly major: number;
  readonly minor: number;
}

/** Largest major: the kernel keeps 12 bits (`include/linux/kdev_t.h`, MINORBITS = 20 of 32). */
const MAX_MAJOR = 0xfff;
/** Largest minor: 20 bits. */
const MAX_MINOR = 0xfffff;

/** Every problem with `value` as a DevNum. */
export function devNumProblems(value: unknown, path = ''): ValidationProblem[] {
  if (typeof value !== 'object' || value === null) return [{ path, message: 'must be {major, minor}', value }];
  const v = value as { major?: unknown; minor?: unknown };
  const problems: ValidationProblem[] = [];
  const check = (field: 'major' | 'minor', max: number): void => {
    const n = v[field];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max)
      problems.push({ path: `${path}/${field}`, message: `must be an integer in 0..${max}`, value: n });
  };
  check('major', MAX_MAJOR);
  check('minor', MAX_MINOR);
  return problems;
}

/** Validates a DevNum. @throws InvalidArgumentError */
export function assertDevNum(value: unknown, what = 'device number'): asserts value is DevNum {
  const problems = devNumProblems(value);
  if (problems.length > 0) throw new InvalidArgumentError(what, problems);
}

/** `{major: 253, minor: 0}` → `'253:0'`. */
export function formatDevNum(dev: DevNum): string {
  return `${dev.major}:${dev.minor}`;
}

const DEVNUM_RE = /^(\d{1,4}):(\d{1,7})$/;

/**
 * `'253:0'` → `{major: 253, minor: 0}`. Only the `major:minor` form is accepted; device paths are
 * deliberately not resolved here (that would need a stat, and this module is pure).
 * @throws InvalidArgumentError when the text is not `major:minor` or a number is out of range.
 */
export function parseDevNum(text: string): DevNum {
  const m = DEVNUM_RE.exec(text);
  if (!m) throw new InvalidArgumentError('device number', [{ path: '', message: "must be 'major:minor'", value: text }]);
  const dev = { major: Number(m[1]), minor: Number(m[2]) };
  assertDevNum(dev);
  return dev;
}

/**
 * Encodes a DevNum the way the kernel's `huge_encode_dev` / `new_encode_dev` does for
 * `dm_ioctl.dev`, `dm_name_list.dev` and `dm_target_deps.dev[]`:
 * `(minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)`. For every real device this equals
 * glibc's `makedev`, so the result can be compared with `st_rdev` directly.
 */
export function encodeDevNum(dev: DevNum): bigint {
  return huge_encode_dev(dev.major, dev.minor);
}

/**
 * Decodes a huge/new-encoded (or glibc) dev_t: `major = (enc >> 8) & 0xfff`,
 * `minor = (enc & 0xff) | ((enc >> 12) & 0xfff00)`, plus glibc's extra high bits, so that st_rdev
 * values decode correctly too.
 */
export function decodeDevNum(enc: bigint): DevNum {
  return { major: major(enc), minor: minor(enc) };
}

/** True when two DevNums name the same device. */
export function sameDevNum(a: DevNum, b: DevNum): boolean {
  return a.major === b.major && a.minor === b.minor;
}
