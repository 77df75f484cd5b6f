// SPDX-License-Identifier: MIT
// The fault kit's reader of the dm-log-writes on-disk log and its replay onto a device or file.
//
// The format and its strict decoder live with the target: decodeLogWritesLog in
// src/dm/targets/log-writes.ts; this module feeds it a file or block device and replays the result.
//
// Replay semantics follow fstests' replay-log (src/log-writes/log-writes.c): entries in order, a
// write is put at sector × sectorsize, a discard is BLKDISCARD on a block device (zeroes written
// where the device refuses it, and on a regular file), flushes and marks carry nothing to apply;
// `--end-mark NAME` stops after the mark. Our own code; only the format and semantics are shared.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { constants as fsc } from 'node:fs';
import { InvalidArgumentError, errnoCode } from '../errors.js';
import { BLKDISCARD, BLKGETSIZE64, O_CLOEXEC, encodeBlkRange, realSyscalls, type Syscalls } from '../ioctl/index.js';
import { WriteLogCorruptError, decodeLogWritesLog, type LogWritesEntry, type LogWritesLog } from '../dm/index.js';

/** One entry of a dm-log-writes log: the dm layer's {@link LogWritesEntry}. */
export type WriteLogEntry = LogWritesEntry;

/** A decoded dm-log-writes log: the dm layer's {@link LogWritesLog}. */
export type WriteLog = LogWritesLog;

/** Where a log is read from: a path (a file or the log block device) or its bytes. */
export type WriteLogSource = string | Uint8Array;

/** A reader over a source, and how to release it. */
interface Reader {
  readonly read: (position: bigint, length: number) => Buffer;
  close(): void;
}

function openReader(source: WriteLogSource): Reader {
  if (typeof source !== 'string') return { read: (position, length) => readBytes(source, position, length), close: () => {} };
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

function readBytes(bytes: Uint8Array, position: bigint, length: number): Buffer {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return position >= BigInt(b.length) ? Buffer.alloc(0) : b.subarray(Number(position), Math.min(b.length, Number(position) + length));
}

function sourceProblems(source: unknown, path: string): { path: string; message: string; value?: unknown }[] {
  if (typeof source === 'string' ? source === '' : !(source instanceof Uint8Array))
    return [{ path, message: 'must be a non-empty path or a Uint8Array of the log', value: source }];
  return [];
}

/**
 * Decodes a dm-log-writes log from a file, a block device or bytes with the dm layer's strict
 * decoder (decodeLogWritesLog): the super block, then `nr_entries` entries, each checked as the
 * kernel writes it. From a path, reads the headers only (plus one byte at the end of each entry's
 * data, to prove it is there).
 * @throws InvalidArgumentError when `log` is neither a path nor bytes
 * @throws WriteLogCorruptError naming the problem, the entry and the byte offset
 */
export function readWriteLog(log: WriteLogSource): WriteLog {
  const bad = sourceProblems(log, '/log');
  if (bad.length > 0) throw new InvalidArgumentError('dm-log-writes log', bad);
  const reader = openReader(log);
  try {
    return decodeLogWritesLog(reader.read);
  } finally {
    reader.close();
  }
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
    const decoded = decodeLogWritesLog(reader.read);
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
