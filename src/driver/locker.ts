// SPDX-License-Identifier: MIT
// Docker's `locker` (github.com/moby/locker) as the devmapper Driver used it: one FIFO lock per
// name, created on first use and dropped once nobody holds or waits for it, so that calls on
// one layer id are serialised and calls on different ids run side by side.

/** A per-name FIFO lock; names are independent of each other. */
export class Locker {
  /** Per name: the tail of its queue and how many holders + waiters it has. */
  readonly #names = new Map<string, { tail: Promise<void>; users: number }>();

  /**
   * Waits until `name` is free and takes it. Resolves with the release function (idempotent).
   * Callers of one name are served in call order.
   */
  async lock(name: string): Promise<() => void> {
    let entry = this.#names.get(name);
    if (!entry) {
      entry = { tail: Promise.resolve(), users: 0 };
      this.#names.set(name, entry);
    }
    entry.users++;
    const before = entry.tail;
    let open!: () => void;
    entry.tail = new Promise<void>((r) => (open = r));
    await before;
    const e = entry;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--e.users === 0 && this.#names.get(name) === e) this.#names.delete(name);
      open();
    };
  }

  /** Runs `fn` holding `name`; releases it however `fn` ends. */
  async run<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const release = await this.lock(name);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Whether `name` is held or waited for. */
  isLocked(name: string): boolean {
    return this.#names.has(name);
  }

  /** How many names are held or waited for (Docker's locker drops unused ones: no leak). */
  get size(): number {
    return this.#names.size;
  }
}
