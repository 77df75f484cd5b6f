// SPDX-License-Identifier: MIT
// The native boundary: the ONLY module that touches koffi. Declares the libc functions this
// library calls, each in a synchronous and an asynchronous (worker thread) form, and returns
// `{ rc, errno }` with errno captured right after the call.
//
// DEVELOPERS — how errno is read, and why it is reliable
// ------------------------------------------------------
// * Sync calls run on the JS thread. `koffi.errno()` reads that thread's errno; we call it in the
//   same synchronous turn, immediately after the FFI call returns and before any other JS (and so
//   any other libc call of ours) runs. Only V8/Node internals could run in between, and koffi's
//   return-value conversion does not call errno-setting libc functions.
// * Async calls (`fn.async(...)`) run on a libuv threadpool thread (napi_async_work). errno is
//   thread-local, so reading it later on the JS thread would be meaningless — but koffi handles
//   this: AsyncCall::Execute() saves `errno` on the worker right after the native call returns,
//   and AsyncCall::Complete() sets the JS thread's errno to that saved value just while it invokes
//   our completion callback, restoring the previous value afterwards (koffi 3.x
//   src/koffi/src/call.cc, `last_errno`). Therefore `koffi.errno()` MUST be read synchronously as
//   the first thing inside the raw callback — not after a Promise hop (a microtask runs after the
//   restore). `callAsync` below does exactly that. Verified on this host (Linux 6.18, glibc 2.36,
//   koffi 3.3.4): ioctl on a closed fd → EBADF and open of a missing path → ENOENT through both
//   forms (test/unit/ioctl/libc.test.ts).
//
// Prototypes and variadic functions
// ---------------------------------
// glibc declares `int ioctl(int, unsigned long, ...)` and `int open(const char *, int, ...)`.
// koffi 3 supports variadic declarations, but **variadic functions cannot be called with
// `.async`** (koffi docs: load.md "Variadic functions cannot be called asynchronously"; the
// function object has no `.async` member). So we bind fixed prototypes instead:
//   int ioctl(int, unsigned long, void *)          — buffer argument (struct pointer)
//   int ioctl(int, unsigned long, unsigned long)   — integer argument by value (fds, indexes)
//   int open(const char *, int, unsigned int)      — mode always passed
// On the SysV x86_64 and AAPCS64 (Linux) ABIs integer/pointer variadic arguments travel exactly
// like fixed ones (x86_64 additionally reads %al = number of vector registers used, irrelevant
// here), so the fixed prototypes call the same code correctly.
//
// Threadpool caveat: async calls occupy a libuv threadpool thread (UV_THREADPOOL_SIZE, default 4)
// for as long as the kernel blocks. Long blocking calls (DM_DEV_WAIT) should be few, or the
// process should raise UV_THREADPOOL_SIZE, or fs/dns work queues behind them.
//
// Buffers: a Node Buffer passed for `void *` is handed to C as a pointer to its own memory (no
// copy), also for async calls; callAsync keeps the argument array referenced until completion so
// the Buffer cannot be collected while the worker thread writes into it.
import { createRequire } from 'node:module';
import type * as KoffiModule from 'koffi';

type Koffi = typeof KoffiModule;
type KoffiFunction = ReturnType<KoffiModule.LibraryHandle['func']>;

/** Raw outcome of one libc call: `rc` as returned, `errno` (positive) when `rc < 0`, else 0. */
export interface SysResult {
  readonly rc: number;
  readonly errno: number;
}

/** A libc function in its two forms. */
export interface LibcCall<A extends unknown[]> {
  /** Runs on the JS thread. */
  (...args: A): SysResult;
  /** Runs on a worker thread; errno is the worker's, captured by koffi (see file comment). */
  async(...args: A): Promise<SysResult>;
}

/** The libc surface this library uses. Path arguments are JS strings (passed as UTF-8 C strings). */
export interface Libc {
  open: LibcCall<[path: string, flags: number, mode: number]>;
  close: LibcCall<[fd: number]>;
  /** ioctl with a pointer argument (or NULL). */
  ioctlPtr: LibcCall<[fd: number, request: number, arg: Buffer | null]>;
  /** ioctl with an integer argument passed by value. */
  ioctlInt: LibcCall<[fd: number, request: number, arg: number | bigint]>;
  /** statx(2) into a 256-byte buffer (stat.ts decodes it). */
  statx: LibcCall<[dirfd: number, path: string, flags: number, mask: number, buf: Buffer]>;
  mknod: LibcCall<[path: string, mode: number, dev: bigint]>;
  unlink: LibcCall<[path: string]>;
  rename: LibcCall<[from: string, to: string]>;
  mkdir: LibcCall<[path: string, mode: number]>;
  mount: LibcCall<[source: string, target: string, fstype: string, flags: bigint, data: string | null]>;
  umount2: LibcCall<[target: string, flags: number]>;
  fsync: LibcCall<[fd: number]>;
  /** lseek(2); the offset is an off_t (64-bit). */
  lseek: LibcCall<[fd: number, offset: bigint, whence: number]>;
  /** poll(2) on an array of `struct pollfd` in `fds`. */
  poll: LibcCall<[fds: Buffer, nfds: number, timeoutMs: number]>;
  /** flock(2): LOCK_SH/LOCK_EX/LOCK_UN, optionally | LOCK_NB (flock.ts). */
  flock: LibcCall<[fd: number, operation: number]>;
  /** semget(2). */
  semget: LibcCall<[key: number, nsems: number, flags: number]>;
  /** semctl(2) with an int 4th argument (`union semun.val`; ignored by IPC_RMID/GETVAL). */
  semctl: LibcCall<[semid: number, semnum: number, cmd: number, val: number]>;
  /** semop(2) on an array of `struct sembuf`. */
  semop: LibcCall<[semid: number, sops: Buffer, nsops: number]>;
  /** The libc koffi loaded ('libc.so.6', or '(process)' when symbols came from the main program). */
  readonly libraryName: string;
}

