// SPDX-License-Identifier: MIT
// DmControl: the device-mapper control interface (/dev/mapper/control). One private choke point
// performs every dm ioctl; public methods only build requests (request.ts) and decode replies
// (response.ts). Kernel side: drivers/md/dm-ioctl.c.
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { KernelOutputError, assertOptionsObject, errnoCode, type OptionField } from '../errors.js';
import {
  DM_ACTIVE_PRESENT_FLAG,
  DM_BUFFER_FULL_FLAG,
  DM_DEFERRED_REMOVE,
  DM_DEV_CREATE_CMD,
  DM_PERSISTENT_DEV_FLAG,
  DM_DEV_RENAME_CMD,
  DM_GET_TARGET_VERSION_CMD,
  DM_IOCTL_SIZE,
  DM_LIST_DEVICES_CMD,
  DM_LIST_VERSIONS_CMD,
  DM_REMOVE_ALL_CMD,
  DM_UEVENT_GENERATED_FLAG,
  DM_VERSION_CMD,
  DM_DEV_ARM_POLL_CMD,
  IoctlError,
  POLLIN,
  S_IFBLK,
  S_IFLNK,
  O_CLOEXEC,
  S_IFMT,
  buildDmRequest,
  decodeDmIoctl,
  realSyscalls,
  type DmHeaderSnapshot,
  type RawDmIoctl,
  type Syscalls,
} from '../ioctl/index.js';
import { decodeDevNum, encodeDevNum, formatDevNum, type DevNum } from './devnum.js';
import { dmChannel, type DmChannelMessage } from './diagnostics.js';
import { DeviceBusyError, DeviceExistsError, DeviceNotFoundError, DmUnavailableError, type DeviceIdent } from './errors.js';
import {
  ensureControlNode,
  isControlNode,
  miscListsDeviceMapper,
  ensureDeviceNode,
  mapperPath,
  removeDeviceNode,
  renameDeviceNode,
} from './nodes.js';
import {
  BUFFER_POLICY,
  GROWABLE_COMMANDS,
  REMOVE_RETRY,
  maskFlags,
  type DeviceCreateOptions,
  type DeviceRemoveOptions,
  type Geometry,
  type ListDevicesOptions,
  type RetryPolicy,
  type SuspendOptions,
  type TableLoadOptions,
  type TableStatusOptions,
  type WaitForEventOptions,
} from './options.js';
import {
  armPollRequest,
  createRequest,
  getTargetVersionRequest,
  identify,
  infoRequest,
  listDevicesRequest,
  listVersionsRequest,
  removeAllRequest,
  removeRequest,
  renameRequest,
  resumeRequest,
  setGeometryRequest,
  setUuidRequest,
  suspendRequest,
  tableClearRequest,
  tableDepsRequest,
  tableLoadRequest,
  tableStatusRequest,
  targetMessageRequest,
  usesWorker,
  versionRequest,
  waitRequest,
  type DeviceRef,
  type DmRequest,
} from './request.js';
import {
  decodeDeps,
  decodeDeviceInfo,
  decodeDeviceList,
  decodeMessageReply,
  decodeTargetVersions,
  decodeTargets,
  type DeviceInfo,
  type DeviceListEntry,
  type DmVersion,
  type TargetVersion,
} from './response.js';
import type { TargetLine } from './table.js';
import { CRYPT_TARGET, redactCryptParams } from './targets/crypt.js';
import { udevCookie, type NodePolicy } from './udev.js';
import { UdevCookie } from './udev-cookie.js';

/** open(2) flags for the control node: O_RDWR | O_CLOEXEC (Linux values, all common arches). */
const O_RDWR = 0o2;

/** Sleep used between retries; injectable so tests need not wait. Rejects when `signal` aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

const realSleep: Sleep = (ms, signal) => delay(ms, undefined, signal ? { signal } : undefined);

/** Constructor options of {@link DmControl}. */
export interface DmControlOptions {
  /** The kernel seam. Default: `realSyscalls()` (koffi → libc). */
  readonly syscalls?: Syscalls;
  /** Where `mapper/control` and `mapper/NAME` live. Default `/dev`. */
  readonly devDir?: string;
  /** Who keeps `/dev/mapper/NAME` right; see {@link NodePolicy}. Default `'auto'`. */
  readonly nodes?: NodePolicy | 'auto';
  /** The file whose existence means "udev is running" (systemd libudev's test). */
  readonly udevControlPath?: string;
  /** How long to wait for udev to create/rename/remove a node before doing it ourselves. */
  readonly udevTimeoutMs?: number;
  /**
   * How long a "udev is not running" answer is reused before `udevControlPath` is stat'ed again
   * (a running udev is re-checked on every operation). Default 1000 ms; 0 = check every time.
   */
  readonly udevRecheckMs?: number;
  /** Default EBUSY retry schedule of {@link DmControl.deviceRemove}. */
  readonly removeRetry?: RetryPolicy;
  /** Sleep between remove retries and node polls (tests inject a fake). */
  readonly sleep?: Sleep;
  /**
   * Monotonic milliseconds for the udev deadlines and the "udev absent" window (default
   * `performance.now`). Tests inject a clock that only their fake `sleep` advances, so no
   * outcome depends on how fast the host runs.
   */
  readonly clock?: () => number;
  /**
   * The kernel's misc device list, read before the control node would be created: when it can be
   * read and does not list `device-mapper`, the kernel has no dm driver loaded, and DmControl
   * throws DmUnavailableError instead of mknod'ing a node nothing answers (an existing node is
   * still opened: that can autoload dm-mod). Default `/proc/misc` with the real syscalls, and
   * null (no check) when `syscalls` is injected: a fake kernel has no /proc.
   */
  readonly procMiscPath?: string | null;
}

