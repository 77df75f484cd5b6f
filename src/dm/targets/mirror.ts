// SPDX-License-Identifier: MIT
// The `mirror` target (drivers/md/dm-raid1.c, dirty logs in drivers/md/dm-log.c):
// `<log type> <#log args> <log args...> <#legs> <dev> <offset> ... [<#features> <features>...]`.
//
// Every write goes to all legs; reads go to one in-sync leg. The device is divided into regions
// of `regionSize` sectors; the dirty log records which regions may differ between the legs, and
// kmirrord copies (recovers) out-of-sync regions from the first leg to the others. Log types
// here: `core` (in memory: after a reload every region is resynchronised) and `disk` (on a log
// device). The userspace and clustered logs are not covered. The target has no messages
// (`mirror_target` has no `.message`).
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, sectorProblem, U32_MAX, words } from './args.js';

export const MIRROR_TARGET = 'mirror';

/** `MAX_NR_MIRRORS` = `DM_KCOPYD_MAX_REGIONS + 1`: the most legs a mirror takes (the least is 2). */
export const MIRROR_MAX_LEGS = 9;

/**
 * How the log starts (`create_log_context`): absent = the default (after a reload the legs are
 * assumed out of sync unless the disk log says otherwise), `'sync'` (FORCESYNC: resynchronise
 * every region), `'nosync'` (NOSYNC: assume the legs are in sync; nothing is copied).
 */
export type MirrorLogSync = 'sync' | 'nosync';

/** `core <1|2> <region size> [sync|nosync]`: the dirty log in memory. */
export interface MirrorCoreLog {
  readonly type: 'core';
  /** Sectors per region: a power of two, at least 2, at most the target's length. */
  readonly regionSize: number;
  readonly sync?: MirrorLogSync;
}

/** `disk <2|3> <log device> <region size> [sync|nosync]`: the dirty log on a device. */
export interface MirrorDiskLog {
  readonly type: 'disk';
  readonly device: DevNum;
  readonly regionSize: number;
  readonly sync?: MirrorLogSync;
}

export type MirrorLog = MirrorCoreLog | MirrorDiskLog;

/** One leg: a device and the start sector on it. */
export interface MirrorLeg {
  readonly device: DevNum;
  readonly offset: bigint;
}

/** Parameters of a mirror target. */
export interface MirrorParams {
  readonly log: MirrorLog;
  /** 2..{@link MIRROR_MAX_LEGS} legs; the first is the one out-of-sync regions are copied from. */
  readonly legs: readonly MirrorLeg[];
  /** `handle_errors`: a failing leg is marked and an event raised (for a daemon to replace it) instead of failing the I/O. true or absent. */
  readonly handleErrors?: true;
  /** `keep_log`: keep the log device when a leg is removed (requires `handleErrors`). true or absent. */
  readonly keepLog?: true;
}

function logProblems(l: unknown, path: string): ValidationProblem[] {
  if (typeof l !== 'object' || l === null) return [{ path, message: "must be {type: 'core' | 'disk', regionSize, ...}", value: l }];
  const v = l as Partial<Record<keyof MirrorDiskLog, unknown>>;
  const out: ValidationProblem[] = [];
  if (v.type !== 'core' && v.type !== 'disk') out.push({ path: `${path}/type`, message: "must be 'core' or 'disk'", value: v.type });
  if (v.type === 'disk') out.push(...devNumProblems(v.device, `${path}/device`));
  else if (v.type === 'core' && v.device !== undefined) out.push({ path: `${path}/device`, message: 'only a disk log has a device', value: v.device });
  // _check_region_size: 2 ≤ region_size ≤ ti->len, a power of two; read by sscanf("%u%c").
  const r = v.regionSize;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 2 || r > 2 ** 31 || (r & (r - 1)) !== 0)
    out.push({ path: `${path}/regionSize`, message: 'must be a power of two in 2..2^31 (sectors)', value: r });
  if (v.sync !== undefined && v.sync !== 'sync' && v.sync !== 'nosync')
    out.push({ path: `${path}/sync`, message: "must be 'sync', 'nosync' or absent", value: v.sync });
  return out;
}

