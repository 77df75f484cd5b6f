// SPDX-License-Identifier: MIT
// thin-pool target params: validate, format and parse (pool_ctr()/pool_status() in drivers/md/dm-thin.c).
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../errors.js';
import { deviceRefProblem } from './device-ref.js';
import { U64_MAX, parseU64 } from './u64.js';

/**
 * Data block size bounds in 512-byte sectors: 64 KiB … 1 GiB
 * (`DATA_DEV_BLOCK_SIZE_MIN_SECTORS` / `_MAX_SECTORS` in dm-thin.c). The
 * kernel also requires a multiple of the minimum, but not a power of two.
 */
export const DATA_BLOCK_SIZE_MIN_SECTORS = 128;
export const DATA_BLOCK_SIZE_MAX_SECTORS = 2_097_152;

/** Size of a sector in bytes; dm tables always count in 512-byte sectors. */
export const SECTOR_SIZE = 512;

/**
 * Most feature args pool_ctr() accepts: its `dm_arg` group is `{0, 4}`
 * ("Invalid number of pool feature arguments", EINVAL), although five
 * features exist. So one combination of all five is refused by the kernel.
 */
export const MAX_POOL_FEATURE_ARGS = 4;

/** Optional thin-pool features (Documentation/admin-guide/device-mapper/thin-provisioning.rst). */
export interface ThinPoolFeatures {
  /** `skip_block_zeroing`: don't zero newly provisioned data blocks. */
  readonly skipBlockZeroing?: boolean;
  /** `ignore_discard`: no discard support at all. */
  readonly ignoreDiscard?: boolean;
  /** `no_discard_passdown`: process discards by unmapping only; don't pass them to the data device. */
  readonly noDiscardPassdown?: boolean;
  /** `read_only`: open metadata read-only; refuses every change (and cannot format new metadata). */
  readonly readOnly?: boolean;
  /** `error_if_no_space`: fail writes at once instead of queueing them when data space runs out. */
  readonly errorIfNoSpace?: boolean;
}

/** The params of a `thin-pool` table line (everything after the target type). */
export interface ThinPoolParams {
  /** Metadata device: `'major:minor'` or an absolute path. */
  readonly metadataDev: string;
  /** Data device: `'major:minor'` or an absolute path. Must differ from `metadataDev`. */
  readonly dataDev: string;
  /** Data block size in sectors: 128 … 2097152, a multiple of 128. Fixed for the pool's life. */
  readonly dataBlockSize: number;
  /** Free data blocks below which the kernel raises a dm event (edge-triggered, once per resume). */
  readonly lowWaterMark: bigint | number;
  /** Feature flags; missing means all off. */
  readonly features?: ThinPoolFeatures;
}

/** {@link ThinPoolParams} as parsed from the kernel: every feature flag present, low water as bigint. */
export interface ParsedThinPoolParams extends ThinPoolParams {
  readonly lowWaterMark: bigint;
  readonly features: Required<ThinPoolFeatures>;
}

/**
 * Kernel spelling of each feature, in the order emit_flags() prints them. We
 * emit the same order so our table line equals the kernel's table output.
 */
const FEATURES: ReadonlyArray<readonly [keyof ThinPoolFeatures, string]> = [
  ['skipBlockZeroing', 'skip_block_zeroing'],
  ['ignoreDiscard', 'ignore_discard'],
  ['noDiscardPassdown', 'no_discard_passdown'],
  ['readOnly', 'read_only'],
  ['errorIfNoSpace', 'error_if_no_space'],
];

/**
 * Every problem with `p` as thin-pool params, empty when valid. Only what the
 * kernel's pool_ctr() would refuse is listed (plus what would break the table
 * line itself), so a valid result can still fail at load for runtime reasons
 * (device busy, wrong block size for existing metadata, read_only on
 * unformatted metadata).
 *
 * Notably *not* refused: `ignoreDiscard` together with `noDiscardPassdown`.
 * It is redundant (ignore_discard already disables passdown) but the kernel
 * sets each flag independently and accepts it; it is only refused when it
 * pushes the feature count to five.
 */
