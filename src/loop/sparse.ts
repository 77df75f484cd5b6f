// SPDX-License-Identifier: MIT
// Sparse backing files: create or grow (never shrink) with ftruncate, durably (fsync).
import { constants, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { InvalidArgumentError, errnoCode } from '../errors.js';
import { BackingFileLinkError, BackingFileNotFoundError, BackingFileNotRegularError, SparseFileShrinkError, SparseFileTooLargeError, checkLoopAbort, fileTypeName } from './errors.js';
import type { LoopProgressCallback } from './progress.js';

/** What {@link ensureSparseFile} did and what the file looks like afterwards. */
export interface SparseFileReport {
  /** st_size after the call, in bytes. */
  readonly apparentSize: bigint;
  /** Bytes actually allocated on disk (st_blocks × 512). Small for a fresh sparse file. */
  readonly allocatedSize: bigint;
  /** The file did not exist and was created. */
  readonly created: boolean;
  /** The file existed and was extended. */
  readonly grown: boolean;
}

export interface EnsureSparseFileOptions {
  /** Permission bits for a newly created file. Default 0o600. */
  readonly mode?: number;
  /**
   * Refuse a symbolic link at `path` instead of creating or growing its target: lstat instead of
   * stat, and every open with O_NOFOLLOW. For files in a directory the caller owns, where a link
   * can only be a planted one. Default false.
   */
  readonly noFollow?: boolean;
  /**
   * Cancels the call between its stages (open/create, size, fsync): it then rejects with
   * LoopAbortedError, after removing a file it created or truncating a file it grew back to its
   * old size. Once the fsyncs ran the call completes.
   */
  readonly signal?: AbortSignal;
  /**
   * Progress by stage: `{ step: 'sparse-file', done, total: 3 }` with done 0 (start), 1 (opened
   * or created), 2 (sized), 3 (fsynced). The work is three syscalls of any size (ftruncate makes
   * a hole), so the stages are the only units there are.
   */
  readonly onProgress?: LoopProgressCallback;
}

/** The stages {@link EnsureSparseFileOptions.onProgress} counts. */
export const SPARSE_FILE_STAGES = 3;

/** Largest size ftruncate accepts through Node (a safe integer). */
const MAX_SPARSE_SIZE = BigInt(Number.MAX_SAFE_INTEGER);

function toSize(size: bigint | number): bigint {
  if (typeof size === 'bigint') {
    if (size < 0n || size > MAX_SPARSE_SIZE) {
      throw new InvalidArgumentError('sparse file size', [
        { path: '/size', message: `must be between 0 and ${MAX_SPARSE_SIZE} bytes`, value: size },
      ]);
    }
    return size;
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgumentError('sparse file size', [
      { path: '/size', message: 'must be a non-negative safe integer (bytes)', value: size },
    ]);
  }
  return BigInt(size);
}

/**
 * Makes sure `path` is a regular file of at least `size` bytes, sparse where it was extended.
 *
 * - Missing file: created (O_CREAT|O_EXCL, `mode`, default 0o600) and truncated up to `size`; the
 *   file and its parent directory are fsynced so the new entry survives a crash.
 * - Existing smaller file: grown with ftruncate (the new tail is a hole) and fsynced.
 * - Existing file of exactly `size`: left alone (still fsynced).
 * - Existing larger file: never shrunk; throws {@link SparseFileShrinkError} carrying the current size.
 *
 * @throws {InvalidArgumentError} size negative, not an integer, or above 2^53-1.
 * @throws {BackingFileNotRegularError} `path` is a directory, device, FIFO or socket.
 * @throws {BackingFileNotFoundError} the parent directory does not exist (`cause` has the ENOENT).
 * @throws {SparseFileShrinkError} the file is already larger than `size`.
 * @throws {BackingFileLinkError} `noFollow` and `path` is a symbolic link (its target untouched).
 */
export async function ensureSparseFile(
  path: string,
  size: bigint | number,
  options: EnsureSparseFileOptions = {},
): Promise<SparseFileReport> {
  const wanted = toSize(size);
  const mode = options.mode ?? 0o600;
  const noFollow = options.noFollow === true;
  const { signal, onProgress } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('ensureSparseFile options', [{ path: '/signal', message: 'must be an AbortSignal', value: signal }]);
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new InvalidArgumentError('ensureSparseFile options', [{ path: '/onProgress', message: 'must be a function', value: onProgress }]);
  }
  const progress = (done: number): void => onProgress?.({ step: 'sparse-file', done, total: SPARSE_FILE_STAGES });
  checkLoopAbort(signal, 'ensureSparseFile');
  progress(0);
  // With O_NOFOLLOW a link as the last component fails in fs/namei.c may_open() with -ELOOP;
  // O_CREAT|O_EXCL never follows one either (open(2): "symbolic links are not followed").
  const nf = noFollow ? constants.O_NOFOLLOW : 0;
  const open = async (flags: number, m?: number): Promise<fsp.FileHandle> => {
    try {
      return await fsp.open(path, flags | nf, m);
    } catch (err) {
      if (noFollow && errnoCode(err) === 'ELOOP') throw new BackingFileLinkError(path, { cause: err });
      throw err;
    }
  };

  // Look before opening: opening a FIFO or a character device can block or have side effects.
  let existing: import('node:fs').BigIntStats | undefined;
  try {
    existing = noFollow ? await fsp.lstat(path, { bigint: true }) : await fsp.stat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (existing?.isSymbolicLink()) throw new BackingFileLinkError(path);
  if (existing && !existing.isFile()) {
    throw new BackingFileNotRegularError(path, fileTypeName(Number(existing.mode)), 'a regular file');
  }

  let created = false;
  let handle: fsp.FileHandle;
  if (existing) {
    handle = await open(constants.O_RDWR);
  } else {
    try {
      handle = await open(constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, mode);
      created = true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') {
        // Someone created it between our stat and open: treat it as existing.
        handle = await open(constants.O_RDWR);
      } else if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
        throw new BackingFileNotFoundError(path, { cause: err }); // the parent directory is missing
      } else {
        throw err;
      }
    }
  }

  let sizeBefore: bigint | undefined;
  let closed = false;
  try {
    progress(1);
    checkLoopAbort(signal, 'ensureSparseFile');
    const before = await handle.stat({ bigint: true });
    if (!before.isFile()) {
      throw new BackingFileNotRegularError(path, fileTypeName(Number(before.mode)), 'a regular file');
    }
    if (before.size > wanted) throw new SparseFileShrinkError(path, before.size, wanted);
    const grown = !created && before.size < wanted;
    if (before.size < wanted) {
      try {
        await handle.truncate(Number(wanted));
      } catch (err) {
        if (errnoCode(err) !== 'EFBIG') throw err;
        // The file we just made stays empty and is ours: do not leave it behind.
        if (created) await fsp.unlink(path).catch(() => undefined);
        throw new SparseFileTooLargeError(path, wanted, { cause: err });
      }
      sizeBefore = before.size;
    }
    progress(2);
    checkLoopAbort(signal, 'ensureSparseFile');
    await handle.sync();
    const after = await handle.stat({ bigint: true });
    if (created) await fsyncDir(dirname(path));
    progress(3);
    return { apparentSize: after.size, allocatedSize: after.blocks * 512n, created, grown };
  } catch (err) {
    if (signal?.aborted && !closed) {
      // Undo what this call made before the abort: the file it created, the growth it made.
      closed = true;
      if (created) {
        await handle.close().catch(() => undefined);
        await fsp.unlink(path).catch(() => undefined);
      } else if (sizeBefore !== undefined) {
        await handle.truncate(Number(sizeBefore)).catch(() => undefined);
        await handle.close().catch(() => undefined);
      } else {
        await handle.close().catch(() => undefined);
      }
    }
    throw err;
  } finally {
    if (!closed) await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const d = await fsp.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