/**
 * Every problem with mirror params, as `mirror_ctr`, `create_dirty_log`, `get_mirror`,
 * `parse_features` and the log's `create_log_context` check them (the region size against the
 * target length is checked by {@link mirrorTarget}).
 */
export function mirrorParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a mirror params object', value: p }];
  const v = p as Partial<Record<keyof MirrorParams, unknown>>;
  const out = logProblems(v.log, `${path}/log`);
  if (!Array.isArray(v.legs) || v.legs.length < 2 || v.legs.length > MIRROR_MAX_LEGS)
    out.push({ path: `${path}/legs`, message: `must be an array of 2..${MIRROR_MAX_LEGS} legs`, value: Array.isArray(v.legs) ? v.legs.length : v.legs });
  else
    (v.legs as unknown[]).forEach((leg, i) => {
      if (typeof leg !== 'object' || leg === null) out.push({ path: `${path}/legs/${i}`, message: 'must be {device, offset}', value: leg });
      else {
        const l = leg as Partial<Record<keyof MirrorLeg, unknown>>;
        out.push(...devNumProblems(l.device, `${path}/legs/${i}/device`), ...sectorProblem(l.offset, `${path}/legs/${i}/offset`));
      }
    });
  if (v.handleErrors !== undefined && v.handleErrors !== true) out.push({ path: `${path}/handleErrors`, message: 'must be true or absent', value: v.handleErrors });
  if (v.keepLog !== undefined && v.keepLog !== true) out.push({ path: `${path}/keepLog`, message: 'must be true or absent', value: v.keepLog });
  else if (v.keepLog === true && v.handleErrors !== true)
    out.push({ path: `${path}/keepLog`, message: 'requires handleErrors (the kernel refuses keep_log alone)', value: true });
  return out;
}

