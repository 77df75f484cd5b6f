// SPDX-License-Identifier: MIT
// The `raid` target (Documentation/admin-guide/device-mapper/dm-raid.rst, drivers/md/dm-raid.c),
// md's RAID personalities behind device-mapper:
// `<raid type> <#raid params> <chunk size> [<raid params>...] <#raid devs> <meta dev> <data dev> ...`.
//
// Each leg is a metadata device (`-` for none: no superblock, no write-intent bitmap, every
// activation resyncs unless `nosync`) and a data device. `raid_status` STATUSTYPE_TABLE prints the
// optional parameters in one fixed order whatever the order given ("This has to be in the
// documented order for userspace!", dm-raid 1.9.0 and later, so 6.1 and 6.12): sync, nosync,
// rebuild (per leg, in leg order), daemon_sleep, min_recovery_rate, max_recovery_rate,
// write_mostly (per leg), max_write_behind, stripe_cache, region_size, raid10_copies,
// raid10_format, delta_disks, data_offset, journal_dev, journal_mode; the parameter count
// includes the chunk size. (Kernels before 4.x printed another order.) raid1
// ignores the chunk size ("Ignoring chunk size parameter for RAID 1", `parse_raid_params`) and
// reports 0, so the builder wants 0 there.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, intProblem, U32_MAX, U64_MAX, words } from './args.js';

export const RAID_TARGET = 'raid';
/** `MAX_RAID_DEVICES`. */
export const RAID_MAX_DEVICES = 253;

/** The raid types of `raid_types[]` in dm-raid.c. */
export const RAID_TYPES = [
  'raid0', 'raid1', 'raid10', 'raid4', 'raid5_n', 'raid5_la', 'raid5_ra', 'raid5_ls', 'raid5_rs',
  'raid6_zr', 'raid6_nr', 'raid6_nc', 'raid6_n_6', 'raid6_la_6', 'raid6_ra_6', 'raid6_ls_6', 'raid6_rs_6',
] as const;
export type RaidType = (typeof RAID_TYPES)[number];

/** One leg: its metadata and data device, `null` for `-` (none, or missing). */
export interface RaidLeg {
  readonly meta: DevNum | null;
  readonly data: DevNum | null;
}

/** Parameters of a raid target. */
export interface RaidParams {
  readonly raidType: RaidType;
  /** Chunk size in sectors: 0 for raid1 (ignored by the kernel); else a power of two, at least 8. */
  readonly chunkSize: number;
  /** `sync` (force a full resync) or `nosync` (skip the initial one). */
  readonly sync?: 'sync' | 'nosync';
  /** `region_size <sectors>`: the write-intent bitmap's region, a power of two. */
  readonly regionSize?: bigint;
  /** `data_offset <sectors>`: where data starts on each data device (reshaping). */
  readonly dataOffset?: bigint;
  /** `daemon_sleep <ms>`: bitmap flush interval, 1..UINT_MAX. */
  readonly daemonSleepMs?: number;
  /** `delta_disks <n>`: legs to add (positive) or remove (negative) by reshaping. */
  readonly deltaDisks?: number;
  /** `stripe_cache <n>`: raid4/5/6 stripe cache entries. */
  readonly stripeCache?: number;
  /** `rebuild <idx>`: legs to rebuild from the others (printed in leg order). */
  readonly rebuild?: readonly number[];
  /** `write_mostly <idx>` (raid1): legs read from only when the others fail (printed in leg order). */
  readonly writeMostly?: readonly number[];
  /** `max_write_behind <n>` (raid1, with write_mostly legs). */
  readonly maxWriteBehind?: number;
  /** `max_recovery_rate <kB/s>` per device. */
  readonly maxRecoveryRate?: number;
  /** `min_recovery_rate <kB/s>` per device. */
  readonly minRecoveryRate?: number;
  /** `raid10_copies <n>` (raid10). */
  readonly raid10Copies?: number;
  /** `raid10_format near|far|offset` (raid10). */
  readonly raid10Format?: 'near' | 'far' | 'offset';
  /** `journal_dev <dev>` (raid4/5/6). */
  readonly journalDevice?: DevNum;
  /** `journal_mode writethrough|writeback` (with journalDevice). */
  readonly journalMode?: 'writethrough' | 'writeback';
  readonly legs: readonly RaidLeg[];
}

const isPow2 = (n: bigint): boolean => n > 0n && (n & (n - 1n)) === 0n;

