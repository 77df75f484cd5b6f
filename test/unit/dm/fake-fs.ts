// SPDX-License-Identifier: MIT
// Why not FakeKernel: node-management tests need udev's side too (symlinks appearing, dangling,
// replaced between two polls), which the FakeKernel's devfs does not script.
// A tiny in-memory filesystem behind the Syscalls file calls, for node-management tests.
// Symlinks are modelled so that stat() follows them and a dangling one gives ENOENT.
import type { StatResult, Syscalls } from '../../../src/ioctl/index.js';

export type FsEntry =
  | { kind: 'dir'; mode: number }
  | { kind: 'file'; mode: number }
  | { kind: 'blk' | 'chr'; mode: number; rdev: bigint }
  | { kind: 'link'; target: string };

export class ErrnoError extends Error {
  readonly code: string;
  constructor(code: string, syscall: string, path: string) {
    super(`${syscall} ${path}: ${code}`);
    this.code = code;
  }
}

const TYPE = { dir: 0o040000, file: 0o100000, blk: 0o060000, chr: 0o020000 } as const;

export class FakeFs {
  readonly entries = new Map<string, FsEntry>();
  readonly calls: string[] = [];

  resolve(path: string, depth = 0): FsEntry | undefined {
    const e = this.entries.get(path);
    if (e?.kind === 'link') {
      if (depth > 8) return undefined;
      const t = e.target.startsWith('/') ? e.target : path.replace(/[^/]+$/, '') + e.target;
      return this.resolve(normalize(t), depth + 1);
    }
    return e;
  }

  stat(path: string): StatResult {
    const e = this.resolve(path);
    if (!e || e.kind === 'link') throw new ErrnoError('ENOENT', 'stat', path);
    const rdev = e.kind === 'blk' || e.kind === 'chr' ? e.rdev : 0n;
    return { dev: 5n, ino: 1n, rdev, mode: TYPE[e.kind] | e.mode, size: 0n, blocks: 0n };
  }
  lstat(path: string): StatResult {
    const e = this.entries.get(path);
    if (!e) throw new ErrnoError('ENOENT', 'lstat', path);
    if (e.kind === 'link') return { dev: 5n, ino: 1n, rdev: 0n, mode: 0o120777, size: 0n, blocks: 0n };
    return this.stat(path);
  }
  mknod(path: string, mode: number, dev: bigint): void {
    this.calls.push(`mknod ${path} ${mode.toString(8)} ${dev.toString(16)}`);
    if (this.entries.has(path)) throw new ErrnoError('EEXIST', 'mknod', path);
    this.parentMustExist(path, 'mknod');
    const type = mode & 0o170000;
    const kind = type === TYPE.blk ? 'blk' : type === TYPE.chr ? 'chr' : 'file';
    this.entries.set(path, kind === 'file' ? { kind, mode: mode & 0o7777 } : { kind, mode: mode & 0o7777, rdev: dev });
  }
  unlink(path: string): void {
    this.calls.push(`unlink ${path}`);
    const e = this.entries.get(path);
    if (!e) throw new ErrnoError('ENOENT', 'unlink', path);
    if (e.kind === 'dir') throw new ErrnoError('EISDIR', 'unlink', path);
    this.entries.delete(path);
  }
  rename(from: string, to: string): void {
    this.calls.push(`rename ${from} ${to}`);
    const e = this.entries.get(from);
    if (!e) throw new ErrnoError('ENOENT', 'rename', from);
    this.entries.delete(from);
    this.entries.set(to, e);
  }
  mkdir(path: string, mode: number): void {
    this.calls.push(`mkdir ${path} ${mode.toString(8)}`);
    if (this.entries.has(path)) throw new ErrnoError('EEXIST', 'mkdir', path);
    this.parentMustExist(path, 'mkdir');
    this.entries.set(path, { kind: 'dir', mode });
  }
  private parentMustExist(path: string, syscall: string): void {
    const parent = path.replace(/\/[^/]+$/, '') || '/';
    if (parent !== '/' && this.resolve(parent)?.kind !== 'dir') throw new ErrnoError('ENOENT', syscall, parent);
  }

  /** The file calls of Syscalls, bound to this fs; merge into a fake Syscalls object. */
  fileCalls(): Pick<Syscalls, 'stat' | 'lstat' | 'mknod' | 'unlink' | 'rename' | 'mkdir'> {
    return {
      stat: (p) => this.stat(p),
      lstat: (p) => this.lstat(p),
      mknod: (p, m, d) => this.mknod(p, m, d),
      unlink: (p) => this.unlink(p),
      rename: (a, b) => this.rename(a, b),
      mkdir: (p, m) => this.mkdir(p, m),
    };
  }
}

function normalize(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}

/** A Syscalls where every call not provided throws, so tests notice unexpected calls. */
export function strictSyscalls(parts: Partial<Syscalls>): Syscalls {
  return new Proxy(parts as Syscalls, {
    get(target, prop) {
      const v = (target as unknown as Record<string | symbol, unknown>)[prop];
      // `sysv` and `openBatch` are optional in the seam: absent means "no SysV semaphores" / "no
      // batches" (one call per ioctl), not a call.
      if (v === undefined && typeof prop === 'string' && prop !== 'then' && prop !== 'sysv' && prop !== 'openBatch')
        return () => {
          throw new Error(`unexpected syscall ${prop}`);
        };
      return v;
    },
  });
}
