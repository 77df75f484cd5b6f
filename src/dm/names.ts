// SPDX-License-Identifier: MIT
// DmName / DmUuid: branded device-mapper names and uuids, validated before any ioctl.
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';

/**
 * A device-mapper device name that is safe to create: it passed {@link toDmName}. Functions that
 * create or rename devices take a `DmName`, so validation happens once, at the public entry.
 */
export type DmName = string & { readonly __brand: 'DmName' };

/** A device-mapper uuid that is safe to set: it passed {@link toDmUuid}. */
export type DmUuid = string & { readonly __brand: 'DmUuid' };

/**
 * Longest name in bytes: `DM_NAME_LEN` (128, include/uapi/linux/dm-ioctl.h) minus the NUL. The kernel
 * forcibly terminates `name[127]`, so a longer name would be silently truncated, not refused.
 */
export const DM_NAME_MAX_BYTES = 127;

/** Longest uuid in bytes: `DM_UUID_LEN` (129) minus the NUL. */
export const DM_UUID_MAX_BYTES = 128;

/**
 * The characters we allow in names and uuids: libdm's udev-safe whitelist
 * (`libdm/libdm-common.c`, `_is_whitelisted_char`): `0-9 A-Z a-z # + - . : = @ _`.
 *
 * Why restrict further than the kernel (which accepts any byte but `/` and NUL): libdm "mangles"
 * every other character to `\xNN` before it reaches the kernel (default mode `auto`), and udev
 * rules escape them again when building `/dev/mapper` symlinks. A name outside the whitelist would
 * therefore look different to dmsetup, to udev and to us. Staying inside it means no mangling is
 * ever needed and every tool sees the same bytes. Whitespace, control characters, backslash and
 * all non-ASCII characters are refused by this rule.
 */
const WHITELIST = /^[0-9A-Za-z#+\-.:=@_]*$/;

/** Names the kernel reserves (`dm-ioctl.c`, `invalid_str` / `dm_hash_insert`): never creatable. */
const RESERVED_NAMES = new Set(['.', '..', 'control']);

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Characters of `s` outside the whitelist, each once, in order of appearance, JSON-quoted. */
function offendingChars(s: string): string[] {
  const seen = new Set<string>();
  for (const ch of s) if (!WHITELIST.test(ch)) seen.add(ch);
  return [...seen].map((c) => JSON.stringify(c));
}

/**
 * Every problem that would stop `value` from being a creatable device name. Empty when valid.
 * `path` is the JSON pointer reported in each problem.
 */
export function dmNameProblems(value: unknown, path = ''): ValidationProblem[] {
  if (typeof value !== 'string') return [{ path, message: 'must be a string', value }];
  const problems: ValidationProblem[] = [];
  if (value.length === 0) problems.push({ path, message: 'must not be empty', value });
  const bytes = byteLength(value);
  if (bytes > DM_NAME_MAX_BYTES)
    problems.push({ path, message: `must be at most ${DM_NAME_MAX_BYTES} bytes (is ${bytes})`, value });
  // '/' is called out on its own because libdm treats a name containing it as a path.
  if (value.includes('/')) problems.push({ path, message: "must not contain '/'", value });
  if (RESERVED_NAMES.has(value)) problems.push({ path, message: `'${value}' is reserved by the kernel`, value });
  const bad = offendingChars(value).filter((c) => c !== '"/"');
  if (bad.length > 0)
    problems.push({
      path,
      message: `contains characters outside [0-9A-Za-z#+-.:=@_]: ${bad.join(', ')}`,
      value,
    });
  return problems;
}

/** Every problem that would stop `value` from being a settable uuid. Empty when valid. */
export function dmUuidProblems(value: unknown, path = ''): ValidationProblem[] {
  if (typeof value !== 'string') return [{ path, message: 'must be a string', value }];
  const problems: ValidationProblem[] = [];
  if (value.length === 0) problems.push({ path, message: 'must not be empty', value });
  const bytes = byteLength(value);
  if (bytes > DM_UUID_MAX_BYTES)
    problems.push({ path, message: `must be at most ${DM_UUID_MAX_BYTES} bytes (is ${bytes})`, value });
  const bad = offendingChars(value);
  if (bad.length > 0)
    problems.push({
      path,
      message: `contains characters outside [0-9A-Za-z#+-.:=@_]: ${bad.join(', ')}`,
      value,
    });
  return problems;
}

/** True when `value` is a valid, creatable device name. */
export function isDmName(value: unknown): value is DmName {
  return dmNameProblems(value).length === 0;
}

/** True when `value` is a valid, settable uuid. */
export function isDmUuid(value: unknown): value is DmUuid {
  return dmUuidProblems(value).length === 0;
}

/**
 * Validates and brands a device name.
 * @throws InvalidArgumentError listing every problem (length, emptiness, '/', reserved names,
 *   characters outside the udev-safe whitelist).
 * @example toDmName('pool-1') // 'pool-1' as DmName
 */
export function toDmName(value: string): DmName {
  const problems = dmNameProblems(value);
  if (problems.length > 0) throw new InvalidArgumentError('device-mapper name', problems);
  return value as DmName;
}

/**
 * Validates and brands a uuid.
 * @throws InvalidArgumentError listing every problem.
 */
export function toDmUuid(value: string): DmUuid {
  const problems = dmUuidProblems(value);
  if (problems.length > 0) throw new InvalidArgumentError('device-mapper uuid', problems);
  return value as DmUuid;
}

/**
 * Problems with a name or uuid used only to *look up* an existing device. Looser than
 * {@link dmNameProblems}: devices created by other tools may carry names outside our whitelist
 * (libdm-mangled `\xNN` names, for instance), and we must still be able to query and remove them.
 * Only what the kernel itself cannot represent is refused: empty strings, embedded NUL (the field
 * is a C string), strings that do not fit the fixed-size header field, and names with '/' (which
 * the kernel never lets a device have).
 */
export function lookupProblems(value: unknown, kind: 'name' | 'uuid', path = ''): ValidationProblem[] {
  if (typeof value !== 'string') return [{ path, message: 'must be a string', value }];
  const max = kind === 'name' ? DM_NAME_MAX_BYTES : DM_UUID_MAX_BYTES;
  const problems: ValidationProblem[] = [];
  if (value.length === 0) problems.push({ path, message: 'must not be empty', value });
  if (value.includes('\0')) problems.push({ path, message: 'must not contain NUL', value });
  // No device can have such a name: dm-ioctl.c check_name() refuses '/' on create and rename
  // (and always has), so a lookup by it could only answer ENXIO after opening the control node.
  if (kind === 'name' && value.includes('/'))
    problems.push({ path, message: "must not contain '/': no device-mapper device has such a name (give NAME, not /dev/mapper/NAME)", value });
  const bytes = byteLength(value);
  if (bytes > max) problems.push({ path, message: `must be at most ${max} bytes (is ${bytes})`, value });
  return problems;
}
