// SPDX-License-Identifier: MIT
// Recording what blocks the event loop: the synchronous calls a piece of the library makes at the
// two seams it can block the thread through, the Syscalls seam (sync `ioctl`/`stat` against
// `ioctlAsync`/`statAsync`) and node:fs's synchronous calls. Used by the tests that prove an
// asynchronous path makes none that can wait (autoextend's grow, the loop reads).
import * as nodeFs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import type { FakeKernel } from '../../src/testing/index.js';

/** The Syscalls seam's methods (src/ioctl/syscalls.ts); the FakeKernel's other methods are the test's. */
export const SYSCALL_METHODS: ReadonlySet<string> = new Set(['open', 'close', 'ioctl', 'ioctlAsync', 'fstat', 'stat', 'statAsync', 'lstat', 'mknod', 'unlink', 'rename', 'mkdir', 'fsync', 'flock', 'mountAsync', 'umount2Async', 'pollAsync']);

/** node:fs's synchronous calls that read, write or look at files. */
export const FS_SYNC_CALLS: readonly string[] = ['statSync', 'lstatSync', 'fstatSync', 'openSync', 'closeSync', 'fsyncSync', 'fdatasyncSync', 'writeSync', 'writeFileSync', 'readFileSync', 'readSync', 'renameSync', 'ftruncateSync', 'truncateSync', 'readdirSync', 'existsSync', 'mkdirSync', 'unlinkSync', 'statfsSync', 'accessSync', 'copyFileSync', 'appendFileSync'];

export interface SyncCallRecorder {
  /** Recording while true. */
  on: boolean;
  /** Inside a FakeKernel method: its own fs use is the fake's, not the library's. */
  inFake: number;
  /** Seam calls, `method` or `ioctl REQUEST` / `ioctlAsync REQUEST`. */
  syscalls: string[];
  /** node:fs calls, `name` or `name path` when the first argument is a path string. */
  fs: string[];
}

export function syncCallRecorder(): SyncCallRecorder {
  return { on: false, inFake: 0, syscalls: [], fs: [] };
}

/** `fake` behind a Proxy that records every seam call while `rec.on`. */
export function recordingKernel(fake: FakeKernel, rec: SyncCallRecorder): FakeKernel {
  return new Proxy(fake, {
    get(target, key) {
      const v = Reflect.get(target, key, target) as unknown;
      if (typeof v !== 'function') return v;
      if (typeof key !== 'string' || !SYSCALL_METHODS.has(key)) return (v as (...a: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => {
        if (rec.on) rec.syscalls.push(key === 'ioctl' || key === 'ioctlAsync' ? `${key} ${String(args[3])}` : key);
        rec.inFake++;
        try {
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        } finally {
          rec.inFake--;
        }
      };
    },
  });
}

/**
 * Wraps node:fs's `names` (live ESM bindings included, through syncBuiltinESMExports) to record
 * each call made while `rec.on`, outside the FakeKernel. A function's `.native` (realpathSync's)
 * is recorded as `name.native`. Returns the undo.
 */
export function recordFs(rec: SyncCallRecorder, names: readonly string[] = FS_SYNC_CALLS): () => void {
  const mod = (nodeFs as unknown as { default: Record<string, unknown> }).default;
  const saved = new Map<string, unknown>();
  const wrap = (name: string, orig: (...a: unknown[]) => unknown) =>
    function (this: unknown, ...args: unknown[]) {
      if (rec.on && rec.inFake === 0) rec.fs.push(typeof args[0] === 'string' ? `${name} ${args[0]}` : name);
      return orig.apply(this, args);
    };
  for (const name of names) {
    const orig = mod[name] as ((...a: unknown[]) => unknown) & { native?: (...a: unknown[]) => unknown };
    if (typeof orig !== 'function') continue;
    saved.set(name, orig);
    const w = wrap(name, orig) as typeof orig;
    if (typeof orig.native === 'function') w.native = wrap(`${name}.native`, orig.native);
    mod[name] = w;
  }
  syncBuiltinESMExports();
  return () => {
    for (const [name, orig] of saved) mod[name] = orig;
    syncBuiltinESMExports();
  };
}
