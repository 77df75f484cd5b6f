// SPDX-License-Identifier: MIT
// Recording what blocks the event loop: the synchronous calls a piece of the library makes at the
// two seams it can block the thread through, the Syscalls seam (sync `ioctl`/`stat` against
// `ioctlAsync`/`statAsync`) and node:fs's synchronous calls. Used by the tests that prove an
// asynchronous path makes none that can wait (autoextend's grow, the loop reads).
import * as nodeFs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKernel } from '../../src/testing/index.js';

/** The Syscalls seam's methods (src/ioctl/syscalls.ts); the FakeKernel's other methods are the test's. */
export const SYSCALL_METHODS: ReadonlySet<string> = new Set(['open', 'close', 'ioctl', 'ioctlAsync', 'fstat', 'stat', 'statAsync', 'lstat', 'mknod', 'unlink', 'rename', 'mkdir', 'fsync', 'flock', 'lseek', 'mountAsync', 'umount2Async', 'pollAsync']);

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
  /** fs/promises calls of {@link FS_PROMISES_CALLS}, `name path` (recorded by {@link withRecordedFake}): what went off the main thread. */
  asyncFs: string[];
}

export function syncCallRecorder(): SyncCallRecorder {
  return { on: false, inFake: 0, syscalls: [], fs: [], asyncFs: [] };
}

/** The fs/promises functions the DeviceSet's metadata store calls by default (FileHandle methods aside). */
export const FS_PROMISES_CALLS: readonly string[] = ['open', 'rename', 'unlink', 'mkdir', 'readdir', 'lstat', 'readFile'];

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

/** Wraps fs/promises' `names` to record each call made while `rec.on` into `rec.asyncFs`. Returns the undo. */
export function recordFsPromises(rec: SyncCallRecorder, names: readonly string[] = FS_PROMISES_CALLS): () => void {
  const promises = nodeFs.promises as unknown as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  for (const name of names) {
    const orig = promises[name] as ((...a: unknown[]) => unknown) | undefined;
    if (typeof orig !== 'function') continue;
    saved.set(name, orig);
    promises[name] = function (this: unknown, ...args: unknown[]) {
      if (rec.on && rec.inFake === 0) rec.asyncFs.push(`${name} ${String(args[0])}`);
      return orig.apply(this, args);
    };
  }
  return () => {
    for (const [name, orig] of saved) promises[name] = orig;
  };
}

/** What {@link withRecordedFake} gives its body. */
export interface RecordedFake {
  /** The fake itself (for the test's own moves: writeThin…). */
  readonly fake: FakeKernel;
  /** The fake behind the recording Proxy: the one to give the library. */
  readonly kernel: FakeKernel;
  readonly rec: SyncCallRecorder;
  /** A fresh root path (not created), on /dev/shm where there is one. */
  readonly root: string;
}

/**
 * Runs `body` with a FakeKernel (its devDir `devDir`) behind a recorder, node:fs's *Sync calls
 * and fs/promises' {@link FS_PROMISES_CALLS} recorded; undoes the wrapping and removes the temp
 * directory afterwards.
 */
export async function withRecordedFake(devDir: string, body: (w: RecordedFake) => Promise<void>): Promise<void> {
  const tmp = nodeFs.mkdtempSync(join(nodeFs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'sync-calls-'));
  const fake = new FakeKernel({ sysfs: true, devDir });
  const rec = syncCallRecorder();
  const restoreSync = recordFs(rec);
  const restoreAsync = recordFsPromises(rec);
  try {
    await body({ fake, kernel: recordingKernel(fake, rec), rec, root: join(tmp, 'root') });
  } finally {
    restoreAsync();
    restoreSync();
    fake.dispose();
    nodeFs.rmSync(tmp, { recursive: true, force: true });
  }
}
