// SPDX-License-Identifier: MIT
// The `integrity` target (Documentation/admin-guide/device-mapper/dm-integrity.rst,
// drivers/md/dm-integrity.c): `<dev> <offset> <tag size> <mode> <#args> [<args>...]`.
//
// Standalone with `internal_hash:<alg>`, every sector (or block) written gets a checksum tag kept
// on the same device (or a `meta_device`); a read whose data does not match its tag fails with
// EIO and counts a mismatch. Modes: `J` journaled (data and tags written through a journal, so
// they cannot tear apart), `D` direct (no journal), `R` recovery (no checks, read-only), `B`
// bitmap, `I` inline (6.11 and later). A device whose superblock is all zeroes is formatted on the
// first load; the data area's tags are not initialised then, so reading a sector never written
// fails until it is written (or `recalculate` computed its tags).
//
// `dm_integrity_status` STATUSTYPE_TABLE reports what the kernel decided, not what was given: it
// always prints `journal_sectors`, `interleave_sectors` and `buffer_sectors` (and in `J` mode
// `journal_watermark` and `commit_time`, in `B` mode `sectors_per_bit` and
// `bitmap_flush_interval`) with the values in force, journal_sectors rounded to whole journal
// sections, and a tag size of 0 replaced by the hash's size. So the encoder prints exactly the
// fields given, in the kernel's order; a table read back parses to params that re-encode to the
// same text and load back to the same device.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, intProblem, sectorProblem, U32_MAX, words } from './args.js';

export const INTEGRITY_TARGET = 'integrity';

/** `J` journal, `D` direct, `R` recovery, `B` bitmap, `I` inline (6.11 and later). */
export type IntegrityMode = 'J' | 'D' | 'R' | 'B' | 'I';
const MODES: readonly string[] = ['J', 'D', 'R', 'B', 'I'];

/** A crypto algorithm for `internal_hash`, `journal_crypt` or `journal_mac`, with an optional hex key. */
export interface IntegrityAlgorithm {
  /** The kernel crypto API name (`crc32c`, `sha256`, `hmac(sha256)`): no blank or colon. */
  readonly algorithm: string;
  /** The key as hex (even length), printed in the table as given: it is not hidden. */
  readonly keyHex?: string;
}

/** Parameters of an integrity target. */
export interface IntegrityParams {
  readonly device: DevNum;
  /** Sectors at the start of `device` that are left alone (`ic->start`). */
  readonly offset: bigint;
  /** Bytes of tag per sector (block): 1..65535, or 0 for the internal hash's digest size. */
  readonly tagSize: number;
  readonly mode: IntegrityMode;
  /** `meta_device:<dev>`: tags on a separate device. */
  readonly metaDevice?: DevNum;
  /** `block_size:<bytes>`: 512..4096, a power of two; 512 (the default) is not printed back. */
  readonly blockSize?: number;
  /** `recalculate`: compute missing tags in the background (needs internal_hash). true or absent. */
  readonly recalculate?: true;
  /** `allow_discards`. true or absent. */
  readonly allowDiscards?: true;
  /** `journal_sectors:<n>`. */
  readonly journalSectors?: number;
  /** `interleave_sectors:<n>` (a power of two; 1 with a meta device). */
  readonly interleaveSectors?: number;
  /** `buffer_sectors:<n>` (a power of two). */
  readonly bufferSectors?: number;
  /** `journal_watermark:<percent>` (J mode), 0..100. */
  readonly journalWatermark?: number;
  /** `commit_time:<ms>` (J mode). */
  readonly commitTimeMs?: number;
  /** `sectors_per_bit:<n>` (B mode). */
  readonly sectorsPerBit?: bigint;
  /** `bitmap_flush_interval:<ms>` (B mode). */
  readonly bitmapFlushIntervalMs?: number;
  /** `fix_padding`, `fix_hmac`, `legacy_recalculate`. true or absent. */
  readonly fixPadding?: true;
  readonly fixHmac?: true;
  readonly legacyRecalculate?: true;
  readonly internalHash?: IntegrityAlgorithm;
  readonly journalCrypt?: IntegrityAlgorithm;
  readonly journalMac?: IntegrityAlgorithm;
}

