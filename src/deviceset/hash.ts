// SPDX-License-Identifier: MIT
// Device hashes (Docker layer/container ids) and the kernel names derived from them. Pure.
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';

// dm names are at most DM_NAME_LEN - 1 = 127 bytes; src/dm owns that limit.
import { DM_NAME_MAX_BYTES } from '../dm/index.js';

/**
 * The longest prefix {@link prefixFor} can produce: `devmapper-` (10) + major (10 digits, 32-bit)
 * + `:` + minor (10 digits, 32-bit) + `-` + inode (20 digits, 64-bit) = 52 bytes.
 */
export const MAX_PREFIX_BYTES = 52;

/**
 * The longest device hash: 127 − 52 − 1 (the `-` between prefix and hash) = 74 bytes, so that
 * `<prefix>-<hash>` always fits a dm name. Docker's ids are 64 hex digits, plus `-init` for
 * init layers (69), which fit.
 */
export const MAX_HASH_LENGTH = DM_NAME_MAX_BYTES - MAX_PREFIX_BYTES - 1;

/**
 * Hashes that would collide with a name we use ourselves: `base` and `pool` are dm name suffixes
 * (`<prefix>-base`, `<prefix>-pool`) and `base` is also the base device's metadata file; the two
 * others are metadata file names.
 */
export const RESERVED_HASHES: readonly string[] = ['base', 'pool', 'deviceset-metadata', 'transaction-metadata'];

const HASH_RE = new RegExp(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,${MAX_HASH_LENGTH - 1}}$`);

/**
 * Why `hash` is not a valid device hash, or undefined when it is. The base device's hash is the
 * empty string and is valid. Any other hash must start with a letter or digit and use only
 * `A-Za-z0-9_.-` (so it is never `.`, `..`, a dot file or a path, and is a safe file and dm
 * name), be at most {@link MAX_HASH_LENGTH} characters and not be one of {@link RESERVED_HASHES}.
 */
export function hashProblem(hash: unknown): string | undefined {
  if (typeof hash !== 'string') return 'a device hash must be a string';
  if (hash === '') return undefined;
  if (hash.length > MAX_HASH_LENGTH) {
    return `device hash is ${hash.length} characters; at most ${MAX_HASH_LENGTH} keep "<prefix>-<hash>" within the ${DM_NAME_MAX_BYTES}-byte dm name limit`;
  }
  if (!HASH_RE.test(hash)) {
    return 'a device hash must start with a letter or digit and contain only letters, digits, "_", "." and "-"';
  }
  if (RESERVED_HASHES.includes(hash)) return `"${hash}" is reserved (it collides with a name devmapper uses itself)`;
  return undefined;
}

/** True for a valid device hash ('' is the base device). */
export function isValidHash(hash: unknown): hash is string {
  return hashProblem(hash) === undefined;
}

/** @throws InvalidArgumentError when `hash` is not a valid device hash. */
export function assertValidHash(hash: unknown, path = '/hash'): asserts hash is string {
  const problem = hashProblem(hash);
  if (problem !== undefined) {
    const p: ValidationProblem = { path, message: problem, value: hash };
    throw new InvalidArgumentError('device hash', [p]);
  }
}

/** glibc gnu_dev_major(): bits 8–19 and 32–43 of a dev_t. */
export function devMajor(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n));
}

/** glibc gnu_dev_minor(): bits 0–7 and 20–43 of a dev_t. */
export function devMinor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n));
}

/**
 * The dm name prefix of a DeviceSet rooted at a directory: `devmapper-<major>:<minor>-<inode>`
 * from stat(root) (Docker used `docker-`), so several DeviceSets can share one host.
 */
export function prefixFor(stat: { readonly dev: bigint; readonly ino: bigint }): string {
  if (stat.ino < 0n || stat.ino > 0xffffffffffffffffn) {
    throw new InvalidArgumentError('stat result', [{ path: '/ino', message: 'inode out of u64 range', value: stat.ino }]);
  }
  return `devmapper-${devMajor(stat.dev)}:${devMinor(stat.dev)}-${stat.ino}`;
}

/** The pool's dm name: `<prefix>-pool`. */
export function poolNameFor(prefix: string): string {
  return `${prefix}-pool`;
}

/**
 * The dm name of a device: `<prefix>-base` for the base device (hash ''), `<prefix>-<hash>`
 * otherwise.
 * @throws InvalidArgumentError for an invalid hash, or a name over 127 bytes (a prefix longer
 * than {@link prefixFor} produces).
 */
export function dmNameFor(prefix: string, hash: string): string {
  assertValidHash(hash);
  const name = `${prefix}-${hash === '' ? 'base' : hash}`;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > DM_NAME_MAX_BYTES) {
    throw new InvalidArgumentError('dm name', [
      { path: '/prefix', message: `"${name}" is ${bytes} bytes; dm names are at most ${DM_NAME_MAX_BYTES}`, value: prefix },
    ]);
  }
  return name;
}
