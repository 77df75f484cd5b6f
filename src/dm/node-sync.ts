// SPDX-License-Identifier: MIT
// /dev/mapper/NAME upkeep for DmControl: which node policy applies (udev running or not), udev
// cookies around node-affecting ioctls (RESUME, REMOVE, RENAME), waiting for udev, and libdm's
// direct node handling as the fallback (nodes.ts). Kernel side: drivers/md/dm-ioctl.c
// (`dm_kobject_uevent` with the cookie in DM_COOKIE), lvm2's 10-dm.rules on the udev side.
import { errnoCode } from '../errors.js';
import { S_IFBLK, S_IFLNK, S_IFMT, type Syscalls } from '../ioctl/index.js';
import { encodeDevNum, type DevNum } from './devnum.js';
import { ensureDeviceNode, mapperPath, removeDeviceNode, renameDeviceNode, type NodeAction } from './nodes.js';
import { udevCookie, type NodePolicy } from './udev.js';
import { UdevCookie } from './udev-cookie.js';

/** Poll interval while waiting for udev to act on a node. */
const NODE_POLL_MS = 20;
/** Bound of the created-but-not-yet-resumed name hint. */
const FRESH_NAMES_MAX = 4096;

/** What a node must look like after an ioctl: see {@link NodeSync.syncNode}. */
export type NodeOp =
  | { kind: 'add'; name: string; dev: DevNum; fresh?: boolean }
  | { kind: 'del'; name: string }
  | { kind: 'rename'; from: string; to: string; dev: DevNum };

/** The settings NodeSync takes from DmControlOptions (defaults already applied). */
export interface NodeSyncSettings {
  readonly sys: Syscalls;
  readonly devDir: string;
  readonly nodes: NodePolicy | 'auto';
  readonly udevControlPath: string;
  readonly udevTimeoutMs: number;
  readonly udevRecheckMs: number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly clock: () => number;
}

/** The node policy state of one DmControl. */
export class NodeSync {
  readonly #s: NodeSyncSettings;
  /** clock() until which the last "udev absent" answer is reused; undefined = none cached. */
  #udevAbsentUntil: number | undefined;
  /** Set once semget said ENOSYS: this kernel has no SysV IPC, so no cookies. */
  #noSysv = false;
  /**
   * Names this DmControl created and has not resumed yet: their first resume makes the node with
   * mknod straight away instead of probing for one (see ensureSpecialNode). Only a hint, so it is
   * bounded; a wrong guess costs one failed syscall, never a wrong node.
   */
  readonly fresh = new Map<string, DevNum>();

  constructor(settings: NodeSyncSettings) {
    this.#s = settings;
  }