const NUM_OPTS = [
  ['journalSectors', 'journal_sectors'],
  ['interleaveSectors', 'interleave_sectors'],
  ['bufferSectors', 'buffer_sectors'],
  ['journalWatermark', 'journal_watermark'],
  ['commitTimeMs', 'commit_time'],
] as const;
const FLAG_OPTS = [
  ['fixPadding', 'fix_padding'],
  ['fixHmac', 'fix_hmac'],
  ['legacyRecalculate', 'legacy_recalculate'],
] as const;
const ALG_OPTS = [
  ['internalHash', 'internal_hash'],
  ['journalCrypt', 'journal_crypt'],
  ['journalMac', 'journal_mac'],
] as const;

function algorithmProblems(a: unknown, path: string): ValidationProblem[] {
  if (typeof a !== 'object' || a === null) return [{ path, message: 'must be {algorithm, keyHex?}', value: a }];
  const v = a as Partial<Record<keyof IntegrityAlgorithm, unknown>>;
  const out: ValidationProblem[] = [];
  if (typeof v.algorithm !== 'string' || !/^[A-Za-z0-9_()+,.-]{1,127}$/.test(v.algorithm))
    out.push({ path: `${path}/algorithm`, message: 'must be a crypto API name (no blank or colon)', value: v.algorithm });
  if (v.keyHex !== undefined && (typeof v.keyHex !== 'string' || !/^(?:[0-9a-fA-F]{2}){1,512}$/.test(v.keyHex)))
    out.push({ path: `${path}/keyHex`, message: 'must be hex of even length (1..512 bytes)', value: '[key]' });
  return out;
}

/** Every problem with integrity params, checked as `dm_integrity_ctr` (6.1) does. */
export function integrityParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be an integrity params object', value: p }];
  const v = p as Partial<Record<keyof IntegrityParams, unknown>>;
  const out = devNumProblems(v.device, `${path}/device`);
  out.push(...sectorProblem(v.offset, `${path}/offset`));
  out.push(...intProblem(v.tagSize, `${path}/tagSize`, 0, 0xffff));
  if (typeof v.mode !== 'string' || !MODES.includes(v.mode)) out.push({ path: `${path}/mode`, message: "must be 'J', 'D', 'R', 'B' or 'I'", value: v.mode });
  if (v.metaDevice !== undefined) out.push(...devNumProblems(v.metaDevice, `${path}/metaDevice`));
  if (v.blockSize !== undefined && (typeof v.blockSize !== 'number' || ![512, 1024, 2048, 4096].includes(v.blockSize)))
    out.push({ path: `${path}/blockSize`, message: 'must be 512, 1024, 2048 or 4096', value: v.blockSize });
  for (const k of ['recalculate', 'allowDiscards', 'fixPadding', 'fixHmac', 'legacyRecalculate'] as const)
    if (v[k] !== undefined && v[k] !== true) out.push({ path: `${path}/${k}`, message: 'must be true or absent', value: v[k] });
  for (const [k] of NUM_OPTS) if (v[k] !== undefined) out.push(...intProblem(v[k], `${path}/${k}`, k === 'journalWatermark' ? 0 : k === 'commitTimeMs' ? 0 : 1, k === 'journalWatermark' ? 100 : U32_MAX));
  for (const k of ['interleaveSectors', 'bufferSectors'] as const) {
    const x = v[k];
    if (typeof x === 'number' && Number.isInteger(x) && x > 0 && (x & (x - 1)) !== 0 && x <= U32_MAX)
      out.push({ path: `${path}/${k}`, message: 'must be a power of two (the kernel rounds it down otherwise)', value: x });
  }
  if (v.sectorsPerBit !== undefined) out.push(...sectorProblem(v.sectorsPerBit, `${path}/sectorsPerBit`));
  if (v.bitmapFlushIntervalMs !== undefined) out.push(...intProblem(v.bitmapFlushIntervalMs, `${path}/bitmapFlushIntervalMs`, 0, U32_MAX));
  for (const [k] of ALG_OPTS) if (v[k] !== undefined) out.push(...algorithmProblems(v[k], `${path}/${k}`));
  if (v.recalculate === true && v.internalHash === undefined)
    out.push({ path: `${path}/recalculate`, message: 'recalculate needs internalHash', value: true });
  if (v.tagSize === 0 && v.internalHash === undefined)
    out.push({ path: `${path}/tagSize`, message: 'a tag size of 0 needs internalHash (its digest size is used)', value: 0 });
  return out;
}

