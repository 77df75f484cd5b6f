// SPDX-License-Identifier: MIT
// One DeviceSet per root: an O_EXCL lock file holding the owner's pid and process start time.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DevmapperError, isErrno } from '../errors.js';

/** Name of the lock file inside the root. */
export const LOCK_FILE = 'devmapper.lock';

/** Another live process (or this one) already has the root open. */
export class DeviceSetLockedError extends DevmapperError {
  override readonly name = 'DeviceSetLockedError';
  readonly code = 'EDEVICESETLOCKED';
  readonly root: string;
  readonly pid: number;
  constructor(root: string, pid: number) {
    super(
      `${root} is in use by process ${pid}${pid === process.pid ? ' (this process)' : ''}: ` +
        `only one DeviceSet may open a root at a time; shut the other one down first ` +
        `(if process ${pid} is not a devmapper user, remove ${join(root, LOCK_FILE)} by hand)`,
    );
    this.root = root;
    this.pid = pid;
  }
}

/** The owner recorded in a lock file. */
export interface LockOwner {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): tells a reused pid from the owner. */
  readonly startTime: string | null;
}

/** Start time of a process from /proc, or null when unknown. */
export function processStartTime(pid: number, procRoot = '/proc'): string | null {
  try {
    const stat = fs.readFileSync(join(procRoot, String(pid), 'stat'), 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null; // field 22 = index 19 after fields 1-2
  } catch {
    return null;
  }
}

/** Parses lock file text `<pid> <starttime>`; undefined when it is garbage (a torn write). */
export function parseLockOwner(text: string): LockOwner | undefined {
  const m = /^(\d+)(?: (\d+|-))?\s*$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { pid, startTime: m[2] === undefined || m[2] === '-' ? null : m[2] };
}

/** True when `owner` is a live process that is still the one that wrote the lock. */
export function ownerAlive(owner: LockOwner, procRoot = '/proc'): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (isErrno(err, 'ESRCH')) return false;
    // EPERM: it exists but belongs to someone else; fall through to the start-time check.
  }
  if (owner.startTime === null) return true;
  const now = processStartTime(owner.pid, procRoot);
  return now === null ? true : now === owner.startTime;
}

/**
 * An acquired root lock. Released by {@link release} (or by the process dying: the next
 * acquirer finds the pid dead and takes over).
 */
export class RootLock {
  readonly path: string;
  #held = true;
  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Creates `<root>/devmapper.lock` with O_EXCL. When it exists and its owner is dead (or the
   * pid now belongs to another process, or the file is garbage from a torn write), it is
   * removed and the create retried.
   * @throws DeviceSetLockedError when a live owner holds it.
   */
  static acquire(root: string, procRoot = '/proc'): RootLock {
    const path = join(root, LOCK_FILE);
    const content = `${process.pid} ${processStartTime(process.pid, procRoot) ?? '-'}\n`;
    for (let attempt = 0; attempt < 8; attempt++) {
      let fd: number;
      try {
        fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        let text = '';
        try {
          text = fs.readFileSync(path, 'utf8');
        } catch (readErr) {
          if (isErrno(readErr, 'ENOENT')) continue; // released meanwhile
          throw readErr;
        }
        const owner = parseLockOwner(text);
        if (owner && ownerAlive(owner, procRoot)) throw new DeviceSetLockedError(root, owner.pid);
        // Dead owner (or an empty file from a crash between create and write): take over.
        // Check the file is still the one we judged before unlinking it.
        try {
          if (fs.readFileSync(path, 'utf8') === text) fs.unlinkSync(path);
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e;
        }
        continue;
      }
      try {
        fs.writeSync(fd, content);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      return new RootLock(path);
    }
    throw new DeviceSetLockedError(root, parseLockOwner(safeRead(path))?.pid ?? 0);
  }

  get held(): boolean {
    return this.#held;
  }

  /** Removes the lock file. Idempotent. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      fs.unlinkSync(this.path);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
}

function safeRead(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