export function poolParamsProblems(p: unknown): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  if (typeof p !== 'object' || p === null) return [{ path: '', message: 'must be an object', value: p }];
  const v = p as Record<string, unknown>;

  const meta = deviceRefProblem(v['metadataDev'], '/metadataDev');
  if (meta) problems.push(meta);
  const data = deviceRefProblem(v['dataDev'], '/dataDev');
  if (data) problems.push(data);
  // pool_ctr() compares the two argument *strings* (strcmp → EINVAL "Error
  // setting metadata or data device"); two spellings of one device slip past
  // it and fail later when the second open finds the device held.
  if (typeof v['metadataDev'] === 'string' && v['metadataDev'] === v['dataDev']) {
    problems.push({ path: '/dataDev', message: 'must differ from metadataDev', value: v['dataDev'] });
  }

  const bs = v['dataBlockSize'];
  if (typeof bs !== 'number' || !Number.isInteger(bs)) {
    problems.push({ path: '/dataBlockSize', message: 'must be an integer number of sectors', value: bs });
  } else {
    if (bs < DATA_BLOCK_SIZE_MIN_SECTORS || bs > DATA_BLOCK_SIZE_MAX_SECTORS) {
      problems.push({
        path: '/dataBlockSize',
        message: `must be between ${DATA_BLOCK_SIZE_MIN_SECTORS} and ${DATA_BLOCK_SIZE_MAX_SECTORS} sectors (64 KiB … 1 GiB)`,
        value: bs,
      });
    }
    if (bs % DATA_BLOCK_SIZE_MIN_SECTORS !== 0) {
      problems.push({ path: '/dataBlockSize', message: `must be a multiple of ${DATA_BLOCK_SIZE_MIN_SECTORS} sectors`, value: bs });
    }
  }

  const lw = v['lowWaterMark'];
  if (typeof lw === 'bigint') {
    if (lw < 0n || lw > U64_MAX) problems.push({ path: '/lowWaterMark', message: 'must be in 0 … 2^64-1', value: lw });
  } else if (typeof lw === 'number') {
    // Above 2^53 a number is no longer exact; the kernel reads a u64 (kstrtoull), so ask for a bigint.
    if (!Number.isSafeInteger(lw) || lw < 0) {
      problems.push({ path: '/lowWaterMark', message: 'must be a non-negative safe integer (use a bigint for larger values)', value: lw });
    }
  } else {
    problems.push({ path: '/lowWaterMark', message: 'must be a number or bigint of data blocks', value: lw });
  }

  const f = v['features'];
  if (f !== undefined) {
    if (typeof f !== 'object' || f === null) {
      problems.push({ path: '/features', message: 'must be an object', value: f });
    } else {
      const fv = f as Record<string, unknown>;
      const known = new Set<string>(FEATURES.map(([k]) => k));
      for (const key of Object.keys(fv)) {
        if (!known.has(key)) problems.push({ path: `/features/${key}`, message: 'is not a thin-pool feature', value: fv[key] });
        else if (fv[key] !== undefined && typeof fv[key] !== 'boolean') {
          problems.push({ path: `/features/${key}`, message: 'must be a boolean', value: fv[key] });
        }
      }
      const count = FEATURES.filter(([k]) => fv[k] === true).length;
      if (count > MAX_POOL_FEATURE_ARGS) {
        problems.push({
          path: '/features',
          message:
            `the kernel accepts at most ${MAX_POOL_FEATURE_ARGS} feature args; ` +
            'drop noDiscardPassdown, which ignoreDiscard already implies',
          value: count,
        });
      }
    }
  }
  return problems;
}

/**
 * Checks thin-pool params, reporting every problem at once.
 * @throws InvalidArgumentError listing all problems (see {@link poolParamsProblems}).
 */
export function validatePoolParams(p: unknown): ThinPoolParams {
  const problems = poolParamsProblems(p);
  if (problems.length > 0) throw new InvalidArgumentError('thin-pool params', problems);
  return p as ThinPoolParams;
}

/** Kernel feature words for `features`, in emit_flags() order. */
function featureWords(features: ThinPoolFeatures | undefined): string[] {
  return FEATURES.filter(([k]) => features?.[k] === true).map(([, word]) => word);
}

/**
 * The exact thin-pool params string for a table load:
 * `<meta> <data> <block_size> <low_water> <#features> [features…]`.
 *
 * The feature count is always written, even `0`, and features come in the
 * kernel's own order, so for `maj:min` devices the result equals the table
 * output the kernel gives back (minus its trailing space).
 * @throws InvalidArgumentError when the params are invalid.
 * @example formatPoolParams({ metadataDev: '7:0', dataDev: '7:1', dataBlockSize: 128,
 *   lowWaterMark: 32768, features: { skipBlockZeroing: true } })
 *   // → '7:0 7:1 128 32768 1 skip_block_zeroing'
 */
export function formatPoolParams(p: ThinPoolParams): string {
  validatePoolParams(p);
  const words = featureWords(p.features);
  return [p.metadataDev, p.dataDev, String(p.dataBlockSize), BigInt(p.lowWaterMark).toString(), String(words.length), ...words].join(' ');
}

/** Builds the KernelOutputError for field `index` (1-based) of a thin-pool params line. */
function badField(line: string, index: number, what: string, raw: string | undefined, expected: string): KernelOutputError {
  const got = raw === undefined ? 'nothing' : JSON.stringify(raw);
  return new KernelOutputError(`thin-pool table field ${index} (${what}): got ${got}, expected ${expected}`, line);
}

