// SPDX-License-Identifier: MIT
// Creating and opening what lives under a DeviceSet root without following anything planted there.
/**
 * # Rules
 *
 * - The root, `devicemapper/`, `metadata/` and `mnt/` are real directories (lstat, never a link),
 *   owned by the effective uid, and not writable by group or others (Docker made its root 0700).
 *   Then nobody else can add, remove or swap an entry in them, so a check stays true after it.
 * - Files in them are opened with O_NOFOLLOW: a symbolic link as the last component makes open(2)
 *   fail with ELOOP (fs/namei.c may_open(): `case S_IFLNK: return -ELOOP`), so a planted link's
 *   target is never read, created, grown or bound. New files are created with O_CREAT|O_EXCL,
 *   which does not follow a link either (fs/open.c build_open_flags(): O_EXCL with O_CREAT adds
 *   O_NOFOLLOW; an existing entry, link or not, is -EEXIST).
 * - A file that must be regular is checked on its fd (fstat), not by path.
 *
 * Every refusal is an {@link UnsafePathError} (code EUNSAFEPATH) naming the path and what was there.
 */
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, errnoCode } from '../errors.js';
import { fileTypeName } from '../loop/index.js';
import { UnsafePathError } from './errors.js';

const { O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

/** Group and other write bits: a directory with either lets someone else swap its entries. */
const GROUP_OTHER_WRITE = 0o022;

/** geteuid(2); 0 where Node has no geteuid (never on Linux). */
export function effectiveUid(): number {
  return process.geteuid?.() ?? 0;
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;
const a = (mode: number): string => {
  const t = fileTypeName(mode);
  return `${/^[aeiou]/.test(t) ? 'an' : 'a'} ${t}`;
};

/** Refuses lstat() stats that are not a directory owned by the effective uid without group/other write. */
function checkOwnedDir(path: string, st: fs.BigIntStats): void {
  const mode = Number(st.mode);
  if (st.isSymbolicLink()) throw new UnsafePathError(path, 'symlink', 'a symbolic link', 'a real directory (links are not followed)');
  if (!st.isDirectory()) throw new UnsafePathError(path, 'not-directory', a(mode), 'a directory');
  const uid = effectiveUid();
  if (st.uid !== BigInt(uid)) {
    throw new UnsafePathError(path, 'owner', `a directory owned by uid ${st.uid}`, `a directory owned by uid ${uid} (the effective uid)`);
  }
  if ((mode & GROUP_OTHER_WRITE) !== 0) {
    throw new UnsafePathError(path, 'mode', `a directory with mode ${octal(mode)}, writable by group or others`, 'no write permission for group or others (e.g. mode 0700)');
  }
}

/**
 * Checks that `path` is a real directory (not a link) owned by the effective uid and not writable
 * by group or others.
 * @throws UnsafePathError otherwise; the lstat error (ENOENT…) when it cannot be looked at.
 */
export function assertOwnedDir(path: string): void {
  checkOwnedDir(path, fs.lstatSync(path, { bigint: true }));
}

/** {@link assertOwnedDir} when `path` exists; false (and nothing created) when it does not. */
export function assertOwnedDirIfPresent(path: string): boolean {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
  checkOwnedDir(path, st);
  return true;
}

/** lstat(path) through fs/promises (a link is never followed); undefined when nothing is there (ENOENT), other errors thrown. */
export async function lstatIfPresentAsync(path: string): Promise<fs.BigIntStats | undefined> {
  try {
    return await fs.promises.lstat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** {@link assertOwnedDirIfPresent} through fs/promises (the lstat off the event loop). */
export async function assertOwnedDirIfPresentAsync(path: string): Promise<boolean> {
  const st = await lstatIfPresentAsync(path);
  if (st === undefined) return false;
  checkOwnedDir(path, st);
  return true;
}

/**
 * mkdir `path` with `mode` when missing (its parent must exist unless `recursive`), then
 * {@link assertOwnedDir}. An existing directory is checked, never chmod'ed or chown'ed: fixing
 * someone else's directory is the administrator's call. Returns true when it was created.
 * @throws UnsafePathError a link, a non-directory, another owner, group/other write.
 */
export function ensureOwnedDir(path: string, mode = 0o700, options: { readonly recursive?: boolean } = {}): boolean {
  const recursive = options.recursive === true;
  let created = false;
  try {
    // mkdir(2) does not follow a link at `path`: it answers EEXIST, and the lstat below refuses it.
    const first = fs.mkdirSync(path, { mode, recursive });
    created = recursive ? first !== undefined : true;
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
  assertOwnedDir(path);
  return created;
}

/**
 * The DeviceSet root: created 0700 (with its parents) when missing, then resolved to its real
 * path once, as Docker resolves a symlinked daemon root at start (ReadSymlinkedDirectory), and
 * checked like every directory under it. Everything later goes through the returned real path,
 * so a link at the given path that changes afterwards changes nothing.
 * @throws UnsafePathError the real directory is not owned by the effective uid, or group/other may write it.
 */
export function ensureRootDir(root: string): string {
  let st: fs.BigIntStats | undefined;
  try {
    st = fs.lstatSync(root, { bigint: true });
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (st === undefined) fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  let real: string;
  try {
    real = fs.realpathSync.native(root);
  } catch (err) {
    throw danglingRootError(root, st, err);
  }
  assertOwnedDir(real);
  return real;
}

/** A dangling link at the root is refused as one; any other realpath error as it is. */
function danglingRootError(root: string, st: fs.BigIntStats | undefined, err: unknown): unknown {
  if (st?.isSymbolicLink() && errnoCode(err) === 'ENOENT') return new UnsafePathError(root, 'symlink', 'a dangling symbolic link', 'a directory', { cause: err });
  return err;
}

/**
 * {@link ensureRootDir} through fs/promises: the lstat, mkdir and realpath(3) (libuv's
 * uv_fs_realpath, as realpathSync.native) run on the thread pool, not on the event loop.
 * @throws UnsafePathError as ensureRootDir.
 */
export async function ensureRootDirAsync(root: string): Promise<string> {
  let st: fs.BigIntStats | undefined;
  try {
    st = await fs.promises.lstat(root, { bigint: true });
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (st === undefined) await fs.promises.mkdir(root, { recursive: true, mode: 0o700 });
  let real: string;
  try {
    real = await fs.promises.realpath(root);
  } catch (err) {
    throw danglingRootError(root, st, err);
  }
  checkOwnedDir(real, await fs.promises.lstat(real, { bigint: true }));
  return real;
}

/**
 * open(2) with O_NOFOLLOW added. With `expect`, the opened fd is fstat()ed and must be that kind of
 * file (checked on the fd, so nothing can swap the path in between); the fd is closed on refusal.
 * Add O_NONBLOCK when `path` might be a FIFO that a read-only open would wait on.
 * @throws UnsafePathError a symbolic link (ELOOP), or not the expected kind of file.
 */
export function openNoFollow(path: string, flags: number, mode?: number, expect?: 'file' | 'directory'): number {
  let fd: number;
  try {
    fd = fs.openSync(path, flags | O_NOFOLLOW, mode);
  } catch (err) {
    // fs/namei.c may_open(): a link reached with O_NOFOLLOW is -ELOOP. With O_DIRECTORY too,
    // do_open() answers -ENOTDIR first (LOOKUP_DIRECTORY and the link is no directory): ask lstat.
    const link = errnoCode(err) === 'ELOOP' || (errnoCode(err) === 'ENOTDIR' && (flags & O_DIRECTORY) !== 0 && isLink(path));
    if (link) throw new UnsafePathError(path, 'symlink', 'a symbolic link', `a real ${expect ?? ((flags & O_DIRECTORY) !== 0 ? 'directory' : 'file')} (links are not followed)`, { cause: err });
    throw err;
  }
  if (expect !== undefined) {
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (expect === 'file' && !st.isFile()) throw new UnsafePathError(path, 'not-regular', a(Number(st.mode)), 'a regular file');
      if (expect === 'directory' && !st.isDirectory()) throw new UnsafePathError(path, 'not-directory', a(Number(st.mode)), 'a directory');
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }
  return fd;
}

/**
 * {@link ensureOwnedDir} through fs/promises: the mkdir and the lstat run on libuv's thread pool,
 * not on the event loop. Returns true when it was created.
 * @throws UnsafePathError a link, a non-directory, another owner, group/other write.
 */
export async function ensureOwnedDirAsync(path: string, mode = 0o700, options: { readonly recursive?: boolean } = {}): Promise<boolean> {
  const recursive = options.recursive === true;
  let created = false;
  try {
    const first = await fs.promises.mkdir(path, { mode, recursive });
    created = recursive ? first !== undefined : true;
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
  checkOwnedDir(path, await fs.promises.lstat(path, { bigint: true }));
  return created;
}

/**
 * {@link openNoFollow} through fs/promises: a FileHandle, opened (and fstat()ed with `expect`) off
 * the event loop. The handle is closed on refusal.
 * @throws UnsafePathError a symbolic link (ELOOP), or not the expected kind of file.
 */
export async function openNoFollowAsync(path: string, flags: number, mode?: number, expect?: 'file' | 'directory'): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(path, flags | O_NOFOLLOW, mode);
  } catch (err) {
    // As openNoFollow: ELOOP, or ENOTDIR for a link opened O_DIRECTORY.
    const link = errnoCode(err) === 'ELOOP' || (errnoCode(err) === 'ENOTDIR' && (flags & O_DIRECTORY) !== 0 && (await isLinkAsync(path)));
    if (link) throw new UnsafePathError(path, 'symlink', 'a symbolic link', `a real ${expect ?? ((flags & O_DIRECTORY) !== 0 ? 'directory' : 'file')} (links are not followed)`, { cause: err });
    throw err;
  }
  if (expect !== undefined) {
    try {
      const st = await handle.stat({ bigint: true });
      if (expect === 'file' && !st.isFile()) throw new UnsafePathError(path, 'not-regular', a(Number(st.mode)), 'a regular file');
      if (expect === 'directory' && !st.isDirectory()) throw new UnsafePathError(path, 'not-directory', a(Number(st.mode)), 'a directory');
    } catch (err) {
      await handle.close();
      throw err;
    }
  }
  return handle;
}

async function isLinkAsync(path: string): Promise<boolean> {
  try {
    return (await fs.promises.lstat(path)).isSymbolicLink();
  } catch {
    return false;
  }
}

/** {@link readFileNoFollow} through fs/promises (open, fstat, read and close off the event loop). */
export async function readFileNoFollowAsync(path: string): Promise<Buffer> {
  const handle = await openNoFollowAsync(path, O_RDONLY | O_NONBLOCK, undefined, 'file');
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function isLink(path: string): boolean {
  try {
    return fs.lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Reads a whole regular file without following a link at `path` (O_NOFOLLOW; O_NONBLOCK so a
 * FIFO planted there cannot block the open; fstat must say regular file).
 * @throws UnsafePathError a link or not a regular file; the open error otherwise (ENOENT…).
 */
export function readFileNoFollow(path: string): Buffer {
  const fd = openNoFollow(path, O_RDONLY | O_NONBLOCK, undefined, 'file');
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync(2) of a directory opened O_RDONLY|O_DIRECTORY|O_NOFOLLOW (makes a rename or unlink in it durable). */
export function fsyncDirNoFollow(dir: string): void {
  const fd = openNoFollow(dir, O_RDONLY | O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** {@link fsyncDirNoFollow} through fs/promises (open, fsync and close off the event loop). */
export async function fsyncDirNoFollowAsync(dir: string): Promise<void> {
  const handle = await openNoFollowAsync(dir, O_RDONLY | O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Atomically and durably replaces `path` with `data`: a new temp file in the same directory
 * (O_CREAT|O_EXCL|O_NOFOLLOW, `mode`), written, fsynced, renamed over `path` (rename(2) replaces
 * a link at `path` itself, never its target), then the directory fsynced. The directory is opened
 * O_NOFOLLOW first, so a link there is refused before anything is written. For files such as
 * `cli-options.json`; the directory should have passed {@link assertOwnedDir}.
 * @throws UnsafePathError the directory is a link or not a directory.
 */
export function writeFileAtomicNoFollow(path: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = dirname(path);
  const dirFd = openNoFollow(dir, O_RDONLY | O_DIRECTORY, undefined, 'directory');
  try {
    const tmp = join(dir, `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const fd = openNoFollow(tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
    let renamed = false;
    try {
      try {
        for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, path);
      renamed = true;
    } finally {
      if (!renamed) {
        try {
          fs.unlinkSync(tmp);
        } catch {
          // Best effort: the temp file is ours and harmless.
        }
      }
    }
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

/**
 * A private mount point `<root>/mnt/<name>`: `mnt/` and the mount point are made 0700 when
 * missing and must pass {@link assertOwnedDir} (a leftover from a crash is reused once it does).
 * `name` is one path component. Returns the mount point's path.
 * @throws InvalidArgumentError `name` is empty, '.', '..' or has a '/'.
 * @throws UnsafePathError `mnt/` or the mount point is a link, not a directory, not ours or group/other writable.
 */
export function ensurePrivateMountDir(root: string, name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new InvalidArgumentError('mount point name', [{ path: '/name', message: 'must be one path component', value: name }]);
  }
  const mnt = join(root, 'mnt');
  ensureOwnedDir(mnt, 0o700);
  const dir = join(mnt, name);
  ensureOwnedDir(dir, 0o700);
  return dir;
}

/**
 * Removes a mount point made by {@link ensurePrivateMountDir} with rmdir(2) only: a directory that
 * is still a mount point (EBUSY) or not empty (ENOTEMPTY) is left alone with that error, never
 * emptied. Gone already is fine.
 */
export function removePrivateMountDir(path: string): void {
  try {
    fs.rmdirSync(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}
