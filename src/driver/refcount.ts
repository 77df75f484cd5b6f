// SPDX-License-Identifier: MIT
// Docker's graphdriver.RefCounter (daemon/graphdriver/counter.go) with its mount checker: a count
// of get() references per mount point that, the first time it looks at a path, starts at 1 when
// the kernel's mount table already has something mounted there. That is how a process sees the
// layers an earlier process (a crashed daemon, another CLI run) left mounted: the mount table is
// the one record every process shares.
import { readFileSync } from 'node:fs';

/** Answers "is something mounted at this path" (Docker's graphdriver.Checker). */
export type MountChecker = (path: string) => boolean;

/**
 * Mount points in /proc/self/mountinfo text (proc(5): field 5 is the mount point, relative to
 * the process's root, with space, tab, newline and backslash escaped as octal by the kernel's
 * seq_path (fs/proc_namespace.c: show_mountinfo → seq_path_root with " \t\n\\")).
 */
export function mountPointsOf(mountinfo: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f[4] === undefined) continue;
    out.push(f[4].replace(/\\([0-7]{3})/g, (_s, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

/** The default checker: reads /proc/self/mountinfo on every call. */
export const procMountChecker: MountChecker = (path) => mountPointsOf(readFileSync('/proc/self/mountinfo', 'utf8')).includes(path);

/**
 * Reference counts per path. Like Docker's, an entry is dropped when its count falls to 0 or
 * below, so the next use of that path asks the mount table again.
 */
export class RefCounter {
  readonly #counts = new Map<string, number>();
  readonly #isMounted: MountChecker;

  constructor(isMounted: MountChecker) {
    this.#isMounted = isMounted;
  }

  #adjust(path: string, delta: number): number {
    let count = this.#counts.get(path);
    // First look at this path: a mount left by another process counts as one reference.
    if (count === undefined) count = this.#isMounted(path) ? 1 : 0;
    count += delta;
    if (count <= 0) this.#counts.delete(path);
    else this.#counts.set(path, count);
    return count;
  }

  /** Adds a reference; resolves the new count (1: the caller must mount). */
  increment(path: string): number {
    return this.#adjust(path, 1);
  }

  /**
   * Drops a reference; returns the new count (0: the caller must unmount; −1: there was no
   * reference and nothing mounted).
   */
  decrement(path: string): number {
    return this.#adjust(path, -1);
  }

  /** The count now, asking the mount table for a path not seen yet; changes nothing. */
  count(path: string): number {
    return this.#counts.get(path) ?? (this.#isMounted(path) ? 1 : 0);
  }

  /** Forgets every count (after cleanup). */
  clear(): void {
    this.#counts.clear();
  }
}
