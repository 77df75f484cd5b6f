// SPDX-License-Identifier: MIT
// Attach options: the caller's shape, the defaults, and validation that lists every problem.
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';

/** Largest lo_offset / lo_sizelimit the kernel accepts (loff_t; larger → EOVERFLOW). */
export const LOOP_MAX_BYTES = (1n << 63n) - 1n;

/** Offsets and size limits must be whole 512-byte sectors (our policy; see {@link LoopAttachOptions.offset}). */
export const LOOP_SECTOR_SIZE = 512;

/**
 * Allowed logical block sizes. The kernel (`loop_validate_block_size` → `blk_validate_block_size`)
 * accepts powers of two from 512 up to PAGE_SIZE on older kernels (6.1 verified). Newer kernels
 * with large-block-size support accept more (6.18 verified with losetup: 8192 and 65536 both
 * bound), but we keep the portable range 512..4096.
 */
export const LOOP_MIN_BLOCK_SIZE = 512;
export const LOOP_MAX_BLOCK_SIZE = 4096;

/**
 * How to bind: `'configure'` = LOOP_CONFIGURE only (Linux ≥ 5.8, atomic); `'legacy'` = always
 * LOOP_SET_FD + LOOP_SET_BLOCK_SIZE + LOOP_SET_STATUS64 (+ LOOP_SET_DIRECT_IO); `'auto'` (default)
 * = LOOP_CONFIGURE, falling back to the legacy sequence when the kernel answers EINVAL, ENOTTY or
 * ENOSYS (what util-linux does).
 */
export type LoopAttachMethod = 'auto' | 'configure' | 'legacy';

/** Options of {@link LoopControl.attach}. Every field is optional. */
export interface LoopAttachOptions {
  /** Bind read-only (LO_FLAGS_READ_ONLY); the backing file is opened O_RDONLY. Default false. */
  readonly readOnly?: boolean;
  /**
   * Detach automatically when the last opener closes the device (LO_FLAGS_AUTOCLEAR). Default
   * **true**: a crashed process cannot leak the device. Because of it the attach handle keeps the
   * loop fd open until you call `close()`; do that once the consumer (dm table, mount) holds the
   * device.
   */
  readonly autoclear?: boolean;
  /** Direct I/O to the backing file (LO_FLAGS_DIRECT_IO; no double page cache). Default false. */
  readonly directIo?: boolean;
  /** Logical block size in bytes: a power of two, 512..4096. Default: the kernel's (512). */
  readonly blockSize?: number;
  /**
   * Start of the device inside the backing file, in bytes. Default 0. Must be a multiple of 512
   * (a whole sector: this library's policy, so sizes stay sector-exact for dm tables and direct I/O).
   */
  readonly offset?: bigint | number;
  /** Device size limit in bytes, a multiple of 512; 0 (default) = to the end of the file. */
  readonly sizeLimit?: bigint | number;
  /** Let the kernel scan the device for partitions (LO_FLAGS_PARTSCAN). Default false. */
  readonly partscan?: boolean;
  /** Binding method; `'legacy'` forces the pre-5.8 sequence (for tests and old kernels). Default 'auto'. */
  readonly method?: LoopAttachMethod;
  /**
   * Keep the loop device fd open in the returned handle until `close()`. Default true. `false`
   * closes it before attach returns, which only makes sense with `autoclear: false` (otherwise the
   * device would detach at once), so that combination is rejected.
   */
  readonly hold?: boolean;
  /**
   * Refuse a backing file that is a symbolic link: it is opened with O_NOFOLLOW, and ELOOP becomes
   * BackingFileLinkError (no loop device consumed). For files in a directory the caller owns,
   * where a link can only be a planted one. Default false.
   */
  readonly noFollow?: boolean;
  /**
   * Cancels the attach: checked before each GET_FREE → bind attempt and after the bind. An abort
   * after our bind clears the device again; the call rejects with LoopAbortedError.
   */
  readonly signal?: AbortSignal;
}

/** {@link LoopAttachOptions} with the defaults applied and sizes as bigint. */
export interface ResolvedLoopAttachOptions {
  readonly readOnly: boolean;
  readonly autoclear: boolean;
  readonly directIo: boolean;
  /** 0 = kernel default. */
  readonly blockSize: number;
  readonly offset: bigint;
  readonly sizeLimit: bigint;
  readonly partscan: boolean;
  readonly method: LoopAttachMethod;
  readonly hold: boolean;
  readonly noFollow: boolean;
  /** Present only when given. */
  readonly signal?: AbortSignal;
}

