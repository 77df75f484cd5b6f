// SPDX-License-Identifier: MIT
// The `log-writes` target (Documentation/admin-guide/device-mapper/log-writes.rst,
// drivers/md/dm-log-writes.c): `<dev_path> <log_dev_path>`.
//
// Every write to the device is passed through and, once it is known to be on stable storage (after
// the next flush, or at once for FUA), appended to the log device together with its data. Flushes,
// discards and user marks (the `mark <name>` message) are logged as entries too, so the log can be
// replayed onto a copy of the device up to any flush or mark. This module has the table codec, the
// status parser, the `mark` message, and the (one, strict) decoder of the on-disk log; the fault kit's
// readWriteLog / replayLog (src/testing/write-log.ts) use it for files and block devices.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { WriteLogCorruptError } from '../errors.js';
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
//
// Block 0 holds `struct log_write_super` { __le64 magic; __le64 version; __le64 nr_entries;
// __le32 sectorsize } (the rest of the block zero, `write_metadata` memsets it). `sectorsize` is the
// logical block size of the *logged* device (`log_writes_ctr`: bdev_logical_block_size) and is the
// unit of everything else: entries start at block 1, each a one-block header
// `struct log_write_entry` { __le64 sector; __le64 nr_sectors; __le64 flags; __le64 data_len }
// followed, in the same block, by a mark's name (data_len bytes, `log_mark`: at most
// sectorsize - 32 - 1) and zeroes; then, unless the entry is a discard, nr_sectors blocks of the
// written data (`log_writes_kthread` advances next_sector by nr_sectors + 1 blocks, by 1 block for a
// discard). `sector` and `nr_sectors` count blocks of the logged device too (`bio_to_dev_sectors`).
// The super's nr_entries is rewritten only after a FUA write or a mark (`log_writes_kthread`:
// `super = flags & (LOG_FUA_FLAG | LOG_MARK_FLAG)`); removing the target logs the mark
// `dm-log-writes-end` (`log_writes_dtr`), so a log read after removal counts every entry.

/** `WRITE_LOG_MAGIC`. */
export const LOG_WRITES_MAGIC = 0x6a736677736872n;
/** `WRITE_LOG_VERSION`. */
export const LOG_WRITES_VERSION = 1n;

/** Entry flag bits (`LOG_*_FLAG` in dm-log-writes.c), as the 64-bit `flags` field holds them. */
export const LOG_WRITES_FLAGS = { flush: 1n, fua: 2n, discard: 4n, mark: 8n, metadata: 16n } as const;
const KNOWN_FLAGS = 0x1fn;
/** sizeof(struct log_write_super) and sizeof(struct log_write_entry). */
const SUPER_BYTES = 28;
const ENTRY_BYTES = 32;
/** Replays address the target with JavaScript numbers: every byte must lie below 2^53. */
const MAX_BYTE = BigInt(Number.MAX_SAFE_INTEGER);

/** One entry of a dm-log-writes log, as decoded from its header block. */
export interface LogWritesEntry {
  /** 0-based position in the log. */
  readonly index: number;
  /** First block written (in `sectorSize` units of the logged device). */
  readonly sector: bigint;
  /** Blocks written or discarded (0 for a flush or a mark). */
  readonly nrSectors: bigint;
  /** The raw `flags` (see {@link LOG_WRITES_FLAGS}). */
  readonly flags: bigint;
  readonly flush: boolean;
  readonly fua: boolean;
  readonly discard: boolean;
  readonly metadata: boolean;
  /** The mark's name for a mark entry (`LOG_MARK_FLAG`), else undefined. */
  readonly mark?: string;
  /** The header's `data_len`: the mark name's length for a mark, 0 otherwise. */
  readonly dataLen: bigint;
  /** Byte offset of the header block in the log. */
  readonly offset: bigint;
  /** Byte offset of the written data in the log; `nrSectors × sectorSize` bytes (none for a discard or a mark). */
  readonly dataOffset: bigint;
}

