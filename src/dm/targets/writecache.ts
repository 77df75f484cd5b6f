// SPDX-License-Identifier: MIT
// The `writecache` target (Documentation/admin-guide/device-mapper/writecache.rst,
// drivers/md/dm-writecache.c): `<p|s> <origin dev> <cache dev> <block size> <#optional args>
// [<optional args>...]`.
//
// Writes go to the cache device (`s`: an SSD, `p`: persistent memory) and are written back to the
// origin in the background (from `high_watermark` % used down to `low_watermark` %); reads are not
// cached. The first sector of the cache device must be zeroed or hold a superblock from an earlier
// use. `writecache_status` STATUSTYPE_TABLE prints the optional arguments in one fixed order
// whatever the order given (start_sector, high_watermark, low_watermark, writeback_jobs,
// autocommit_blocks, autocommit_time, max_age, cleaner, fua/nofua, metadata_only,
// pause_writeback), each only when it was given.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, intProblem, sectorProblem, U32_MAX, words } from './args.js';

export const WRITECACHE_TARGET = 'writecache';

/** Parameters of a writecache target. */
export interface WritecacheParams {
  /** `'ssd'` (`s`) or `'pmem'` (`p`, persistent memory: a DAX device). */
  readonly mode: 'ssd' | 'pmem';
  /** The slow device whose writes are cached. */
  readonly originDevice: DevNum;
  readonly cacheDevice: DevNum;
  /** Bytes: a power of two in 512..4096 (at most the page size; `writecache_ctr`). */
  readonly blockSize: number;
  /** `start_sector n`: where the cache starts on the cache device, in sectors. */
  readonly startSector?: bigint;
  /** `high_watermark n`: start writeback at n % used, 0..100 (default 50). */
  readonly highWatermark?: number;
  /** `low_watermark n`: stop writeback below n % used, 0..100, at most highWatermark (default 45). */
  readonly lowWatermark?: number;
  /** `writeback_jobs n`: at most n blocks in flight during writeback. 0..UINT_MAX. */
  readonly writebackJobs?: number;
  /** `autocommit_blocks n`: commit after n blocks written without a flush. 0..UINT_MAX. */
  readonly autocommitBlocks?: number;
  /** `autocommit_time ms`: commit after that long without a flush, 0..3600000. */
  readonly autocommitTimeMs?: number;
  /** `max_age ms`: write back blocks older than that, 0..86400000. */
  readonly maxAgeMs?: number;
  /** `cleaner`: write everything back and cache no new writes. true or absent. */
  readonly cleaner?: true;
  /** `fua` / `nofua` (pmem only): use FUA when writing back. */
  readonly fua?: boolean;
  /** `metadata_only`: only REQ_META writes are cached (ssd only). true or absent. */
  readonly metadataOnly?: true;
  /** `pause_writeback ms`: pause writeback after origin writes in the last ms (ssd only), 0..60000. */
  readonly pauseWritebackMs?: number;
}

const NUMERIC = [
  ['highWatermark', 'high_watermark', 0, 100],
  ['lowWatermark', 'low_watermark', 0, 100],
  ['writebackJobs', 'writeback_jobs', 0, U32_MAX],
  ['autocommitBlocks', 'autocommit_blocks', 0, U32_MAX],
  ['autocommitTimeMs', 'autocommit_time', 0, 3600000],
  ['maxAgeMs', 'max_age', 0, 86400000],
] as const;

