// SPDX-License-Identifier: MIT
// The `flakey` target (Documentation/admin-guide/device-mapper/dm-flakey.rst, drivers/md/dm-flakey.c):
// `<dev> <offset> <up interval> <down interval> [<num_features> [<feature arguments>]]`.
//
// The device behaves like linear for `up interval` seconds, then misbehaves for `down interval`
// seconds, and so on (`flakey_map`: `elapsed % (up + down) >= up` means down, elapsed counted in
// whole seconds since the table was constructed). While down, with no feature, every I/O fails
// (EIO); `drop_writes` silently drops writes (they complete successfully and are lost, reads work);
// `error_writes` fails writes (reads work); `corrupt_bio_byte` corrupts matching reads or writes.
//
// Kernel 6.1 (flakey target 1.5.0) knows exactly these three features. Newer kernels (6.5 and
// later, "dm flakey: introduce random_read_corrupt and random_write_corrupt options" and
// "dm flakey: add an error_reads option") add `error_reads`, `random_read_corrupt <probability>`
// and `random_write_corrupt <probability>`; a 6.1 kernel refuses them ("Unrecognised flakey
// feature requested"). This module produces and accepts `error_reads` (which 6.12 reports for a
// table given without features, see FlakeyParams.errorReads), not the random_* corruptions.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, intProblem, sectorProblem, U32_MAX, words } from './args.js';

export const FLAKEY_TARGET = 'flakey';

/** `corrupt_bio_byte <Nth_byte> <direction> <value> <flags>`: overwrite one byte of matching bios while down. */
export interface FlakeyCorruptBioByte {
  /** Which byte of the bio's data, counting from 1 (`_args[1]`: 1..UINT_MAX). */
  readonly byte: number;
  /** Corrupt reads (after they complete) or writes (before they are submitted): `r` / `w`. */
  readonly direction: 'read' | 'write';
  /** The value written into that byte, 0..255. */
  readonly value: number;
  /** Only bios whose `bi_opf` has all these bits set are corrupted; 0 matches every bio. 0..UINT_MAX. */
  readonly flags: number;
}

/** Parameters of a flakey target. */
export interface FlakeyParams {
  readonly device: DevNum;
  /** Start sector on `device`. */
  readonly offset: bigint;
  /** Seconds the device works normally, 0..UINT_MAX. */
  readonly upInterval: number;
  /** Seconds the device misbehaves, 0..UINT_MAX; `upInterval + downInterval` must be 1..UINT_MAX. */
  readonly downInterval: number;
  /**
   * What happens to writes while down: `'drop'` (`drop_writes`: they succeed and are lost) or
   * `'error'` (`error_writes`: they fail with EIO). The kernel refuses both together. Absent: with
   * no `corruptBioByte` either, every I/O fails while down.
   */
  readonly writes?: 'drop' | 'error';
  readonly corruptBioByte?: FlakeyCorruptBioByte;
  /**
   * `error_reads`: reads fail with EIO while down. Kernels with the feature (6.5 and later; seen on
   * 6.12) also switch it on, with `error_writes`, when a table names no feature at all, and report
   * that table back as `2 error_reads error_writes `; so on those kernels `{writes: undefined}`
   * reads back as `{writes: 'error', errorReads: true}`, with the same behaviour (every I/O fails
   * while down). Kernel 6.1 refuses the feature (EINVAL). true or absent.
   */
  readonly errorReads?: true;
}

/**
 * Every problem with flakey params, checked as `flakey_ctr` / `parse_features` in 6.1 do:
 * intervals are `unsigned int`, their sum must be non-zero and must not overflow; a write
 * corruption cannot be combined with `drop_writes` or `error_writes` ("drop_writes is
 * incompatible with corrupt_bio_byte with the WRITE flag set").
 */