/**
 * Parses thin-pool params as the kernel reports them with
 * `DM_STATUS_TABLE_FLAG` (pool_status(), STATUSTYPE_TABLE):
 * `<meta maj:min> <data maj:min> <block_size> <low_water> <count> [features…] `
 * with a trailing space. Paths are accepted too, so our own
 * {@link formatPoolParams} output parses back. Feature words are matched
 * case-insensitively like the kernel's strcasecmp(); a missing count means no
 * features (the kernel's constructor allows that form).
 * @throws KernelOutputError naming the field index, raw value and expectation.
 */
export function parsePoolParams(line: string): ParsedThinPoolParams {
  const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
  const [meta, data, bsText, lwText, countText] = words;

  for (const [i, dev, what] of [[1, meta, 'metadata device'], [2, data, 'data device']] as const) {
    if (dev === undefined || deviceRefProblem(dev, '') !== undefined) {
      throw badField(line, i, what, dev, "'major:minor' or an absolute path");
    }
  }
  const bs = bsText !== undefined && /^\d+$/.test(bsText) ? Number(bsText) : NaN;
  if (!Number.isSafeInteger(bs)) throw badField(line, 3, 'data block size', bsText, 'a decimal number of sectors');
  const lowWaterMark = parseU64(lwText);
  if (lowWaterMark === undefined) throw badField(line, 4, 'low water mark', lwText, 'an unsigned 64-bit decimal');

  const features = {
    skipBlockZeroing: false,
    ignoreDiscard: false,
    noDiscardPassdown: false,
    readOnly: false,
    errorIfNoSpace: false,
  };
  if (countText !== undefined) {
    const count = /^\d+$/.test(countText) ? Number(countText) : NaN;
    if (!(count <= FEATURES.length)) {
      throw badField(line, 5, 'feature count', countText, `a decimal count of 0 … ${FEATURES.length}`);
    }
    if (words.length < 5 + count) {
      throw badField(line, words.length + 1, 'feature', undefined, `${count} feature word(s) after the count`);
    }
    if (words.length > 5 + count) {
      throw badField(line, 6 + count, 'end of line', words[5 + count], `nothing after ${count} feature word(s)`);
    }
    for (let i = 0; i < count; i++) {
      const word = words[5 + i] as string;
      const entry = FEATURES.find(([, w]) => w === word.toLowerCase());
      if (!entry) throw badField(line, 6 + i, 'feature', word, FEATURES.map(([, w]) => w).join(' | '));
      features[entry[0]] = true;
    }
  }
  return { metadataDev: meta as string, dataDev: data as string, dataBlockSize: bs, lowWaterMark, features };
}

/**
 * The `<length>` (in sectors) to give a thin-pool target over a data device of
 * `dataDevBytes` bytes: the device size in whole sectors, rounded down to
 * whole data blocks. The kernel derives the pool size as
 * `floor(length / data_block_size)` blocks (pool_preresume()), so a partial
 * trailing block is unusable anyway; rounding keeps the table honest.
 * @throws InvalidArgumentError when the size is negative, not an integer, or
 *   smaller than one data block, or when the block size is invalid.
 */
export function poolLengthSectors(dataDevBytes: bigint | number, dataBlockSize: number): bigint {
  const problems: ValidationProblem[] = [];
  const bytesOk =
    (typeof dataDevBytes === 'bigint' && dataDevBytes >= 0n) ||
    (typeof dataDevBytes === 'number' && Number.isSafeInteger(dataDevBytes) && dataDevBytes >= 0);
  if (!bytesOk) problems.push({ path: '/dataDevBytes', message: 'must be a non-negative integer', value: dataDevBytes });
  const bsOk =
    Number.isInteger(dataBlockSize) &&
    dataBlockSize >= DATA_BLOCK_SIZE_MIN_SECTORS &&
    dataBlockSize <= DATA_BLOCK_SIZE_MAX_SECTORS &&
    dataBlockSize % DATA_BLOCK_SIZE_MIN_SECTORS === 0;
  if (!bsOk) {
    problems.push({ path: '/dataBlockSize', message: 'must be a multiple of 128 in 128 … 2097152 sectors', value: dataBlockSize });
  }
  if (problems.length === 0) {
    const block = BigInt(dataBlockSize);
    const length = (BigInt(dataDevBytes) / BigInt(SECTOR_SIZE) / block) * block;
    if (length > 0n) return length;
    problems.push({ path: '/dataDevBytes', message: `must hold at least one data block (${dataBlockSize * SECTOR_SIZE} bytes)`, value: dataDevBytes });
  }
  throw new InvalidArgumentError('thin-pool size', problems);
}
