// SPDX-License-Identifier: MIT
// One DeviceSet per root: an flock(2) lock on `<root>/devmapper.lock`, held on an open fd for the
// life of the DeviceSet.
//
// Why flock and not a pid file: the kernel owns the lock (fs/locks.c). It belongs to the open file
// description and is dropped when the last fd referring to it is closed (locks_remove_file, called
// from __fput), which includes the process dying by any means, SIGKILL too. So there is no stale
// lock to judge, no pid reuse, no other pid namespace to misread, and no window between creating
// a file and writing it in which a second process can take the root too. The file's content (our
// pid) is information for the error message only; nothing decides on it.
//
// The file is never unlinked: a process that opened it before the unlink would lock the old inode
// while the next one creates and locks a new one, and both would own the root.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { errnoCode } from '../errors.js';
import { LOCK_EX, LOCK_NB, O_CLOEXEC, realSyscalls, type Syscalls } from '../ioctl/index.js';
import { DeviceSetLockedError, LOCK_FILE, LockFileError } from './errors.js';

export { LOCK_FILE };

/** The pid recorded in a lock file (`<pid>\n`), or null when it is not one (empty, garbage). */
export function parseLockPid(text: string): number | null {
  const m = /^(\d+)\n?$/.exec(text);
  if (!m) return null;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/**
 * An acquired root lock: an fd on `<root>/devmapper.lock` holding flock(LOCK_EX). Released by
 * {@link release} or by the process dying.
 */
export class RootLock {
  readonly path: string;
  readonly #fd: number;
  readonly #sys: Syscalls;
  #held = true;
  private constructor(path: string, fd: number, sys: Syscalls) {
    this.path = path;
    this.#fd = fd;
    this.#sys = sys;
  }

  /**
   * Opens (creating, mode 0600) `<root>/devmapper.lock` with O_NOFOLLOW|O_CLOEXEC, checks that it
   * is a regular file owned by our effective uid, takes flock(LOCK_EX|LOCK_NB) and records our
   * pid in it. open, flock and close go through `sys` (a fake kernel's "process death" closes the
   * fd and so drops the lock); the file is always a real one, so fstat, ftruncate and pwrite use
   * node:fs on the same fd.
   * @throws DeviceSetLockedError when anyone else holds the lock (EWOULDBLOCK);
   *   LockFileError for a symlink, a non-regular file or a file of another uid.
   */
  static acquire(root: string, sys: Syscalls = realSyscalls()): RootLock {
    const { path, fd } = openLockFile(root, sys);
    try {
      checkLockFile(path, fs.fstatSync(fd));
      const busy = flockOrBusy(sys, fd);
      if (busy !== undefined) throw new DeviceSetLockedError(root, readPid(fd), { cause: busy });
      // Ours now. The pid is information only: a reader racing these two calls sees '' (pid unknown).
      fs.ftruncateSync(fd, 0);
      const text = pidText();
      fs.writeSync(fd, text, 0, text.length, 0);
    } catch (err) {
      closeQuietly(sys, fd);
      throw err;
    }
    return new RootLock(path, fd, sys);
  }

  /**
   * {@link acquire} for DeviceSet.init: the fstat, ftruncate and pwrite (and the holder's pid read)
   * go through node:fs's fd calls on libuv's thread pool, not on the event loop. open, flock and
   * close stay synchronous at the Syscalls seam, as in acquire: there is no asynchronous flock(2)
   * in Node, the fake kernel must own the fd to drop the lock at a simulated death, and with
   * LOCK_NB flock never waits (fs/locks.c flock_lock_inode returns -EAGAIN at once); the open
   * is of a file in the root just checked to be a private local directory.
   * @throws as acquire.
   */
  static async acquireAsync(root: string, sys: Syscalls = realSyscalls()): Promise<RootLock> {
    const { path, fd } = openLockFile(root, sys);
    try {
      checkLockFile(path, await fstat(fd));
      const busy = flockOrBusy(sys, fd);
      if (busy !== undefined) throw new DeviceSetLockedError(root, await readPidAsync(fd), { cause: busy });
      await ftruncate(fd, 0);
      const text = pidText();
      await pwrite(fd, text, 0, text.length, 0);
    } catch (err) {
      closeQuietly(sys, fd);
      throw err;
    }
    return new RootLock(path, fd, sys);
  }

  get held(): boolean {
    return this.#held;
  }

  /**
   * {@link release} after emptying the file (ftruncate on the thread pool), so that the next
   * holder's racers never read our pid: between its flock and its pid write a loser reads the
   * file, and would otherwise name us, gone, as the holder (a real-kernel race of two processes
   * saw exactly that). The file then reads '' (pid unknown) until the next holder writes. Never
   * throws; a process that dies without it leaves its pid, as before (information only).
   */
  async releaseAsync(): Promise<void> {
    if (!this.#held) return;
    try {
      await ftruncate(this.#fd, 0);
    } catch {
      /* the pid is information only; the close below is what drops the lock */
    }
    this.release();
  }

  /**
   * Closes the fd, which drops the lock. The file stays (see the file comment). Idempotent; never
   * throws: Linux frees the fd even when close(2) reports an error (fs/open.c takes it out of the
   * table before flushing), and the lock goes with the last reference to the file
   * (fs/locks.c locks_remove_file). A fake kernel that simulates a dead process refuses the call;
   * its revive() closes the fd.
   */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    closeQuietly(this.#sys, this.#fd);
  }
}

const fstat = promisify(fs.fstat);
const ftruncate = promisify(fs.ftruncate);
const pwrite = promisify(fs.write);
const pread = promisify(fs.read);

const pidText = (): Buffer => Buffer.from(`${process.pid}\n`);

/** open(2) of `<root>/devmapper.lock` (created 0600) through `sys`, O_NOFOLLOW|O_CLOEXEC. */
function openLockFile(root: string, sys: Syscalls): { path: string; fd: number } {
  const path = join(root, LOCK_FILE);
  try {
    // O_CLOEXEC: a spawned mkfs must not inherit, and so keep, the lock.
    return { path, fd: sys.open(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | O_CLOEXEC, 0o600) };
  } catch (err) {
    // open(2): ELOOP for a symlink as last component with O_NOFOLLOW; EISDIR for a directory opened for write.
    if (errnoCode(err) === 'ELOOP') throw new LockFileError(path, 'is a symbolic link', { cause: err });
    if (errnoCode(err) === 'EISDIR') throw new LockFileError(path, 'is a directory', { cause: err });
    throw err;
  }
}

/** Refuses the lock file's fstat() unless a regular file owned by our effective uid. */
function checkLockFile(path: string, st: fs.Stats): void {
  if (!st.isFile()) throw new LockFileError(path, `is not a regular file (mode 0o${st.mode.toString(8)})`);
  const euid = process.geteuid?.();
  if (euid !== undefined && st.uid !== euid) throw new LockFileError(path, `is owned by uid ${st.uid}, not by our effective uid ${euid}`);
}

/** flock(LOCK_EX|LOCK_NB); the error when someone else holds it, undefined when it is ours. */
function flockOrBusy(sys: Syscalls, fd: number): unknown {
  try {
    sys.flock(fd, LOCK_EX | LOCK_NB);
    return undefined;
  } catch (err) {
    // flock(2): EWOULDBLOCK (== EAGAIN on Linux) when another open file description holds it.
    if (errnoCode(err) === 'EAGAIN' || errnoCode(err) === 'EWOULDBLOCK') return err;
    throw err;
  }
}

function closeQuietly(sys: Syscalls, fd: number): void {
  try {
    sys.close(fd);
  } catch {
    /* see RootLock.release */
  }
}

/** {@link readPid} with the pread on the thread pool. */
async function readPidAsync(fd: number): Promise<number | null> {
  try {
    const buf = Buffer.alloc(32);
    const { bytesRead: n } = await pread(fd, buf, 0, buf.length, 0);
    return parseLockPid(buf.subarray(0, n).toString('latin1'));
  } catch {
    return null;
  }
}

/** The pid the holder recorded, read through our own fd (pread at 0). */
function readPid(fd: number): number | null {
  try {
    const buf = Buffer.alloc(32);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return parseLockPid(buf.subarray(0, n).toString('latin1'));
  } catch {
    return null;
  }
}