/** Every problem with writecache params, checked as `writecache_ctr` (6.1) does. */
export function writecacheParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a writecache params object', value: p }];
  const v = p as Partial<Record<keyof WritecacheParams, unknown>>;
  const out: ValidationProblem[] = [];
  if (v.mode !== 'ssd' && v.mode !== 'pmem') out.push({ path: `${path}/mode`, message: "must be 'ssd' or 'pmem'", value: v.mode });
  out.push(...devNumProblems(v.originDevice, `${path}/originDevice`), ...devNumProblems(v.cacheDevice, `${path}/cacheDevice`));
  const bs = v.blockSize;
  if (typeof bs !== 'number' || ![512, 1024, 2048, 4096].includes(bs))
    out.push({ path: `${path}/blockSize`, message: 'must be 512, 1024, 2048 or 4096 (a power of two up to the page size)', value: bs });
  if (v.startSector !== undefined) out.push(...sectorProblem(v.startSector, `${path}/startSector`));
  for (const [key, , min, max] of NUMERIC) if (v[key] !== undefined) out.push(...intProblem(v[key], `${path}/${key}`, min, max));
  if (typeof v.highWatermark === 'number' && typeof v.lowWatermark === 'number' && v.lowWatermark > v.highWatermark)
    out.push({ path: `${path}/lowWatermark`, message: 'must not exceed highWatermark (the kernel refuses it)', value: v.lowWatermark });
  for (const k of ['cleaner', 'metadataOnly'] as const)
    if (v[k] !== undefined && v[k] !== true) out.push({ path: `${path}/${k}`, message: 'must be true or absent', value: v[k] });
  if (v.fua !== undefined) {
    if (typeof v.fua !== 'boolean') out.push({ path: `${path}/fua`, message: 'must be a boolean or absent', value: v.fua });
    else if (v.mode === 'ssd') out.push({ path: `${path}/fua`, message: 'fua/nofua apply to pmem mode only (the kernel refuses them for ssd)', value: v.fua });
  }
  if (v.metadataOnly === true && v.mode === 'pmem')
    out.push({ path: `${path}/metadataOnly`, message: 'metadata_only applies to ssd mode only', value: v.metadataOnly });
  if (v.pauseWritebackMs !== undefined) {
    out.push(...intProblem(v.pauseWritebackMs, `${path}/pauseWritebackMs`, 0, 60000));
    if (v.mode === 'pmem') out.push({ path: `${path}/pauseWritebackMs`, message: 'pause_writeback applies to ssd mode only', value: v.pauseWritebackMs });
  }
  return out;
}

/**
 * Encodes writecache params as the kernel reports them back in table mode (`writecache_status`
 * STATUSTYPE_TABLE: `"%c %s %s %u "`, the optional-argument count, then `" <name> <value>"` per
 * argument in the kernel's fixed order; no trailing blank).
 * @example formatWritecacheParams({mode: 'ssd', originDevice: {major: 7, minor: 0}, cacheDevice: {major: 7, minor: 1}, blockSize: 4096})
 *   // → 's 7:0 7:1 4096 0'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatWritecacheParams(p: WritecacheParams): string {
  const found = writecacheParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('writecache params', found);
  const args: string[] = [];
  if (p.startSector !== undefined) args.push('start_sector', String(p.startSector));
  for (const [key, name] of NUMERIC) if (p[key] !== undefined) args.push(name, String(p[key]));
  if (p.cleaner === true) args.push('cleaner');
  if (p.fua !== undefined) args.push(p.fua ? 'fua' : 'nofua');
  if (p.metadataOnly === true) args.push('metadata_only');
  if (p.pauseWritebackMs !== undefined) args.push('pause_writeback', String(p.pauseWritebackMs));
  return [p.mode === 'ssd' ? 's' : 'p', formatDevNum(p.originDevice), formatDevNum(p.cacheDevice), String(p.blockSize), String(args.length), ...args].join(' ');
}

/**
 * Parses writecache params: the kernel's table form, or any line `writecache_ctr` accepts
 * (optional arguments in any order; the mode and the names are matched with `strcasecmp` there,
 * and lower-cased here).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseWritecacheParams(params: string): WritecacheParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('writecache params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length < 5) throw bad("must be '<p|s> <origin dev> <cache dev> <block size> <#args> [<args>...]'");
  const m = w[0]!.toLowerCase();
  if (m !== 's' && m !== 'p') throw bad("mode must be 's' or 'p'", w[0]);
  const blockSize = decimalNumber(w[3], U32_MAX);
  if (blockSize === undefined) throw bad('block size must be a decimal', w[3]);
  const n = decimalNumber(w[4], U32_MAX);
  if (n === undefined) throw bad('optional argument count must be a decimal', w[4]);
  const rest = w.slice(5);
  if (rest.length !== n) throw bad(`declares ${n} optional argument(s) but has ${rest.length}`);
  const out: Record<string, unknown> = {
    mode: m === 's' ? 'ssd' : 'pmem',
    originDevice: parseDevNum(w[1]!),
    cacheDevice: parseDevNum(w[2]!),
    blockSize,
  };
  const seen = new Set<string>();
  for (let i = 0; i < rest.length; ) {
    const name = rest[i]!.toLowerCase();
    const once = (key: string): void => {
      if (seen.has(key)) throw bad(`${name} given twice`, name);
      seen.add(key);
    };
    const numeric = NUMERIC.find(([, kname]) => kname === name);
    if (name === 'start_sector') {
      once('startSector');
      const s = decimalBigint(rest[i + 1]);
      if (s === undefined) throw bad('start_sector must be followed by a decimal', rest[i + 1]);
      out['startSector'] = s;
      i += 2;
    } else if (numeric !== undefined || name === 'pause_writeback') {
      const key = numeric?.[0] ?? 'pauseWritebackMs';
      once(key);
      const val = decimalNumber(rest[i + 1], U32_MAX);
      if (val === undefined) throw bad(`${name} must be followed by a decimal`, rest[i + 1]);
      out[key] = val;
      i += 2;
    } else if (name === 'cleaner' || name === 'metadata_only') {
      once(name);
      out[name === 'cleaner' ? 'cleaner' : 'metadataOnly'] = true;
      i += 1;
    } else if (name === 'fua' || name === 'nofua') {
      once('fua');
      out['fua'] = name === 'fua';
      i += 1;
    } else throw bad('unknown writecache argument', name);
  }
  const p = out as unknown as WritecacheParams;
  const found = writecacheParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('writecache params', found);
  return p;
}

/** A complete writecache target line. @throws InvalidArgumentError */
export function writecacheTarget(start: bigint, length: bigint, p: WritecacheParams): TargetLine {
  return { start, length, type: WRITECACHE_TARGET, params: formatWritecacheParams(p) };
}

