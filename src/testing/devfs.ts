// SPDX-License-Identifier: MIT
// The fake kernel's small in-memory filesystem for the paths it intercepts (/dev, /run/udev):
// directories, block and character nodes, symlinks and empty regular files, with the errnos of
// the real calls (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY).
import { posix } from 'node:path';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type StatResult } from '../ioctl/index.js';
import { kerr } from './errors.js';

/** One inode of the fake /dev. */
export interface DevfsNode {
  /** st_mode incl. S_IFMT. */
  mode: number;
  /** glibc dev_t for block/char nodes, 0 otherwise. */
  rdev: bigint;
  ino: bigint;
  /** Symlink target (S_IFLNK only). */
  target?: string;
}

/** st_dev reported for every node of the fake /dev (devtmpfs is usually 0:5). */
export const DEVFS_DEV = 5n;

export class Devfs {
  readonly #nodes = new Map<string, DevfsNode>();
  #nextIno = 100n;

  constructor(readonly roots: readonly string[]) {
    for (const r of roots) this.#mkdirp(r);
  }

  /** True when `path` is under one of the intercepted roots (or is one). */
  owns(path: string): boolean {
    const p = posix.normalize(path);
    return this.roots.some((r) => p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`));
  }

  #mkdirp(path: string): void {
    const parts = posix.normalize(path).split('/').filter(Boolean);
    let cur = '';
    for (const part of parts) {
      cur += `/${part}`;
      if (!this.#nodes.has(cur)) this.#nodes.set(cur, { mode: S_IFDIR | 0o755, rdev: 0n, ino: this.#nextIno++ });
    }
  }

  /** Node at `path` without following a final symlink; undefined when absent. */
  lookup(path: string): DevfsNode | undefined {
    return this.#nodes.get(posix.normalize(path));
  }

  /** Resolves symlinks (at most 8 hops); ENOENT when absent or dangling. */
  resolve(path: string): { path: string; node: DevfsNode } {
    let p = posix.normalize(path);
    for (let hops = 0; hops < 8; hops++) {
      this.#checkParent(p);
      const n = this.#nodes.get(p);
      if (!n) throw kerr('ENOENT', p);
      if ((n.mode & S_IFMT) !== S_IFLNK) return { path: p, node: n };
      p = posix.resolve(posix.dirname(p), n.target ?? '');
    }
    throw kerr('ELOOP', path);
  }

  #checkParent(p: string): void {
    const dir = posix.dirname(p);
    if (dir === p) return;
    const parent = this.#nodes.get(dir);
    if (parent === undefined) {
      if (this.owns(dir)) throw kerr('ENOENT', dir);
      return;
    }
    if ((parent.mode & S_IFMT) !== S_IFDIR) throw kerr('ENOTDIR', dir);
  }

  stat(path: string): StatResult {
    const { node } = this.resolve(path);
    return statOf(node);
  }

  /** stat without following a final symlink. */
  lstat(path: string): StatResult {
    const p = posix.normalize(path);
    this.#checkParent(p);
    const n = this.#nodes.get(p);
    if (!n) throw kerr('ENOENT', p);
    return statOf(n);
  }

  #create(path: string, node: Omit<DevfsNode, 'ino'>): void {
    const p = posix.normalize(path);
    this.#checkParent(p);
    if (!this.#nodes.has(posix.dirname(p)) && this.owns(posix.dirname(p))) throw kerr('ENOENT', p);
    if (this.#nodes.has(p)) throw kerr('EEXIST', p);
    this.#nodes.set(p, { ...node, ino: this.#nextIno++ });
  }

  mknod(path: string, mode: number, rdev: bigint): void {
    const type = mode & S_IFMT;
    if (type !== S_IFBLK && type !== S_IFCHR && type !== S_IFREG && type !== 0) throw kerr('EINVAL', 'mknod type');
    this.#create(path, { mode: (type === 0 ? S_IFREG : 0) | mode, rdev: type === S_IFBLK || type === S_IFCHR ? rdev : 0n });
  }

  mkdir(path: string, mode: number): void {
    this.#create(path, { mode: S_IFDIR | (mode & 0o7777), rdev: 0n });
  }

  symlink(target: string, path: string): void {
    this.#create(path, { mode: S_IFLNK | 0o777, rdev: 0n, target });
  }

  unlink(path: string): void {
    const p = posix.normalize(path);
    this.#checkParent(p);
    const n = this.#nodes.get(p);
    if (!n) throw kerr('ENOENT', p);
    if ((n.mode & S_IFMT) === S_IFDIR) throw kerr('EISDIR', p);
    this.#nodes.delete(p);
  }

  rename(from: string, to: string): void {
    const f = posix.normalize(from);
    const t = posix.normalize(to);
    this.#checkParent(f);
    this.#checkParent(t);
    const n = this.#nodes.get(f);
    if (!n) throw kerr('ENOENT', f);
    if (!this.#nodes.has(posix.dirname(t))) throw kerr('ENOENT', t);
    const existing = this.#nodes.get(t);
    if (existing && (existing.mode & S_IFMT) === S_IFDIR) {
      if ((n.mode & S_IFMT) !== S_IFDIR) throw kerr('EISDIR', t);
      if ([...this.#nodes.keys()].some((k) => k.startsWith(`${t}/`))) throw kerr('ENOTEMPTY', t);
    }
    if ((n.mode & S_IFMT) === S_IFDIR) {
      for (const [k, v] of [...this.#nodes]) {
        if (k.startsWith(`${f}/`)) {
          this.#nodes.delete(k);
          this.#nodes.set(t + k.slice(f.length), v);
        }
      }
    }
    this.#nodes.delete(f);
    this.#nodes.set(t, n);
  }

  /** Kernel-side (devtmpfs) node creation: replaces whatever is there, makes parents. */
  kernelNode(path: string, mode: number, rdev: bigint): void {
    this.#mkdirp(posix.dirname(path));
    this.#nodes.set(posix.normalize(path), { mode, rdev, ino: this.#nextIno++ });
  }

  /** Kernel-side node removal (devtmpfs): only when it still is that device's node. */
  kernelRemove(path: string, rdev: bigint): void {
    const p = posix.normalize(path);
    const n = this.#nodes.get(p);
    if (n && n.rdev === rdev && (n.mode & S_IFMT) === S_IFBLK) this.#nodes.delete(p);
  }

  /** Every path, sorted (introspection). */
  list(): { path: string; node: DevfsNode }[] {
    return [...this.#nodes].map(([path, node]) => ({ path, node })).sort((a, b) => (a.path < b.path ? -1 : 1));
  }
}

export function statOf(n: DevfsNode): StatResult {
  return { dev: DEVFS_DEV, ino: n.ino, rdev: n.rdev, mode: n.mode, size: 0n, blocks: 0n };
}
