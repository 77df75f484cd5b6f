// SPDX-License-Identifier: MIT
// The `cache` target (Documentation/admin-guide/device-mapper/cache.rst, drivers/md/dm-cache-target.c,
// policies in drivers/md/dm-cache-policy-smq.c and dm-cache-policy-cleaner.c):
// `<metadata dev> <cache dev> <origin dev> <block size> <#feature args> [<feature arg>]*
//  <policy> <#policy args> [<policy arg>]*`.
//
// A fast `cache dev` holds copies of `block size` chunks of the slow `origin dev`; `metadata dev`
// records which (zeroed before first use: the kernel formats it then). `cache_status`
// STATUSTYPE_TABLE prints the three devices as `major:minor` and then echoes the remaining
// constructor arguments word for word (`cache->ctr_args`), so the table form is exactly the words
// that were loaded: the encoder fixes one canonical order (io mode, metadata2,
// no_discard_passdown; policy arguments in the given order) and the kernel reports that back.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, U32_MAX, words } from './args.js';

export const CACHE_TARGET = 'cache';
/** `DATA_DEV_BLOCK_SIZE_MIN_SECTORS` (32 KiB): the block size is a multiple of it. */
export const CACHE_BLOCK_SIZE_MIN_SECTORS = 64n;
/** `DATA_DEV_BLOCK_SIZE_MAX_SECTORS` (1 GiB). */
export const CACHE_BLOCK_SIZE_MAX_SECTORS = 2097152n;

/** The policies the kernel ships: `smq` (also registered as `mq` and `default`) and `cleaner`. */
export type CachePolicyName = 'smq' | 'mq' | 'default' | 'cleaner';
const POLICIES: readonly string[] = ['smq', 'mq', 'default', 'cleaner'];
/** `writeback` (default), `writethrough` or `passthrough` (`parse_features`). */
export type CacheIoMode = 'writeback' | 'writethrough' | 'passthrough';
const IO_MODES: readonly string[] = ['writeback', 'writethrough', 'passthrough'];

/** Parameters of a cache target. */
export interface CacheParams {
  readonly metadataDevice: DevNum;
  readonly cacheDevice: DevNum;
  readonly originDevice: DevNum;
  /** Cache block size in sectors: a multiple of 64 (32 KiB) in 64..2097152 (`parse_block_size`). */
  readonly blockSize: bigint;
  /**
   * The io mode feature, printed as given. Absent: no io mode word (the kernel's default is
   * writeback, and the table then shows none).
   */
  readonly ioMode?: CacheIoMode;
  /** `metadata2`: the version 2 metadata format. true or absent. */
  readonly metadata2?: true;
  /** `no_discard_passdown`: discards are not passed to the origin. true or absent. */
  readonly noDiscardPassdown?: true;
  /** The policy name (`smq`; `cleaner` writes every dirty block back and caches nothing new). */
  readonly policy: CachePolicyName;
  /**
   * Policy arguments, `<key> <value>` pairs in order. The core takes `migration_threshold`
   * (sectors, `set_config_value`); smq and cleaner take no other key (the kernel refuses one).
   */
  readonly policyArgs?: readonly (readonly [key: 'migration_threshold', value: bigint])[];
}

/** Every problem with cache params, checked as `cache_ctr` (parse_cache_args) does. */
export function cacheParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a cache params object', value: p }];
  const v = p as Partial<Record<keyof CacheParams, unknown>>;
  const out = [
    ...devNumProblems(v.metadataDevice, `${path}/metadataDevice`),
    ...devNumProblems(v.cacheDevice, `${path}/cacheDevice`),
    ...devNumProblems(v.originDevice, `${path}/originDevice`),
  ];
  const bs = v.blockSize;
  if (
    typeof bs !== 'bigint' ||
    bs < CACHE_BLOCK_SIZE_MIN_SECTORS ||
    bs > CACHE_BLOCK_SIZE_MAX_SECTORS ||
    bs % CACHE_BLOCK_SIZE_MIN_SECTORS !== 0n
  )
    out.push({ path: `${path}/blockSize`, message: 'must be a bigint multiple of 64 sectors in 64..2097152', value: bs });
  if (v.ioMode !== undefined && !IO_MODES.includes(v.ioMode as string))
    out.push({ path: `${path}/ioMode`, message: "must be 'writeback', 'writethrough', 'passthrough' or absent", value: v.ioMode });
  for (const k of ['metadata2', 'noDiscardPassdown'] as const)
    if (v[k] !== undefined && v[k] !== true) out.push({ path: `${path}/${k}`, message: 'must be true or absent', value: v[k] });
  if (typeof v.policy !== 'string' || !POLICIES.includes(v.policy))
    out.push({ path: `${path}/policy`, message: "must be 'smq', 'mq', 'default' or 'cleaner'", value: v.policy });
  if (v.policyArgs !== undefined) {
    if (!Array.isArray(v.policyArgs)) out.push({ path: `${path}/policyArgs`, message: 'must be an array of [key, value] pairs', value: v.policyArgs });
    else
      v.policyArgs.forEach((a: unknown, i) => {
        const ap = `${path}/policyArgs/${i}`;
        if (!Array.isArray(a) || a.length !== 2) out.push({ path: ap, message: 'must be a [key, value] pair', value: a });
        else {
          if (a[0] !== 'migration_threshold') out.push({ path: `${ap}/0`, message: "must be 'migration_threshold'", value: a[0] });
          // set_config_value: kstrtoul into an unsigned long, stored as sector_t.
          if (typeof a[1] !== 'bigint' || a[1] < 0n || a[1] > (1n << 64n) - 1n)
            out.push({ path: `${ap}/1`, message: 'must be a bigint in 0..2^64-1', value: a[1] });
        }
      });
  }
  return out;
}