let koffiInstance: Koffi | undefined;

/** Loads koffi on first use (never at import time). */
function koffi(): Koffi {
  if (!koffiInstance) {
    if (process.platform !== 'linux') {
      throw new Error(`devmapper: native calls are only supported on Linux (this is ${process.platform})`);
    }
    const require = createRequire(import.meta.url);
    koffiInstance = require('koffi') as Koffi;
  }
  return koffiInstance;
}

function wrap<A extends unknown[]>(k: Koffi, fn: KoffiFunction): LibcCall<A> {
  const call = ((...args: A): SysResult => {
    const rc = Number(fn(...args));
    // Read errno before anything else runs on this thread.
    const errno = rc < 0 ? k.errno() : 0;
    return { rc, errno };
  }) as LibcCall<A>;
  call.async = (...args: A): Promise<SysResult> =>
    new Promise<SysResult>((resolve, reject) => {
      const keepAlive: unknown[] = args; // keeps Buffers reachable while the worker uses them
      fn.async(...args, (err: unknown, res: unknown) => {
        // koffi has put the worker's errno into this thread's errno for the duration of this
        // callback only: read it first, synchronously.
        const errno = k.errno();
        void keepAlive;
        if (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        const rc = Number(res);
        resolve({ rc, errno: rc < 0 ? errno : 0 });
      });
    });
  return call;
}

function bind(): Libc {
  const k = koffi();
  let lib: KoffiModule.LibraryHandle;
  let libraryName = 'libc.so.6';
  try {
    lib = k.load('libc.so.6');
  } catch {
    // Not glibc (e.g. musl): the node binary itself links libc dynamically.
    lib = k.load(null);
    libraryName = '(process)';
  }
  const f = <A extends unknown[]>(decl: string): LibcCall<A> => wrap<A>(k, lib.func(decl));

  // mknod is a real symbol only since glibc 2.33; older glibc exports __xmknod(ver, path, mode, dev_t *).
  let mknod: LibcCall<[string, number, bigint]>;
  try {
    mknod = f('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  } catch {
    const x = lib.func('int __xmknod(int ver, const char *path, uint32_t mode, uint64_t *dev)');
    const xm = wrap<[number, string, number, bigint[]]>(k, x);
    const call = ((path: string, mode: number, dev: bigint) => xm(0, path, mode, [dev])) as LibcCall<[string, number, bigint]>;
    call.async = (path: string, mode: number, dev: bigint) => xm.async(0, path, mode, [dev]);
    mknod = call;
  }

  return {
    open: f('int open(const char *path, int flags, uint32_t mode)'),
    close: f('int close(int fd)'),
    ioctlPtr: f('int ioctl(int fd, unsigned long request, void *arg)'),
    ioctlInt: f('int ioctl(int fd, unsigned long request, unsigned long arg)'),
    statx: f('int statx(int dirfd, const char *path, int flags, uint32_t mask, void *buf)'),
    mknod,
    unlink: f('int unlink(const char *path)'),
    rename: f('int rename(const char *from, const char *to)'),
    mkdir: f('int mkdir(const char *path, uint32_t mode)'),
    mount: f('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: f('int umount2(const char *target, int flags)'),
    fsync: f('int fsync(int fd)'),
    lseek: f('int64_t lseek(int fd, int64_t offset, int whence)'),
    poll: f('int poll(void *fds, unsigned long nfds, int timeout)'),
    flock: f('int flock(int fd, int operation)'),
    semget: f('int semget(int key, int nsems, int semflg)'),
    semctl: f('int semctl(int semid, int semnum, int cmd, int val)'),
    semop: f('int semop(int semid, void *sops, unsigned long nsops)'),
    libraryName,
  };
}

let libcInstance: Libc | undefined;

/**
 * The libc bindings, created on first call (loads koffi and libc then). Importing this module
 * loads nothing. @throws Error on non-Linux platforms or when koffi cannot load.
 */
export function libc(): Libc {
  libcInstance ??= bind();
  return libcInstance;
}

/** True once libc() has loaded koffi (for tests asserting laziness). */
export function libcLoaded(): boolean {
  return koffiInstance !== undefined;
}