/** A decoded dm-log-writes log: the super block's fields and the entries. */
export interface LogWritesLog {
  readonly version: bigint;
  /** The super's `nr_entries` (the entries decoded unless a `limit` was given). */
  readonly nrEntries: bigint;
  /** Block size of the logged device, the unit of every sector field. */
  readonly sectorSize: number;
  readonly entries: readonly LogWritesEntry[];
  /** Byte offset just past the last entry (its data included). */
  readonly endOffset: bigint;
}

/**
 * Random access to a log that is not in memory (a file, the log device): `length` bytes at byte
 * `position`, fewer (or none) where the log ends.
 */
export type LogWritesReader = (position: bigint, length: number) => Uint8Array;

function bytesReader(log: Uint8Array): LogWritesReader {
  const n = BigInt(log.length);
  return (position, length) => (position >= n ? log.subarray(0, 0) : log.subarray(Number(position), Math.min(log.length, Number(position) + length)));
}

/**
 * Decodes a dm-log-writes log read from the start of the log device: the super block, then
 * `nr_entries` entries, or `limit` when given (the super lags behind the log until the next FUA
 * or mark). Every header is checked as the kernel writes it (padding zero, known flags, a mark's
 * name inside its block, no data length outside marks, the data present in the log), so a torn or
 * foreign log is refused. `log` is the log's bytes, or a reader for a log too large to load: then
 * only the header blocks are read (plus one byte at the end of each entry's data, to prove it is there).
 * @example decodeLogWritesLog(readFileSync('/dev/loop1')).entries.filter((e) => e.mark !== undefined)
 * @throws InvalidArgumentError when `log` is neither bytes nor a reader, or `limit` is not a non-negative integer
 * @throws WriteLogCorruptError naming the problem, the entry and the byte offset
 */
