// SPDX-License-Identifier: MIT
// LoopControl: loop devices at ioctl level (drivers/block/loop.c), the util-linux way
// (lib/loopdev.c): LOOP_CONFIGURE with a LOOP_SET_FD + LOOP_SET_STATUS64 fallback, the
// GET_FREE → bind race retried, sysfs for enumeration, (st_dev, st_ino) to find a file's device.
// The reads (getFree, status, sizeOf, list, findByBackingFile) are asynchronous, each with a
// *Sync twin; both forms are one implementation (twin.ts) whose I/O steps go through the
// Syscalls seam's ioctlAsync/statAsync and fs/promises, or their synchronous forms.
// One file over 600 lines: every method works through LoopControl's private seam, retry policy
// and status buffer; what stands alone is beside it (attachment.ts, options.ts, sysfs.ts,
// device-node.ts, twin.ts).
import { constants as fsc, promises as fsp, realpathSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, assertOptionsObject, errnoCode, type OptionField } from '../errors.js';
import {
  BLKGETSIZE64,
  LOOP_CLR_FD,
  LOOP_CONFIGURE,
  LOOP_CONFIG_SIZE,
  LOOP_CTL_ADD,
  LOOP_CTL_GET_FREE,
  LOOP_CTL_REMOVE,
  LOOP_GET_STATUS64,
  LOOP_INFO64_SIZE,
  LOOP_SET_BLOCK_SIZE,
  LOOP_SET_CAPACITY,
  LOOP_SET_DIRECT_IO,
  LOOP_SET_FD,
  LOOP_SET_STATUS64,
  LOOP_SET_STATUS_SETTABLE_FLAGS,
  LO_FLAGS_AUTOCLEAR,
  LO_FLAGS_DIRECT_IO,
  LO_FLAGS_PARTSCAN,
  LO_FLAGS_READ_ONLY,
  LO_NAME_SIZE,
  O_CLOEXEC,
  S_IFBLK,
  S_IFCHR,
  S_IFMT,
  S_IFREG,
  decodeLoopInfo64,
  encodeLoopConfig,
  encodeLoopInfo64,
  huge_decode_dev,
  major as devMajor,
  minor as devMinor,
  realSyscalls,
  type RawLoopInfo64,
  type StatResult,
  type Syscalls,
} from '../ioctl/index.js';
import {
  BackingFileLinkError,
  BackingFileNotFoundError,
  BackingFileNotRegularError,
  BackingFileReadOnlyError,
  LoopDeviceBusyError,
  LoopDeviceExistsError,
  LoopDeviceInUseError,
  LoopDeviceNotFoundError,
  LoopNotBoundError,
  LoopUnsupportedError,
  NotALoopDeviceError,
  checkLoopAbort,
  fileTypeName,
} from './errors.js';
import { LoopAttachment, type LoopDeviceRef, type LoopStatus } from './attachment.js';
import { loopOpenError, openLoopDevice } from './device-node.js';
import { resolveAttachOptions, type LoopAttachOptions, type ResolvedLoopAttachOptions } from './options.js';
import { DEFAULT_SYSFS_ROOT, boundLoopsTwin, type BoundLoopSysfsInfo, isLoopBound, loopByNumberTwin, loopsTwin, type LoopSysfsBinding, type LoopSysfsInfo } from './sysfs.js';
import { all, io, runAsync, runSync, type IoStep, type Twin } from './twin.js';

/** Loop devices are block major 7 (include/uapi/linux/major.h LOOP_MAJOR). */
export const LOOP_MAJOR = 7;

/**
 * GET_FREE → bind race policy: how many free devices attach tries before giving up with
 * {@link LoopDeviceBusyError}, and the random back-off between tries (util-linux: 64 tries;
 * containerd: random back-off). Each try asks LOOP_CTL_GET_FREE again.
 */
export const LOOP_ATTACH_MAX_ATTEMPTS = 64;
export const LOOP_ATTACH_RETRY_MIN_DELAY_MS = 2;
export const LOOP_ATTACH_RETRY_MAX_DELAY_MS = 50;

/**
 * Opening /dev/loopN right after LOOP_CTL_GET_FREE created it can fail with ENOENT/EACCES until
 * devtmpfs/udev has made the node: util-linux retries 16 × 25 ms.
 */
export const LOOP_OPEN_MAX_TRIES = 16;
export const LOOP_OPEN_RETRY_DELAY_MS = 25;

/** Configuration ioctls that may answer EAGAIN are retried (util-linux LOOPDEV_MAX_TRIES, 250 ms). */
export const LOOP_EAGAIN_MAX_TRIES = 10;
export const LOOP_EAGAIN_DELAY_MS = 250;

/** Errnos from LOOP_CONFIGURE that mean "not supported here, use the legacy sequence" (util-linux). */
const CONFIGURE_UNSUPPORTED = ['EINVAL', 'ENOTTY', 'ENOSYS'] as const;

/**
 * Whether LOOP_CLR_FD returns at once on the kernel `release` (`uname -r`), so it can run on the
 * calling thread instead of a worker hop (~60 µs natively, ~230 µs under TCG).
 *
 * Since Linux 6.11 (drivers/block/loop.c, commit 18048c1af783 "loop: Fix a race between loop
 * detach and loop open"), loop_clr_fd() only takes the loop locks, sets LO_FLAGS_AUTOCLEAR (and
 * Lo_rundown when the caller is the only opener) and returns; the teardown, __loop_clr_fd(), runs
 * in lo_release() on the last close(2), which our detach already does synchronously. Before
 * 6.11 (6.1 included), the only opener's LOOP_CLR_FD runs __loop_clr_fd(lo, false) inside the
 * ioctl: blk_mq_freeze_queue() waits for in-flight I/O and an RCU grace period, so the call stays
 * on the worker there. An unparsable release, or a distribution kernel below 6.11 that carries
 * the change as a backport, keeps the worker: the safe side.
 */