/**
 * Encodes cache params as the kernel reports them back in table mode: `cache_status`
 * STATUSTYPE_TABLE prints `"<meta> <cache> <origin>"` and then `" %s"` for each remaining
 * constructor word as it was given: no trailing blank.
 * @example formatCacheParams({metadataDevice: {major: 7, minor: 0}, cacheDevice: {major: 7, minor: 1},
 *   originDevice: {major: 7, minor: 2}, blockSize: 64n, ioMode: 'writeback', policy: 'smq'})
 *   // → '7:0 7:1 7:2 64 1 writeback smq 0'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatCacheParams(p: CacheParams): string {
  const found = cacheParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('cache params', found);
  const features: string[] = [];
  if (p.ioMode !== undefined) features.push(p.ioMode);
  if (p.metadata2 === true) features.push('metadata2');
  if (p.noDiscardPassdown === true) features.push('no_discard_passdown');
  const pargs = (p.policyArgs ?? []).flatMap(([k, val]) => [k, String(val)]);
  return [
    formatDevNum(p.metadataDevice),
    formatDevNum(p.cacheDevice),
    formatDevNum(p.originDevice),
    String(p.blockSize),
    String(features.length),
    ...features,
    p.policy,
    String(pargs.length),
    ...pargs,
  ].join(' ');
}

/**
 * Parses cache params: the kernel's table form, or any line `cache_ctr` accepts (feature names
 * are case-insensitive there, `strcasecmp`; read back they are lower-cased here, so a line with
 * upper-case words does not re-encode to itself).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseCacheParams(params: string): CacheParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('cache params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length < 7)
    throw bad("must be '<metadata dev> <cache dev> <origin dev> <block size> <#features> [<feature>...] <policy> <#policy args> [<arg>...]'");
  const blockSize = decimalBigint(w[3]);
  if (blockSize === undefined) throw bad('block size must be a decimal', w[3]);
  const nf = decimalNumber(w[4], U32_MAX);
  if (nf === undefined) throw bad('feature count must be a decimal', w[4]);
  if (w.length < 5 + nf + 2) throw bad(`declares ${nf} feature(s) but the policy does not follow them`);
  let ioMode: CacheIoMode | undefined;
  let metadata2 = false;
  let noDiscardPassdown = false;
  for (const f of w.slice(5, 5 + nf)) {
    const name = f.toLowerCase();
    if (IO_MODES.includes(name)) {
      if (ioMode !== undefined) throw bad('duplicate cache io mode feature', f);
      ioMode = name as CacheIoMode;
    } else if (name === 'metadata2') metadata2 = true;
    else if (name === 'no_discard_passdown') noDiscardPassdown = true;
    else throw bad('unknown cache feature (known: writeback, writethrough, passthrough, metadata2, no_discard_passdown)', f);
  }
  const policy = w[5 + nf]!;
  const np = decimalNumber(w[6 + nf], U32_MAX);
  if (np === undefined) throw bad('policy argument count must be a decimal', w[6 + nf]);
  const rest = w.slice(7 + nf);
  if (rest.length !== np) throw bad(`declares ${np} policy argument(s) but has ${rest.length}`);
  if (np % 2 !== 0) throw bad('policy arguments must be <key> <value> pairs');
  const policyArgs: [key: 'migration_threshold', value: bigint][] = [];
  for (let i = 0; i < rest.length; i += 2) {
    if (rest[i]!.toLowerCase() !== 'migration_threshold') throw bad('unknown policy argument (known: migration_threshold)', rest[i]);
    const val = decimalBigint(rest[i + 1]);
    if (val === undefined) throw bad('migration_threshold must be a decimal', rest[i + 1]);
    policyArgs.push(['migration_threshold', val]);
  }
  const p: CacheParams = {
    metadataDevice: parseDevNum(w[0]!),
    cacheDevice: parseDevNum(w[1]!),
    originDevice: parseDevNum(w[2]!),
    blockSize,
    ...(ioMode !== undefined ? { ioMode } : {}),
    ...(metadata2 ? { metadata2: true as const } : {}),
    ...(noDiscardPassdown ? { noDiscardPassdown: true as const } : {}),
    policy: policy as CachePolicyName,
    ...(policyArgs.length > 0 ? { policyArgs } : {}),
  };
  const found = cacheParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('cache params', found);
  return p;
}

/** A complete cache target line. @throws InvalidArgumentError */
export function cacheTarget(start: bigint, length: bigint, p: CacheParams): TargetLine {
  return { start, length, type: CACHE_TARGET, params: formatCacheParams(p) };
}

