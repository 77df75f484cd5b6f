// SPDX-License-Identifier: MIT
// The `delay` target (Documentation/admin-guide/device-mapper/delay.rst, drivers/md/dm-delay.c):
// `<device> <offset> <delay> [<write_device> <write_offset> <write_delay> [<flush_device> <flush_offset> <flush_delay>]]`.
//
// `delay_ctr` takes exactly 3, 6 or 9 arguments. With 3, the one class (device, offset, delay in
// milliseconds) serves reads, writes and flushes; with 6, the second class serves writes and
// flushes; with 9, the third serves flushes (writes with REQ_PREFLUSH, `delay_map`).
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, intProblem, sectorProblem, U32_MAX, words } from './args.js';

export const DELAY_TARGET = 'delay';

/** One delay class: where its I/O goes and how long it is held. */
export interface DelayClass {
  readonly device: DevNum;
  /** Start sector on `device`. */
  readonly offset: bigint;
  /** Milliseconds each bio of this class is held before it is submitted, 0..UINT_MAX (0: not delayed). */
  readonly delayMs: number;
}

/**
 * Parameters of a delay target. The top-level class serves reads, and also writes and flushes
 * when `write` is absent; `write` serves writes, and also flushes when `flush` is absent.
 * `flush` requires `write` (the kernel grammar has no 6-argument read+flush form).
 */
export interface DelayParams extends DelayClass {
  readonly write?: DelayClass;
  readonly flush?: DelayClass;
}

function classProblems(c: unknown, path: string): ValidationProblem[] {
  if (typeof c !== 'object' || c === null) return [{ path, message: 'must be {device, offset, delayMs}', value: c }];
  const v = c as Partial<Record<keyof DelayClass, unknown>>;
  // delay_class_ctr: offset by sscanf("%llu%c") into a sector_t, delay by sscanf("%u%c").
  return [
    ...devNumProblems(v.device, `${path}/device`),
    ...sectorProblem(v.offset, `${path}/offset`),
    ...intProblem(v.delayMs, `${path}/delayMs`, 0, U32_MAX),
  ];
}

/** Every problem with delay params. */
export function delayParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a delay params object', value: p }];
  const v = p as Partial<Record<keyof DelayParams, unknown>>;
  const out = classProblems(p, path);
  if (v.write !== undefined) out.push(...classProblems(v.write, `${path}/write`));
  if (v.flush !== undefined) {
    out.push(...classProblems(v.flush, `${path}/flush`));
    if (v.write === undefined)
      out.push({ path: `${path}/flush`, message: 'requires write (the kernel takes 3, 6 or 9 arguments: read, write, flush)', value: v.flush });
  }
  return out;
}

const formatClass = (c: DelayClass): string => `${formatDevNum(c.device)} ${c.offset} ${c.delayMs}`;

/**
 * Encodes delay params exactly as the kernel reports them back in table mode: `delay_status`
 * STATUSTYPE_TABLE in drivers/md/dm-delay.c emits the read class `"%s %llu %u"`, then, when the
 * table had 6 or more arguments, `" "` and the write class, and with 9 the flush class: as many
 * classes as were given, blank-separated, no trailing blank.
 * @example formatDelayParams({device: {major: 7, minor: 0}, offset: 0n, delayMs: 100}) // → '7:0 0 100'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatDelayParams(p: DelayParams): string {
  const found = delayParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('delay params', found);
  return [p, p.write, p.flush].filter((c): c is DelayClass => c !== undefined).map(formatClass).join(' ');
}

/**
 * Parses delay params (3, 6 or 9 blank-separated fields).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseDelayParams(params: string): DelayParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('delay params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length !== 3 && w.length !== 6 && w.length !== 9)
    throw bad(`must have 3, 6 or 9 fields ('<major:minor> <offset> <delay_ms>' per class), got ${w.length}`);
  const classes: DelayClass[] = [];
  for (let i = 0; i < w.length; i += 3) {
    const offset = decimalBigint(w[i + 1]);
    if (offset === undefined) throw bad(`class ${i / 3}: offset must be a decimal sector in 0..2^64-1`, w[i + 1]);
    const delayMs = decimalNumber(w[i + 2], U32_MAX);
    if (delayMs === undefined) throw bad(`class ${i / 3}: delay must be a decimal in 0..${U32_MAX}`, w[i + 2]);
    classes.push({ device: parseDevNum(w[i]!), offset, delayMs });
  }
  const [read, write, flush] = classes as [DelayClass, DelayClass?, DelayClass?];
  return { ...read, ...(write !== undefined ? { write } : {}), ...(flush !== undefined ? { flush } : {}) };
}

/** A complete delay target line. @throws InvalidArgumentError */
export function delayTarget(start: bigint, length: bigint, p: DelayParams): TargetLine {
  return { start, length, type: DELAY_TARGET, params: formatDelayParams(p) };
}

/**
 * Delay's INFO status: how many bios of each class are being held right now (`delay_status`
 * STATUSTYPE_INFO: `"%u %u %u"` of `read.ops`, `write.ops`, `flush.ops`; a bio counts from
 * `delay_bio` until `flush_delayed_bios` submits it, and classes with delay 0 never count).
 * With 3 table arguments the three classes share one delay but keep separate counters.
 */
export interface DelayStatus {
  readonly reads: number;
  readonly writes: number;
  readonly flushes: number;
}

/**
 * Parses delay's INFO status line `<reads> <writes> <flushes>`.
 * @throws KernelOutputError naming the field that is not an unsigned 32-bit decimal.
 */
export function parseDelayStatus(line: string): DelayStatus {
  const w = words(line);
  if (w.length !== 3) throw new KernelOutputError(`delay status: expected 3 fields '<reads> <writes> <flushes>', got ${w.length}`, line);
  const names = ['reads', 'writes', 'flushes'] as const;
  const n = w.map((s, i) => {
    const v = decimalNumber(s, U32_MAX);
    if (v === undefined)
      throw new KernelOutputError(`delay status field ${i + 1} (${names[i]}): got ${JSON.stringify(s)}, expected an unsigned 32-bit decimal`, line);
    return v;
  });
  return { reads: n[0]!, writes: n[1]!, flushes: n[2]! };
}