/** Result of {@link DmControl.deviceRemove}. */
export interface RemoveResult {
  /** True when the device was busy and DM_DEFERRED_REMOVE scheduled its removal for last close. */
  readonly deferred: boolean;
  /** DM_DEV_REMOVE calls made (retries on EBUSY included). */
  readonly attempts: number;
}

/** Result of {@link DmControl.deviceWait}. */
export interface WaitResult {
  readonly info: DeviceInfo;
  /** Status (or table, with mode 'table') lines at the time of the event. */
  readonly targets: TargetLine[];
}

/** Target names of the device's new identity for {@link DmControl.deviceRename}: exactly one. */
export type RenameTo = { readonly name: string; readonly uuid?: undefined } | { readonly uuid: string; readonly name?: undefined };

interface Reply {
  readonly header: RawDmIoctl;
  readonly buf: Buffer;
}

/** Commands that do not look a device up: ENXIO from them is not "device not found". */
const NO_LOOKUP = new Set([DM_VERSION_CMD, DM_REMOVE_ALL_CMD, DM_LIST_DEVICES_CMD, DM_DEV_CREATE_CMD, DM_LIST_VERSIONS_CMD, DM_DEV_ARM_POLL_CMD, DM_GET_TARGET_VERSION_CMD]);

/** Poll interval while waiting for udev to act on a node. */
const NODE_POLL_MS = 20;
/** Bound of DmControl's created-but-not-yet-resumed name hint. */
const FRESH_NAMES_MAX = 4096;
/** Slice of one poll(2) wait, so AbortSignal and timeouts are honoured promptly. */
const POLL_SLICE_MS = 250;

/**
 * The device-mapper control interface: one object per open `/dev/mapper/control` fd.
 *
 * Lifecycle of a device (what {@link createDevice} does):
 * ```ts
 * const dm = new DmControl();
 * await dm.deviceCreate('vol', { uuid: 'APP-vol' });          // no tables yet
 * await dm.tableLoad('vol', [linearTarget(0n, 2048n, { device: { major: 7, minor: 0 }, offset: 0n })]);
 * await dm.deviceResume('vol');                                // inactive → live; /dev/mapper/vol appears
 * await dm.deviceRemove('vol');
 * dm.close();
 * ```
 *
 * **Sync/async rule.** Every method returns a Promise. Commands that can wait in the kernel
 * (suspend/resume, remove, wait, table load, status, message: {@link BLOCKING_COMMANDS}) run on a
 * worker thread via `Syscalls.ioctlAsync`; the rest (version, list, info, create, rename, deps,
 * clear, geometry, arm-poll) are quick and use the synchronous call, and so do table reads and
 * `noflush` status, which never make thin-pool commit first ({@link usesWorker}).
 *
 * **Errors.** Input problems throw InvalidArgumentError before any syscall. ENXIO on a lookup →
 * {@link DeviceNotFoundError}; EBUSY on create (or a rename onto a taken name) →
 * {@link DeviceExistsError}; EBUSY on remove after the retries → {@link DeviceBusyError}.
 * Every other failure is the IoctlError from src/ioctl, carrying the request name and a header
 * snapshot.
 */
/** The type of each {@link DmControlOptions} key, for the constructor's check. */
const DM_CONTROL_OPTION_FIELDS = {
  syscalls: 'object',
  devDir: 'string',
  nodes: (v) => (v === 'auto' || v === 'manage' || v === 'udev' || v === 'none' ? undefined : "expected 'auto', 'manage', 'udev' or 'none'"),
  udevControlPath: 'string',
  udevTimeoutMs: 'number',
  udevRecheckMs: 'number',
  removeRetry: 'object',
  sleep: 'function',
  clock: 'function',
  procMiscPath: (v) => (v === null || typeof v === 'string' ? undefined : 'expected a path or null'),
} satisfies Record<keyof DmControlOptions, OptionField>;

export class DmControl {
  readonly #sys: Syscalls;
  readonly #devDir: string;
  readonly #nodes: NodePolicy | 'auto';
  readonly #udevControlPath: string;
  readonly #udevTimeoutMs: number;
  readonly #udevRecheckMs: number;
  /** #clock() until which the last "udev absent" answer is reused; undefined = none cached. */
  #udevAbsentUntil: number | undefined;
  /** Set once semget said ENOSYS: this kernel has no SysV IPC, so no cookies. */
  #noSysv = false;
  readonly #fresh = new Map<string, DevNum>();
  readonly #removeRetry: RetryPolicy;
  readonly #sleep: Sleep;
  readonly #clock: () => number;
  readonly #procMiscPath: string | null;
  #fd: number | undefined;
  #kernelVersion: DmVersion | undefined;

  constructor(options: DmControlOptions = {}) {
    assertOptionsObject('DmControl options', options, DM_CONTROL_OPTION_FIELDS);
    this.#sys = options.syscalls ?? realSyscalls();
    this.#devDir = (options.devDir ?? '/dev').replace(/\/+$/, '');
    this.#nodes = options.nodes ?? 'auto';
    this.#udevControlPath = options.udevControlPath ?? '/run/udev/control';
    this.#udevTimeoutMs = options.udevTimeoutMs ?? 10_000;
    this.#udevRecheckMs = options.udevRecheckMs ?? 1000;
    this.#removeRetry = options.removeRetry ?? REMOVE_RETRY;
    this.#sleep = options.sleep ?? realSleep;
    this.#clock = options.clock ?? (() => performance.now());
    this.#procMiscPath = options.procMiscPath !== undefined ? options.procMiscPath : options.syscalls === undefined ? '/proc/misc' : null;
  }

  /** Path of the control node (`/dev/mapper/control`). */
  get controlPath(): string {
    return `${this.#devDir}/mapper/control`;
  }

  /** The dm interface version of the running kernel, once any reply has been seen. */
  get kernelVersion(): DmVersion | undefined {
    return this.#kernelVersion;
  }

