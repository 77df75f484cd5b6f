// SPDX-License-Identifier: MIT
// The fault kit's reader of the dm-log-writes on-disk log and its replay onto a device or file.
//
// Format (Documentation/admin-guide/device-mapper/log-writes.rst, drivers/md/dm-log-writes.c):
// block 0 holds `struct log_write_super` { __le64 magic; __le64 version; __le64 nr_entries;
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
//
// Replay semantics follow fstests' replay-log (src/log-writes/log-writes.c): entries in order, a
// write is put at sector × sectorsize, a discard is BLKDISCARD on a block device (zeroes written
// where the device refuses it, and on a regular file), flushes and marks carry nothing to apply;
// `--end-mark NAME` stops after the mark. Our own code; only the format and semantics are shared.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { constants as fsc } from 'node:fs';
import { InvalidArgumentError, errnoCode } from '../errors.js';
import { BLKDISCARD, BLKGETSIZE64, O_CLOEXEC, encodeBlkRange, realSyscalls, type Syscalls } from '../ioctl/index.js';
import { WriteLogCorruptError } from './errors.js';

/** `WRITE_LOG_MAGIC` (dm-log-writes.c). */
export const WRITE_LOG_MAGIC = 0x6a736677736872n;
/** `WRITE_LOG_VERSION`. */
export const WRITE_LOG_VERSION = 1n;
/** Entry flag bits (`LOG_*_FLAG` in dm-log-writes.c). */
export const WRITE_LOG_FLAGS = { flush: 1n, fua: 2n, discard: 4n, mark: 8n, metadata: 16n } as const;
const KNOWN_FLAGS = 0x1fn;
/** sizeof(struct log_write_super) and sizeof(struct log_write_entry). */
const SUPER_BYTES = 28;
const ENTRY_BYTES = 32;
/** Replays address the target with JavaScript numbers: every byte must lie below 2^53. */
const MAX_BYTE = BigInt(Number.MAX_SAFE_INTEGER);

/** One entry of a dm-log-writes log, as decoded from its header block. */
export interface WriteLogEntry {
  /** 0-based position in the log. */
  readonly index: number;
  /** First block written (in `sectorSize` units of the logged device). */
  readonly sector: bigint;
  /** Blocks written or discarded (0 for a flush or a mark). */
  readonly nrSectors: bigint;
  /** The raw `flags` (see {@link WRITE_LOG_FLAGS}). */
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

/** A decoded dm-log-writes log. */
export interface WriteLog {
  readonly version: bigint;
  /** The super's `nr_entries`: the entries decoded. */
  readonly nrEntries: bigint;
  /** Block size of the logged device, the unit of every sector field. */
  readonly sectorSize: number;
  readonly entries: readonly WriteLogEntry[];
  /** Byte offset just past the last entry (its data included). */
  readonly endOffset: bigint;
}

/** Where a log is read from: a path (a file or the log block device) or its bytes. */
export type WriteLogSource = string | Uint8Array;

/** Reads from a source at byte positions; a short answer means the source ended. */
interface Reader {
  read(position: bigint, length: number): Buffer;
  close(): void;
}

function openReader(source: WriteLogSource): Reader {
  if (typeof source !== 'string') {
    const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return {
      read: (position, length) => (position >= BigInt(bytes.length) ? Buffer.alloc(0) : bytes.subarray(Number(position), Math.min(bytes.length, Number(position) + length))),
      close: () => {},
    };
  }
  const fd = openSync(source, fsc.O_RDONLY | O_CLOEXEC);
  return {
    read: (position, length) => {
      const out = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, out, got, length - got, Number(position) + got);
        if (n === 0) break;
        got += n;
      }
      return out.subarray(0, got);
    },
    close: () => closeSync(fd),
  };
}

function sourceProblems(source: unknown, path: string): { path: string; message: string; value?: unknown }[] {
  if (typeof source === 'string' ? source === '' : !(source instanceof Uint8Array))
    return [{ path, message: 'must be a non-empty path or a Uint8Array of the log', value: source }];
  return [];
}

