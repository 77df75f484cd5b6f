// SPDX-License-Identifier: MIT
// The `log-writes` target (Documentation/admin-guide/device-mapper/log-writes.rst,
// drivers/md/dm-log-writes.c): `<dev_path> <log_dev_path>`.
//
// Every write to the device is passed through and, once it is known to be on stable storage (after
// the next flush, or at once for FUA), appended to the log device together with its data. Flushes,
// discards and user marks (the `mark <name>` message) are logged as entries too, so the log can be
// replayed onto a copy of the device up to any flush or mark. This module has the table codec, the
// status parser, the `mark` message, and a pure decoder of the on-disk log.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, words } from './args.js';

export const LOG_WRITES_TARGET = 'log-writes';

/** Parameters of a log-writes target: writes to `device` are logged onto `logDevice`. */
export interface LogWritesParams {
  readonly device: DevNum;
  readonly logDevice: DevNum;
}

/** Every problem with log-writes params. */
export function logWritesParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a log-writes params object', value: p }];
  const v = p as Partial<Record<keyof LogWritesParams, unknown>>;
  const out = [...devNumProblems(v.device, `${path}/device`), ...devNumProblems(v.logDevice, `${path}/logDevice`)];
  const d = v.device as DevNum | undefined;
  const l = v.logDevice as DevNum | undefined;
  if (out.length === 0 && d!.major === l!.major && d!.minor === l!.minor)
    out.push({ path: `${path}/logDevice`, message: 'must differ from device (the log would overwrite the data)', value: l });
  return out;
}

/**
 * Encodes log-writes params exactly as the kernel reports them back in table mode:
 * `log_writes_status` STATUSTYPE_TABLE in drivers/md/dm-log-writes.c emits `"%s %s"` of the two
 * devices' names, which `dm_get_device` makes `major:minor`.
 * @example formatLogWritesParams({device: {major: 7, minor: 0}, logDevice: {major: 7, minor: 1}}) // → '7:0 7:1'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatLogWritesParams(p: LogWritesParams): string {
  const found = logWritesParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('log-writes params', found);
  return `${formatDevNum(p.device)} ${formatDevNum(p.logDevice)}`;
}

/**
 * Parses log-writes params `<major:minor> <major:minor>`.
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseLogWritesParams(params: string): LogWritesParams {
  const w = words(params);
  if (w.length !== 2)
    throw new InvalidArgumentError('log-writes params', [{ path: '', message: "must be '<major:minor> <major:minor>'", value: params }]);
  const p = { device: parseDevNum(w[0]!), logDevice: parseDevNum(w[1]!) };
  const found = logWritesParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('log-writes params', found);
  return p;
}

/** A complete log-writes target line. @throws InvalidArgumentError */
export function logWritesTarget(start: bigint, length: bigint, p: LogWritesParams): TargetLine {
  return { start, length, type: LOG_WRITES_TARGET, params: formatLogWritesParams(p) };
}

/**
 * Log-writes INFO status (`log_writes_status` STATUSTYPE_INFO:
 * `"%llu %llu"` of `logged_entries` and `next_sector - 1`, then `" logging_disabled"` once
 * logging stopped: the log device is full, or a log write failed).
 */
export interface LogWritesStatus {
  /** Entries appended to the log so far (the super's `nr_entries` lags until the next FUA or mark). */
  readonly loggedEntries: bigint;
  /** The last 512-byte sector of the log device in use (0 when only the super block is). */
  readonly highestSector: bigint;
  readonly loggingEnabled: boolean;
}

/**
 * Parses log-writes' INFO status line `<logged entries> <highest sector> [logging_disabled]`.
 * @throws KernelOutputError naming the field that does not fit.
 */
export function parseLogWritesStatus(line: string): LogWritesStatus {
  const w = words(line);
  if (w.length !== 2 && w.length !== 3)
    throw new KernelOutputError(`log-writes status: expected '<logged entries> <highest sector> [logging_disabled]', got ${w.length} field(s)`, line);
  const entries = decimalBigint(w[0]);
  if (entries === undefined)
    throw new KernelOutputError(`log-writes status field 1 (logged entries): got ${JSON.stringify(w[0])}, expected an unsigned 64-bit decimal`, line);
  const highest = decimalBigint(w[1]);
  if (highest === undefined)
    throw new KernelOutputError(`log-writes status field 2 (highest sector): got ${JSON.stringify(w[1])}, expected an unsigned 64-bit decimal`, line);
  if (w.length === 3 && w[2] !== 'logging_disabled')
    throw new KernelOutputError(`log-writes status field 3: got ${JSON.stringify(w[2])}, expected logging_disabled`, line);
  return { loggedEntries: entries, highestSector: highest, loggingEnabled: w.length === 2 };
}