function indexListProblems(v: unknown, path: string, legs: number): ValidationProblem[] {
  if (!Array.isArray(v)) return [{ path, message: 'must be an array of leg indexes', value: v }];
  const out: ValidationProblem[] = [];
  v.forEach((x: unknown, i) => out.push(...intProblem(x, `${path}/${i}`, 0, Math.max(0, legs - 1))));
  if (new Set(v).size !== v.length) out.push({ path, message: 'must not repeat a leg', value: v });
  return out;
}

/** Every problem with raid params, checked as `raid_ctr` / `parse_raid_params` (6.1) do. */
export function raidParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a raid params object', value: p }];
  const v = p as Partial<Record<keyof RaidParams, unknown>>;
  const out: ValidationProblem[] = [];
  const type = v.raidType as RaidType;
  if (!RAID_TYPES.includes(type)) out.push({ path: `${path}/raidType`, message: `must be one of ${RAID_TYPES.join(', ')}`, value: v.raidType });
  const raid1 = type === 'raid1';
  if (raid1) {
    if (v.chunkSize !== 0) out.push({ path: `${path}/chunkSize`, message: 'must be 0 for raid1 (the kernel ignores it and reports 0)', value: v.chunkSize });
  } else {
    const c = v.chunkSize;
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 8 || c > U32_MAX || !isPow2(BigInt(c)))
      out.push({ path: `${path}/chunkSize`, message: 'must be a power of two of at least 8 sectors', value: c });
  }
  const legs = Array.isArray(v.legs) ? v.legs.length : 0;
  if (!Array.isArray(v.legs) || v.legs.length < 1 || v.legs.length > RAID_MAX_DEVICES)
    out.push({ path: `${path}/legs`, message: `must be an array of 1..${RAID_MAX_DEVICES} legs`, value: v.legs });
  else {
    if (raid1 && legs < 2) out.push({ path: `${path}/legs`, message: 'raid1 needs at least 2 legs', value: legs });
    v.legs.forEach((l: unknown, i) => {
      const lp = `${path}/legs/${i}`;
      if (typeof l !== 'object' || l === null) return void out.push({ path: lp, message: 'must be {meta, data}', value: l });
      const leg = l as Partial<Record<keyof RaidLeg, unknown>>;
      if (leg.meta !== null) out.push(...devNumProblems(leg.meta, `${lp}/meta`));
      if (leg.data !== null) out.push(...devNumProblems(leg.data, `${lp}/data`));
      if (leg.data === null && leg.meta !== null) out.push({ path: `${lp}/meta`, message: 'a leg without data device has no metadata device either', value: leg.meta });
    });
  }
  if (v.sync !== undefined && v.sync !== 'sync' && v.sync !== 'nosync') out.push({ path: `${path}/sync`, message: "must be 'sync', 'nosync' or absent", value: v.sync });
  for (const k of ['regionSize', 'dataOffset'] as const) {
    const x = v[k];
    if (x !== undefined && (typeof x !== 'bigint' || x < 0n || x > U64_MAX)) out.push({ path: `${path}/${k}`, message: 'must be a bigint sector count', value: x });
  }
  if (typeof v.regionSize === 'bigint' && !isPow2(v.regionSize)) out.push({ path: `${path}/regionSize`, message: 'must be a power of two', value: v.regionSize });
  if (v.daemonSleepMs !== undefined) out.push(...intProblem(v.daemonSleepMs, `${path}/daemonSleepMs`, 1, U32_MAX));
  if (v.deltaDisks !== undefined) out.push(...intProblem(v.deltaDisks, `${path}/deltaDisks`, -RAID_MAX_DEVICES, RAID_MAX_DEVICES));
  for (const k of ['stripeCache', 'maxWriteBehind', 'maxRecoveryRate', 'minRecoveryRate'] as const)
    if (v[k] !== undefined) out.push(...intProblem(v[k], `${path}/${k}`, 0, 0x7fffffff));
  if (typeof v.maxRecoveryRate === 'number' && typeof v.minRecoveryRate === 'number' && v.minRecoveryRate > v.maxRecoveryRate)
    out.push({ path: `${path}/minRecoveryRate`, message: 'must not exceed maxRecoveryRate', value: v.minRecoveryRate });
  if (v.rebuild !== undefined) out.push(...indexListProblems(v.rebuild, `${path}/rebuild`, legs));
  if (v.writeMostly !== undefined) {
    out.push(...indexListProblems(v.writeMostly, `${path}/writeMostly`, legs));
    if (!raid1) out.push({ path: `${path}/writeMostly`, message: 'write_mostly applies to raid1 only', value: v.writeMostly });
  }
  if (v.maxWriteBehind !== undefined && !raid1) out.push({ path: `${path}/maxWriteBehind`, message: 'max_write_behind applies to raid1 only', value: v.maxWriteBehind });
  if (v.raid10Copies !== undefined) {
    out.push(...intProblem(v.raid10Copies, `${path}/raid10Copies`, 2, 0xff));
    if (type !== 'raid10') out.push({ path: `${path}/raid10Copies`, message: 'applies to raid10 only', value: v.raid10Copies });
  }
  if (v.raid10Format !== undefined) {
    if (!['near', 'far', 'offset'].includes(v.raid10Format as string)) out.push({ path: `${path}/raid10Format`, message: "must be 'near', 'far' or 'offset'", value: v.raid10Format });
    if (type !== 'raid10') out.push({ path: `${path}/raid10Format`, message: 'applies to raid10 only', value: v.raid10Format });
  }
  if (v.journalDevice !== undefined) out.push(...devNumProblems(v.journalDevice, `${path}/journalDevice`));
  if (v.journalMode !== undefined) {
    if (v.journalMode !== 'writethrough' && v.journalMode !== 'writeback') out.push({ path: `${path}/journalMode`, message: "must be 'writethrough' or 'writeback'", value: v.journalMode });
    if (v.journalDevice === undefined) out.push({ path: `${path}/journalMode`, message: 'requires journalDevice', value: v.journalMode });
  }
  return out;
}