/**
 * Encodes mirror params exactly as the kernel reports them back in table mode. `mirror_status`
 * STATUSTYPE_TABLE first lets the log print itself (dm-log.c: `core_status` emits
 * `"%s %u %u "` of `core`, the argument count (1, or 2 with sync/nosync) and the region size;
 * `disk_status` emits `"%s %u %s %u "` of `disk`, 2 or 3, the log device and the region size;
 * both then `"sync "` / `"nosync "` when given), then `"%d"` of the leg count, `" %s %llu"` per
 * leg, and, only when a feature is on, `" %d"` of their count and ` handle_errors`, ` keep_log`.
 * No trailing blank.
 * @example formatMirrorParams({log: {type: 'core', regionSize: 1024}, legs: [{device: {major: 7, minor: 0}, offset: 0n}, {device: {major: 7, minor: 1}, offset: 0n}]})
 *   // → 'core 1 1024 2 7:0 0 7:1 0'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatMirrorParams(p: MirrorParams): string {
  const found = mirrorParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('mirror params', found);
  const l = p.log;
  const sync = l.sync === undefined ? '' : `${l.sync} `;
  const log = l.type === 'core' ? `core ${l.sync === undefined ? 1 : 2} ${l.regionSize} ${sync}` : `disk ${l.sync === undefined ? 2 : 3} ${formatDevNum(l.device)} ${l.regionSize} ${sync}`;
  const legs = p.legs.map((leg) => ` ${formatDevNum(leg.device)} ${leg.offset}`).join('');
  const features: string[] = [];
  if (p.handleErrors === true) features.push('handle_errors');
  if (p.keepLog === true) features.push('keep_log');
  return `${log}${p.legs.length}${legs}${features.length === 0 ? '' : ` ${features.length} ${features.join(' ')}`}`;
}

/**
 * Parses mirror params: the kernel's table form, or any line `mirror_ctr` accepts (log type,
 * `sync`/`nosync` and feature names are case-sensitive there, `strcmp`; features may repeat).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseMirrorParams(params: string): MirrorParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('mirror params', [{ path: '', message, value }]);
  const w = words(params);
  // create_dirty_log: <type> <#args> <args...>
  if (w.length < 2) throw bad("must be '<core|disk> <#log args> <log args...> <#legs> <dev> <offset>... [<#features> <features>...]'");
  const type = w[0]!;
  const nLogArgs = decimalNumber(w[1], U32_MAX);
  if (nLogArgs === undefined) throw bad('log argument count must be a decimal', w[1]);
  if (w.length < 2 + nLogArgs) throw bad(`declares ${nLogArgs} log argument(s) but has ${w.length - 2}`);
  const la = w.slice(2, 2 + nLogArgs);
  let log: MirrorLog;
  const syncOf = (s: string | undefined): MirrorLogSync | undefined => {
    if (s === undefined) return undefined;
    if (s === 'sync' || s === 'nosync') return s;
    throw bad("log sync argument must be 'sync' or 'nosync'", s);
  };
  const region = (s: string | undefined): number => {
    const r = decimalNumber(s, U32_MAX);
    if (r === undefined) throw bad('region size must be a decimal', s);
    return r;
  };
  if (type === 'core') {
    if (la.length < 1 || la.length > 2) throw bad('a core log takes 1 or 2 arguments: <region size> [sync|nosync]', la.join(' '));
    const sync = syncOf(la[1]);
    log = { type: 'core', regionSize: region(la[0]), ...(sync !== undefined ? { sync } : {}) };
  } else if (type === 'disk') {
    if (la.length < 2 || la.length > 3) throw bad('a disk log takes 2 or 3 arguments: <log device> <region size> [sync|nosync]', la.join(' '));
    const sync = syncOf(la[2]);
    log = { type: 'disk', device: parseDevNum(la[0]!), regionSize: region(la[1]), ...(sync !== undefined ? { sync } : {}) };
  } else throw bad('log type must be core or disk', type);
  let i = 2 + nLogArgs;
  const nLegs = decimalNumber(w[i], MIRROR_MAX_LEGS);
  if (nLegs === undefined || nLegs < 2) throw bad(`leg count must be a decimal in 2..${MIRROR_MAX_LEGS}`, w[i]);
  i += 1;
  if (w.length < i + 2 * nLegs) throw bad(`declares ${nLegs} legs but has ${w.length - i} leg argument(s)`);
  const legs: MirrorLeg[] = [];
  for (let k = 0; k < nLegs; k++, i += 2) {
    const offset = decimalBigint(w[i + 1]);
    if (offset === undefined) throw bad('leg offset must be a decimal sector in 0..2^64-1', w[i + 1]);
    legs.push({ device: parseDevNum(w[i]!), offset });
  }
  let handleErrors = false;
  let keepLog = false;
  if (i < w.length) {
    const count = decimalNumber(w[i], U32_MAX);
    if (count === undefined) throw bad('feature count must be a decimal', w[i]);
    const rest = w.slice(i + 1);
    // parse_features refuses fewer arguments than declared; mirror_ctr refuses leftovers.
    if (rest.length !== count) throw bad(`declares ${count} feature(s) but has ${rest.length}`);
    for (const f of rest) {
      if (f === 'handle_errors') handleErrors = true;
      else if (f === 'keep_log') keepLog = true;
      else throw bad('unknown mirror feature (known: handle_errors, keep_log)', f);
    }
  }
  const p: MirrorParams = {
    log,
    legs,
    ...(handleErrors ? { handleErrors: true as const } : {}),
    ...(keepLog ? { keepLog: true as const } : {}),
  };
  const found = mirrorParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('mirror params', found);
  return p;
}

/**
 * A complete mirror target line.
 * @throws InvalidArgumentError listing every problem, and when the region size exceeds `length`
 * (`_check_region_size`: `region_size > ti->len` is refused).
 */
export function mirrorTarget(start: bigint, length: bigint, p: MirrorParams): TargetLine {
  const params = formatMirrorParams(p);
  if (typeof length === 'bigint' && BigInt(p.log.regionSize) > length)
    throw new InvalidArgumentError('mirror target', [{ path: '/log/regionSize', message: `must be at most the target length (${length} sectors)`, value: p.log.regionSize }]);
  return { start, length, type: MIRROR_TARGET, params };
}

/**
 * A leg's or disk log's health (`device_status_char` in dm-raid1.c; `disk_status` in dm-log.c
 * for the log device): `A` alive; `F` flush failed, `D` write failed, `S` sync (recovery)
 * failed, `R` read failed, `U` another error. For a log device only `A`, `D`, `F`.
 */
