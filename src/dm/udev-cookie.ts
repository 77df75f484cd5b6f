// SPDX-License-Identifier: MIT
// libdm's udev cookie: a System V semaphore that udev's 95-dm-notify.rules decrements
// (`dmsetup udevcomplete $env{DM_COOKIE}`) once it has run every rule for the uevent that
// carried the cookie. Waiting for it to reach zero means "udev finished with *our* event",
// which watching /dev/mapper cannot tell: udev reads a device's name from sysfs when it handles
// an event, so an event of an earlier device on the same minor, handled late, can make (and its
// "remove" then delete) the link of the new one. Protocol (libdm/libdm-common.c,
// `dm_udev_create_cookie`, `dm_task_set_cookie`, `dm_udev_wait`):
// 1. semget(0x0D4D<<16 | base, 1, IPC_CREAT|IPC_EXCL|0600) with a random non-zero 16-bit base,
//    another base on EEXIST; SETVAL 1;
// 2. before each ioctl that carries it: +1; the ioctl's event_nr is (udev flags << 16) | base;
// 3. when the kernel says no uevent was sent (DM_UEVENT_GENERATED_FLAG clear): -1 ourselves;
// 4. wait: -1 (the creator's 1), then wait for zero, then IPC_RMID.
// The wait is bounded (GETVAL polled, see `wait`): if udev never completes the cookie (no
// 95-dm-notify.rules, udev stopped) the caller falls back to handling the node itself.
import { errnoCode } from '../errors.js';
import { GETVAL, IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, SETVAL, type SysvSemaphores } from '../ioctl/index.js';
import { DM_UDEV_FLAGS_SHIFT } from './udev.js';

/**
 * A random cookie base in [1, 0xffff]. node:crypto is fetched here, on the first cookie, not
 * imported: loading it costs every process that imports src/dm ~2 ms (`devmapper dm ls`).
 */
const randomBase = (): number => process.getBuiltinModule('node:crypto').randomInt(1, 0x10000);

/** `DM_COOKIE_MAGIC` (libdm/libdm-common.c): the high half of every cookie semaphore's key. */
export const DM_COOKIE_MAGIC = 0x0d4d;

/** The SysV key of the semaphore for a cookie base. */
export function cookieKey(base: number): number {
  return ((DM_COOKIE_MAGIC << DM_UDEV_FLAGS_SHIFT) | (base & 0xffff)) >>> 0;
}

/** One cookie: create, arm per ioctl, wait once. */
export class UdevCookie {
  #removed = false;
  private constructor(
    private readonly sys: SysvSemaphores,
    /** The 16-bit base (non-zero) in the low half of `event_nr`. */
    readonly base: number,
    readonly semid: number,
  ) {}

  /**
   * A fresh cookie (semaphore value 1). @throws IoctlError when SysV semaphores fail for a reason
   * other than a taken key (ENOSYS, ENOSPC…): the caller then waits for udev without a cookie.
   */
  static create(sys: SysvSemaphores, random: () => number = randomBase): UdevCookie {
    for (let attempt = 0; ; attempt++) {
      const base = random() & 0xffff;
      if (base === 0) continue;
      let semid: number;
      try {
        semid = sys.semget(cookieKey(base), 1, IPC_CREAT | IPC_EXCL | 0o600);
      } catch (e) {
        if (errnoCode(e) === 'EEXIST' && attempt < 64) continue;
        throw e;
      }
      const cookie = new UdevCookie(sys, base, semid);
      try {
        sys.semctl(semid, 0, SETVAL, 1);
      } catch (e) {
        cookie.remove();
        throw e;
      }
      return cookie;
    }
  }

  /** The `event_nr` to send: udev flags in the high half, our base in the low. */
  eventNr(flags: number): number {
    return ((flags << DM_UDEV_FLAGS_SHIFT) | this.base) >>> 0;
  }

  /** +1 before an ioctl that will carry the cookie. */
  arm(): void {
    this.sys.semop(this.semid, [{ num: 0, op: 1 }]);
  }

  /** -1 for an ioctl whose uevent was not sent (nobody else will complete it). */
  disarm(): void {
    this.sys.semop(this.semid, [{ num: 0, op: -1, flags: IPC_NOWAIT }]);
  }

  /** The semaphore's value (tests, diagnostics). */
  value(): number {
    return this.sys.semctl(this.semid, 0, GETVAL);
  }

  /**
   * Drops the creator's 1 and waits (at most `timeoutMs`) until udev completed every armed
   * uevent; removes the semaphore either way. True when udev completed them, false on timeout.
   * The wait polls GETVAL every `pollMs` instead of blocking in semop(0): a blocked semop would
   * hold one of libuv's four pool threads for as long as udev takes (seconds under emulation),
   * and concurrent operations would starve the pool their own ioctls run on.
   */
  async wait(timeoutMs: number, sleep: (ms: number) => Promise<void>, pollMs = 20, clock: () => number = () => performance.now()): Promise<boolean> {
    try {
      this.sys.semop(this.semid, [{ num: 0, op: -1, flags: IPC_NOWAIT }]);
      const deadline = clock() + timeoutMs;
      for (;;) {
        if (this.value() === 0) return true;
        if (clock() >= deadline) return false;
        await sleep(pollMs);
      }
    } catch (e) {
      // Removed under us (`dmsetup udevcomplete_all`, another cleaner): nothing left to wait for.
      if (errnoCode(e) === 'EIDRM' || errnoCode(e) === 'EINVAL') return true;
      throw e;
    } finally {
      this.remove();
    }
  }

  /** IPC_RMID, once; errors ignored (the set may be gone already). */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    try {
      this.sys.semctl(this.semid, 0, IPC_RMID);
    } catch {
      // already removed
    }
  }
}