/**
 * Encodes raid params as the kernel reports them back in table mode (`raid_status`
 * STATUSTYPE_TABLE: `"%s %u %u"` type, parameter count, chunk size; the parameters in the
 * kernel's order; `" %d"` legs; `" %s %s"` per leg, `-` for none; no trailing blank).
 * @example formatRaidParams({raidType: 'raid1', chunkSize: 0, legs: [{meta: null, data: {major: 7, minor: 0}}, {meta: null, data: {major: 7, minor: 1}}]})
 *   // → 'raid1 1 0 2 - 7:0 - 7:1'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatRaidParams(p: RaidParams): string {
  const found = raidParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('raid params', found);
  const a: string[] = [String(p.chunkSize)];
  if (p.sync !== undefined) a.push(p.sync);
  for (const i of [...(p.rebuild ?? [])].sort((x, y) => x - y)) a.push('rebuild', String(i));
  if (p.daemonSleepMs !== undefined) a.push('daemon_sleep', String(p.daemonSleepMs));
  if (p.minRecoveryRate !== undefined) a.push('min_recovery_rate', String(p.minRecoveryRate));
  if (p.maxRecoveryRate !== undefined) a.push('max_recovery_rate', String(p.maxRecoveryRate));
  for (const i of [...(p.writeMostly ?? [])].sort((x, y) => x - y)) a.push('write_mostly', String(i));
  if (p.maxWriteBehind !== undefined) a.push('max_write_behind', String(p.maxWriteBehind));
  if (p.stripeCache !== undefined) a.push('stripe_cache', String(p.stripeCache));
  if (p.regionSize !== undefined) a.push('region_size', String(p.regionSize));
  if (p.raid10Copies !== undefined) a.push('raid10_copies', String(p.raid10Copies));
  if (p.raid10Format !== undefined) a.push('raid10_format', p.raid10Format);
  if (p.deltaDisks !== undefined) a.push('delta_disks', String(p.deltaDisks));
  if (p.dataOffset !== undefined) a.push('data_offset', String(p.dataOffset));
  if (p.journalDevice !== undefined) a.push('journal_dev', formatDevNum(p.journalDevice));
  if (p.journalMode !== undefined) a.push('journal_mode', p.journalMode);
  const dev = (d: DevNum | null): string => (d === null ? '-' : formatDevNum(d));
  return [p.raidType, String(a.length), ...a, String(p.legs.length), ...p.legs.flatMap((l) => [dev(l.meta), dev(l.data)])].join(' ');
}

const ONE_ARG: Record<string, keyof RaidParams> = {
  region_size: 'regionSize',
  data_offset: 'dataOffset',
  daemon_sleep: 'daemonSleepMs',
  delta_disks: 'deltaDisks',
  stripe_cache: 'stripeCache',
  max_write_behind: 'maxWriteBehind',
  max_recovery_rate: 'maxRecoveryRate',
  min_recovery_rate: 'minRecoveryRate',
  raid10_copies: 'raid10Copies',
};

/**
 * Parses raid params: the kernel's table form, or any line `raid_ctr` accepts (parameters in any
 * order; names matched with `strcasecmp` there, lower-cased here).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseRaidParams(params: string): RaidParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('raid params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length < 4) throw bad("must be '<raid type> <#params> <chunk size> [<params>...] <#legs> <meta> <data>...'");
  const raidType = w[0]!.toLowerCase();
  const np = decimalNumber(w[1], 1000);
  if (np === undefined || np < 1) throw bad('parameter count must be a decimal of at least 1 (the chunk size)', w[1]);
  if (w.length < 2 + np + 1) throw bad(`declares ${np} parameter(s) but the leg count does not follow them`);
  const a = w.slice(2, 2 + np);
  const chunk = decimalNumber(a[0], U32_MAX);
  if (chunk === undefined) throw bad('chunk size must be a decimal', a[0]);
  const out: Record<string, unknown> = { raidType, chunkSize: chunk };
  const rebuild: number[] = [];
  const writeMostly: number[] = [];
  for (let i = 1; i < a.length; ) {
    const name = a[i]!.toLowerCase();
    const val = a[i + 1];
    if (name === 'sync' || name === 'nosync') {
      if (out['sync'] !== undefined) throw bad('sync/nosync given twice', a[i]);
      out['sync'] = name;
      i += 1;
      continue;
    }
    if (val === undefined) throw bad(`${name} must be followed by a value`, a[i]);
    if (name === 'rebuild' || name === 'write_mostly') {
      const n = decimalNumber(val, RAID_MAX_DEVICES);
      if (n === undefined) throw bad(`${name} must be followed by a leg index`, val);
      (name === 'rebuild' ? rebuild : writeMostly).push(n);
    } else if (name === 'raid10_format') {
      if (out['raid10Format'] !== undefined) throw bad('raid10_format given twice', a[i]);
      out['raid10Format'] = val.toLowerCase();
    } else if (name === 'journal_dev') {
      if (out['journalDevice'] !== undefined) throw bad('journal_dev given twice', a[i]);
      out['journalDevice'] = parseDevNum(val);
    } else if (name === 'journal_mode') {
      if (out['journalMode'] !== undefined) throw bad('journal_mode given twice', a[i]);
      out['journalMode'] = val.toLowerCase();
    } else if (ONE_ARG[name] !== undefined) {
      const key = ONE_ARG[name];
      if (out[key] !== undefined) throw bad(`${name} given twice`, a[i]);
      if (key === 'regionSize' || key === 'dataOffset') {
        const n = decimalBigint(val);
        if (n === undefined) throw bad(`${name} must be followed by a decimal`, val);
        out[key] = n;
      } else {
        const neg = key === 'deltaDisks' && val.startsWith('-');
        const n = decimalNumber(neg ? val.slice(1) : val, U32_MAX);
        if (n === undefined) throw bad(`${name} must be followed by a decimal`, val);
        out[key] = neg ? -n : n;
      }
    } else throw bad('unknown raid parameter', a[i]);
    i += 2;
  }
  if (rebuild.length > 0) out['rebuild'] = rebuild;
  if (writeMostly.length > 0) out['writeMostly'] = writeMostly;
  const nl = decimalNumber(w[2 + np], RAID_MAX_DEVICES);
  if (nl === undefined) throw bad(`leg count must be a decimal in 0..${RAID_MAX_DEVICES}`, w[2 + np]);
  const rest = w.slice(3 + np);
  if (rest.length !== nl * 2) throw bad(`declares ${nl} leg(s) but has ${rest.length} device word(s)`);
  const dev = (s: string): DevNum | null => (s === '-' ? null : parseDevNum(s));
  const legs: RaidLeg[] = [];
  for (let i = 0; i < rest.length; i += 2) legs.push({ meta: dev(rest[i]!), data: dev(rest[i + 1]!) });
  out['legs'] = legs;
  const p = out as unknown as RaidParams;
  const found = raidParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('raid params', found);
  return p;
}

/** A complete raid target line. @throws InvalidArgumentError */
export function raidTarget(start: bigint, length: bigint, p: RaidParams): TargetLine {
  return { start, length, type: RAID_TARGET, params: formatRaidParams(p) };
}