/**
 * Decodes every header of a dm-log-writes log: the super block, then `nr_entries` entries, each
 * checked as the kernel writes it (padding zero, known flags, a mark's name inside its block, no
 * data length outside marks, the data present in the log) so a torn or foreign log is refused.
 * Reads the headers only (plus one byte at the end of each entry's data, to prove it is there).
 * @throws InvalidArgumentError when `log` is neither a path nor bytes
 * @throws WriteLogCorruptError naming the problem, the entry and the byte offset
 */
export function readWriteLog(log: WriteLogSource): WriteLog {
  const bad = sourceProblems(log, '/log');
  if (bad.length > 0) throw new InvalidArgumentError('dm-log-writes log', bad);
  const reader = openReader(log);
  try {
    return decode(reader);
  } finally {
    reader.close();
  }
}

function decode(r: Reader): WriteLog {
  const head = r.read(0n, SUPER_BYTES);
  if (head.length < SUPER_BYTES) throw new WriteLogCorruptError('truncated', `the super block needs ${SUPER_BYTES} bytes, the log has ${head.length}`);
  const magic = head.readBigUInt64LE(0);
  if (magic !== WRITE_LOG_MAGIC) throw new WriteLogCorruptError('bad-magic', `bad magic 0x${magic.toString(16)} (expected 0x${WRITE_LOG_MAGIC.toString(16)})`);
  const version = head.readBigUInt64LE(8);
  if (version !== WRITE_LOG_VERSION) throw new WriteLogCorruptError('bad-version', `unknown version ${version} (expected ${WRITE_LOG_VERSION})`, { offset: 8n });
  const nrEntries = head.readBigUInt64LE(16);
  const sectorSize = head.readUInt32LE(24);
  if (sectorSize < 512 || sectorSize > 65536 || (sectorSize & (sectorSize - 1)) !== 0)
    throw new WriteLogCorruptError('bad-sector-size', `sector size ${sectorSize} is not a power of two in 512..65536`, { offset: 24n });
  const ss = BigInt(sectorSize);
  const entries: WriteLogEntry[] = [];
  let off = ss;
  for (let i = 0n; i < nrEntries; i++) {
    const index = Number(i);
    const where = { entry: index, offset: off };
    const block = r.read(off, sectorSize);
    if (block.length < sectorSize)
      throw new WriteLogCorruptError('truncated', `entry ${index} of ${nrEntries}: the log ends inside its header block at byte ${off}`, where);
    const sector = block.readBigUInt64LE(0);
    const nrSectors = block.readBigUInt64LE(8);
    const flags = block.readBigUInt64LE(16);
    const dataLen = block.readBigUInt64LE(24);
    const isMark = (flags & WRITE_LOG_FLAGS.mark) !== 0n;
    const isDiscard = (flags & WRITE_LOG_FLAGS.discard) !== 0n;
    const entryBad = (why: string): WriteLogCorruptError => new WriteLogCorruptError('bad-entry', `entry ${index} at byte ${off}: ${why}`, where);
    // replay-log's log_entry_valid: a header of zeroes is no entry (every logged bio has a
    // sector count or the flush flag; a mark has its flag).
    if (flags === 0n && nrSectors === 0n) throw entryBad('an all-zero header (no flags, no sectors)');
    if ((flags & ~KNOWN_FLAGS) !== 0n) throw entryBad(`unknown flag bits 0x${(flags & ~KNOWN_FLAGS).toString(16)}`);
    let mark: string | undefined;
    let padFrom = ENTRY_BYTES;
    if (isMark) {
      // log_mark: kstrndup(data, sectorsize - 32 - 1); nothing else in a mark entry.
      if (flags !== WRITE_LOG_FLAGS.mark) throw entryBad(`a mark with other flags (0x${flags.toString(16)})`);
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
    if (dataBytes > 0n && r.read(end - 1n, 1).length < 1)
      throw new WriteLogCorruptError('truncated', `entry ${index}: the log ends inside its ${dataBytes} bytes of data`, where);
    entries.push({
      index,
      sector,
      nrSectors,
      flags,
      flush: (flags & WRITE_LOG_FLAGS.flush) !== 0n,
      fua: (flags & WRITE_LOG_FLAGS.fua) !== 0n,
      discard: isDiscard,
      metadata: (flags & WRITE_LOG_FLAGS.metadata) !== 0n,
      ...(mark !== undefined ? { mark } : {}),
      dataLen,
      offset: off,
      dataOffset,
    });
    off = end;
  }
  return { version, nrEntries, sectorSize, entries, endOffset: off };
}

/** Where a replay stops: after the first mark of that name, or after entry `entry` (0-based), both included. */
export type ReplayUntil = { readonly mark: string } | { readonly entry: number };

/** Options of {@link replayLog}. */
export interface ReplayLogOptions {
  /** Stop after this entry (included). Default: the whole log. */
  readonly until?: ReplayUntil;
  /**
   * How discards are applied. `'auto'` (default): BLKDISCARD when the target is a block device
   * (zeroes written where the device refuses it, EOPNOTSUPP), zeroes on a regular file, as fstests'
   * replay-log does. `'zeroes'`: always write zeroes. `'skip'`: leave the range as it is.
   */
  readonly discards?: 'auto' | 'zeroes' | 'skip';
  /** Seam for BLKDISCARD (default: the real libc). */
  readonly syscalls?: Syscalls;
}

/** What {@link replayLog} did. */
export interface ReplayResult {
  /** Entries consumed: the stopping entry's index + 1. */
  readonly entries: number;
  readonly writes: number;
  /** Bytes written by logged writes. */
  readonly bytesWritten: bigint;
  readonly discards: number;
  /** How the discards were applied ('none' when there were none). */
  readonly discardedWith: 'blkdiscard' | 'zeroes' | 'skipped' | 'none';
}

const ZERO_CHUNK = 1 << 20;

/**
 * Replays a dm-log-writes log onto `target` (a file or a block device, opened for writing, not
 * truncated): every logged write and discard in log order, up to and including `until`. The
 * target should hold what the logged device held when logging began (for a device the log-writes
 * target was created over fresh, zeroes). The whole log is decoded and `until` looked up before
 * the target is opened, so a corrupt log or an unknown mark changes nothing. The target is
 * fsynced before this returns.
 * @throws InvalidArgumentError for a bad `log`, `target` or `options`, a mark/entry not in the log, or
 *   a block device too small for the writes to replay (checked before anything is written)
 * @throws WriteLogCorruptError when the log is corrupt (see {@link readWriteLog})
 */
export async function replayLog(log: WriteLogSource, target: string, options: ReplayLogOptions = {}): Promise<ReplayResult> {
  const problems = sourceProblems(log, '/log');
  if (typeof target !== 'string' || target === '') problems.push({ path: '/target', message: 'must be a non-empty path', value: target });
  if (typeof options !== 'object' || options === null) problems.push({ path: '/options', message: 'must be an object', value: options });
  else {
    const u = options.until as unknown;
    if (u !== undefined) {
      const ok =
        typeof u === 'object' &&
        u !== null &&
        (('mark' in u && typeof (u as { mark: unknown }).mark === 'string' && !('entry' in u)) ||
          ('entry' in u && Number.isSafeInteger((u as { entry: unknown }).entry) && ((u as { entry: number }).entry >= 0) && !('mark' in u)));
      if (!ok) problems.push({ path: '/options/until', message: 'must be {mark: string} or {entry: a non-negative integer}', value: u });
    }
    const d = options.discards;
    if (d !== undefined && d !== 'auto' && d !== 'zeroes' && d !== 'skip') problems.push({ path: '/options/discards', message: "must be 'auto', 'zeroes' or 'skip'", value: d });
  }
  if (problems.length > 0) throw new InvalidArgumentError('log replay', problems);
  const reader = openReader(log);
  try {
    const decoded = decode(reader);
    const stop = stopIndex(decoded, options.until);
    return await apply(reader, decoded, stop, target, options.discards ?? 'auto', options.syscalls);
  } finally {
    reader.close();
  }
}

function stopIndex(log: WriteLog, until: ReplayUntil | undefined): number {
  if (until === undefined) return log.entries.length - 1;
  if ('mark' in until) {
    const at = log.entries.findIndex((e) => e.mark === until.mark);
    if (at < 0) {
      const marks = log.entries.filter((e) => e.mark !== undefined).map((e) => e.mark);
      throw new InvalidArgumentError('log replay', [{ path: '/options/until/mark', message: `no such mark in the log (its marks: ${marks.join(', ') || 'none'})`, value: until.mark }]);
    }
    return at;
  }
  if (until.entry >= log.entries.length)
    throw new InvalidArgumentError('log replay', [{ path: '/options/until/entry', message: `the log has ${log.entries.length} entries (0..${log.entries.length - 1})`, value: until.entry }]);
  return until.entry;
}

async function apply(r: Reader, log: WriteLog, stop: number, target: string, discards: 'auto' | 'zeroes' | 'skip', sys: Syscalls | undefined): Promise<ReplayResult> {
  const fd = openSync(target, fsc.O_RDWR | O_CLOEXEC);
  try {
    const isBlock = fstatSync(fd).isBlockDevice();
    const ss = BigInt(log.sectorSize);
    const applied = log.entries.slice(0, stop + 1);
    if (isBlock) {
      // A block device does not grow: refuse a log that writes past its end before writing anything.
      const sizeBuf = Buffer.alloc(8);
      (sys ?? realSyscalls()).ioctl(fd, BLKGETSIZE64, sizeBuf, 'BLKGETSIZE64');
      const size = sizeBuf.readBigUInt64LE(0);
      const need = applied.reduce((m, e) => ((e.sector + e.nrSectors) * ss > m ? (e.sector + e.nrSectors) * ss : m), 0n);
      if (need > size)
        throw new InvalidArgumentError('log replay', [{ path: '/target', message: `is ${size} bytes, and the log writes up to byte ${need}`, value: target }]);
    }
    let mode: 'blkdiscard' | 'zeroes' | 'skip' = discards === 'skip' ? 'skip' : discards === 'zeroes' || !isBlock ? 'zeroes' : 'blkdiscard';
    let writes = 0;
    let bytes = 0n;
    let discarded = 0;
    for (const e of applied) {
      if (e.nrSectors === 0n) continue; // a flush or a mark: nothing to apply
      const at = e.sector * ss;
      const len = e.nrSectors * ss;
      if (e.discard) {
        discarded++;
        if (mode === 'blkdiscard') {
          try {
            await (sys ?? realSyscalls()).ioctlAsync(fd, BLKDISCARD, encodeBlkRange(at, len), 'BLKDISCARD');
            continue;
          } catch (err) {
            // replay-log falls back to writing zeroes when the device cannot discard.
            if (errnoCode(err) !== 'EOPNOTSUPP') throw err;
            mode = 'zeroes';
          }
        }
        if (mode === 'zeroes') writeZeroes(fd, at, len);
        continue;
      }
      const data = r.read(e.dataOffset, Number(len));
      if (BigInt(data.length) !== len) throw new WriteLogCorruptError('truncated', `entry ${e.index}: the log ends inside its data`, { entry: e.index, offset: e.offset });
      writeAll(fd, data, at);
      writes++;
      bytes += len;
    }
    fsyncSync(fd);
    return {
      entries: stop + 1,
      writes,
      bytesWritten: bytes,
      discards: discarded,
      discardedWith: discarded === 0 ? 'none' : mode === 'skip' ? 'skipped' : mode,
    };
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Buffer, at: bigint): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, Number(at) + done);
}

function writeZeroes(fd: number, at: bigint, len: bigint): void {
  const zeroes = Buffer.alloc(Number(len < BigInt(ZERO_CHUNK) ? len : BigInt(ZERO_CHUNK)));
  for (let done = 0n; done < len; ) {
    const n = len - done < BigInt(zeroes.length) ? Number(len - done) : zeroes.length;
    writeAll(fd, zeroes.subarray(0, n), at + done);
    done += BigInt(n);
  }
}