export function loopClrFdReturnsAtOnce(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 6 || (major === 6 && minor >= 11);
}

export interface LoopControlOptions {
  /** Kernel seam. Default: the real libc calls. */
  readonly syscalls?: Syscalls;
  /** Where the loop nodes live. Default '/dev'. */
  readonly devDir?: string;
  /** Where sysfs is mounted. Default '/sys'. */
  readonly sysfsRoot?: string;
  /** Sleep used between retries (injectable for tests). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Random source in [0, 1) for retry jitter (injectable for tests). */
  readonly random?: () => number;
  /**
   * The running kernel's release (`uname -r`), which decides whether LOOP_CLR_FD needs a worker
   * hop (`loopClrFdReturnsAtOnce`). Default: `os.release()`.
   */
  readonly kernelRelease?: string;
}

/** Names a loop device: its index, its node path, or a {@link LoopDeviceRef}/{@link LoopAttachment}. */
export type LoopDeviceSpec = number | string | { readonly path: string };

/** One entry of {@link LoopControl.list}: sysfs state plus the node path. */
export type LoopListEntry = LoopSysfsInfo & { readonly path: string };

/** One device found by {@link LoopControl.findByBackingFile}. */
export interface LoopMatch extends LoopDeviceRef {
  /** Status, or undefined when the match was made on the sysfs path (the file could not be stat'ed). */
  readonly status: LoopStatus | undefined;
  /** `loop/backing_file` from sysfs. */
  readonly backingFile: string;
  /** How the match was made. */
  readonly matchedBy: 'inode' | 'path';
}

/** What {@link LoopControl.findByBackingFile} also matches, when given. */
export interface LoopMatchFilter {
  readonly offset?: bigint | number;
  readonly sizeLimit?: bigint | number;
  /**
   * Only the loop device with this number (e.g. from a dm table): it alone is read (its sysfs
   * attributes and one LOOP_GET_STATUS64), instead of every bound device. The match is proven the
   * same way.
   */
  readonly device?: { readonly major: number; readonly minor: number };
}

/** What {@link LoopControl.detach} did. */
export type DetachResult =
  /** The binding is gone. */
  | 'detached'
  /** Someone else still has the device open: the kernel switched on autoclear and detaches on last close. */
  | 'deferred';

const sleepReal = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Decodes lo_flags into booleans. */
function decodeStatus(raw: RawLoopInfo64): LoopStatus {
  const dev = huge_decode_dev(raw.lo_device);
  return {
    index: raw.lo_number,
    fileName: raw.lo_file_name,
    backingDevice: raw.lo_device,
    backingDeviceMajor: dev.major,
    backingDeviceMinor: dev.minor,
    backingInode: raw.lo_inode,
    backingRdevice: raw.lo_rdevice,
    offset: raw.lo_offset,
    sizeLimit: raw.lo_sizelimit,
    flags: raw.lo_flags,
    readOnly: (raw.lo_flags & LO_FLAGS_READ_ONLY) !== 0,
    autoclear: (raw.lo_flags & LO_FLAGS_AUTOCLEAR) !== 0,
    partscan: (raw.lo_flags & LO_FLAGS_PARTSCAN) !== 0,
    directIo: (raw.lo_flags & LO_FLAGS_DIRECT_IO) !== 0,
  };
}

/**
 * Truncates a string to at most `maxBytes` UTF-8 bytes without splitting a character
 * (lo_file_name is char[64] with a forced NUL: 63 usable bytes).
 */