/** One leg's health character: `A` alive and in sync, `a` alive not in sync, `D` dead, `-` no device. */
export type RaidHealth = 'A' | 'a' | 'D' | '-';
/** What the array is doing (`decipher_sync_action`). */
export type RaidSyncAction = 'idle' | 'frozen' | 'resync' | 'recover' | 'check' | 'repair' | 'reshape' | 'undef';
const SYNC_ACTIONS: readonly string[] = ['idle', 'frozen', 'resync', 'recover', 'check', 'repair', 'reshape', 'undef'];

/** The raid's INFO status. */
export interface RaidStatus {
  readonly raidType: string;
  readonly legs: number;
  /** One character per leg. */
  readonly health: readonly RaidHealth[];
  /** Sectors synced (or checked, reshaped) so far / sectors in all: `<done>/<total>`. */
  readonly syncDone: bigint;
  readonly syncTotal: bigint;
  readonly syncAction: RaidSyncAction;
  /** Mismatches found by the last `check` (0 after any other action). */
  readonly mismatches: bigint;
  /** Data offset on the legs (dm-raid 1.9.0 and later: 6.1, 6.12). */
  readonly dataOffset?: bigint;
  /** The journal device's health character (1.14.0 and later), `-` without one. */
  readonly journal?: RaidHealth;
}