export function flakeyParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a flakey params object', value: p }];
  const v = p as Partial<Record<keyof FlakeyParams, unknown>>;
  const out = devNumProblems(v.device, `${path}/device`);
  out.push(...sectorProblem(v.offset, `${path}/offset`));
  const up = intProblem(v.upInterval, `${path}/upInterval`, 0, U32_MAX);
  const down = intProblem(v.downInterval, `${path}/downInterval`, 0, U32_MAX);
  out.push(...up, ...down);
  if (up.length === 0 && down.length === 0) {
    const sum = (v.upInterval as number) + (v.downInterval as number);
    if (sum === 0) out.push({ path: `${path}/downInterval`, message: 'upInterval + downInterval must not be zero', value: 0 });
    else if (sum > U32_MAX)
      out.push({ path: `${path}/downInterval`, message: `upInterval + downInterval must be at most ${U32_MAX}`, value: sum });
  }
  if (v.errorReads !== undefined && v.errorReads !== true) out.push({ path: `${path}/errorReads`, message: 'must be true or absent', value: v.errorReads });
  if (v.writes !== undefined && v.writes !== 'drop' && v.writes !== 'error')
    out.push({ path: `${path}/writes`, message: "must be 'drop', 'error' or absent", value: v.writes });
  const cv = v.corruptBioByte;
  if (cv !== undefined) {
    if (typeof cv !== 'object' || cv === null)
      out.push({ path: `${path}/corruptBioByte`, message: 'must be {byte, direction, value, flags}', value: cv });
    else {
      const c = cv as Partial<Record<keyof FlakeyCorruptBioByte, unknown>>;
      const cp = `${path}/corruptBioByte`;
      out.push(...intProblem(c.byte, `${cp}/byte`, 1, U32_MAX));
      if (c.direction !== 'read' && c.direction !== 'write')
        out.push({ path: `${cp}/direction`, message: "must be 'read' or 'write'", value: c.direction });
      out.push(...intProblem(c.value, `${cp}/value`, 0, 255));
      out.push(...intProblem(c.flags, `${cp}/flags`, 0, U32_MAX));
      if (c.direction === 'write' && (v.writes === 'drop' || v.writes === 'error'))
        out.push({
          path: `${cp}/direction`,
          message: `a write corruption cannot be combined with ${v.writes}_writes (the kernel refuses it)`,
          value: c.direction,
        });
    }
  }
  return out;
}

/**
 * Encodes flakey params exactly as the kernel reports them back in table mode (DM_TABLE_STATUS
 * with DM_STATUS_TABLE_FLAG, what `dmsetup table` prints). `flakey_status` STATUSTYPE_TABLE in
 * drivers/md/dm-flakey.c (6.1) emits `"%s %llu %u %u "`, then the feature-argument count `"%u "`
 * (always, also when it is 0: drop_writes/error_writes count 1, corrupt_bio_byte counts 5), then
 * `drop_writes ` or `error_writes `, then `corrupt_bio_byte %u %c %u %u `: every field is followed
 * by one blank, so the text ends with a blank. Kernels from 6.5 (seen on 6.12) print the same
 * fields without that last blank, and report a table given without features as
 * `2 error_reads error_writes` ({@link FlakeyParams.errorReads}); parseFlakeyParams takes both.
 * @example formatFlakeyParams({device: {major: 7, minor: 0}, offset: 0n, upInterval: 0, downInterval: 180, writes: 'drop'})
 *   // → '7:0 0 0 180 1 drop_writes '
 * @throws InvalidArgumentError listing every problem.
 */
export function formatFlakeyParams(p: FlakeyParams): string {
  const found = flakeyParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('flakey params', found);
  const c = p.corruptBioByte;
  const features: string[] = [];
  // 6.12's flakey_status emits error_reads before the write feature.
  if (p.errorReads === true) features.push('error_reads');
  if (p.writes !== undefined) features.push(`${p.writes}_writes`);
  if (c !== undefined) features.push('corrupt_bio_byte', String(c.byte), c.direction === 'write' ? 'w' : 'r', String(c.value), String(c.flags));
  const head = `${formatDevNum(p.device)} ${p.offset} ${p.upInterval} ${p.downInterval} ${features.length} `;
  return head + features.map((f) => `${f} `).join('');
}