const fmtAlg = (a: IntegrityAlgorithm): string => (a.keyHex !== undefined ? `${a.algorithm}:${a.keyHex}` : a.algorithm);

/**
 * Encodes integrity params in the kernel's table order (`dm_integrity_status` STATUSTYPE_TABLE:
 * `"%s %llu %u %c %u"`, then `meta_device`, `block_size`, `recalculate`, `allow_discards`,
 * `journal_sectors`, `interleave_sectors`, `buffer_sectors`, `journal_watermark`, `commit_time`,
 * `sectors_per_bit`, `bitmap_flush_interval`, `fix_padding`, `fix_hmac`, `legacy_recalculate`,
 * `internal_hash`, `journal_crypt`, `journal_mac`, each only when given; no trailing blank).
 * @example formatIntegrityParams({device: {major: 7, minor: 0}, offset: 0n, tagSize: 4, mode: 'J', internalHash: {algorithm: 'crc32c'}})
 *   // → '7:0 0 4 J 1 internal_hash:crc32c'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatIntegrityParams(p: IntegrityParams): string {
  const found = integrityParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('integrity params', found);
  const a: string[] = [];
  if (p.metaDevice !== undefined) a.push(`meta_device:${formatDevNum(p.metaDevice)}`);
  if (p.blockSize !== undefined && p.blockSize !== 512) a.push(`block_size:${p.blockSize}`);
  if (p.recalculate === true) a.push('recalculate');
  if (p.allowDiscards === true) a.push('allow_discards');
  for (const [k, name] of NUM_OPTS) if (p[k] !== undefined) a.push(`${name}:${p[k]}`);
  if (p.sectorsPerBit !== undefined) a.push(`sectors_per_bit:${p.sectorsPerBit}`);
  if (p.bitmapFlushIntervalMs !== undefined) a.push(`bitmap_flush_interval:${p.bitmapFlushIntervalMs}`);
  for (const [k, name] of FLAG_OPTS) if (p[k] === true) a.push(name);
  for (const [k, name] of ALG_OPTS) if (p[k] !== undefined) a.push(`${name}:${fmtAlg(p[k])}`);
  return [formatDevNum(p.device), String(p.offset), String(p.tagSize), p.mode, String(a.length), ...a].join(' ');
}

/**
 * Parses integrity params: the kernel's table form, or any line `dm_integrity_ctr` accepts
 * (optional arguments in any order; names are case-sensitive there, `strncmp`).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid. No error
 *   quotes a key.
 */