/**
 * Parses raid's INFO status: `<raid type> <#legs> <health chars> <done>/<total> <sync action>
 * <mismatch count> [<data offset> [<journal char>]]` (`raid_status` STATUSTYPE_INFO in
 * drivers/md/dm-raid.c; no trailing blank).
 * @throws KernelOutputError when the line has another shape.
 */
export function parseRaidStatus(line: string): RaidStatus {
  const bad = (why: string): KernelOutputError => new KernelOutputError(`raid status: ${why}: ${JSON.stringify(line)}`, line);
  const w = words(line);
  if (w.length < 6 || w.length > 8) throw bad('expected 6 to 8 fields');
  const legs = decimalNumber(w[1], RAID_MAX_DEVICES);
  if (legs === undefined) throw bad('leg count is not a decimal');
  const health = [...w[2]!];
  if (health.length !== legs || health.some((c) => !'AaD-'.includes(c))) throw bad('health characters do not match the legs');
  const m = /^(\d{1,20})\/(\d{1,20})$/.exec(w[3]!);
  const syncDone = decimalBigint(m?.[1]);
  const syncTotal = decimalBigint(m?.[2]);
  if (syncDone === undefined || syncTotal === undefined) throw bad('sync ratio is not <done>/<total>');
  if (!SYNC_ACTIONS.includes(w[4]!)) throw bad('unknown sync action');
  const mismatches = decimalBigint(w[5]);
  if (mismatches === undefined) throw bad('mismatch count is not a decimal');
  const dataOffset = w.length > 6 ? decimalBigint(w[6]) : undefined;
  if (w.length > 6 && dataOffset === undefined) throw bad('data offset is not a decimal');
  const journal = w[7];
  if (journal !== undefined && (journal.length !== 1 || !'AaD-'.includes(journal))) throw bad('journal character is not A, a, D or -');
  return {
    raidType: w[0]!,
    legs,
    health: health as RaidHealth[],
    syncDone,
    syncTotal,
    syncAction: w[4] as RaidSyncAction,
    mismatches,
    ...(dataOffset !== undefined ? { dataOffset } : {}),
    ...(journal !== undefined ? { journal: journal as RaidHealth } : {}),
  };
}

/** True when every leg is `A` and the sync ratio is complete (done = total). */
export function raidInSync(s: RaidStatus): boolean {
  return s.health.every((h) => h === 'A') && s.syncDone === s.syncTotal;
}

/** The sync-action messages `raid_message` takes. */
export type RaidMessage = 'idle' | 'frozen' | 'resync' | 'recover' | 'check' | 'repair';

/**
 * The text of a raid sync-action message (`raid_message` in drivers/md/dm-raid.c): `check` reads
 * every leg and counts mismatches, `repair` also fixes them, `resync`/`recover` start those,
 * `idle` stops the running action, `frozen` stops it and keeps it stopped. The kernel answers
 * EBUSY for check/repair/resync/recover while an action runs.
 * @throws InvalidArgumentError for another name.
 */
export function raidMessage(action: RaidMessage): string {
  if (!['idle', 'frozen', 'resync', 'recover', 'check', 'repair'].includes(action))
    throw new InvalidArgumentError('raid message', [{ path: '/action', message: "must be 'idle', 'frozen', 'resync', 'recover', 'check' or 'repair'", value: action }]);
  return action;
}