/** A `used/total` pair of the status line. */
export interface CacheUsage {
  readonly used: bigint;
  readonly total: bigint;
}

/** The cache's INFO status, as `cache_status` STATUSTYPE_INFO prints it. */
export type CacheStatus =
  | {
      readonly state: 'ok';
      /** Metadata block size in sectors (`DM_CACHE_METADATA_BLOCK_SIZE`, 8). */
      readonly metadataBlockSize: number;
      /** Metadata blocks used / total. */
      readonly metadata: CacheUsage;
      /** Cache block size in sectors. */
      readonly cacheBlockSize: bigint;
      /** Cache blocks holding origin data (policy residency) / cache blocks. */
      readonly cache: CacheUsage;
      readonly readHits: bigint;
      readonly readMisses: bigint;
      readonly writeHits: bigint;
      readonly writeMisses: bigint;
      readonly demotions: bigint;
      readonly promotions: bigint;
      /** Cache blocks not yet written back to the origin. */
      readonly dirty: bigint;
      /** The features as printed (the io mode, e.g. `['writeback']`). */
      readonly features: readonly string[];
      /** Core arguments as key → value (`migration_threshold`). */
      readonly coreArgs: Readonly<Record<string, string>>;
      readonly policy: string;
      /** The policy's own arguments (`policy_emit_config_values`; smq and cleaner print none). */
      readonly policyArgs: readonly string[];
      /** `rw`, or `ro` after a metadata error put the cache in read-only mode. */
      readonly metadataMode: 'rw' | 'ro';
      /** `needs_check` set in the metadata (run cache_check), else false (`-`). */
      readonly needsCheck: boolean;
    }
  /** `Fail`: the cache is in fail mode; `Error`: reading the metadata for the status failed. */
  | { readonly state: 'fail' | 'error' };

/**
 * Parses cache's INFO status: `<metadata block size> <used>/<total> <cache block size>
 * <used>/<total> <read hits> <read misses> <write hits> <write misses> <demotions> <promotions>
 * <dirty> <#features> <features>* <#core args> <core args>* <policy> <#policy args> <args>*
 * <rw|ro> <needs_check|->` (`cache_status` STATUSTYPE_INFO in drivers/md/dm-cache-target.c, 6.1
 * and 6.12; each field followed by a blank), or `Fail` / `Error`.
 * @throws KernelOutputError when the line has another shape.
 */
