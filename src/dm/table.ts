// SPDX-License-Identifier: MIT
// Device-mapper tables: typed target lines, dmsetup text form, and the kernel's table rules
// checked before any ioctl.
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';

/**
 * One line of a device-mapper table, as `dmsetup table` prints it: `START LEN TYPE PARAMS`.
 * `start` and `length` are in 512-byte sectors. `params` is the target's parameter string exactly
 * as the kernel receives it (see {@link targetLineProblems} for what it may contain).
 */
export interface TargetLine {
  readonly start: bigint;
  readonly length: bigint;
  readonly type: string;
  readonly params: string;
}

/** `DM_MAX_TYPE_NAME` (16, include/uapi/linux/dm-ioctl.h) minus the NUL. */
export const DM_MAX_TARGET_TYPE_BYTES = 15;

/** Largest sector value a `u64 sector_start/length` field of `struct dm_target_spec` can hold. */
const U64_MAX = (1n << 64n) - 1n;

/**
 * Problems with one target line on its own (not its position in the table).
 *
 * `params` may not contain NUL (it is sent as a C string and would be cut short) nor a line break
 * (the text form is line-based). Backslashes are passed through untouched: the kernel's argument
 * splitter (`dm_split_args` in drivers/md/dm-table.c) treats `\` as an escape, so callers who need
 * a literal backslash or a space inside one argument write `\\` or `\ ` themselves.
 */
export function targetLineProblems(t: unknown, path = ''): ValidationProblem[] {
  if (typeof t !== 'object' || t === null) return [{ path, message: 'must be a target line object', value: t }];
  const v = t as Record<string, unknown>;
  const problems: ValidationProblem[] = [];
  const sector = (field: 'start' | 'length'): void => {
    const n = v[field];
    if (typeof n !== 'bigint' || n < 0n || n > U64_MAX)
      problems.push({ path: `${path}/${field}`, message: 'must be a bigint sector count in 0..2^64-1', value: n });
  };
  sector('start');
  sector('length');
  if (typeof v.length === 'bigint' && v.length === 0n)
    problems.push({ path: `${path}/length`, message: 'must not be zero', value: v.length });
  const type = v.type;
  if (typeof type !== 'string') problems.push({ path: `${path}/type`, message: 'must be a string', value: type });
  else {
    if (type.length === 0) problems.push({ path: `${path}/type`, message: 'must not be empty', value: type });
    if (Buffer.byteLength(type) > DM_MAX_TARGET_TYPE_BYTES)
      problems.push({ path: `${path}/type`, message: `must be at most ${DM_MAX_TARGET_TYPE_BYTES} bytes`, value: type });
    if (/[\s\0]/.test(type))
      problems.push({ path: `${path}/type`, message: 'must not contain whitespace or NUL', value: type });
  }
  const params = v.params;
  if (typeof params !== 'string') problems.push({ path: `${path}/params`, message: 'must be a string', value: params });
  else if (/[\0\n\r]/.test(params))
    problems.push({ path: `${path}/params`, message: 'must not contain NUL or line breaks', value: params });
  return problems;
}

/**
 * Every problem with a whole table: each line's own problems, then the layout rules the kernel
 * enforces at TABLE_LOAD (drivers/md/dm-table.c: at least one target, `dm_table_add_target`
 * refuses zero length, and targets must tile the device from sector 0 with no gap or overlap).
 * Device sizes and logical-block alignment can only be checked by the kernel.
 */
export function tableProblems(targets: unknown, path = ''): ValidationProblem[] {
  if (!Array.isArray(targets)) return [{ path, message: 'must be an array of target lines', value: targets }];
  if (targets.length === 0) return [{ path, message: 'must contain at least one target' }];
  const problems: ValidationProblem[] = [];
  let expected = 0n;
  targets.forEach((t, i) => {
    const own = targetLineProblems(t, `${path}/${i}`);
    problems.push(...own);
    const { start, length } = (t ?? {}) as Partial<TargetLine>;
    if (typeof start !== 'bigint' || typeof length !== 'bigint') return;
    if (start > expected)
      problems.push({ path: `${path}/${i}/start`, message: `gap: expected start ${expected}, got ${start}`, value: start });
    else if (start < expected)
      problems.push({ path: `${path}/${i}/start`, message: `overlap: expected start ${expected}, got ${start}`, value: start });
    // Continue from this line's own end so one bad line yields one problem, not a cascade.
    expected = start + length;
  });
  if (expected > U64_MAX) problems.push({ path, message: 'table ends beyond sector 2^64-1' });
  return problems;
}

/**
 * Validates a whole table before it is loaded.
 * @throws InvalidArgumentError listing every problem found.
 */
export function assertTable(targets: readonly TargetLine[]): void {
  const problems = tableProblems(targets);
  if (problems.length > 0) throw new InvalidArgumentError('device-mapper table', problems);
}

/** Total size in sectors of a (valid) table: the end of its last target. */
export function tableSize(targets: readonly TargetLine[]): bigint {
  const last = targets[targets.length - 1];
  return last === undefined ? 0n : last.start + last.length;
}

/** `{start: 0n, length: 2048n, type: 'linear', params: '7:0 0'}` → `'0 2048 linear 7:0 0'`. */
export function formatTargetLine(t: TargetLine): string {
  const head = `${t.start} ${t.length} ${t.type}`;
  return t.params === '' ? head : `${head} ${t.params}`;
}

/** A whole table in dmsetup text form: one line per target, each ending in a newline. */
export function formatTable(targets: readonly TargetLine[]): string {
  return targets.map((t) => `${formatTargetLine(t)}\n`).join('');
}

const LINE_RE = /^\s*(\d+)\s+(\d+)\s+(\S+)(?:\s+(.*?))?\s*$/;

/**
 * Parses one `START LEN TYPE [PARAMS]` line. Whitespace between the first three fields may be any
 * run of blanks; PARAMS is the rest of the line with outer whitespace trimmed (inner spacing kept,
 * since it belongs to the target).
 * @throws InvalidArgumentError when the line does not have that shape.
 */
export function parseTargetLine(line: string, path = ''): TargetLine {
  const m = LINE_RE.exec(line);
  if (!m)
    throw new InvalidArgumentError('table line', [
      { path, message: "must look like 'START LENGTH TYPE [PARAMS]'", value: line },
    ]);
  return { start: BigInt(m[1]!), length: BigInt(m[2]!), type: m[3]!, params: m[4] ?? '' };
}

/**
 * Parses a table in dmsetup text form. Blank lines and lines starting with `#` are skipped, as
 * dmsetup does. The result is *not* validated; pass it to {@link assertTable} before loading.
 * @throws InvalidArgumentError listing every malformed line.
 */
export function parseTable(text: string): TargetLine[] {
  const out: TargetLine[] = [];
  const problems: ValidationProblem[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (/^\s*(#.*)?$/.test(line)) return;
    try {
      out.push(parseTargetLine(line, `/${i}`));
    } catch (e) {
      if (e instanceof InvalidArgumentError) problems.push(...e.problems);
      else throw e;
    }
  });
  if (problems.length > 0) throw new InvalidArgumentError('device-mapper table', problems);
  return out;
}