/**
 * Parses flakey params: the kernel's table form, or any line `flakey_ctr` accepts (feature names
 * and the direction are case-insensitive there, `strcasecmp`; features in any order; the count
 * may be omitted when there are none).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseFlakeyParams(params: string): FlakeyParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('flakey params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length < 4) throw bad("must be '<major:minor> <offset> <up interval> <down interval> [<num_features> <features>...]'");
  const offset = decimalBigint(w[1]);
  if (offset === undefined) throw bad('offset must be a decimal sector in 0..2^64-1', w[1]);
  const up = decimalNumber(w[2], U32_MAX);
  const down = decimalNumber(w[3], U32_MAX);
  if (up === undefined) throw bad(`up interval must be a decimal in 0..${U32_MAX}`, w[2]);
  if (down === undefined) throw bad(`down interval must be a decimal in 0..${U32_MAX}`, w[3]);
  let writes: 'drop' | 'error' | undefined;
  let errorReads = false;
  let corrupt: FlakeyCorruptBioByte | undefined;
  if (w.length > 4) {
    // dm_read_arg_group: the count is 0..6 and must not exceed what follows.
    const count = decimalNumber(w[4], 6);
    if (count === undefined) throw bad('feature count must be a decimal in 0..6', w[4]);
    const rest = w.slice(5);
    if (rest.length !== count) throw bad(`declares ${count} feature argument(s) but has ${rest.length}`);
    for (let i = 0; i < rest.length; ) {
      const name = rest[i]!.toLowerCase();
      if (name === 'drop_writes' || name === 'error_writes') {
        if (writes !== undefined) throw bad(`${name} after ${writes}_writes`, rest[i]);
        writes = name === 'drop_writes' ? 'drop' : 'error';
        i += 1;
      } else if (name === 'error_reads') {
        if (errorReads) throw bad('error_reads given twice', rest[i]);
        errorReads = true;
        i += 1;
      } else if (name === 'corrupt_bio_byte') {
        if (corrupt !== undefined) throw bad('corrupt_bio_byte given twice', rest[i]);
        const [nth, dir, value, flags] = rest.slice(i + 1, i + 5);
        const byte = decimalNumber(nth, U32_MAX);
        const v = decimalNumber(value, 255);
        const f = decimalNumber(flags, U32_MAX);
        const d = dir?.toLowerCase();
        if (byte === undefined || v === undefined || f === undefined || (d !== 'r' && d !== 'w'))
          throw bad("corrupt_bio_byte must be followed by '<Nth_byte> <r|w> <value> <flags>'", rest.slice(i, i + 5).join(' '));
        corrupt = { byte, direction: d === 'w' ? 'write' : 'read', value: v, flags: f };
        i += 5;
      } else throw bad('unknown flakey feature (known: drop_writes, error_writes, corrupt_bio_byte; error_reads from 6.5)', rest[i]);
    }
  }
  const p: FlakeyParams = {
    device: parseDevNum(w[0]!),
    offset,
    upInterval: up,
    downInterval: down,
    ...(writes !== undefined ? { writes } : {}),
    ...(corrupt !== undefined ? { corruptBioByte: corrupt } : {}),
    ...(errorReads ? { errorReads: true as const } : {}),
  };
  const found = flakeyParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('flakey params', found);
  return p;
}

/** A complete flakey target line. @throws InvalidArgumentError */
export function flakeyTarget(start: bigint, length: bigint, p: FlakeyParams): TargetLine {
  return { start, length, type: FLAKEY_TARGET, params: formatFlakeyParams(p) };
}

/** Flakey's INFO status: the kernel reports nothing (`flakey_status` STATUSTYPE_INFO: `result[0] = '\0'`). */
export type FlakeyStatus = Record<string, never>;

/**
 * Parses flakey's INFO status line, which is always empty (blanks aside).
 * @throws KernelOutputError when there is any text.
 */
export function parseFlakeyStatus(line: string): FlakeyStatus {
  if (words(line).length > 0) throw new KernelOutputError(`flakey status: expected an empty line, got ${JSON.stringify(line)}`, line);
  return {};
}