const KNOWN_KEYS = new Set([
  'readOnly',
  'autoclear',
  'directIo',
  'blockSize',
  'offset',
  'sizeLimit',
  'partscan',
  'method',
  'hold',
  'noFollow',
  'signal',
]);

function byteCount(
  value: unknown,
  path: string,
  problems: ValidationProblem[],
): bigint | undefined {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else {
    problems.push({ path, message: 'must be an integer number of bytes (number or bigint)', value });
    return undefined;
  }
  if (v < 0n) problems.push({ path, message: 'must not be negative', value });
  else if (v > LOOP_MAX_BYTES) problems.push({ path, message: `must be at most ${LOOP_MAX_BYTES}`, value });
  else if (v % BigInt(LOOP_SECTOR_SIZE) !== 0n) {
    problems.push({ path, message: `must be a multiple of ${LOOP_SECTOR_SIZE} bytes`, value });
  } else return v;
  return undefined;
}

function bool(
  opts: Record<string, unknown>,
  key: string,
  dflt: boolean,
  problems: ValidationProblem[],
): boolean {
  const v = opts[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') {
    problems.push({ path: `/${key}`, message: 'must be a boolean', value: v });
    return dflt;
  }
  return v;
}

/**
 * Applies defaults and validates attach options. Pure; runs before anything touches the disk.
 *
 * @throws {InvalidArgumentError} listing every problem found.
 */
export function resolveAttachOptions(options: LoopAttachOptions | undefined = {}): ResolvedLoopAttachOptions {
  const problems: ValidationProblem[] = [];
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError('loop attach options', [{ path: '', message: 'must be an object', value: options }]);
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN_KEYS.has(k)) problems.push({ path: `/${k}`, message: 'unknown option', value: o[k] });
  }
  const readOnly = bool(o, 'readOnly', false, problems);
  const autoclear = bool(o, 'autoclear', true, problems);
  const directIo = bool(o, 'directIo', false, problems);
  const partscan = bool(o, 'partscan', false, problems);
  const hold = bool(o, 'hold', true, problems);
  const noFollow = bool(o, 'noFollow', false, problems);

  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) problems.push({ path: '/signal', message: 'must be an AbortSignal', value: signal });

  let blockSize = 0;
  if (o.blockSize !== undefined) {
    const b = o.blockSize;
    if (
      typeof b !== 'number' ||
      !Number.isInteger(b) ||
      b < LOOP_MIN_BLOCK_SIZE ||
      b > LOOP_MAX_BLOCK_SIZE ||
      (b & (b - 1)) !== 0
    ) {
      problems.push({
        path: '/blockSize',
        message: `must be a power of two from ${LOOP_MIN_BLOCK_SIZE} to ${LOOP_MAX_BLOCK_SIZE}`,
        value: b,
      });
    } else blockSize = b;
  }

  const offset = o.offset === undefined ? 0n : byteCount(o.offset, '/offset', problems);
  const sizeLimit = o.sizeLimit === undefined ? 0n : byteCount(o.sizeLimit, '/sizeLimit', problems);

  let method: LoopAttachMethod = 'auto';
  if (o.method !== undefined) {
    if (o.method === 'auto' || o.method === 'configure' || o.method === 'legacy') method = o.method;
    else problems.push({ path: '/method', message: "must be 'auto', 'configure' or 'legacy'", value: o.method });
  }

  if (!hold && autoclear) {
    problems.push({
      path: '/hold',
      message: 'hold: false with autoclear: true would detach the device as soon as attach returns',
      value: false,
    });
  }
  if (directIo && blockSize !== 0 && offset !== undefined && offset % BigInt(blockSize) !== 0n) {
    problems.push({ path: '/offset', message: `must be a multiple of blockSize (${blockSize}) with directIo`, value: o.offset });
  }

  if (problems.length > 0) throw new InvalidArgumentError('loop attach options', problems);
  return {
    readOnly,
    autoclear,
    directIo,
    blockSize,
    offset: offset ?? 0n,
    sizeLimit: sizeLimit ?? 0n,
    partscan,
    method,
    hold,
    noFollow,
    ...(signal instanceof AbortSignal ? { signal } : {}),
  };
}
