// SPDX-License-Identifier: MIT
// One read, two forms. A read of the loop layer (sysfs attributes, LOOP_GET_STATUS64, …) is
// written once, as a generator that yields each I/O step it needs; the *Sync twin runs the steps
// on the calling thread, the default form awaits their asynchronous variant (fs/promises, the
// Syscalls seam's ioctlAsync). Everything between two steps (paths, decoding, parsing, errno
// mapping, filtering) is the same code for both: only the I/O differs. The pattern is Babel's
// gensync, reduced to what the loop layer needs.

/** One I/O step in its two forms, which must do the same thing. */
export interface IoStep<T> {
  /** On the calling thread. */
  readonly sync: () => T;
  /** Without blocking it (a worker thread, the libuv threadpool). */
  readonly async: () => Promise<T>;
}

/** A read written once: yields its I/O steps, returns its result. */
export type Twin<R> = Generator<IoStep<unknown>, R, unknown>;

/** `yield* io(step)`: runs one step (in the runner's form) and gives back its result, typed. */
export function* io<T>(step: IoStep<T>): Twin<T> {
  return (yield step) as T;
}

/**
 * `yield* all(reads)`: runs independent reads, one after the other on the calling thread, or
 * concurrently in the async form. Each read's own errors propagate: the first to reject wins.
 */
export function* all<T>(reads: readonly Twin<T>[]): Twin<T[]> {
  return yield* io<T[]>({ sync: () => reads.map(runSync), async: () => Promise.all(reads.map(runAsync)) });
}

/** Runs `read` with every step on the calling thread. A step's throw is thrown into the read. */
export function runSync<R>(read: Twin<R>): R {
  let next = read.next();
  while (!next.done) {
    let value: unknown;
    try {
      value = next.value.sync();
    } catch (err) {
      next = read.throw(err);
      continue;
    }
    next = read.next(value);
  }
  return next.value;
}

/** Runs `read`, awaiting the asynchronous form of every step. A step's rejection is thrown into the read. */
export async function runAsync<R>(read: Twin<R>): Promise<R> {
  let next = read.next();
  while (!next.done) {
    let value: unknown;
    try {
      value = await next.value.async();
    } catch (err) {
      next = read.throw(err);
      continue;
    }
    next = read.next(value);
  }
  return next.value;
}