/**
 * The longest mark name that no kernel truncates on a device with 512-byte logical blocks:
 * `log_mark` keeps at most `sectorsize - sizeof(struct log_write_entry) - 1` = 512 - 32 - 1 bytes
 * (`kstrndup(data, maxsize - 1)`; older kernels kept one byte more). Devices with larger logical
 * blocks allow more; we hold every device to this bound.
 */
export const LOG_WRITES_MARK_MAX_BYTES = 479;

/** Every problem with a mark name. */
export function logWritesMarkProblems(name: unknown, path = ''): ValidationProblem[] {
  if (typeof name !== 'string') return [{ path, message: 'must be a string', value: name }];
  const out: ValidationProblem[] = [];
  if (name === '') out.push({ path, message: 'must not be empty', value: name });
  // log_writes_message wants exactly 2 arguments ("mark", the name), split on blanks by
  // dm_split_args, which also treats a backslash as an escape: neither may appear in a name.
  if (/[\s\\\0]/.test(name)) out.push({ path, message: 'must not contain whitespace, backslashes or NUL', value: name });
  if (Buffer.byteLength(name) > LOG_WRITES_MARK_MAX_BYTES)
    out.push({ path, message: `must be at most ${LOG_WRITES_MARK_MAX_BYTES} bytes (the kernel would truncate it)`, value: name });
  return out;
}

/**
 * `mark <name>`: append a mark entry carrying `name` to the log (send with DmControl.targetMessage
 * at sector 0). The entry follows every write that was logged before it; writes still waiting for
 * a flush are logged after it, so flush (fsync) before marking a consistent point.
 * @throws InvalidArgumentError when the name is empty, too long or contains blanks, `\` or NUL.
 */
export function logWritesMarkMessage(name: string): string {
  const found = logWritesMarkProblems(name, '/name');
  if (found.length > 0) throw new InvalidArgumentError('log-writes mark message', found);
  return `mark ${name}`;
}

// ---- the on-disk log (log-writes.rst, "Log format"; struct log_write_super / log_write_entry) ----

/** `WRITE_LOG_MAGIC`. */
export const LOG_WRITES_MAGIC = 0x6a736677736872n;
/** `WRITE_LOG_VERSION`. */
export const LOG_WRITES_VERSION = 1n;

/** Entry flag bits (`LOG_*_FLAG` in dm-log-writes.c). */
export const LOG_WRITES_FLAGS = { flush: 1, fua: 2, discard: 4, mark: 8, metadata: 16 } as const;

/** The log's super block at byte 0 (`struct log_write_super`, little-endian). */
export interface LogWritesSuper {
  readonly version: bigint;
  /** Entries the kernel had logged when it last wrote the super (after a FUA write or a mark). */
  readonly nrEntries: bigint;
  /** The logged device's logical block size in bytes: the unit of every entry's sector fields. */
  readonly sectorSize: number;
}

/** One decoded log entry (`struct log_write_entry` plus what follows it). */
export interface LogWritesEntry {
  /** Where the write went on the logged device, in `sectorSize` units. */
  readonly sector: bigint;
  /** Its length in `sectorSize` units (0 for a flush or a mark). */
  readonly nrSectors: bigint;
  /** The raw `flags` bits (see {@link LOG_WRITES_FLAGS}). */
  readonly flags: number;
  /** The mark's name for a mark entry, else undefined. */
  readonly mark?: string;
  /** Byte offset of the entry's data in the log (`nrSectors × sectorSize` bytes; none for discards). */
  readonly dataOffset: number;
}

export interface LogWritesLog {
  readonly super: LogWritesSuper;
  readonly entries: readonly LogWritesEntry[];
}

/**
 * Decodes a dm-log-writes log read from the start of the log device. Entries follow the super
 * block, each a one-block header (`sector`, `nr_sectors`, `flags`, `data_len`, then `data_len`
 * bytes of mark name) followed by the written data unless it is a discard (`log_writes_kthread`
 * advances `next_sector` by `nr_sectors` + 1 blocks, by 1 for a discard). `nrEntries` entries
 * are decoded, or `limit` when given (the super lags behind the log until the next FUA or mark;
 * the kernel's own end mark, `dm-log-writes-end`, is written when the target is removed).
 * @throws KernelOutputError when the magic, version or block size is wrong or an entry runs past the end.
 */
