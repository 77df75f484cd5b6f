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
 * can form. A device lock may be taken **shared** ({@link KeyedMutex.lockMany}'s `shared` keys):
 * addDevice holds its parent shared, so that snapshots of one parent reach the journal together
 * (its group commit, journal.ts) while every other operation on the parent waits for them.
 * Shared holders still take the keys in the same ascending order, so the argument above holds.
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

/**
 * A FIFO readers/writer lock: any number of shared holders or one exclusive holder. Waiters are
 * granted in arrival order (a shared request behind a waiting exclusive one waits too, so an
 * exclusive waiter is never starved).
 */
export class SharedMutex {
  #shared = 0;
  #exclusive = false;
  readonly #waiters: { readonly shared: boolean; readonly grant: () => void }[] = [];

  /** Resolves with a release function once the lock is ours, shared or exclusive. */
  lock(shared = false): Promise<Release> {
    return new Promise<Release>((resolve) => {
      const grant = (): void => {
        if (shared) this.#shared++;
        else this.#exclusive = true;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          if (shared) this.#shared--;
          else this.#exclusive = false;
          this.#pump();
        });
      };
      if (this.#waiters.length === 0 && this.#free(shared)) grant();
      else this.#waiters.push({ shared, grant });
    });
  }

  #free(shared: boolean): boolean {
    return !this.#exclusive && (shared || this.#shared === 0);
  }

  #pump(): void {
    for (let w = this.#waiters[0]; w && this.#free(w.shared); w = this.#waiters[0]) {
      this.#waiters.shift();
      w.grant();
    }
  }
}

/** One `SharedMutex` per key, created on demand and dropped when idle. */
export class KeyedMutex {
  readonly #locks = new Map<string, { mutex: SharedMutex; users: number }>();

  /** Keys that currently have a holder or waiters. */
  get activeKeys(): string[] {
    return [...this.#locks.keys()];
  }

  /** Locks one key (exclusively unless `shared`). */
  async lock(key: string, shared = false): Promise<Release> {
    let entry = this.#locks.get(key);
    if (!entry) {
      entry = { mutex: new SharedMutex(), users: 0 };
      this.#locks.set(key, entry);
    }
    entry.users++;
    const e = entry;
    const release = await e.mutex.lock(shared);
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
   * than one: with a single global order no two tasks can wait for each other in a cycle. Keys in
   * `shared` are taken shared unless also asked for exclusively (see `SharedMutex`).
   */
  async lockMany(keys: readonly string[], shared: readonly string[] = []): Promise<Release> {
    const exclusive = new Set(keys);
    const sorted = [...new Set([...keys, ...shared])].sort();
    const held: Release[] = [];
    try {
      for (const k of sorted) held.push(await this.lock(k, !exclusive.has(k)));
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