export type MirrorHealth = 'A' | 'F' | 'D' | 'S' | 'R' | 'U';

/** The log part of a mirror's INFO status. */
export type MirrorLogStatus = { readonly type: 'core' } | { readonly type: 'disk'; readonly device: DevNum; readonly health: MirrorHealth };

/**
 * Mirror INFO status (`mirror_status` STATUSTYPE_INFO): `"%d "` of the leg count, `"%s "` per leg
 * device, `"%llu/%llu 1 %s "` of the in-sync regions, the regions, and one health character per
 * leg; then the log's INFO status: `core_status` `"1 core"`, `disk_status` `"3 disk %s %c"`
 * (log device, its health).
 */
export interface MirrorStatus {
  readonly legs: readonly { readonly device: DevNum; readonly health: MirrorHealth }[];
  readonly syncedRegions: bigint;
  readonly totalRegions: bigint;
  /** `syncedRegions === totalRegions`. */
  readonly inSync: boolean;
  readonly log: MirrorLogStatus;
}

const HEALTH = /^[AFDSRU]+$/;

/**
 * Parses a mirror INFO status line.
 * @throws KernelOutputError naming the field that does not fit.
 */
export function parseMirrorStatus(line: string): MirrorStatus {
  const w = words(line);
  const fail = (what: string): KernelOutputError => new KernelOutputError(`mirror status: ${what}`, line);
  const n = decimalNumber(w[0], MIRROR_MAX_LEGS);
  if (n === undefined || n < 1) throw fail(`field 1 (leg count): got ${JSON.stringify(w[0])}, expected a decimal in 1..${MIRROR_MAX_LEGS}`);
  if (w.length < n + 5) throw fail(`expected at least ${n + 5} fields for ${n} legs, got ${w.length}`);
  const devices: DevNum[] = [];
  for (let k = 0; k < n; k++) {
    try {
      devices.push(parseDevNum(w[1 + k]!));
    } catch (e) {
      throw new KernelOutputError(`mirror status: leg ${k} device ${JSON.stringify(w[1 + k])} is not major:minor`, line, { cause: e });
    }
  }
  const ratio = /^(\d{1,20})\/(\d{1,20})$/.exec(w[n + 1]!);
  const synced = decimalBigint(ratio?.[1]);
  const total = decimalBigint(ratio?.[2]);
  if (synced === undefined || total === undefined) throw fail(`sync ratio: got ${JSON.stringify(w[n + 1])}, expected '<in sync>/<regions>'`);
  if (w[n + 2] !== '1') throw fail(`health argument count: got ${JSON.stringify(w[n + 2])}, expected 1`);
  const health = w[n + 3]!;
  if (health.length !== n || !HEALTH.test(health)) throw fail(`health: got ${JSON.stringify(health)}, expected ${n} of A F D S R U`);
  const logCount = decimalNumber(w[n + 4], U32_MAX);
  const logWords = w.slice(n + 5);
  if (logCount === undefined || logWords.length !== logCount) throw fail(`log status: got ${JSON.stringify(logWords.join(' '))} after count ${JSON.stringify(w[n + 4])}`);
  let log: MirrorLogStatus;
  if (logWords[0] === 'core' && logCount === 1) log = { type: 'core' };
  else if (logWords[0] === 'disk' && logCount === 3) {
    const h = logWords[2]!;
    if (h !== 'A' && h !== 'D' && h !== 'F') throw fail(`log device health: got ${JSON.stringify(h)}, expected A, D or F`);
    let device: DevNum;
    try {
      device = parseDevNum(logWords[1]!);
    } catch (e) {
      throw new KernelOutputError(`mirror status: log device ${JSON.stringify(logWords[1])} is not major:minor`, line, { cause: e });
    }
    log = { type: 'disk', device, health: h };
  } else throw fail(`log status: expected '1 core' or '3 disk <dev> <health>', got ${JSON.stringify(`${w[n + 4]} ${logWords.join(' ')}`)}`);
  return {
    legs: devices.map((device, k) => ({ device, health: health[k] as MirrorHealth })),
    syncedRegions: synced,
    totalRegions: total,
    inSync: synced === total,
    log,
  };
}