export function parseIntegrityParams(params: string): IntegrityParams {
  const bad = (message: string, value: unknown = '[params]'): InvalidArgumentError =>
    new InvalidArgumentError('integrity params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length < 5) throw bad("must be '<dev> <offset> <tag size> <mode> <#args> [<args>...]'");
  const offset = decimalBigint(w[1]);
  if (offset === undefined) throw bad('offset must be a decimal sector', w[1]);
  const tagSize = decimalNumber(w[2], U32_MAX);
  if (tagSize === undefined) throw bad('tag size must be a decimal', w[2]);
  const n = decimalNumber(w[4], U32_MAX);
  if (n === undefined) throw bad('argument count must be a decimal', w[4]);
  const rest = w.slice(5);
  if (rest.length !== n) throw bad(`declares ${n} argument(s) but has ${rest.length}`);
  const out: Record<string, unknown> = { device: parseDevNum(w[0]!), offset, tagSize, mode: w[3] };
  const set = (key: string, value: unknown, name: string): void => {
    if (out[key] !== undefined) throw bad(`${name} given twice`, name);
    out[key] = value;
  };
  for (const arg of rest) {
    const colon = arg.indexOf(':');
    const name = colon < 0 ? arg : arg.slice(0, colon);
    const val = colon < 0 ? undefined : arg.slice(colon + 1);
    const num = NUM_OPTS.find(([, nm]) => nm === name);
    const flag = FLAG_OPTS.find(([, nm]) => nm === name);
    const alg = ALG_OPTS.find(([, nm]) => nm === name);
    if (name === 'recalculate' || name === 'allow_discards') {
      if (val !== undefined) throw bad(`${name} takes no value`, name);
      set(name === 'recalculate' ? 'recalculate' : 'allowDiscards', true, name);
    } else if (flag !== undefined) {
      if (val !== undefined) throw bad(`${name} takes no value`, name);
      set(flag[0], true, name);
    } else if (val === undefined) throw bad('unknown integrity argument', name);
    else if (name === 'meta_device') set('metaDevice', parseDevNum(val), name);
    else if (name === 'block_size' || num !== undefined || name === 'bitmap_flush_interval') {
      const x = decimalNumber(val, U32_MAX);
      if (x === undefined) throw bad(`${name} must be a decimal`, name);
      set(name === 'block_size' ? 'blockSize' : name === 'bitmap_flush_interval' ? 'bitmapFlushIntervalMs' : num![0], x, name);
    } else if (name === 'sectors_per_bit') {
      const x = decimalBigint(val);
      if (x === undefined) throw bad(`${name} must be a decimal`, name);
      set('sectorsPerBit', x, name);
    } else if (alg !== undefined) {
      const k = val.indexOf(':');
      set(alg[0], k < 0 ? { algorithm: val } : { algorithm: val.slice(0, k), keyHex: val.slice(k + 1) }, name);
    } else throw bad('unknown integrity argument', name);
  }
  // block_size:512 is the default and not printed back.
  if (out['blockSize'] === 512) delete out['blockSize'];
  const p = out as unknown as IntegrityParams;
  const found = integrityParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('integrity params', found);
  return p;
}

/** A complete integrity target line. @throws InvalidArgumentError */
export function integrityTarget(start: bigint, length: bigint, p: IntegrityParams): TargetLine {
  return { start, length, type: INTEGRITY_TARGET, params: formatIntegrityParams(p) };
}

/** The integrity target's INFO status. */
export interface IntegrityStatus {
  /** Reads whose data did not match its tag since the table was loaded. */
  readonly mismatches: bigint;
  /** Sectors of data the device provides: the most a table over it may map. */
  readonly providedDataSectors: bigint;
  /** While `recalculate` runs, the sector it has reached; else null (`-`). */
  readonly recalculateSector: bigint | null;
}

/**
 * Parses integrity's INFO status: `<mismatches> <provided data sectors> <recalc sector|->`
 * (`dm_integrity_status` STATUSTYPE_INFO in drivers/md/dm-integrity.c, 6.1 and 6.12).
 * @throws KernelOutputError when the line has another shape.
 */
export function parseIntegrityStatus(line: string): IntegrityStatus {
  const bad = (why: string): KernelOutputError => new KernelOutputError(`integrity status: ${why}: ${JSON.stringify(line)}`, line);
  const w = words(line);
  if (w.length !== 3) throw bad('expected 3 fields');
  const mismatches = decimalBigint(w[0]);
  const providedDataSectors = decimalBigint(w[1]);
  if (mismatches === undefined || providedDataSectors === undefined) throw bad('a count is not a decimal');
  let recalculateSector: bigint | null = null;
  if (w[2] !== '-') {
    const r = decimalBigint(w[2]);
    if (r === undefined) throw bad('recalculate sector is not a decimal or -');
    recalculateSector = r;
  }
  return { mismatches, providedDataSectors, recalculateSector };
}