  /** Path of a device's node: `/dev/mapper/NAME`. */
  nodePath(name: string): string {
    return mapperPath(this.#devDir, name);
  }

  /**
   * Opens the control node on first use, making `/dev/mapper` (0755) and the 10:236 node (0600)
   * first when they are missing or wrong, as libdm's `_create_control` does — unless /proc/misc
   * says the kernel has no device-mapper driver (see {@link DmControlOptions.procMiscPath}).
   * @throws DmUnavailableError on ENODEV (no dm driver; the module could not be loaded), or when
   *   /proc/misc lists no device-mapper and there is no control node to open.
   */
  #controlFd(): number {
    if (this.#fd !== undefined) return this.#fd;
    if (this.#dmRegistered() === false) {
      // Opening an existing 10:236 node may still autoload dm-mod (misc_open requests
      // "char-major-10-236", the alias dm-ioctl.c declares), so only creating one is skipped.
      if (!isControlNode(this.#sys, this.controlPath)) {
        throw new DmUnavailableError(
          this.controlPath,
          `${this.#procMiscPath} lists no device-mapper device, so the kernel has no device-mapper driver loaded (modprobe dm-mod); the control node is not created`,
        );
      }
    } else {
      ensureControlNode(this.#sys, `${this.#devDir}/mapper`);
    }
    try {
      this.#fd = this.#sys.open(this.controlPath, O_RDWR | O_CLOEXEC);
    } catch (e) {
      if (errnoCode(e) === 'ENODEV' || errnoCode(e) === 'ENXIO')
        throw new DmUnavailableError(this.controlPath, 'the kernel has no device-mapper driver (modprobe dm-mod)', { cause: e });
      throw e;
    }
    return this.#fd;
  }

  /** Whether /proc/misc lists device-mapper; undefined when not checked or unreadable (no /proc). */
  #dmRegistered(): boolean | undefined {
    if (this.#procMiscPath === null) return undefined;
    let text: string;
    try {
      text = readFileSync(this.#procMiscPath, 'latin1');
    } catch {
      return undefined;
    }
    return miscListsDeviceMapper(text);
  }

  /** Closes the control fd (idempotent). The object reopens it if used again. */
  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) this.#sys.close(fd);
  }

  /** `using dm = new DmControl()`: {@link close} at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * THE choke point: every dm ioctl of this library goes through here. It
   * - stamps the command's minimum interface version (DM_COMMANDS, after libdm's `_cmd_data_v4`),
   *   so old kernels accept requests they understand;
   * - masks `flags` to the command's allowed set (options.ts ALLOWED_FLAGS);
   * - places the payload at data_start = 312 and sizes the buffer: exactly what the request needs,
   *   or 16 KiB for commands with output that can overflow, doubling while the kernel answers
   *   DM_BUFFER_FULL_FLAG (at most 16 times, as libdm);
   * - uses the async (worker) path for commands that can block;
   * - turns a failure into IoctlError with a header snapshot, mapping only the errnos this layer
   *   understands (ENXIO on lookup, EBUSY on create) to domain errors.
   */
  /** Every dm ioctl goes through here: {@link #ioctlOnce}, published on DM_CHANNEL when subscribed. */
  async #ioctl(req: DmRequest): Promise<Reply> {
    if (!dmChannel.hasSubscribers) return this.#ioctlOnce(req);
    const t0 = performance.now();
    const h = req.header;
    const publish = (errno: number, code: string | null): void => {
      const message: DmChannelMessage = {
        command: req.command.name,
        name: h.name ?? '',
        uuid: h.uuid ?? '',
        dev: h.dev !== undefined && h.dev !== 0n ? formatDevNum(decodeDevNum(h.dev)) : null,
        durationMs: performance.now() - t0,
        errno,
        code,
      };
      dmChannel.publish(message);
    };
    try {
      const reply = await this.#ioctlOnce(req);
      publish(0, null);
      return reply;
    } catch (e) {
      publish(errnoOf(e), typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EUNEXPECTED');
      throw e;
    }
  }

  async #ioctlOnce(req: DmRequest): Promise<Reply> {
    const { command } = req;
    const fd = this.#controlFd();
    const h = req.header;
    // A fixed-shape literal, not a spread of req.header: this runs for every ioctl.
    const header = {
      name: h.name,
      uuid: h.uuid,
      dev: h.dev,
      flags: maskFlags(command.cmd, h.flags ?? 0),
      event_nr: h.event_nr,
      target_count: h.target_count,
      version: command.minVersion,
    };
    const growable = GROWABLE_COMMANDS.has(command.cmd);
    const needed = DM_IOCTL_SIZE + (req.payload?.length ?? 0);
    let size = growable ? Math.max(BUFFER_POLICY.initialBytes, needed) : needed;
    for (let doublings = 0; ; doublings++) {
      const buf = buildDmRequest(header, req.payload, size);
      let rc: number;
      try {
        rc = usesWorker(command.cmd, header.flags)
          ? await this.#sys.ioctlAsync(fd, command.request, buf, command.name)
          : this.#sys.ioctl(fd, command.request, buf, command.name);
      } catch (e) {
        throw this.#mapError(e, req, header, buf);
      }
      const out = decodeDmIoctl(buf);
      this.#kernelVersion = [out.version[0], out.version[1], out.version[2]];
      if (rc !== 0)
        throw new KernelOutputError(`${command.name} returned ${rc} instead of 0 or an error`, `rc=${rc}`);
      if ((out.flags & DM_BUFFER_FULL_FLAG) === 0) return { header: out, buf };
      if (!growable)
        throw new KernelOutputError(`${command.name} reported DM_BUFFER_FULL_FLAG, which it never should`, `flags=0x${out.flags.toString(16)}`);
      if (doublings >= BUFFER_POLICY.maxDoublings)
        throw new KernelOutputError(
          `${command.name}: output still did not fit in ${size} bytes after ${doublings} doublings`,
          `data_size=${size}`,
        );
      size *= 2;
    }
  }

  #mapError(e: unknown, req: DmRequest, sent: { name?: string; uuid?: string; flags: number; event_nr?: number; dev?: bigint; target_count?: number }, buf: Buffer): unknown {
    if (!(e instanceof IoctlError)) return e;
    // After a failure the kernel writes back only `version`; everything else is what we sent.
    const snapshot: DmHeaderSnapshot = {
      name: sent.name ?? '',
      uuid: sent.uuid ?? '',
      flags: sent.flags,
      event_nr: sent.event_nr ?? 0,
      dev: sent.dev ?? 0n,
      version: [buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8)],
      data_size: buf.length,
      data_start: DM_IOCTL_SIZE,
      target_count: sent.target_count ?? 0,
    };
    const err = e.header ? e : e.withHeader(snapshot);
    const cmd = req.command.cmd;
    if (err.code === 'ENXIO' && !NO_LOOKUP.has(cmd) && req.ident) return new DeviceNotFoundError(req.ident, { cause: err });
    if (err.code === 'EBUSY' && cmd === DM_DEV_CREATE_CMD && req.ident) return new DeviceExistsError(req.ident, { cause: err });
    // A taken persistent minor is not EBUSY: alloc_dev() fails inside dm_create() and the kernel
    // answers -ENXIO (drivers/md/dm.c; confirmed with a raw ioctl on 6.1 by the contract suite).
    if (err.code === 'ENXIO' && cmd === DM_DEV_CREATE_CMD && (sent.flags & DM_PERSISTENT_DEV_FLAG) !== 0 && req.ident)
      return new DeviceExistsError(req.ident, { cause: err });
    return err;
  }

  // -------------------------------------------------------------------------------------------
  // Node policy

  /**
   * Whether udev runs (`udevControlPath` exists). Asked on every resume/remove/rename under
   * 'auto' and 'manage'. When udev is absent the stat fails, and the failure builds an IoctlError
   * (with a stack) each time; so a negative answer is reused for `udevRecheckMs` (1 s). A positive
   * one is never cached: a stat that succeeds is cheap, and udev stopping must be noticed at once
   * (we would otherwise wait `udevTimeoutMs` for nodes nobody makes). The cost of the cache: for
   * up to 1 s after udev starts, this DmControl still manages nodes itself with cookie 0 — libdm
   * checks once per process, so this is no worse than libdm.
   */
  #udevRunning(): boolean {
    if (this.#udevAbsentUntil !== undefined) {
      if (this.#clock() < this.#udevAbsentUntil) return false;
      this.#udevAbsentUntil = undefined;
    }
    try {
      this.#sys.stat(this.#udevControlPath);
      return true;
    } catch {
      if (this.#udevRecheckMs > 0) this.#udevAbsentUntil = this.#clock() + this.#udevRecheckMs;
      return false;
    }
  }

  #policy(): { policy: NodePolicy; cookie: number } {
    // 'none' sends cookie 0 whatever udev does: no need to ask.
    if (this.#nodes === 'none') return { policy: 'none', cookie: 0 };
    const running = this.#udevRunning();
    const policy = this.#nodes === 'auto' ? (running ? 'udev' : 'manage') : this.#nodes;
    return { policy, cookie: udevCookie(policy, running) };
  }

  /** Polls `check` until true or the udev timeout passes. */
  async #waitFor(check: () => boolean): Promise<boolean> {
    const deadline = this.#clock() + this.#udevTimeoutMs;
    for (;;) {
      if (check()) return true;
      if (this.#clock() >= deadline) return false;
      await this.#sleep(NODE_POLL_MS);
    }
  }

  #nodeIs(path: string, dev: DevNum | undefined): boolean {
    try {
      const st = this.#sys.stat(path);
      if (dev === undefined) return true;
      // st_rdev (glibc dev_t) equals the kernel's huge encoding for every real device number.
      return (st.mode & S_IFMT) === S_IFBLK && st.rdev === encodeDevNum(dev);
    } catch {
      return false;
    }
  }

  /**
   * A udev cookie for one node-affecting ioctl (RESUME, REMOVE, RENAME) under the udev policy,
   * armed; undefined when the policy is not 'udev' or SysV semaphores are unavailable (then the
   * node is watched instead). See udev-cookie.ts for why a cookie is needed at all.
   */
  #armCookie(policy: NodePolicy): UdevCookie | undefined {
    const sysv = this.#sys.sysv;
    if (policy !== 'udev' || sysv === undefined || this.#noSysv) return undefined;
    let cookie: UdevCookie;
    try {
      cookie = UdevCookie.create(sysv);
    } catch (e) {
      if (errnoCode(e) === 'ENOSYS') this.#noSysv = true;
      return undefined;
    }
    try {
      cookie.arm();
    } catch {
      cookie.remove();
      return undefined;
    }
    return cookie;
  }

  /**
   * After the ioctl: when the kernel sent our uevent, wait (bounded by udevTimeoutMs) until udev
   * completed the cookie; otherwise drop it. True when there was a cookie and the wait ended
   * (completed or timed out), so no further waiting is due.
   */
  async #settleCookie(cookie: UdevCookie | undefined, uevent: boolean): Promise<boolean> {
    if (cookie === undefined) return false;
    if (!uevent) {
      cookie.remove();
      return false;
    }
    try {
      await cookie.wait(this.#udevTimeoutMs, (ms) => this.#sleep(ms), NODE_POLL_MS, this.#clock);
    } catch {
      // A semaphore error after the ioctl: the change happened; the node checks still run.
      return false;
    }
    return true;
  }

  /**
   * What sits at `path` itself (lstat: a symlink is reported, not followed). Under the udev
   * policy a `'link'` is udev's (10-dm.rules make /dev/mapper/NAME a symlink to ../dm-N), and a
   * `'block'` node one made by the direct fallback. Errors other than ENOENT count as `'other'`:
   * nothing to wait for.
   */
  #entryAt(path: string): 'absent' | 'link' | 'block' | 'other' {
    try {
      const type = this.#sys.lstat(path).mode & S_IFMT;
      return type === S_IFLNK ? 'link' : type === S_IFBLK ? 'block' : 'other';
    } catch (e) {
      return errnoCode(e) === 'ENOENT' ? 'absent' : 'other';
    }
  }

  /**
   * Whether udev (or our fallback) still has to take `path` away after a remove or rename. A
   * *dangling* symlink counts: stat(2) says ENOENT for it as soon as the kernel dropped /dev/dm-N,
   * long before udev handled the "remove" uevent and unlinked it. Returning at that point let the
   * next create of the same name race udev's late unlink (the DeviceSet's grow path deactivates
   * and reactivates a device: resize2fs then met ENOENT on /dev/mapper/NAME in the udev CI cell).
   * A regular file or directory is nobody's node: never waited for, never removed by us.
   */
  #stillLinked(path: string): boolean {
    const e = this.#entryAt(path);
    return e === 'link' || e === 'block';
  }

  /**
   * Brings /dev/mapper/NAME in line after a resume (node for `dev`), rename or remove. Under the
   * udev policy: if the kernel emitted our uevent, wait for udev, then fall back to doing it.
   */
  async #syncNode(
    policy: NodePolicy,
    uevent: boolean,
    completed: boolean,
    op:
      | { kind: 'add'; name: string; dev: DevNum; fresh?: boolean }
      | { kind: 'del'; name: string }
      | { kind: 'rename'; from: string; to: string; dev: DevNum },
  ): Promise<void> {
    if (policy === 'none') return;
    // With a cookie udev has finished (or the cookie wait used up the timeout): only the fallback
    // check below is left. Without one, watch the node.
    if (policy === 'udev' && uevent && !completed) {
      const done =
        op.kind === 'add'
          ? () => this.#nodeIs(this.nodePath(op.name), op.dev)
          : op.kind === 'del'
            ? () => !this.#stillLinked(this.nodePath(op.name))
            : () => this.#nodeIs(this.nodePath(op.to), op.dev) && !this.#stillLinked(this.nodePath(op.from));
      if (await this.#waitFor(done)) return;
      // udev did not act in time: fall through to libdm's direct node handling.
    }
    if (op.kind === 'add') ensureDeviceNode(this.#sys, this.nodePath(op.name), op.dev, undefined, { expectAbsent: op.fresh === true });
    else if (op.kind === 'del') removeDeviceNode(this.#sys, this.nodePath(op.name));
    else renameDeviceNode(this.#sys, this.nodePath(op.from), this.nodePath(op.to), op.dev);
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  /**
   * DM_VERSION: the kernel's dm ioctl interface version, e.g. `[4, 48, 0]`.
   * Valid flags: none.
   */
  async version(): Promise<DmVersion> {
    const { header } = await this.#ioctl(versionRequest());
    return [header.version[0], header.version[1], header.version[2]];
  }

  async #kernelMinor(): Promise<number> {
    return (this.#kernelVersion ?? (await this.version()))[1];
  }

  /**
   * DM_REMOVE_ALL: removes every device that is not open (a debugging aid; dangerous on a real
   * system). Nodes under /dev/mapper are not touched.
   * Valid flags: DM_DEFERRED_REMOVE (`deferred`: schedule busy devices for removal on last close).
   */
  async removeAll(options: { deferred?: boolean } = {}): Promise<void> {
    await this.#ioctl(removeAllRequest(options.deferred ?? false));
  }

  /**
   * DM_LIST_DEVICES: every device with its number, event counter and uuid.
   * Valid flags: DM_UUID_FLAG (always sent).
   *
   * Prefix filters are applied by the kernel when it supports them (dm ioctl ≥ 4.45, Linux 5.13)
   * and always re-applied here, so results are the same on older kernels; there, where the list
   * carries no uuids, a uuid filter costs one DM_DEV_STATUS per device.
   */
  async listDevices(options: ListDevicesOptions = {}): Promise<DeviceListEntry[]> {
    const { header, buf } = await this.#ioctl(listDevicesRequest(options));
    let list = decodeDeviceList(header, buf);
    const { namePrefix, uuidPrefix } = options;
    if (namePrefix) list = list.filter((d) => d.name.startsWith(namePrefix));
    if (uuidPrefix) {
      const out: DeviceListEntry[] = [];
      for (const d of list) {
        let uuid = d.uuid;
        if (uuid === undefined) uuid = (await this.findDevice({ dev: d.dev }))?.uuid ?? null;
        if (uuid !== null && uuid.startsWith(uuidPrefix)) out.push({ ...d, uuid });
      }
      list = out;
    }
    return list;
  }

  /**
   * DM_DEV_CREATE: a new device with no table. It exists in the kernel (and gets a number) but
   * has no /dev/mapper node until it is resumed with a table.
   * Valid flags: DM_PERSISTENT_DEV_FLAG (set when `dev` is given).
   * @throws InvalidArgumentError for a bad name or uuid (strict rules, see names.ts)
   * @throws DeviceExistsError when the name or uuid is taken (EBUSY), or the requested minor is
   *   (ENXIO: alloc_dev() fails inside dm_create())
   */
  async deviceCreate(name: string, options: DeviceCreateOptions = {}): Promise<DeviceInfo> {
    const { header } = await this.#ioctl(createRequest(name, options));
    const info = decodeDeviceInfo(header);
    this.#rememberFresh(name, info.dev);
    return info;
  }

  /**
   * Names this DmControl created and has not resumed yet: their first resume makes the node with
   * mknod straight away instead of probing for one (see ensureSpecialNode). Only a hint, so it is
   * bounded; a wrong guess costs one failed syscall, never a wrong node.
   */
  #rememberFresh(name: string, dev: DevNum): void {
    if (this.#fresh.size >= FRESH_NAMES_MAX) this.#fresh.clear();
    this.#fresh.set(name, dev);
  }

  /**
   * DM_DEV_REMOVE, retried on EBUSY under a bounded policy (default {@link REMOVE_RETRY}:
   * 25 × 200 ms) because udev and blkid briefly open devices after every change. Then removes
   * /dev/mapper/NAME according to the node policy.
   * Valid flags: DM_DEFERRED_REMOVE (`deferred`).
   * @throws DeviceNotFoundError (ENXIO)
   * @throws DeviceBusyError when still EBUSY after the last attempt (cause: the last IoctlError)
   * @throws the signal's reason when `signal` aborts between attempts
   */
  async deviceRemove(ref: DeviceRef, options: DeviceRemoveOptions = {}): Promise<RemoveResult> {
    const retry = options.retry ?? this.#removeRetry;
    const attempts = Math.max(1, Math.floor(retry.attempts));
    const { ident } = identify(ref);
    const { policy, cookie } = this.#policy();
    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted();
      const sync = this.#armCookie(policy);
      try {
        let header: Reply['header'];
        try {
          ({ header } = await this.#ioctl(removeRequest(ref, options.deferred ?? false, sync ? (cookie | sync.base) >>> 0 : cookie)));
        } catch (e) {
          sync?.remove();
          throw e;
        }
        // With DM_DEFERRED_REMOVE the kernel answers 0 for a busy device and leaves the flag set:
        // the device still exists (`dev_remove`), so its node stays too.
        const deferred = (header.flags & DM_DEFERRED_REMOVE) !== 0;
        this.#fresh.delete(header.name);
        const uevent = (header.flags & DM_UEVENT_GENERATED_FLAG) !== 0;
        const completed = await this.#settleCookie(sync, uevent);
        if (!deferred) await this.#syncNode(policy, uevent, completed, { kind: 'del', name: header.name });
        return { deferred, attempts: attempt };
      } catch (e) {
        if (errnoCode(e) !== 'EBUSY') throw e;
        if (attempt >= attempts) throw new DeviceBusyError(ident, attempt, { cause: e });
        await this.#sleep(retry.delayMs, options.signal);
      }
    }
  }

  /**
   * Cancels a deferred remove (the '@cancel_deferred_remove' message to dm core).
   * Valid flags: none.
   */
  async cancelDeferredRemove(ref: DeviceRef): Promise<void> {
    await this.targetMessage(ref, 0n, '@cancel_deferred_remove');
  }

  /**
   * DM_DEV_RENAME: give the device a new name, or (with `{uuid}`) its uuid if it has none yet.
   * The kernel finds the device by name only, so a uuid/dev reference is resolved first.
   * The /dev/mapper node follows a name change according to the node policy.
   * Valid flags: DM_UUID_FLAG (set for `{uuid}`).
   * @throws InvalidArgumentError for a bad new name/uuid
   * @throws DeviceNotFoundError (ENXIO)
   * @throws DeviceExistsError when the new name or uuid is taken (EBUSY)
   * @throws IoctlError EINVAL when the device already has a uuid
   */
  async deviceRename(ref: DeviceRef, to: RenameTo): Promise<DeviceInfo> {
    const byName = typeof ref === 'string' ? ref : 'name' in ref ? ref.name : undefined;
    const from = byName ?? (await this.deviceInfo(ref)).name;
    const { policy, cookie } = this.#policy();
    const sync = this.#armCookie(policy);
    const eventNr = sync ? (cookie | sync.base) >>> 0 : cookie;
    const req = to.uuid !== undefined ? setUuidRequest(from, to.uuid, eventNr) : renameRequest(from, to.name, eventNr);
    let reply: Reply;
    try {
      reply = await this.#ioctl(req);
    } catch (e) {
      sync?.remove();
      if (errnoCode(e) === 'EBUSY' && e instanceof IoctlError && req.command.cmd === DM_DEV_RENAME_CMD)
        throw new DeviceExistsError(to.uuid !== undefined ? { uuid: to.uuid } : { name: to.name }, { cause: e });
      throw e;
    }
    // The reply carries the state (`__dev_status`) but the name/uuid fields as we sent them: the
    // kernel does not write the new identity back, so we fill it in.
    const info = decodeDeviceInfo(reply.header);
    const uevent = (reply.header.flags & DM_UEVENT_GENERATED_FLAG) !== 0;
    const completed = await this.#settleCookie(sync, uevent);
    if (to.uuid !== undefined) return { ...info, name: from, uuid: to.uuid };
    if (to.name !== undefined) {
      const renamed = { ...info, name: to.name };
      if (info.activeTable)
        await this.#syncNode(policy, uevent, completed, {
          kind: 'rename',
          from,
          to: to.name,
          dev: info.dev,
        });
      return renamed;
    }
    return info;
  }

  /**
   * DM_DEV_SUSPEND with DM_SUSPEND_FLAG: stop I/O (queued until resume). Waits for in-flight I/O
   * unless `noflush`, and freezes a mounted filesystem unless `skipLockfs`. No-op when already
   * suspended.
   * Valid flags: DM_SUSPEND_FLAG, DM_NOFLUSH_FLAG, DM_SKIP_LOCKFS_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async deviceSuspend(ref: DeviceRef, options: SuspendOptions = {}): Promise<DeviceInfo> {
    const { header } = await this.#ioctl(suspendRequest(ref, options));
    return decodeDeviceInfo(header);
  }

  /**
   * DM_DEV_SUSPEND without DM_SUSPEND_FLAG: swap a loaded inactive table in (suspending first if
   * needed) and resume I/O. Afterwards /dev/mapper/NAME is made to point at the device according
   * to the node policy (libdm does NODE_ADD on every resume).
   * Valid flags: DM_NOFLUSH_FLAG, DM_SKIP_LOCKFS_FLAG (for the internal suspend).
   * @throws DeviceNotFoundError (ENXIO)
   */
  async deviceResume(ref: DeviceRef, options: SuspendOptions = {}): Promise<DeviceInfo> {
    const { policy, cookie } = this.#policy();
    const freshName = typeof ref === 'string' ? ref : 'name' in ref ? ref.name : undefined;
    const freshDev = freshName === undefined ? undefined : this.#fresh.get(freshName);
    if (policy === 'udev' && freshName !== undefined && freshDev !== undefined) {
      // First resume of a device we just created: udev has made no node for it yet (lvm2's
      // 10-dm.rules, Debian's 55-dm.rules, ignore the "add" uevent of a device without a live
      // table). So a symlink at /dev/mapper/NAME now is the link of an earlier device of that
      // name whose "remove" uevent udev has not handled yet (a deferred remove completing on
      // udev's own blkid close does this). Resuming now would race udev's late unlink against
      // its handling of our "change": when the minor is reused, ../dm-N even resolves to the NEW
      // device and the node wait after the resume would take the stale link for udev's answer;
      // when it is not, the link dangles and udev may unlink it after linking the new device.
      // Either way the caller's next open fails with ENOENT (seen in the udev CI cell). So let
      // udev finish that remove first (bounded by udevTimeoutMs); no uevent of ours is queued
      // behind it yet, so nothing can recreate the link meanwhile. A block node for the new
      // numbers is waited for too (only udev's link can be there legitimately). Any other entry
      // (absent, a regular file, a node for other numbers) cannot pass for ours and costs
      // nothing here; a conflicting one is handled after the resume as before.
      const path = this.nodePath(freshName);
      await this.#waitFor(() => this.#entryAt(path) !== 'link' && !this.#nodeIs(path, freshDev));
    }
    const sync = this.#armCookie(policy);
    let header: Reply['header'];
    try {
      ({ header } = await this.#ioctl(resumeRequest(ref, options, sync ? (cookie | sync.base) >>> 0 : cookie)));
    } catch (e) {
      sync?.remove();
      throw e;
    }
    const info = decodeDeviceInfo(header);
    const uevent = (header.flags & DM_UEVENT_GENERATED_FLAG) !== 0;
    const completed = await this.#settleCookie(sync, uevent);
    if ((header.flags & DM_ACTIVE_PRESENT_FLAG) !== 0)
      await this.#syncNode(policy, uevent, completed, { kind: 'add', name: info.name, dev: info.dev, fresh: this.#fresh.delete(info.name) });
    return info;
  }

  /**
   * DM_DEV_STATUS ("info"): the device's state. With `inactive`, readOnly and targetCount refer
   * to the inactive table.
   * Valid flags: DM_QUERY_INACTIVE_TABLE_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async deviceInfo(ref: DeviceRef, options: { inactive?: boolean } = {}): Promise<DeviceInfo> {
    const { header } = await this.#ioctl(infoRequest(ref, options.inactive ?? false));
    return decodeDeviceInfo(header);
  }

  /** Like {@link deviceInfo}, but resolves `null` when the device does not exist. */
  async findDevice(ref: DeviceRef): Promise<DeviceInfo | null> {
    try {
      return await this.deviceInfo(ref);
    } catch (e) {
      if (e instanceof DeviceNotFoundError) return null;
      throw e;
    }
  }

  /**
   * DM_DEV_WAIT: resolves once the device's event counter differs from `eventNr` (pass the
   * `eventNr` of your last info), with the status at that moment. The wait happens in the kernel on
   * a worker thread and cannot be cancelled from JS; prefer {@link waitForEvent} when you need a
   * timeout.
   * Valid flags: DM_STATUS_TABLE_FLAG, DM_QUERY_INACTIVE_TABLE_FLAG, DM_NOFLUSH_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async deviceWait(ref: DeviceRef, eventNr: number, options: TableStatusOptions = {}): Promise<WaitResult> {
    const { header, buf } = await this.#ioctl(waitRequest(ref, eventNr, options));
    return { info: decodeDeviceInfo(header), targets: tableText(decodeTargets(header, buf), buf, options) };
  }

  /**
   * DM_DEV_ARM_POLL (dm ioctl ≥ 4.36): from now on, poll(2) on this control fd reports POLLIN once
   * any dm event happens. Pattern: `armPoll()`, read the state you care about, then
   * `waitForEvent()`; after it resolves, arm again before re-reading.
   * Valid flags: none.
   */
  async armPoll(): Promise<void> {
    await this.#ioctl(armPollRequest());
  }

  /**
   * Waits for POLLIN on the control fd (an event since the last {@link armPoll}). Resolves true on
   * an event, false on timeout; rejects with the signal's reason when aborted. Waits in slices
   * of 250 ms so a timeout or abort is honoured promptly.
   */
  async waitForEvent(options: WaitForEventOptions = {}): Promise<boolean> {
    const fd = this.#controlFd();
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (;;) {
      options.signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const revents = await this.#sys.pollAsync(fd, POLLIN, Math.min(POLL_SLICE_MS, Math.ceil(left)));
      options.signal?.throwIfAborted();
      if (revents & POLLIN) return true;
    }
  }

  /**
   * DM_TABLE_LOAD: validate `targets` and load them into the inactive slot (the device keeps
   * running its live table until {@link deviceResume}).
   * Valid flags: DM_READONLY_FLAG (`readOnly`), DM_SECURE_DATA_FLAG (`secure`).
   * @throws InvalidArgumentError for a malformed table
   * @throws DeviceNotFoundError (ENXIO)
   * @throws IoctlError EINVAL when a target constructor refuses its parameters
   */
  async tableLoad(ref: DeviceRef, targets: readonly TargetLine[], options: TableLoadOptions = {}): Promise<DeviceInfo> {
    const { header } = await this.#ioctl(tableLoadRequest(ref, targets, options));
    return decodeDeviceInfo(header);
  }

  /**
   * DM_TABLE_CLEAR: drop the inactive (loaded, not resumed) table.
   * Valid flags: none.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async tableClear(ref: DeviceRef): Promise<DeviceInfo> {
    const { header } = await this.#ioctl(tableClearRequest(ref));
    return decodeDeviceInfo(header);
  }

  /**
   * DM_TABLE_STATUS: the live (or, with `inactive`, the staged) table's lines, with per-target
   * status text (mode 'status', default) or the table parameters as the kernel normalised them
   * (mode 'table', what `dmsetup table` prints). In mode 'table' the inline keys of crypt targets
   * are redacted (`redacted:<bytes>`) unless `revealKeys` is true (`dmsetup table --showkeys`),
   * and the reply buffer is zeroed once decoded.
   * Valid flags: DM_STATUS_TABLE_FLAG, DM_QUERY_INACTIVE_TABLE_FLAG, DM_NOFLUSH_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async tableStatus(ref: DeviceRef, options: TableStatusOptions = {}): Promise<TargetLine[]> {
    const { header, buf } = await this.#ioctl(tableStatusRequest(ref, options));
    return tableText(decodeTargets(header, buf), buf, options);
  }

  /**
   * DM_TABLE_DEPS: the devices the table maps onto.
   * Valid flags: DM_QUERY_INACTIVE_TABLE_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async tableDeps(ref: DeviceRef, options: { inactive?: boolean } = {}): Promise<DevNum[]> {
    const { header, buf } = await this.#ioctl(tableDepsRequest(ref, options.inactive ?? false));
    return decodeDeps(header, buf);
  }

  /**
   * DM_LIST_VERSIONS: every target type the kernel has loaded, with its version.
   * Valid flags: none.
   */
  async listVersions(): Promise<TargetVersion[]> {
    const { header, buf } = await this.#ioctl(listVersionsRequest());
    return decodeTargetVersions(header, buf);
  }

  /**
   * The version of one target type, or null when the kernel does not know it. Uses
   * DM_GET_TARGET_VERSION (which may autoload `dm-<type>`) on dm ioctl ≥ 4.41, else filters
   * DM_LIST_VERSIONS.
   * Valid flags: none.
   */
  async getTargetVersion(type: string): Promise<DmVersion | null> {
    const req = getTargetVersionRequest(type);
    if ((await this.#kernelMinor()) < req.command.minVersion[1])
      return (await this.listVersions()).find((v) => v.name === type)?.version ?? null;
    try {
      const { header, buf } = await this.#ioctl(req);
      return decodeTargetVersions(header, buf)[0]?.version ?? null;
    } catch (e) {
      // `__list_versions` answers EINVAL for an unknown target type.
      if (errnoCode(e) === 'EINVAL' && req.command.cmd === DM_GET_TARGET_VERSION_CMD) return null;
      throw e;
    }
  }

  /**
   * DM_TARGET_MSG: send `message` to the target covering `sector` (0 for single-target tables
   * such as thin-pool). Resolves the target's reply text (DM_DATA_OUT_FLAG) or null.
   * Valid flags: DM_SECURE_DATA_FLAG (`secure`; default: on for crypt's `key ...` messages).
   * @throws DeviceNotFoundError (ENXIO)
   * @throws IoctlError EINVAL when no target covers the sector or the target refuses the message
   */
  async targetMessage(ref: DeviceRef, sector: bigint, message: string, options: { secure?: boolean } = {}): Promise<string | null> {
    const { header, buf } = await this.#ioctl(targetMessageRequest(ref, sector, message, options.secure));
    return decodeMessageReply(header, buf);
  }

  /**
   * DM_DEV_SET_GEOMETRY: the legacy CHS geometry reported by HDIO_GETGEO.
   * Valid flags: none.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async setGeometry(ref: DeviceRef, geometry: Geometry): Promise<void> {
    await this.#ioctl(setGeometryRequest(ref, geometry));
  }

  /**
   * create → load → resume, as libdm's `dmsetup create` does, removing the device again if the
   * load or the resume fails (the original error is rethrown; a failing rollback is attached as
   * `rollbackError` on it when it is an object).
   * @throws as {@link deviceCreate}, {@link tableLoad}, {@link deviceResume}
   */
  async createDevice(
    name: string,
    targets: readonly TargetLine[],
    options: DeviceCreateOptions & { readOnly?: boolean; secure?: boolean } = {},
  ): Promise<DeviceInfo> {
    // Validate (and encode) the table before creating anything, so bad input leaves no device behind.
    const load = tableLoadRequest(name, targets, { readOnly: options.readOnly ?? false, ...(options.secure !== undefined ? { secure: options.secure } : {}) });
    const created = await this.deviceCreate(name, options);
    try {
      await this.#ioctl(load);
      return await this.deviceResume(name);
    } catch (e) {
      try {
        await this.deviceRemove({ dev: created.dev }, { retry: { attempts: 5, delayMs: 100 } });
      } catch (rollbackError) {
        if (typeof e === 'object' && e !== null) Object.defineProperty(e, 'rollbackError', { value: rollbackError });
      }
      throw e;
    }
  }
}

/**
 * Table-mode replies may hold crypt keys (`crypt_status` prints them as hex): zero the reply
 * buffer once decoded and redact the keys unless asked to reveal them.
 */
function tableText(targets: TargetLine[], buf: Buffer, options: TableStatusOptions): TargetLine[] {
  if (options.mode !== 'table') return targets;
  buf.fill(0);
  if (options.revealKeys === true) return targets;
  return targets.map((t) => (t.type === CRYPT_TARGET ? { ...t, params: redactCryptParams(t.params) } : t));
}

/** The errno number of the first IoctlError in `e`'s cause chain, or 0. */
function errnoOf(e: unknown): number {
  for (let x: unknown = e, depth = 0; typeof x === 'object' && x !== null && depth < 16; depth++) {
    if (x instanceof IoctlError) return x.errno;
    x = (x as { cause?: unknown }).cause;
  }
  return 0;
}