export function decodeLogWritesLog(log: Buffer, limit?: number): LogWritesLog {
  const raw = `log-writes log (${log.length} bytes)`;
  if (log.length < 28) throw new KernelOutputError('log-writes log: shorter than its super block', raw);
  const magic = log.readBigUInt64LE(0);
  if (magic !== LOG_WRITES_MAGIC) throw new KernelOutputError(`log-writes log: bad magic 0x${magic.toString(16)}`, raw);
  const version = log.readBigUInt64LE(8);
  if (version !== LOG_WRITES_VERSION) throw new KernelOutputError(`log-writes log: unknown version ${version}`, raw);
  const nrEntries = log.readBigUInt64LE(16);
  const sectorSize = log.readUInt32LE(24);
  if (sectorSize < 512 || sectorSize > 65536 || (sectorSize & (sectorSize - 1)) !== 0)
    throw new KernelOutputError(`log-writes log: bad sector size ${sectorSize}`, raw);
  const want = limit ?? Number(nrEntries);
  const entries: LogWritesEntry[] = [];
  let off = sectorSize;
  for (let i = 0; i < want; i++) {
    if (off + sectorSize > log.length) throw new KernelOutputError(`log-writes log: entry ${i} starts past the end`, raw);
    const sector = log.readBigUInt64LE(off);
    const nrSectors = log.readBigUInt64LE(off + 8);
    const flags = Number(log.readBigUInt64LE(off + 16) & 0xffffffffn);
    const dataLen = log.readBigUInt64LE(off + 24);
    const isMark = (flags & LOG_WRITES_FLAGS.mark) !== 0;
    if (isMark && dataLen > BigInt(sectorSize - 32)) throw new KernelOutputError(`log-writes log: entry ${i} mark longer than its block`, raw);
    const mark = isMark ? log.toString('utf8', off + 32, off + 32 + Number(dataLen)) : undefined;
    const dataOffset = off + sectorSize;
    const dataBytes = (flags & LOG_WRITES_FLAGS.discard) !== 0 ? 0n : nrSectors * BigInt(sectorSize);
    if (BigInt(dataOffset) + dataBytes > BigInt(log.length)) throw new KernelOutputError(`log-writes log: entry ${i} data runs past the end`, raw);
    entries.push({ sector, nrSectors, flags, ...(mark !== undefined ? { mark } : {}), dataOffset });
    off = dataOffset + Number(dataBytes);
  }
  return { super: { version, nrEntries, sectorSize }, entries };
}

/** One step of a replay: a logged write (with its data) or a logged discard. */
export type LogWritesReplayOp =
  | { readonly kind: 'write'; readonly entry: number; readonly byteOffset: bigint; readonly data: Buffer }
  | { readonly kind: 'discard'; readonly entry: number; readonly byteOffset: bigint; readonly byteLength: bigint };

/**
 * Replays a decoded log in order, calling `apply` for every write and discard up to and including
 * entry `until.entries - 1`, or up to the first mark named `until.mark` (what `replay-log
 * --end-mark` does). Flushes, FUAs and marks carry no data to apply. Returns the number of entries
 * consumed. `data` is a view into `log` (copy it to keep it).
 * @throws InvalidArgumentError when the mark is not in the log or `entries` exceeds the log.
 */
export function replayLogWrites(
  log: Buffer,
  decoded: LogWritesLog,
  until: { readonly mark: string } | { readonly entries: number },
  apply: (op: LogWritesReplayOp) => void,
): number {
  const entries = decoded.entries;
  let count: number;
  if ('mark' in until) {
    const at = entries.findIndex((e) => e.mark === until.mark);
    if (at < 0) throw new InvalidArgumentError('log-writes replay', [{ path: '/until/mark', message: 'no such mark in the log', value: until.mark }]);
    count = at + 1;
  } else {
    count = until.entries;
    if (!Number.isInteger(count) || count < 0 || count > entries.length)
      throw new InvalidArgumentError('log-writes replay', [{ path: '/until/entries', message: `must be an integer in 0..${entries.length}`, value: count }]);
  }
  const ss = BigInt(decoded.super.sectorSize);
  for (let i = 0; i < count; i++) {
    const e = entries[i]!;
    if ((e.flags & LOG_WRITES_FLAGS.discard) !== 0) apply({ kind: 'discard', entry: i, byteOffset: e.sector * ss, byteLength: e.nrSectors * ss });
    else if (e.nrSectors > 0n) {
      const len = Number(e.nrSectors * ss);
      apply({ kind: 'write', entry: i, byteOffset: e.sector * ss, data: log.subarray(e.dataOffset, e.dataOffset + len) });
    }
  }
  return count;
}