  /** Path of a device's node: `/dev/mapper/NAME`. */
  nodePath(name: string): string {
    return mapperPath(this.#s.devDir, name);
  }

  rememberFresh(name: string, dev: DevNum): void {
    if (this.fresh.size >= FRESH_NAMES_MAX) this.fresh.clear();
    this.fresh.set(name, dev);
  }

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
      if (this.#s.clock() < this.#udevAbsentUntil) return false;
      this.#udevAbsentUntil = undefined;
    }
    try {
      this.#s.sys.stat(this.#s.udevControlPath);
      return true;
    } catch {
      if (this.#s.udevRecheckMs > 0) this.#udevAbsentUntil = this.#s.clock() + this.#s.udevRecheckMs;
      return false;
    }
  }

  /** The policy for the next node-affecting ioctl and the cookie flags it sends. */
  policy(): { policy: NodePolicy; cookie: number } {
    // 'none' sends cookie 0 whatever udev does: no need to ask.
    if (this.#s.nodes === 'none') return { policy: 'none', cookie: 0 };
    const running = this.#udevRunning();
    const policy = this.#s.nodes === 'auto' ? (running ? 'udev' : 'manage') : this.#s.nodes;
    return { policy, cookie: udevCookie(policy, running) };
  }

  /**
   * Polls `check` until true or the udev timeout passes. An aborted `signal` ends the wait as the
   * timeout does (false): the ioctl it follows has happened, so the caller's fallback below makes
   * the node right instead of leaving it to a udev that is late.
   */
  async waitFor(check: () => boolean, signal?: AbortSignal): Promise<boolean> {
    const deadline = this.#s.clock() + this.#s.udevTimeoutMs;
    for (;;) {
      if (check()) return true;
      if (this.#s.clock() >= deadline || signal?.aborted) return false;
      await this.#s.sleep(NODE_POLL_MS);
    }
  }

  /** Whether `path` exists and (when `dev` is given) is the block node of `dev`. */
  nodeIs(path: string, dev: DevNum | undefined): boolean {
    try {
      const st = this.#s.sys.stat(path);
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
  armCookie(policy: NodePolicy): UdevCookie | undefined {
    const sysv = this.#s.sys.sysv;
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
  async settleCookie(cookie: UdevCookie | undefined, uevent: boolean, signal?: AbortSignal): Promise<boolean> {
    if (cookie === undefined) return false;
    if (!uevent) {
      cookie.remove();
      return false;
    }
    try {
      // An abort ends the wait (the cookie is removed in wait's finally) like a semaphore error.
      const sleep = (ms: number): Promise<void> => (signal?.aborted ? Promise.reject(signal.reason) : this.#s.sleep(ms));
      await cookie.wait(this.#s.udevTimeoutMs, sleep, NODE_POLL_MS, this.#s.clock);
    } catch {
      // A semaphore error (or an abort) after the ioctl: the change happened; the node checks still run.
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
  entryAt(path: string): 'absent' | 'link' | 'block' | 'other' {
    try {
      const type = this.#s.sys.lstat(path).mode & S_IFMT;
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
    const e = this.entryAt(path);
    return e === 'link' || e === 'block';
  }

  /**
   * Brings /dev/mapper/NAME in line after a resume (node for `dev`), rename or remove. Under the
   * udev policy: if the kernel emitted our uevent, wait for udev, then fall back to doing it.
   */
  async syncNode(policy: NodePolicy, uevent: boolean, completed: boolean, op: NodeOp, signal?: AbortSignal): Promise<void> {
    if (policy === 'none') return;
    // With a cookie udev has finished (or the cookie wait used up the timeout): only the fallback
    // check below is left. Without one, watch the node.
    if (policy === 'udev' && uevent && !completed) {
      const done =
        op.kind === 'add'
          ? () => this.nodeIs(this.nodePath(op.name), op.dev)
          : op.kind === 'del'
            ? () => !this.#stillLinked(this.nodePath(op.name))
            : () => this.nodeIs(this.nodePath(op.to), op.dev) && !this.#stillLinked(this.nodePath(op.from));
      if (await this.waitFor(done, signal)) return;
      // udev did not act in time: fall through to libdm's direct node handling.
    }
    const sys = this.#s.sys;
    if (op.kind === 'add') ensureDeviceNode(sys, this.nodePath(op.name), op.dev, undefined, { expectAbsent: op.fresh === true });
    else if (op.kind === 'del') removeDeviceNode(sys, this.nodePath(op.name));
    else renameDeviceNode(sys, this.nodePath(op.from), this.nodePath(op.to), op.dev);
  }

  /**
   * `dmsetup mknodes` for devices that exist: each one with a live table gets /dev/mapper/NAME
   * made right (libdm's NODE_ADD: a correct node or udev's symlink to it is kept, a node for
   * other numbers or a dangling link is replaced), whatever the node policy. Entries no device
   * names are not looked at: libdm unlinks them, but nothing proves they are ours.
   */
  mknodes(devices: readonly { name: string; dev: DevNum; activeTable: boolean }[]): { name: string; action: NodeAction | 'skipped' }[] {
    return devices.map((d) => ({ name: d.name, action: d.activeTable ? ensureDeviceNode(this.#s.sys, this.nodePath(d.name), d.dev) : 'skipped' }));
  }
}