export function truncateUtf8(s: string, maxBytes: number): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes (a surrogate pair: 2 units, 4 bytes): short strings fit.
  if (s.length * 3 <= maxBytes) return s;
  // Counted, not copied: most paths that pass the test above still fit (~0.3 µs hot, 2–3 µs cold).
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  const b = Buffer.from(s, 'utf8');
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) so we cut before a character starts.
  while (end > 0 && ((b[end] ?? 0) & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}

/** Internal: the bind call lost the race for this device (EBUSY/EAGAIN on CONFIGURE or SET_FD). */
class LostRace extends Error {
  constructor(readonly original: unknown) {
    super('lost the loop device race');
  }
}

/**
 * Loop devices at ioctl level.
 *
 * @example
 * const loops = new LoopControl();
 * const dev = await loops.attach('/var/lib/pool/data', { directIo: true });
 * try {
 *   // … load a dm table that references dev.devNumber …
 * } finally {
 *   dev.close(); // autoclear: the device now lives exactly as long as the dm table uses it
 * }
 */
export class LoopControl {
  readonly #sys: Syscalls;
  readonly #devDir: string;
  readonly #sysfsRoot: string;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  /** LOOP_CLR_FD on the calling thread (true) or through ioctlAsync (false). */
  readonly #clearAtOnce: boolean;
  /**
   * LOOP_GET_STATUS64's output buffer, reused: #getStatus fills, issues and decodes it with no
   * await in between, so concurrent calls on this instance cannot interleave on it. (A zeroed
   * Buffer.alloc per call cost ~1–5 µs natively: a fresh ArrayBuffer each time.)
   */
  readonly #statusBuf = Buffer.alloc(LOOP_INFO64_SIZE);
  /**
   * `join(devDir, 'loop')`, joined once, to which devicePath appends the index (a digit string
   * never changes how join normalises). path.join per call cost ~1–2 µs natively: a normalising
   * scan of the whole string each time.
   */
  readonly #nodePrefix: string;

  constructor(options: LoopControlOptions = {}) {
    assertOptionsObject('LoopControl options', options, {
      syscalls: 'object',
      devDir: 'string',
      sysfsRoot: 'string',
      sleep: 'function',
      random: 'function',
      kernelRelease: 'string',
    } satisfies Record<keyof LoopControlOptions, OptionField>);
    this.#sys = options.syscalls ?? realSyscalls();
    this.#devDir = options.devDir ?? '/dev';
    this.#sysfsRoot = options.sysfsRoot ?? DEFAULT_SYSFS_ROOT;
    this.#sleep = options.sleep ?? sleepReal;
    this.#random = options.random ?? Math.random;
    this.#clearAtOnce = loopClrFdReturnsAtOnce(options.kernelRelease ?? osRelease());
    this.#nodePrefix = join(this.#devDir, 'loop');
  }

  /**
   * `using loops = new LoopControl()` works like the other handles, and releases nothing: a
   * LoopControl opens /dev/loop-control and each device per call and closes them before the call
   * returns, so it holds no fd between calls. The devices it binds are {@link LoopAttachment}s,
   * which are disposable themselves.
   */
  [Symbol.dispose](): void {
    // Nothing is held between calls (see #withControl and attach's finally blocks).
  }

  /** Node path of loopN under the configured devDir. */
  devicePath(index: number): string {
    return `${this.#nodePrefix}${index}`;
  }

  // ---------------------------------------------------------------- loop-control

  /** Opens /dev/loop-control (open(2) of a misc device node: no I/O, kept synchronous in both forms). */
  #openControl(): number {
    const path = join(this.#devDir, 'loop-control');
    try {
      return this.#sys.open(path, fsc.O_RDWR | O_CLOEXEC);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENODEV' || errnoCode(err) === 'ENXIO') {
        throw new LoopUnsupportedError(`cannot open ${path}`, { cause: err });
      }
      throw err;
    }
  }

  #withControl<T>(fn: (fd: number) => T): T {
    const fd = this.#openControl();
    try {
      return fn(fd);
    } finally {
      this.#sys.close(fd);
    }
  }

  /** An ioctl as an I/O step: the seam's `ioctl`, or its `ioctlAsync` (a worker thread). */
  #ioctlStep(fd: number, request: number, arg: Buffer | number, name: string): IoStep<number> {
    return { sync: () => this.#sys.ioctl(fd, request, arg, name), async: () => this.#sys.ioctlAsync(fd, request, arg, name) };
  }

  *#getFreeTwin(): Twin<number> {
    const fd = this.#openControl();
    try {
      // drivers/block/loop.c loop_control_get_free(): takes loop_ctl_mutex and, when no device
      // is free, makes one (loop_add(): add_disk, a uevent): it can wait.
      return yield* io(this.#ioctlStep(fd, LOOP_CTL_GET_FREE, 0, 'LOOP_CTL_GET_FREE'));
    } finally {
      this.#sys.close(fd);
    }
  }

  /**
   * LOOP_CTL_GET_FREE (on a worker thread): index of an unbound loop device, created if needed.
   * Reserves nothing: another process may bind it first (attach handles that race).
   */
  getFree(): Promise<number> {
    return runAsync(this.#getFreeTwin());
  }

  /** {@link getFree} on the calling thread. */
  getFreeSync(): number {
    return runSync(this.#getFreeTwin());
  }

  /**
   * LOOP_CTL_ADD: creates loop`index`. Returns the index.
   * @throws {LoopDeviceExistsError} it already exists (EEXIST).
   */
  add(index: number): number {
    checkIndex(index);
    return this.#withControl((fd) => {
      try {
        return this.#sys.ioctl(fd, LOOP_CTL_ADD, index, 'LOOP_CTL_ADD');
      } catch (err) {
        if (errnoCode(err) === 'EEXIST') throw new LoopDeviceExistsError(index, { cause: err });
        throw err;
      }
    });
  }

  /**
   * LOOP_CTL_REMOVE: deletes loop`index` (it must be unbound and closed).
   * @throws {LoopDeviceInUseError} it is bound or open (EBUSY).
   * @throws {LoopDeviceNotFoundError} it does not exist (ENODEV).
   */
  remove(index: number): void {
    checkIndex(index);
    this.#withControl((fd) => {
      try {
        this.#sys.ioctl(fd, LOOP_CTL_REMOVE, index, 'LOOP_CTL_REMOVE');
      } catch (err) {
        if (errnoCode(err) === 'EBUSY') throw new LoopDeviceInUseError(index, { cause: err });
        if (errnoCode(err) === 'ENODEV') throw new LoopDeviceNotFoundError(`loop${index}`, { cause: err });
        throw err;
      }
    });
  }

  // ---------------------------------------------------------------- attach

  /**
   * Binds `file` to a free loop device.
   *
   * 1. Validates the options and opens the backing file **before any ioctl**: a missing file, a
   *    directory (or other non-file), or a read-write attach of a file we cannot write fails with
   *    a typed error and consumes no loop device.
   * 2. LOOP_CTL_GET_FREE → open /dev/loopN O_RDWR (retrying briefly on ENOENT/EACCES while the node
   *    appears) → LOOP_CONFIGURE (offset, sizelimit, flags, block size and the canonical path as
   *    lo_file_name, atomically). If the kernel answers EINVAL/ENOTTY/ENOSYS (pre-5.8, or
   *    `method: 'legacy'`): LOOP_SET_FD, LOOP_SET_BLOCK_SIZE, LOOP_SET_STATUS64, LOOP_SET_DIRECT_IO.
   * 3. EBUSY from the bind means another process took that device: ask GET_FREE again, up to
   *    {@link LOOP_ATTACH_MAX_ATTEMPTS} times with a short random back-off.
   * 4. Any failure after the device was bound by us → LOOP_CLR_FD, then the error is rethrown.
   *
   * Direct I/O is best effort, as in the kernel: if the backing file cannot do it (alignment),
   * the device works buffered; `status.directIo` on the result says what you got.
   *
   * The result holds the loop fd open: see {@link LoopAttachment} — call `close()` when the
   * consumer holds the device.
   *
   * @throws {InvalidArgumentError} bad options (every problem listed).
   * @throws {BackingFileNotFoundError} {@link BackingFileNotRegularError} {@link BackingFileReadOnlyError}
   *   {@link BackingFileLinkError} (`noFollow` and the file is a symbolic link)
   * @throws {LoopDeviceBusyError} every attempt lost the race.
   * @throws {LoopUnsupportedError} no loop driver.
   * @throws {LoopAbortedError} `signal` fired (before an attempt, or after our bind: the device is cleared again).
   */
  async attach(file: string, options?: LoopAttachOptions): Promise<LoopAttachment> {
    const opts = resolveAttachOptions(options);
    const canonical = canonicalPath(file);
    const backingFd = this.#openBacking(file, opts);
    try {
      let lastBusy: unknown;
      for (let attempt = 1; attempt <= LOOP_ATTACH_MAX_ATTEMPTS; attempt++) {
        // opts.signal: before each attempt (the first included), and after our bind (below).
        checkLoopAbort(opts.signal, 'attach');
        // The Sync twin: attach's fast path (one worker hop here would cost every attach ~60 µs
        // natively); LOOP_CTL_GET_FREE returns at once while a free device exists.
        const index = this.getFreeSync();
        const path = this.devicePath(index);
        const opened = this.#openNode(path);
        const devFd = typeof opened === 'number' ? opened : await opened;
        let method: 'configure' | 'legacy';
        try {
          method = await this.#bind(devFd, backingFd, canonical, opts);
        } catch (err) {
          this.#sys.close(devFd);
          if (err instanceof LostRace) {
            lastBusy = err.original;
            if (attempt < LOOP_ATTACH_MAX_ATTEMPTS) await this.#sleep(this.#backoff());
            continue;
          }
          throw err;
        }
        try {
          checkLoopAbort(opts.signal, 'attach');
          const st = this.#sys.fstat(devFd);
          const ref: LoopDeviceRef = { path, index, major: devMajor(st.rdev), minor: devMinor(st.rdev) };
          const status = this.#getStatus(devFd, path);
          let fd: number | undefined = devFd;
          if (!opts.hold) {
            this.#sys.close(devFd);
            fd = undefined;
          }
          return new LoopAttachment(this.#sys, { ref, fd, backingFile: canonical, method, status, attempts: attempt, clearAtOnce: this.#clearAtOnce });
        } catch (err) {
          await this.#clearQuietly(devFd);
          this.#sys.close(devFd);
          throw err;
        }
      }
      throw new LoopDeviceBusyError(LOOP_ATTACH_MAX_ATTEMPTS, undefined, { cause: lastBusy });
    } finally {
      // The kernel holds its own reference to the backing file once bound.
      this.#sys.close(backingFd);
    }
  }

  #backoff(): number {
    const span = LOOP_ATTACH_RETRY_MAX_DELAY_MS - LOOP_ATTACH_RETRY_MIN_DELAY_MS;
    return LOOP_ATTACH_RETRY_MIN_DELAY_MS + Math.floor(this.#random() * span);
  }

  /** Stat + type check + open of the backing file; no ioctl, no loop device touched. */
  #openBacking(file: string, opts: ResolvedLoopAttachOptions): number {
    let st;
    try {
      st = this.#sys.stat(file);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw new BackingFileNotFoundError(file, { cause: err });
      throw err;
    }
    const type = st.mode & S_IFMT;
    if (type !== S_IFREG && type !== S_IFBLK) {
      throw new BackingFileNotRegularError(file, fileTypeName(st.mode), 'a regular file or a block device');
    }
    let fd: number;
    try {
      fd = this.#sys.open(file, (opts.readOnly ? fsc.O_RDONLY : fsc.O_RDWR) | (opts.noFollow ? fsc.O_NOFOLLOW : 0) | O_CLOEXEC);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new BackingFileNotFoundError(file, { cause: err });
      // With O_NOFOLLOW the last component is not followed and a link reaches fs/namei.c
      // may_open(), which answers -ELOOP for S_IFLNK.
      if (opts.noFollow && errnoCode(err) === 'ELOOP') throw new BackingFileLinkError(file, { cause: err });
      if (errnoCode(err) === 'EISDIR') throw new BackingFileNotRegularError(file, 'directory', 'a regular file', { cause: err });
      if (
        !opts.readOnly &&
        (errnoCode(err) === 'EACCES' || errnoCode(err) === 'EROFS' || errnoCode(err) === 'EPERM' || errnoCode(err) === 'ETXTBSY')
      ) {
        throw new BackingFileReadOnlyError(file, { cause: err });
      }
      throw err;
    }
    try {
      // Re-check on the fd: the path may have been swapped between stat and open.
      const fst = this.#sys.fstat(fd);
      const t = fst.mode & S_IFMT;
      if (t !== S_IFREG && t !== S_IFBLK) {
        throw new BackingFileNotRegularError(file, fileTypeName(fst.mode), 'a regular file or a block device');
      }
    } catch (err) {
      this.#sys.close(fd);
      throw err;
    }
    return fd;
  }

  /**
   * Opens a loop node O_RDWR, retrying while devtmpfs/udev has not created it or fixed its mode.
   * The first try is synchronous and a success returns the fd itself, not a promise: the usual
   * case pays no promise and no microtask hop. Only a retryable failure goes on asynchronously,
   * with the same tries and sleeps as always ({@link LOOP_OPEN_MAX_TRIES}).
   */
  #openNode(path: string): number | Promise<number> {
    try {
      return this.#sys.open(path, fsc.O_RDWR | O_CLOEXEC);
    } catch (err) {
      if ((errnoCode(err) === 'ENOENT' || errnoCode(err) === 'EACCES') && LOOP_OPEN_MAX_TRIES > 1) return this.#openNodeRetry(path);
      throw loopOpenError(path, err);
    }
  }

  /** Tries 2..{@link LOOP_OPEN_MAX_TRIES} of {@link #openNode}, each after a sleep. */
  async #openNodeRetry(path: string): Promise<number> {
    for (let attempt = 2; ; attempt++) {
      await this.#sleep(LOOP_OPEN_RETRY_DELAY_MS);
      try {
        return this.#sys.open(path, fsc.O_RDWR | O_CLOEXEC);
      } catch (err) {
        if ((errnoCode(err) === 'ENOENT' || errnoCode(err) === 'EACCES') && attempt < LOOP_OPEN_MAX_TRIES) continue;
        throw loopOpenError(path, err);
      }
    }
  }

  /**
   * Runs a configuration ioctl, retrying EAGAIN (util-linux LOOPDEV_MAX_TRIES). As in
   * {@link #openNode}, the first try is synchronous and a success is the plain result; only EAGAIN
   * continues asynchronously, up to {@link LOOP_EAGAIN_MAX_TRIES} tries in all.
   */
  #ioctlRetryEagain(fd: number, request: number, arg: Buffer | number, name: string): number | Promise<number> {
    try {
      return this.#sys.ioctl(fd, request, arg, name);
    } catch (err) {
      if (errnoCode(err) === 'EAGAIN' && LOOP_EAGAIN_MAX_TRIES > 1) return this.#ioctlRetryEagainLater(fd, request, arg, name);
      throw err;
    }
  }

  /** Tries 2..{@link LOOP_EAGAIN_MAX_TRIES} of {@link #ioctlRetryEagain}, each after a sleep. */
  async #ioctlRetryEagainLater(fd: number, request: number, arg: Buffer | number, name: string): Promise<number> {
    for (let attempt = 2; ; attempt++) {
      await this.#sleep(LOOP_EAGAIN_DELAY_MS);
      try {
        return this.#sys.ioctl(fd, request, arg, name);
      } catch (err) {
        if (errnoCode(err) === 'EAGAIN' && attempt < LOOP_EAGAIN_MAX_TRIES) continue;
        throw err;
      }
    }
  }

  /**
   * Binds backingFd to the device open as devFd. Throws LostRace when the device was already
   * bound (EBUSY) so the caller tries another; on any failure after our bind, clears the device.
   */
  async #bind(devFd: number, backingFd: number, name: string, opts: ResolvedLoopAttachOptions): Promise<'configure' | 'legacy'> {
    const info: Partial<RawLoopInfo64> = {
      lo_offset: opts.offset,
      lo_sizelimit: opts.sizeLimit,
      lo_flags:
        (opts.readOnly ? LO_FLAGS_READ_ONLY : 0) |
        (opts.autoclear ? LO_FLAGS_AUTOCLEAR : 0) |
        (opts.partscan ? LO_FLAGS_PARTSCAN : 0) |
        (opts.directIo ? LO_FLAGS_DIRECT_IO : 0),
      lo_file_name: truncateUtf8(name, LO_NAME_SIZE - 1),
    };

    if (opts.method !== 'legacy') {
      // From Node's slab (no zeroed ArrayBuffer per call): encodeLoopConfig writes all 304 bytes.
      // Its own buffer per attach: the EAGAIN retry awaits, and other attaches may run meanwhile.
      const config = encodeLoopConfig({ fd: backingFd, block_size: opts.blockSize, info }, Buffer.allocUnsafe(LOOP_CONFIG_SIZE));
      try {
        const done = this.#ioctlRetryEagain(devFd, LOOP_CONFIGURE, config, 'LOOP_CONFIGURE');
        if (typeof done !== 'number') await done;
        return 'configure';
      } catch (err) {
        if (errnoCode(err) === 'EBUSY' || errnoCode(err) === 'EAGAIN') throw new LostRace(err);
        const unsupported = CONFIGURE_UNSUPPORTED.some((c) => errnoCode(err) === c);
        if (!(unsupported && opts.method === 'auto')) throw err;
      }
    }

    // Legacy sequence. The device is bound (with default parameters) between SET_FD and
    // SET_STATUS64; read-only comes from the O_RDONLY backing fd.
    try {
      this.#sys.ioctl(devFd, LOOP_SET_FD, backingFd, 'LOOP_SET_FD');
    } catch (err) {
      if (errnoCode(err) === 'EBUSY' || errnoCode(err) === 'EAGAIN') throw new LostRace(err);
      throw err;
    }
    try {
      if (opts.blockSize !== 0) {
        await this.#ioctlRetryEagain(devFd, LOOP_SET_BLOCK_SIZE, opts.blockSize, 'LOOP_SET_BLOCK_SIZE');
      }
      const statusInfo = { ...info, lo_flags: (info.lo_flags ?? 0) & LOOP_SET_STATUS_SETTABLE_FLAGS };
      // encodeLoopInfo64 writes all 232 bytes (fields, NUL-padded name, zeroed pads).
      await this.#ioctlRetryEagain(devFd, LOOP_SET_STATUS64, encodeLoopInfo64(statusInfo, Buffer.allocUnsafe(LOOP_INFO64_SIZE)), 'LOOP_SET_STATUS64');
      if (opts.directIo) {
        try {
          await this.#ioctlRetryEagain(devFd, LOOP_SET_DIRECT_IO, 1, 'LOOP_SET_DIRECT_IO');
        } catch (err) {
          // Same best-effort semantics as LOOP_CONFIGURE: EINVAL = this file cannot do direct I/O.
          if (errnoCode(err) !== 'EINVAL') throw err;
        }
      }
    } catch (err) {
      await this.#clearQuietly(devFd);
      throw err;
    }
    return 'legacy';
  }

  /** LOOP_CLR_FD after a failed setup; the original error is what matters, so this one is dropped. */
  async #clearQuietly(devFd: number): Promise<void> {
    try {
      await clearFd(this.#sys, devFd, this.#clearAtOnce);
    } catch {
      /* the original error is rethrown by the caller */
    }
  }

  // ---------------------------------------------------------------- per-device operations

  /** Resolves a device spec to a node path. */
  #pathOf(device: LoopDeviceSpec): string {
    if (typeof device === 'number') {
      checkIndex(device);
      return this.devicePath(device);
    }
    return typeof device === 'string' ? device : device.path;
  }

  /** Opens the node of a loop device: every operation maps ENOENT/ENXIO/ENODEV the same way (device-node.ts). */
  #openDevice(path: string, flags: number): number {
    return openLoopDevice(this.#sys, path, flags);
  }

  /**
   * Runs `read` on the device's node, open with `flags`. The open(2) and close(2) of the node stay
   * synchronous in both forms (the seam has them so; the autoextend-sync-calls test counts them
   * with the calls that do not wait); the reads in between are the steps.
   */
  *#onDevice<T>(device: LoopDeviceSpec, flags: number, read: (fd: number, path: string) => Twin<T>): Twin<T> {
    const path = this.#pathOf(device);
    const fd = this.#openDevice(path, flags);
    try {
      return yield* read(fd, path);
    } finally {
      this.#sys.close(fd);
    }
  }

  /**
   * LOOP_GET_STATUS64 on `fd`, decoded. drivers/block/loop.c loop_get_status() takes lo_mutex
   * (held by a configuration change or a clear in progress) and vfs_getattr()s the backing file:
   * it can wait. The synchronous form fills the reused #statusBuf (no await between fill and
   * decode); the asynchronous one a buffer of its own, as other calls run while it waits.
   */
  *#readStatus(fd: number, path: string): Twin<LoopStatus> {
    const name = 'LOOP_GET_STATUS64';
    let buf: Buffer;
    try {
      buf = yield* io({
        sync: () => {
          const b = this.#statusBuf.fill(0);
          this.#sys.ioctl(fd, LOOP_GET_STATUS64, b, name);
          return b;
        },
        async: async () => {
          const b = Buffer.alloc(LOOP_INFO64_SIZE);
          await this.#sys.ioctlAsync(fd, LOOP_GET_STATUS64, b, name);
          return b;
        },
      });
    } catch (err) {
      if (errnoCode(err) === 'ENXIO') throw new LoopNotBoundError(path, { cause: err });
      throw err;
    }
    return decodeStatus(decodeLoopInfo64(buf));
  }

  /** LOOP_GET_STATUS64 on the calling thread, for attach's fast path. */
  #getStatus(fd: number, path: string): LoopStatus {
    return runSync(this.#readStatus(fd, path));
  }

  *#statusTwin(device: LoopDeviceSpec): Twin<LoopStatus> {
    return yield* this.#onDevice(device, fsc.O_RDONLY, (fd, path) => this.#readStatus(fd, path));
  }

  /**
   * LOOP_GET_STATUS64 (on a worker thread), decoded.
   * @throws {LoopNotBoundError} the device has no backing file (ENXIO).
   * @throws {LoopDeviceNotFoundError} no such node.
   */
  status(device: LoopDeviceSpec): Promise<LoopStatus> {
    return runAsync(this.#statusTwin(device));
  }

  /** {@link status} on the calling thread. */
  statusSync(device: LoopDeviceSpec): LoopStatus {
    return runSync(this.#statusTwin(device));
  }

  /**
   * LOOP_CLR_FD (on a worker thread where it can wait for I/O: kernels before 6.11; see
   * `loopClrFdReturnsAtOnce`). Resolves to `'deferred'` when someone else still has the
   * device open: the kernel then only switches autoclear on and detaches on their last close.
   * @throws {LoopNotBoundError} the device was not bound (ENXIO).
   * @throws {NotALoopDeviceError} the path is no loop device (before any ioctl).
   */
  async detach(device: LoopDeviceSpec): Promise<DetachResult> {
    const path = this.#pathOf(device);
    const fd = this.#openDevice(path, fsc.O_RDONLY);
    let st;
    try {
      st = this.#sys.fstat(fd);
      assertLoopNode(path, st);
      await clearFd(this.#sys, fd, this.#clearAtOnce);
    } catch (err) {
      if (errnoCode(err) === 'ENXIO') throw new LoopNotBoundError(path, { cause: err });
      throw err;
    } finally {
      // Teardown happens on the release of the last fd, which may be this one.
      this.#sys.close(fd);
    }
    const index = devMajor(st.rdev) === LOOP_MAJOR ? indexFromPath(path) : undefined;
    if (index === undefined) return 'detached';
    return isLoopBound(index, this.#sysfsRoot) ? 'deferred' : 'detached';
  }

  /**
   * LOOP_SET_CAPACITY: re-reads the backing file's size (after growing it).
   * @throws {LoopNotBoundError}
   */
  async setCapacity(device: LoopDeviceSpec): Promise<void> {
    await this.#configureOp(device, LOOP_SET_CAPACITY, 0, 'LOOP_SET_CAPACITY');
  }

  /**
   * LOOP_SET_DIRECT_IO. EINVAL from the kernel means the backing file cannot do direct I/O with
   * this device's block size/offset; it propagates as an IoctlError.
   */
  async setDirectIo(device: LoopDeviceSpec, enabled: boolean): Promise<void> {
    await this.#configureOp(device, LOOP_SET_DIRECT_IO, enabled ? 1 : 0, 'LOOP_SET_DIRECT_IO');
  }

  /** LOOP_SET_BLOCK_SIZE: a power of two 512..4096. */
  async setBlockSize(device: LoopDeviceSpec, blockSize: number): Promise<void> {
    const { blockSize: bs } = resolveAttachOptions({ blockSize });
    await this.#configureOp(device, LOOP_SET_BLOCK_SIZE, bs, 'LOOP_SET_BLOCK_SIZE');
  }

  async #configureOp(device: LoopDeviceSpec, request: number, arg: number, name: string): Promise<void> {
    const path = this.#pathOf(device);
    const fd = this.#openDevice(path, fsc.O_RDWR);
    try {
      assertLoopNode(path, this.#sys.fstat(fd));
      await this.#ioctlRetryEagain(fd, request, arg, name);
    } catch (err) {
      if (errnoCode(err) === 'ENXIO') throw new LoopNotBoundError(path, { cause: err });
      throw err;
    } finally {
      this.#sys.close(fd);
    }
  }

  *#readSize(fd: number): Twin<bigint> {
    const buf = Buffer.alloc(8);
    yield* io(this.#ioctlStep(fd, BLKGETSIZE64, buf, 'BLKGETSIZE64'));
    return buf.readBigUInt64LE(0);
  }

  *#sizeTwin(devPath: string): Twin<bigint> {
    return yield* this.#onDevice(devPath, fsc.O_RDONLY, (fd) => this.#readSize(fd));
  }

  /** BLKGETSIZE64 of any block device node (on a worker thread): its size in bytes. */
  sizeOf(devPath: string): Promise<bigint> {
    return runAsync(this.#sizeTwin(devPath));
  }

  /**
   * {@link sizeOf} on the calling thread. BLKGETSIZE64 answers from memory (block/ioctl.c
   * blkdev_ioctl(): bdev_nr_bytes()), so this costs no wait in the kernel, only the call.
   */
  sizeOfSync(devPath: string): bigint {
    return runSync(this.#sizeTwin(devPath));
  }

  // ---------------------------------------------------------------- enumeration

  *#listTwin(options: { all?: boolean }): Twin<LoopListEntry[]> {
    const infos: LoopSysfsInfo[] = options.all ? yield* loopsTwin(this.#sysfsRoot) : yield* boundLoopsTwin(this.#sysfsRoot);
    return infos.map((i) => ({ ...i, path: this.devicePath(i.index) }));
  }

  /**
   * Loop devices from sysfs (/sys/block/loop*; gaps in the numbering hide nothing), read with
   * fs/promises. Bound devices only, unless `all`.
   */
  list(options: { all?: boolean } = {}): Promise<LoopListEntry[]> {
    return runAsync(this.#listTwin(options));
  }

  /** {@link list} on the calling thread (readFileSync). */
  listSync(options: { all?: boolean } = {}): LoopListEntry[] {
    return runSync(this.#listTwin(options));
  }

  /** stat(2) of a backing file as a step: the seam's statAsync where it has one. */
  #statStep(file: string): IoStep<StatResult> {
    const sys = this.#sys;
    return { sync: () => sys.stat(file), async: async () => (sys.statAsync ? sys.statAsync(file) : sys.stat(file)) };
  }

  *#findTwin(file: string, filter: LoopMatchFilter): Twin<LoopMatch[]> {
    let target: { dev: bigint; ino: bigint } | undefined;
    try {
      const st = yield* io(this.#statStep(file));
      target = { dev: st.dev, ino: st.ino };
    } catch {
      target = undefined;
    }
    const wantOffset = filter.offset === undefined ? undefined : BigInt(filter.offset);
    const wantLimit = filter.sizeLimit === undefined ? undefined : BigInt(filter.sizeLimit);
    const bound = filter.device === undefined ? yield* boundLoopsTwin(this.#sysfsRoot) : yield* this.#boundByNumberTwin(filter.device);
    const out: LoopMatch[] = [];
    if (target) {
      const t = target;
      const statuses = yield* all(bound.map((l) => this.#statusOrUndefined(this.devicePath(l.index))));
      bound.forEach((l, i) => {
        const status = statuses[i];
        if (status === undefined) return; // detached meanwhile, or no node: not a match we can prove
        const sameFile = status.backingInode === t.ino && status.backingDeviceMajor === devMajor(t.dev) && status.backingDeviceMinor === devMinor(t.dev);
        if (!sameFile) return;
        if (wantOffset !== undefined && status.offset !== wantOffset) return;
        if (wantLimit !== undefined && status.sizeLimit !== wantLimit) return;
        out.push({ ...matchBase(l, this.devicePath(l.index)), status, matchedBy: 'inode' });
      });
      return out;
    }
    const absolute = yield* io({ sync: () => canonicalPath(file), async: () => fsp.realpath(file).catch(() => resolve(file)) });
    for (const l of bound) {
      if (l.binding.backingFile !== absolute && l.binding.backingFile !== resolve(file)) continue;
      if (wantOffset !== undefined && l.binding.offset !== wantOffset) continue;
      if (wantLimit !== undefined && l.binding.sizeLimit !== wantLimit) continue;
      out.push({ ...matchBase(l, this.devicePath(l.index)), status: undefined, matchedBy: 'path' });
    }
    return out;
  }

  /** The bound loop device numbered `device`, as a list of zero or one. */
  *#boundByNumberTwin(device: { readonly major: number; readonly minor: number }): Twin<BoundLoopSysfsInfo[]> {
    const l = yield* loopByNumberTwin(device.major, device.minor, this.#sysfsRoot);
    return l?.binding === undefined ? [] : [{ ...l, binding: l.binding }];
  }

  *#statusOrUndefined(path: string): Twin<LoopStatus | undefined> {
    try {
      return yield* this.#statusTwin(path);
    } catch {
      return undefined;
    }
  }

  /**
   * The bound loop devices whose backing file is `file`, matched like util-linux: LOOP_GET_STATUS64's
   * (lo_device, lo_inode) against stat(file)'s (st_dev, st_ino), so hard links, bind mounts and
   * paths longer than lo_file_name all match. Only when `file` cannot be stat'ed (deleted) does
   * it fall back to comparing sysfs `loop/backing_file` with the absolute path.
   * `offset`/`sizeLimit`, when given, must match too; `device` limits the search to that one
   * device. The stat, the sysfs reads and the status ioctls (one per device read, concurrently)
   * run off the event loop.
   * @throws InvalidArgumentError when `device` is not a pair of non-negative integers
   */
  findByBackingFile(file: string, filter: LoopMatchFilter = {}): Promise<LoopMatch[]> {
    try {
      assertDeviceFilter(filter);
    } catch (err) {
      return Promise.reject(err);
    }
    return runAsync(this.#findTwin(file, filter));
  }

  /** {@link findByBackingFile} on the calling thread. */
  findByBackingFileSync(file: string, filter: LoopMatchFilter = {}): LoopMatch[] {
    assertDeviceFilter(filter);
    return runSync(this.#findTwin(file, filter));
  }
}

/** A `device` filter must name a device number (it becomes a sysfs path). */
function assertDeviceFilter(filter: LoopMatchFilter): void {
  const d: unknown = filter.device;
  if (d === undefined) return;
  const n = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  const o = typeof d === 'object' && d !== null ? (d as Record<string, unknown>) : {};
  if (!n(o.major) || !n(o.minor)) {
    throw new InvalidArgumentError('loop match filter', [{ path: '/device', message: 'must be { major, minor } of non-negative integers', value: d }]);
  }
}

function matchBase(l: LoopSysfsInfo & { binding: LoopSysfsBinding }, path: string): Omit<LoopMatch, 'status' | 'matchedBy'> {
  return { path, index: l.index, major: l.major, minor: l.minor, backingFile: l.binding.backingFile };
}

/** LOOP_CLR_FD on `fd`: on the calling thread when the kernel returns at once, else on the worker. */
export function clearFd(sys: Syscalls, fd: number, atOnce: boolean): Promise<number> | number {
  return atOnce ? sys.ioctl(fd, LOOP_CLR_FD, 0, 'LOOP_CLR_FD') : sys.ioctlAsync(fd, LOOP_CLR_FD, 0, 'LOOP_CLR_FD');
}

function checkIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index > 0xfffff) {
    throw new InvalidArgumentError('loop device index', [
      { path: '', message: 'must be an integer in 0..1048575', value: index },
    ]);
  }
}

/** N of a path ending in `loopN` (the regex /loop(\d+)$/, scanned by hand: detach runs it each time). */
export function indexFromPath(path: string): number | undefined {
  let i = path.length;
  while (i > 0) {
    const c = path.charCodeAt(i - 1);
    if (c < 0x30 || c > 0x39) break;
    i--;
  }
  if (i === path.length || !path.startsWith('loop', i - 4)) return undefined;
  return Number(path.slice(i));
}

/** realpath when the file exists (lo_file_name and sysfs show the resolved path), else absolute. */
function canonicalPath(file: string): string {
  try {
    // The libc realpath(3) in one call; the JS realpathSync lstat()s every path component.
    return realpathSync.native(file);
  } catch {
    return resolve(file);
  }
}

/**
 * Refuses a node that is not a loop device before a LOOP_* ioctl goes to it: the loop driver
 * registers its disks under LOOP_MAJOR (drivers/block/loop.c, register_blkdev(LOOP_MAJOR, "loop")
 * and `disk->major = LOOP_MAJOR`); on any other node the ioctl would reach another driver, or fail
 * with ENOTTY on a character device or a file (fs/ioctl.c, vfs_ioctl).
 */
function assertLoopNode(path: string, st: { mode: number; rdev: bigint }): void {
  const type = st.mode & S_IFMT;
  if (type === S_IFBLK && devMajor(st.rdev) === LOOP_MAJOR) return;
  const dev = type === S_IFBLK || type === S_IFCHR ? ` ${devMajor(st.rdev)}:${devMinor(st.rdev)}` : '';
  throw new NotALoopDeviceError(path, `${fileTypeName(st.mode)}${dev}`);
}
