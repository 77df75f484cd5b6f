// SPDX-License-Identifier: MIT
// DmControl: the device-mapper control interface (/dev/mapper/control). One private choke point
// performs every dm ioctl; public methods only build requests (request.ts) and decode replies
// (response.ts). Kernel side: drivers/md/dm-ioctl.c.
import { setTimeout as delay } from 'node:timers/promises';
import { assertOptionsObject, errnoCode, type OptionField } from '../errors.js';
import { DM_ACTIVE_PRESENT_FLAG, DM_DEFERRED_REMOVE, DM_DEV_RENAME_CMD, DM_GET_TARGET_VERSION_CMD, DM_UEVENT_GENERATED_FLAG, IoctlError, POLLIN, realSyscalls, type Syscalls } from '../ioctl/index.js';
import { ControlChannel, type DmIoctl, type Reply } from './control-channel.js';
import type { DevNum } from './devnum.js';
import { DeviceBusyError, DeviceNotFoundError, DeviceExistsError } from './errors.js';
import { NodeSync } from './node-sync.js';
import type { UdevCookie } from './udev-cookie.js';
import type { NodeAction } from './nodes.js';
import {
  REMOVE_RETRY,
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
import { readDeps, readDeviceList, readTableStatus, readTableStatusWithInfo, readVersions, readWait } from './readers.js';
import {
  armPollRequest,
  createRequest,
  getTargetVersionRequest,
  identify,
  infoRequest,
  removeAllRequest,
  removeRequest,
  renameRequest,
  resumeRequest,
  setGeometryRequest,
  setUuidRequest,
  suspendRequest,
  tableClearRequest,
  tableLoadRequest,
  type DmRequest,
  targetMessageRequest,
  versionRequest,
  type DeviceRef,
} from './request.js';
import { decodeDeviceInfo, decodeMessageReply, decodeTargetVersions, type DeviceInfo, type DeviceListEntry, type DmVersion, type TargetVersion } from './response.js';
import type { TargetLine } from './table.js';
import type { NodePolicy } from './udev.js';

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
  /**
   * Run multi-ioctl operations (create+load+resume in {@link DmControl.createDevice}, suspend +
   * message + resume in {@link DmControl.suspendMessageResume}) as one batch on the seam's batcher
   * (`Syscalls.openBatch`: a `BatchWorker` thread (`devmapper/ioctl`) for the real syscalls, inline for the
   * FakeKernel): one hop per operation instead of one per ioctl. Every other request that can
   * block (a thin-pool message such as `create_thin`, a status that may commit, a remove, a
   * resume) goes to the same thread as a batch of one while it is idle, so with `batch: true` the
   * worker owns the blocking calls; a request that finds it busy takes a koffi `.async` hop rather
   * than queue. A `DeviceSet` uses it when given `dm: new DmControl({ batch: true })`. Default false: the thread costs
   * ~70–100 ms to start natively (a V8 isolate that loads koffi; seconds under TCG), paid by the
   * first batched call of each DmControl, so it pays off in long-lived services, not in one-shot
   * processes such as the CLI's. Natively a batch hop costs ~13 µs against ~84 µs for one koffi
   * `.async` call (docs/bench.md).
   */
  readonly batch?: boolean;
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

/** Slice of one poll(2) wait, so AbortSignal and timeouts are honoured promptly. */
const POLL_SLICE_MS = 250;

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
  batch: (v) => (typeof v === 'boolean' ? undefined : 'expected true or false'),
} satisfies Record<keyof DmControlOptions, OptionField>;

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
 * (suspend/resume, remove, wait, table load, status, message: `BLOCKING_COMMANDS`) run on a
 * worker thread via `Syscalls.ioctlAsync`; the rest (version, list, info, create, rename, deps,
 * clear, geometry, arm-poll) are quick and use the synchronous call, and so do table reads and
 * `noflush` status, which never make thin-pool commit first (`usesWorker`).
 *
 * **Errors.** Input problems throw InvalidArgumentError before any syscall. ENXIO on a lookup →
 * {@link DeviceNotFoundError}; EBUSY on create (or a rename onto a taken name) →
 * {@link DeviceExistsError}; EBUSY on remove after the retries → {@link DeviceBusyError}.
 * Every other failure is the IoctlError from src/ioctl, carrying the request name and a header
 * snapshot.
 */
export class DmControl {
  readonly #sys: Syscalls;
  readonly #chan: ControlChannel;
  readonly #node: NodeSync;
  readonly #removeRetry: RetryPolicy;
  readonly #sleep: Sleep;
  /** The choke point as a function, for readers.ts. */
  readonly #io: DmIoctl = (req) => this.#chan.ioctl(req);