export function decodeLogWritesLog(log: Uint8Array | LogWritesReader, limit?: number): LogWritesLog {
  const problems: ValidationProblem[] = [];
  if (!(log instanceof Uint8Array) && typeof log !== 'function') problems.push({ path: '/log', message: 'must be a Uint8Array of the log or a reader function', value: log });
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) problems.push({ path: '/limit', message: 'must be a non-negative integer', value: limit });
  if (problems.length > 0) throw new InvalidArgumentError('dm-log-writes log', problems);
  const read = log instanceof Uint8Array ? bytesReader(log) : log;
  const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const head = view(read(0n, SUPER_BYTES));
  if (head.length < SUPER_BYTES) throw new WriteLogCorruptError('truncated', `the super block needs ${SUPER_BYTES} bytes, the log has ${head.length}`);
  const magic = head.readBigUInt64LE(0);
  if (magic !== LOG_WRITES_MAGIC) throw new WriteLogCorruptError('bad-magic', `bad magic 0x${magic.toString(16)} (expected 0x${LOG_WRITES_MAGIC.toString(16)})`);
  const version = head.readBigUInt64LE(8);
  if (version !== LOG_WRITES_VERSION) throw new WriteLogCorruptError('bad-version', `unknown version ${version} (expected ${LOG_WRITES_VERSION})`, { offset: 8n });
  const nrEntries = head.readBigUInt64LE(16);
  const sectorSize = head.readUInt32LE(24);
  if (sectorSize < 512 || sectorSize > 65536 || (sectorSize & (sectorSize - 1)) !== 0)
    throw new WriteLogCorruptError('bad-sector-size', `sector size ${sectorSize} is not a power of two in 512..65536`, { offset: 24n });
  const ss = BigInt(sectorSize);
  const want = limit !== undefined ? BigInt(limit) : nrEntries;
  const entries: LogWritesEntry[] = [];
  let off = ss;
  for (let i = 0n; i < want; i++) {
    const index = Number(i);
    const where = { entry: index, offset: off };
    const block = view(read(off, sectorSize));
    if (block.length < sectorSize)
      throw new WriteLogCorruptError('truncated', `entry ${index} of ${want}: the log ends inside its header block at byte ${off}`, where);
    const sector = block.readBigUInt64LE(0);
    const nrSectors = block.readBigUInt64LE(8);
    const flags = block.readBigUInt64LE(16);
    const dataLen = block.readBigUInt64LE(24);
    const isMark = (flags & LOG_WRITES_FLAGS.mark) !== 0n;
    const isDiscard = (flags & LOG_WRITES_FLAGS.discard) !== 0n;
    const entryBad = (why: string): WriteLogCorruptError => new WriteLogCorruptError('bad-entry', `entry ${index} at byte ${off}: ${why}`, where);
    // replay-log's log_entry_valid (fstests src/log-writes/log-writes.c): a header of zeroes is
    // no entry (every logged bio has a sector count or the flush flag; a mark has its flag).
    if (flags === 0n && nrSectors === 0n) throw entryBad('an all-zero header (no flags, no sectors)');
    if ((flags & ~KNOWN_FLAGS) !== 0n) throw entryBad(`unknown flag bits 0x${(flags & ~KNOWN_FLAGS).toString(16)}`);
    let mark: string | undefined;
    let padFrom = ENTRY_BYTES;
    if (isMark) {
      // log_mark: kstrndup(data, sectorsize - 32 - 1); nothing else in a mark entry.
      if (flags !== LOG_WRITES_FLAGS.mark) throw entryBad(`a mark with other flags (0x${flags.toString(16)})`);
      if (nrSectors !== 0n) throw entryBad(`a mark with ${nrSectors} sectors`);
      if (dataLen === 0n || dataLen > ss - BigInt(ENTRY_BYTES) - 1n) throw entryBad(`mark name length ${dataLen} is not in 1..${sectorSize - ENTRY_BYTES - 1}`);
      const name = block.subarray(ENTRY_BYTES, ENTRY_BYTES + Number(dataLen));
      if (name.includes(0)) throw entryBad('the mark name contains NUL');
      mark = name.toString('utf8');
      padFrom = ENTRY_BYTES + Number(dataLen);
    } else if (dataLen !== 0n) throw entryBad(`data_len ${dataLen} outside a mark`);
    // write_metadata memsets the rest of the header block to zero.
    for (let b = padFrom; b < sectorSize; b++) if (block[b] !== 0) throw entryBad(`non-zero byte at ${b} of the header block's padding`);
    if ((sector + nrSectors) * ss > MAX_BYTE) throw new WriteLogCorruptError('out-of-range', `entry ${index}: sectors ${sector}+${nrSectors} lie beyond 2^53 bytes`, where);
    const dataOffset = off + ss;
    const dataBytes = isDiscard ? 0n : nrSectors * ss;
    const end = dataOffset + dataBytes;
    if (end > MAX_BYTE) throw new WriteLogCorruptError('out-of-range', `entry ${index}: its data would end at byte ${end} of the log`, where);
    if (dataBytes > 0n && read(end - 1n, 1).length < 1)
      throw new WriteLogCorruptError('truncated', `entry ${index}: the log ends inside its ${dataBytes} bytes of data`, where);
    entries.push({
      index,
      sector,
      nrSectors,
      flags,
      flush: (flags & LOG_WRITES_FLAGS.flush) !== 0n,
      fua: (flags & LOG_WRITES_FLAGS.fua) !== 0n,
      discard: isDiscard,
      metadata: (flags & LOG_WRITES_FLAGS.metadata) !== 0n,
      ...(mark !== undefined ? { mark } : {}),
      dataLen,
      offset: off,
      dataOffset,
    });
    off = end;
  }
  return { version, nrEntries, sectorSize, entries, endOffset: off };
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
  log: Uint8Array,
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
  const ss = BigInt(decoded.sectorSize);
  for (let i = 0; i < count; i++) {
    const e = entries[i]!;
    if (e.discard) apply({ kind: 'discard', entry: i, byteOffset: e.sector * ss, byteLength: e.nrSectors * ss });
    else if (e.nrSectors > 0n) {
      const len = Number(e.nrSectors * ss);
      const at = Number(e.dataOffset);
      if (at + len > log.length)
        throw new InvalidArgumentError('log-writes replay', [{ path: '/decoded', message: `entry ${i}'s data ends at byte ${at + len}, past the ${log.length}-byte log: not decoded from this log`, value: i }]);
      apply({ kind: 'write', entry: i, byteOffset: e.sector * ss, data: Buffer.from(log.buffer, log.byteOffset + at, len) });
    }
  }
  return count;
}