export function parseCacheStatus(line: string): CacheStatus {
  const bad = (why: string): KernelOutputError => new KernelOutputError(`cache status: ${why}: ${JSON.stringify(line)}`, line);
  const w = words(line);
  if (w.length === 1 && w[0] === 'Fail') return { state: 'fail' };
  if (w.length >= 1 && w[w.length - 1] === 'Error') return { state: 'error' };
  if (w.length < 17) throw bad('too few fields');
  const num = (i: number, what: string): bigint => {
    const n = decimalBigint(w[i]);
    if (n === undefined) throw bad(`${what} is not a decimal`);
    return n;
  };
  const pair = (i: number, what: string): CacheUsage => {
    const m = /^(\d{1,20})\/(\d{1,20})$/.exec(w[i]!);
    const used = decimalBigint(m?.[1]);
    const total = decimalBigint(m?.[2]);
    if (used === undefined || total === undefined) throw bad(`${what} is not <used>/<total>`);
    return { used, total };
  };
  const mbs = decimalNumber(w[0], U32_MAX);
  if (mbs === undefined) throw bad('metadata block size is not a decimal');
  const metadata = pair(1, 'metadata usage');
  const cacheBlockSize = num(2, 'cache block size');
  const cache = pair(3, 'cache usage');
  const counters = [4, 5, 6, 7, 8, 9, 10].map((i) => num(i, 'a counter'));
  let i = 11;
  const group = (what: string): string[] => {
    const n = decimalNumber(w[i], 1000);
    if (n === undefined) throw bad(`${what} count is not a decimal`);
    if (i + 1 + n > w.length) throw bad(`${what} count exceeds the fields`);
    const g = w.slice(i + 1, i + 1 + n);
    i += 1 + n;
    return g;
  };
  const features = group('feature');
  const core = group('core argument');
  if (core.length % 2 !== 0) throw bad('core arguments are not key/value pairs');
  const coreArgs: Record<string, string> = {};
  for (let k = 0; k < core.length; k += 2) {
    if (Object.prototype.hasOwnProperty.call(coreArgs, core[k]!)) throw bad('a core argument appears twice');
    // defineProperty: a key such as `__proto__` is kept as data.
    Object.defineProperty(coreArgs, core[k]!, { value: core[k + 1]!, enumerable: true, writable: true, configurable: true });
  }
  const policy = w[i++];
  if (policy === undefined) throw bad('no policy');
  const policyArgs = group('policy argument');
  const mode = w[i++];
  const check = w[i++];
  if (mode !== 'rw' && mode !== 'ro') throw bad('metadata mode is not rw or ro');
  if (check !== 'needs_check' && check !== '-') throw bad('needs_check field is not needs_check or -');
  if (i !== w.length) throw bad('unexpected trailing fields');
  const [readHits, readMisses, writeHits, writeMisses, demotions, promotions, dirty] = counters as [bigint, bigint, bigint, bigint, bigint, bigint, bigint];
  return {
    state: 'ok',
    metadataBlockSize: mbs,
    metadata,
    cacheBlockSize,
    cache,
    readHits,
    readMisses,
    writeHits,
    writeMisses,
    demotions,
    promotions,
    dirty,
    features,
    coreArgs,
    policy,
    policyArgs,
    metadataMode: mode,
    needsCheck: check === 'needs_check',
  };
}

/**
 * `migration_threshold <sectors>`: a `<key> <value>` message (`cache_message` →
 * `set_config_value`), how many sectors the cache may migrate at once.
 * @throws InvalidArgumentError when `sectors` is not a bigint in 0..2^64-1.
 */
export function cacheMigrationThresholdMessage(sectors: bigint): string {
  if (typeof sectors !== 'bigint' || sectors < 0n || sectors > (1n << 64n) - 1n)
    throw new InvalidArgumentError('cache message', [{ path: '/sectors', message: 'must be a bigint in 0..2^64-1', value: sectors }]);
  return `migration_threshold ${sectors}`;
}

/**
 * `invalidate_cblocks <cblock>|<begin>-<end> ...`: drops those cache blocks (end exclusive;
 * `cache_message` → `process_invalidate_cblocks_message`). The kernel accepts it only in
 * passthrough mode (EPERM otherwise) and refuses ranges beyond the cache (EINVAL).
 * @throws InvalidArgumentError when a range is not `{begin, end}` with begin < end, or none is given.
 */
export function cacheInvalidateCblocksMessage(ranges: readonly (bigint | { readonly begin: bigint; readonly end: bigint })[]): string {
  const problems: ValidationProblem[] = [];
  if (!Array.isArray(ranges) || ranges.length === 0) problems.push({ path: '/ranges', message: 'must be a non-empty array', value: ranges });
  const text = (Array.isArray(ranges) ? ranges : []).map((r, i) => {
    if (typeof r === 'bigint') {
      if (r < 0n || r >= (1n << 64n) - 1n) problems.push({ path: `/ranges/${i}`, message: 'must be a bigint cache block in 0..2^64-2', value: r });
      return String(r);
    }
    const ok = typeof r === 'object' && r !== null && typeof r.begin === 'bigint' && typeof r.end === 'bigint' && r.begin >= 0n && r.end > r.begin && r.end <= (1n << 64n) - 1n;
    if (!ok) problems.push({ path: `/ranges/${i}`, message: 'must be {begin, end} bigints with 0 <= begin < end', value: r });
    return ok ? `${r.begin}-${r.end}` : '';
  });
  if (problems.length > 0) throw new InvalidArgumentError('cache message', problems);
  return `invalidate_cblocks ${text.join(' ')}`;
}
