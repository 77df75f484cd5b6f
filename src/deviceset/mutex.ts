// SPDX-License-Identifier: MIT
// A tiny async mutex and a keyed family of them (one per device hash). No dependency.
/**
 * # Lock order of the DeviceSet (deadlock freedom)
 *
 * 1. **Device locks** ({@link KeyedMutex}), one per hash. An operation that needs several
 *    (addDevice: the parent and the new hash) takes them all at once with
 *    {@link KeyedMutex.lockMany}, which sorts the keys first; nobody takes a device lock while
 *    holding another one obtained separately.
 * 2. **The pool lock** ({@link AsyncMutex}): pool messages, the transaction id and every
 *    metadata write. Taken only while already holding the device locks the operation needs (or
 *    none), held for short, never across a sleep or an external tool, and never while waiting
 *    for a device lock.
 *
 * Since every task acquires in the order (device locks ascending) → pool lock, no cycle of waits
 * can form.
 */

/** Releases a held lock. Idempotent. */
export type Release = () => void;

/** A FIFO async mutex. */
export class AsyncMutex {
  #locked = false;
  readonly #waiters: (() => void)[] = [];

  /** True while someone holds the lock. */
  get locked(): boolean {
    return this.#locked;
  }

  /** Tasks waiting for the lock. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Resolves with a release function once the lock is ours (FIFO among waiters). */
  lock(): Promise<Release> {
    return new Promise<Release>((resolve) => {
      const grant = (): void => {
        this.#locked = true;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          const next = this.#waiters.shift();
          if (next) next();
          else this.#locked = false;
        });
      };
      if (!this.#locked) grant();
      else this.#waiters.push(grant);
    });
  }

  /** Runs `fn` holding the lock; releases it however `fn` ends. */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const release = await this.lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** One {@link AsyncMutex} per key, created on demand and dropped when idle. */
export class KeyedMutex {
  readonly #locks = new Map<string, { mutex: AsyncMutex; users: number }>();

  /** Keys that currently have a holder or waiters. */
  get activeKeys(): string[] {
    return [...this.#locks.keys()];
  }

  /** Locks one key. */
  async lock(key: string): Promise<Release> {
    let entry = this.#locks.get(key);
    if (!entry) {
      entry = { mutex: new AsyncMutex(), users: 0 };
      this.#locks.set(key, entry);
    }
    entry.users++;
    const e = entry;
    const release = await e.mutex.lock();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      release();
      if (--e.users === 0 && this.#locks.get(key) === e) this.#locks.delete(key);
    };
  }

  /**
   * Locks several keys in ascending order (duplicates merged), the only way a task may hold more
   * than one: with a single global order no two tasks can wait for each other in a cycle.
   */
  async lockMany(keys: readonly string[]): Promise<Release> {
    const sorted = [...new Set(keys)].sort();
    const held: Release[] = [];
    try {
      for (const k of sorted) held.push(await this.lock(k));
    } catch (err) {
      for (const r of held.reverse()) r();
      throw err;
    }
    return () => {
      for (const r of [...held].reverse()) r();
    };
  }

  /** Runs `fn` holding the locks of `keys`. */
  async run<T>(keys: readonly string[], fn: () => Promise<T> | T): Promise<T> {
    const release = await this.lockMany(keys);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