/** Event counters of the writecache status (kernel 5.19 and later; reset by `clear_stats`). */
export interface WritecacheStats {
  readonly reads: bigint;
  readonly readHits: bigint;
  readonly writes: bigint;
  readonly writeHitsUncommitted: bigint;
  readonly writeHitsCommitted: bigint;
  readonly writesAround: bigint;
  readonly writesAllocate: bigint;
  readonly writesBlockedOnFreelist: bigint;
  readonly flushes: bigint;
  readonly discards: bigint;
}

/** The writecache's INFO status. */
export interface WritecacheStatus {
  /** 0, or the (negative) errno of the error that stopped the cache (`writecache_has_error`). */
  readonly error: number;
  /** Cache blocks in total. */
  readonly blocks: bigint;
  /** Cache blocks free. `blocks - freeBlocks` hold data not yet written back. */
  readonly freeBlocks: bigint;
  /** Blocks being written back right now. */
  readonly writebackBlocks: bigint;
  /** The event counters, when the kernel prints them (5.19 and later: 6.1, 6.12). */
  readonly stats?: WritecacheStats;
}

/**
 * Parses writecache's INFO status: `<error> <blocks> <free blocks> <blocks under writeback>` and,
 * from 5.19, ten counters (`writecache_status` STATUSTYPE_INFO in drivers/md/dm-writecache.c:
 * `"%ld %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu"`).
 * @throws KernelOutputError when the line has another shape.
 */
export function parseWritecacheStatus(line: string): WritecacheStatus {
  const bad = (why: string): KernelOutputError => new KernelOutputError(`writecache status: ${why}: ${JSON.stringify(line)}`, line);
  const w = words(line);
  if (w.length !== 4 && w.length !== 14) throw bad('expected 4 or 14 fields');
  if (!/^-?\d{1,10}$/.test(w[0]!) || Math.abs(Number(w[0])) > 4095) throw bad('error is not a decimal errno');
  const n = w.slice(1).map((s) => decimalBigint(s));
  if (n.some((x) => x === undefined)) throw bad('a counter is not a decimal');
  const v = n as bigint[];
  const base = { error: Number(w[0]), blocks: v[0]!, freeBlocks: v[1]!, writebackBlocks: v[2]! };
  if (w.length === 4) return base;
  const [reads, readHits, writes, writeHitsUncommitted, writeHitsCommitted, writesAround, writesAllocate, writesBlockedOnFreelist, flushes, discards] =
    v.slice(3) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
  return {
    ...base,
    stats: { reads, readHits, writes, writeHitsUncommitted, writeHitsCommitted, writesAround, writesAllocate, writesBlockedOnFreelist, flushes, discards },
  };
}

/** The messages `writecache_message` takes (no arguments). */
export type WritecacheMessage =
  /** Commit and write back everything now; returns once done (EIO on a cache error, EBUSY while suspended). */
  | 'flush'
  /** Flush everything on the next suspend (before replacing the table with linear). */
  | 'flush_on_suspend'
  /** Switch to cleaner mode: write everything back, cache nothing new. */
  | 'cleaner'
  /** Zero the status counters (5.19 and later). */
  | 'clear_stats';

/**
 * The text of a writecache message (`writecache_message` in drivers/md/dm-writecache.c).
 * @throws InvalidArgumentError for another name.
 */
export function writecacheMessage(name: WritecacheMessage): string {
  if (name !== 'flush' && name !== 'flush_on_suspend' && name !== 'cleaner' && name !== 'clear_stats')
    throw new InvalidArgumentError('writecache message', [{ path: '/name', message: "must be 'flush', 'flush_on_suspend', 'cleaner' or 'clear_stats'", value: name }]);
  return name;
}