  constructor(options: DmControlOptions = {}) {
    assertOptionsObject('DmControl options', options, DM_CONTROL_OPTION_FIELDS);
    this.#sys = options.syscalls ?? realSyscalls();
    const devDir = (options.devDir ?? '/dev').replace(/\/+$/, '');
    this.#removeRetry = options.removeRetry ?? REMOVE_RETRY;
    this.#sleep = options.sleep ?? realSleep;
    const procMiscPath = options.procMiscPath !== undefined ? options.procMiscPath : options.syscalls === undefined ? '/proc/misc' : null;
    this.#chan = new ControlChannel(this.#sys, devDir, procMiscPath, options.batch === true);
    this.#node = new NodeSync({
      sys: this.#sys,
      devDir,
      nodes: options.nodes ?? 'auto',
      udevControlPath: options.udevControlPath ?? '/run/udev/control',
      udevTimeoutMs: options.udevTimeoutMs ?? 10_000,
      udevRecheckMs: options.udevRecheckMs ?? 1000,
      sleep: (ms) => this.#sleep(ms),
      clock: options.clock ?? (() => performance.now()),
    });
  }

  /** Path of the control node (`/dev/mapper/control`). */
  get controlPath(): string {
    return this.#chan.controlPath;
  }

  /** The dm interface version of the running kernel, once any reply has been seen. */
  get kernelVersion(): DmVersion | undefined {
    return this.#chan.kernelVersion;
  }

  /** Path of a device's node: `/dev/mapper/NAME`. */
  nodePath(name: string): string {
    return this.#node.nodePath(name);
  }

  /** Closes the control fd (idempotent). The object reopens it if used again. */
  close(): void {
    this.#chan.close();
  }

  /** `using dm = new DmControl()`: {@link close} at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  /**
   * DM_VERSION: the kernel's dm ioctl interface version, e.g. `[4, 48, 0]`.
   * Valid flags: none.
   */
  async version(): Promise<DmVersion> {
    const { header } = await this.#chan.ioctl(versionRequest());
    return [header.version[0], header.version[1], header.version[2]];
  }

  async #kernelMinor(): Promise<number> {
    return (this.#chan.kernelVersion ?? (await this.version()))[1];
  }

  /**
   * DM_REMOVE_ALL: removes every device that is not open (a debugging aid; dangerous on a real
   * system). Nodes under /dev/mapper are not touched.
   * Valid flags: DM_DEFERRED_REMOVE (`deferred`: schedule busy devices for removal on last close).
   */
  async removeAll(options: { deferred?: boolean } = {}): Promise<void> {
    await this.#chan.ioctl(removeAllRequest(options.deferred ?? false));
  }

  /**
   * `dmsetup mknodes [NAME]`: creates or repairs /dev/mapper/NAME for NAME or every device with a
   * live table (others: `'skipped'`), whatever the node policy; see NodeSync.mknodes.
   * @throws DeviceNotFoundError (ENXIO) for a NAME that does not exist
   * @throws DeviceNodeError when something that is not a block device is in the way
   */
  async mknodes(name?: string): Promise<{ name: string; action: NodeAction | 'skipped' }[]> {
    // A device removed between the list and its info is skipped, not an error.
    const infos =
      name !== undefined
        ? [await this.deviceInfo(name)]
        : (await Promise.all((await this.listDevices()).map((d) => this.findDevice({ dev: d.dev })))).filter((i): i is DeviceInfo => i !== null);
    return this.#node.mknodes(infos);
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
    return readDeviceList(this.#io, options, async (dev) => (await this.findDevice({ dev }))?.uuid ?? null);
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
    const { header } = await this.#chan.ioctl(createRequest(name, options));
    const info = decodeDeviceInfo(header);
    this.#node.rememberFresh(name, info.dev);
    return info;
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
    const { policy, cookie } = this.#node.policy();
    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted();
      const sync = this.#node.armCookie(policy);
      try {
        let header: Reply['header'];
        try {
          ({ header } = await this.#chan.ioctl(removeRequest(ref, options.deferred ?? false, sync ? (cookie | sync.base) >>> 0 : cookie)));
        } catch (e) {
          sync?.remove();
          throw e;
        }
        // With DM_DEFERRED_REMOVE the kernel answers 0 for a busy device and leaves the flag set:
        // the device still exists (`dev_remove`), so its node stays too.
        const deferred = (header.flags & DM_DEFERRED_REMOVE) !== 0;
        this.#node.fresh.delete(header.name);
        const uevent = (header.flags & DM_UEVENT_GENERATED_FLAG) !== 0;
        const completed = await this.#node.settleCookie(sync, uevent, options.signal);
        if (!deferred) await this.#node.syncNode(policy, uevent, completed, { kind: 'del', name: header.name }, options.signal);
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
    const { policy, cookie } = this.#node.policy();
    const sync = this.#node.armCookie(policy);
    const eventNr = sync ? (cookie | sync.base) >>> 0 : cookie;
    const req = to.uuid !== undefined ? setUuidRequest(from, to.uuid, eventNr) : renameRequest(from, to.name, eventNr);
    let reply: Reply;
    try {
      reply = await this.#chan.ioctl(req);
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
    const completed = await this.#node.settleCookie(sync, uevent);
    if (to.uuid !== undefined) return { ...info, name: from, uuid: to.uuid };
    if (to.name !== undefined) {
      const renamed = { ...info, name: to.name };
      if (info.activeTable)
        await this.#node.syncNode(policy, uevent, completed, {
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
    const { header } = await this.#chan.ioctl(suspendRequest(ref, options));
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
    const { policy, cookie } = this.#node.policy();
    const freshName = typeof ref === 'string' ? ref : 'name' in ref ? ref.name : undefined;
    const freshDev = freshName === undefined ? undefined : this.#node.fresh.get(freshName);
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
      await this.#node.waitFor(() => this.#node.entryAt(path) !== 'link' && !this.#node.nodeIs(path, freshDev));
    }
    const sync = this.#node.armCookie(policy);
    let header: Reply['header'];
    try {
      ({ header } = await this.#chan.ioctl(resumeRequest(ref, options, sync ? (cookie | sync.base) >>> 0 : cookie)));
    } catch (e) {
      sync?.remove();
      throw e;
    }
    return this.#afterResume(header, policy, sync);
  }

  /** After a resume's reply: udev's cookie, then /dev/mapper/NAME by the node policy (libdm's NODE_ADD). */
  async #afterResume(header: Reply['header'], policy: NodePolicy, sync: UdevCookie | undefined): Promise<DeviceInfo> {
    const info = decodeDeviceInfo(header);
    const uevent = (header.flags & DM_UEVENT_GENERATED_FLAG) !== 0;
    const completed = await this.#node.settleCookie(sync, uevent);
    if ((header.flags & DM_ACTIVE_PRESENT_FLAG) !== 0)
      await this.#node.syncNode(policy, uevent, completed, { kind: 'add', name: info.name, dev: info.dev, fresh: this.#node.fresh.delete(info.name) });
    return info;
  }

  /**
   * DM_DEV_STATUS ("info"): the device's state. With `inactive`, readOnly and targetCount refer
   * to the inactive table.
   * Valid flags: DM_QUERY_INACTIVE_TABLE_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async deviceInfo(ref: DeviceRef, options: { inactive?: boolean } = {}): Promise<DeviceInfo> {
    const { header } = await this.#chan.ioctl(infoRequest(ref, options.inactive ?? false));
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
    return readWait(this.#io, ref, eventNr, options);
  }

  /**
   * DM_DEV_ARM_POLL (dm ioctl ≥ 4.36): from now on, poll(2) on this control fd reports POLLIN once
   * any dm event happens. Pattern: `armPoll()`, read the state you care about, then
   * `waitForEvent()`; after it resolves, arm again before re-reading.
   * Valid flags: none.
   */
  async armPoll(): Promise<void> {
    await this.#chan.ioctl(armPollRequest());
  }

  /**
   * Waits for POLLIN on the control fd (an event since the last {@link armPoll}). Resolves true on
   * an event, false on timeout; rejects with the signal's reason when aborted. Waits in slices
   * of 250 ms so a timeout or abort is honoured promptly.
   */
  async waitForEvent(options: WaitForEventOptions = {}): Promise<boolean> {
    const fd = this.#chan.fd();
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
    const { header } = await this.#chan.ioctl(tableLoadRequest(ref, targets, options));
    return decodeDeviceInfo(header);
  }

  /**
   * DM_TABLE_CLEAR: drop the inactive (loaded, not resumed) table.
   * Valid flags: none.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async tableClear(ref: DeviceRef): Promise<DeviceInfo> {
    const { header } = await this.#chan.ioctl(tableClearRequest(ref));
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
    return readTableStatus(this.#io, ref, options);
  }

  /**
   * {@link tableStatus} and {@link deviceInfo} from one DM_TABLE_STATUS: the kernel fills the
   * reply header with the device's status before the table (drivers/md/dm-ioctl.c: table_status()
   * calls __dev_status()), so both describe the same device at the same moment.
   * Valid flags: DM_STATUS_TABLE_FLAG, DM_QUERY_INACTIVE_TABLE_FLAG, DM_NOFLUSH_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async tableStatusWithInfo(ref: DeviceRef, options: TableStatusOptions = {}): Promise<{ readonly info: DeviceInfo; readonly targets: TargetLine[] }> {
    return readTableStatusWithInfo(this.#io, ref, options);
  }

  /**
   * DM_TABLE_DEPS: the devices the table maps onto.
   * Valid flags: DM_QUERY_INACTIVE_TABLE_FLAG.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async tableDeps(ref: DeviceRef, options: { inactive?: boolean } = {}): Promise<DevNum[]> {
    return readDeps(this.#io, ref, options.inactive ?? false);
  }

  /**
   * DM_LIST_VERSIONS: every target type the kernel has loaded, with its version.
   * Valid flags: none.
   */
  async listVersions(): Promise<TargetVersion[]> {
    return readVersions(this.#io);
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
      const { header, buf } = await this.#chan.ioctl(req);
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
    const { header, buf } = await this.#chan.ioctl(targetMessageRequest(ref, sector, message, options.secure));
    return decodeMessageReply(header, buf);
  }

  /**
   * DM_DEV_SET_GEOMETRY: the legacy CHS geometry reported by HDIO_GETGEO.
   * Valid flags: none.
   * @throws DeviceNotFoundError (ENXIO)
   */
  async setGeometry(ref: DeviceRef, geometry: Geometry): Promise<void> {
    await this.#chan.ioctl(setGeometryRequest(ref, geometry));
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
    const batched = await this.#createBatched(name, load, options);
    if (batched !== undefined) return batched;
    const created = await this.deviceCreate(name, options);
    try {
      await this.#chan.ioctl(load);
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

  /**
   * createDevice's create → load → resume as one batch (one hop to the batch worker instead of
   * a sync create and two worker hops), with the same rollback: a failed load or resume removes
   * the device again. Returns undefined when it cannot batch (no batcher, a batch in flight, or
   * the 'udev' node policy, whose first resume of a new device waits for udev beforehand; see
   * deviceResume), and the caller takes the per-call path.
   */
  async #createBatched(name: string, load: DmRequest, options: DeviceCreateOptions): Promise<DeviceInfo | undefined> {
    if (!this.#chan.canBatch()) return undefined;
    const { policy, cookie } = this.#node.policy();
    if (policy === 'udev') return undefined;
    const out = await this.#chan.batch([createRequest(name, options), load, resumeRequest(name, {}, cookie)]);
    const created = out.replies[0];
    if (created === undefined) throw out.failed!.error; // the create failed: nothing to undo
    const info = decodeDeviceInfo(created.header);
    this.#node.rememberFresh(name, info.dev);
    const resumed = out.replies[2];
    if (out.failed === undefined && resumed !== undefined) {
      try {
        return await this.#afterResume(resumed.header, policy, undefined);
      } catch (e) {
        return this.#rollbackCreate(info, e);
      }
    }
    return this.#rollbackCreate(info, out.failed!.error);
  }

  /** Removes a device createDevice made, and throws `e` (with `rollbackError` when that failed too). */
  async #rollbackCreate(created: DeviceInfo, e: unknown): Promise<never> {
    try {
      await this.deviceRemove({ dev: created.dev }, { retry: { attempts: 5, delayMs: 100 } });
    } catch (rollbackError) {
      if (typeof e === 'object' && e !== null) Object.defineProperty(e, 'rollbackError', { value: rollbackError });
    }
    throw e;
  }

  /**
   * DM_DEV_SUSPEND of `device` → DM_TARGET_MSG `message` to `target` at `sector` → resume of
   * `device`, in one batch: what a thin snapshot of an active origin needs (suspend the origin,
   * `create_snap` on the pool, resume; drivers/md/dm-thin.c requires the origin quiesced). Every
   * step is the same request deviceSuspend / targetMessage / deviceResume send.
   *
   * Resolves `null` when it cannot batch now (no batcher, or a batch in flight): then nothing was
   * sent and the caller makes the three calls itself. Otherwise resolves which step failed, if
   * one did, with its error (mapped as the single calls map it); the steps after it were not sent.
   * So after `failed: 'message'` the device is still suspended and the caller resumes it.
   */
  async suspendMessageResume(
    device: string,
    target: string,
    sector: bigint,
    message: string,
  ): Promise<{ readonly failed?: 'suspend' | 'message' | 'resume'; readonly error?: unknown; readonly reply?: string | null } | null> {
    const msg = targetMessageRequest(target, sector, message, undefined); // validates first
    const suspend = suspendRequest(device, {});
    if (!this.#chan.canBatch()) return null;
    const { policy, cookie } = this.#node.policy();
    const sync = this.#node.armCookie(policy);
    let out;
    try {
      out = await this.#chan.batch([suspend, msg, resumeRequest(device, {}, sync ? (cookie | sync.base) >>> 0 : cookie)]);
    } catch (e) {
      sync?.remove();
      throw e;
    }
    if (out.failed !== undefined) {
      sync?.remove();
      return { failed: (['suspend', 'message', 'resume'] as const)[out.failed.index]!, error: out.failed.error };
    }
    const m = out.replies[1]!;
    const reply = decodeMessageReply(m.header, m.buf);
    await this.#afterResume(out.replies[2]!.header, policy, sync);
    return { reply };
  }
}
