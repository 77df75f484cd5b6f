// SPDX-License-Identifier: MIT
// FakeKernel: an in-process stand-in for the Linux kernel behind the `Syscalls` seam. It decodes
// the request buffers DmControl and LoopControl really send (with the src/ioctl layouts, never a
// parallel encoding) and answers with the state changes, payloads and errnos of
// drivers/md/dm-ioctl.c, drivers/md/dm-thin.c, drivers/block/loop.c and block/ioctl.c.
// This file is the Syscalls surface, path routing, inspection and lifecycle. The kernel's side
// lives one file per kernel source, around one shared FakeState (fake-state.ts): fake-dm-ioctl.ts,
// fake-dm-targets.ts, fake-loop.ts, fake-block.ts, fake-mounts.ts and fake-sysfs.ts; the
// syscall-boundary logging and fault injection are in fake-faults.ts.
//
// What is intercepted, what passes through:
// - paths under `devDir` (default /dev) and /run/udev live in an in-memory filesystem (Devfs):
//   /dev/mapper/control, /dev/loop-control, /dev/loopN, /dev/dm-N and whatever mknod/mkdir/
//   rename/unlink do there;
// - every other path (backing files, a DeviceSet's metadata directory, mount targets) goes to the
//   real filesystem through node:fs, so sparse files, fsync and renames behave for real;
// - fds of fake devices are numbers ≥ 1 000 000; smaller fds are real node:fs descriptors.
// Loop devices keep their own real fd on the backing file (as the kernel keeps a reference), and
// a thin pool keeps its metadata *on the metadata device's backing storage* (block 0 of the file
// behind the loop), so zeroing the first 4 KiB unformats it and a new FakeKernel (a "reboot")
// finds the committed pool again. Data contents are not modelled: only block allocation.
import { closeSync, fstatSync, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import {
  type IoctlArg,
  IoctlError,
  makedev,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  realSyscalls,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  type StatResult,
  type Syscalls,
  inlineBatcher,
  type IoctlBatcher,
} from '../ioctl/index.js';
import { Devfs } from './devfs.js';
import { FakeIoError, kerr, SimulatedCrash } from './errors.js';
import type { FakePoolMode } from './thin-model.js';
import {
  closeQuietly,
  DM_CONTROL_MINOR,
  FakeState,
  type FdEntry,
  fmtDev,
  LOOP_CTRL_MINOR,
  MISC_MAJOR,
  O_ACCMODE,
  O_CREAT,
  O_EXCL,
  O_RDWR,
  O_WRONLY,
  realCall,
  realStat,
  tableSectors,
} from './fake-state.js';
import type { FailHandle, FailRule, FakeCall, FakeDmDeviceInfo, FakeKernelOptions, FakeLoopInfo, FakeMount, FakePoolInfo } from './fake-types.js';
import { Faults, requestNameOf } from './fake-faults.js';
import { DmIoctl } from './fake-dm-ioctl.js';
import { DmTargets } from './fake-dm-targets.js';
import { LoopDriver } from './fake-loop.js';
import { BlockLayer } from './fake-block.js';
import { Mounts } from './fake-mounts.js';
import { Sysfs } from './fake-sysfs.js';

/**
 * The fake kernel. See the file header for what it intercepts; {@link FakeKernel.devices},
 * {@link FakeKernel.loops}, {@link FakeKernel.pool} and {@link FakeKernel.mounts} show its state;
 * {@link FakeKernel.failNext}, {@link FakeKernel.crashAfter} and {@link FakeKernel.onCall}
 * inject faults at any syscall.
 *
 * @example
 * const fake = new FakeKernel({ sysfs: true });
 * const dm = new DmControl({ syscalls: fake });
 * const loops = new LoopControl({ syscalls: fake, sysfsRoot: fake.sysfsRoot });
 */
export class FakeKernel implements Syscalls {
  readonly dmVersion: readonly [number, number, number];
  readonly dmMajor: number;
  readonly devDir: string;
  /** The kernel state and the handlers that act on it (fake-state.ts). */
  readonly #s: FakeState;

  constructor(options: FakeKernelOptions = {}) {
    this.dmVersion = options.dmVersion ?? [4, 47, 0];
    this.dmMajor = options.dmMajor ?? 253;
    this.devDir = (options.devDir ?? '/dev').replace(/\/+$/, '') || '/dev';
    const s = new FakeState({
      dmVersion: this.dmVersion,
      dmMajor: this.dmMajor,
      devDir: this.devDir,
      initialLoops: options.initialLoops ?? 8,
      sysfsOption: options.sysfs ?? false,
      udevRunning: options.udevRunning ?? false,
      rejectReserved: options.rejectReservedNames ?? false,
    });
    s.faults = new Faults(s);
    s.dmIoctl = new DmIoctl(s);
    s.dmTargets = new DmTargets(s);
    s.loop = new LoopDriver(s);
    s.block = new BlockLayer(s);
    s.fs = new Mounts(s);
    s.sysfs = new Sysfs(s);
    this.#s = s;
    this.#boot();
  }

  /** The fake sysfs root (for LoopControl's `sysfsRoot`), when enabled. */
  get sysfsRoot(): string | undefined {
    return this.#s.sysfsRoot;
  }

  #boot(): void {
    this.#s.devfs = new Devfs([this.devDir, '/run/udev']);
    this.#s.devfs.mkdir(`${this.devDir}/mapper`, 0o755);
    this.#s.devfs.kernelNode(`${this.devDir}/mapper/control`, S_IFCHR | 0o600, makedev(MISC_MAJOR, DM_CONTROL_MINOR));
    this.#s.devfs.kernelNode(`${this.devDir}/loop-control`, S_IFCHR | 0o660, makedev(MISC_MAJOR, LOOP_CTRL_MINOR));
    if (this.#s.udevRunning) this.#s.devfs.kernelNode('/run/udev/control', 0o100644, 0n);
    if (this.#s.sysfsOption !== false && this.#s.sysfsRoot === undefined) {
      if (this.#s.sysfsOption === true) {
        this.#s.sysfsRoot = mkdtempSync(join(tmpdir(), 'devmapper-fake-sysfs-'));
        this.#s.ownsSysfs = true;
      } else this.#s.sysfsRoot = this.#s.sysfsOption;
    }
    if (this.#s.sysfsRoot) {
      rmSync(join(this.#s.sysfsRoot, 'block'), { recursive: true, force: true });
      rmSync(join(this.#s.sysfsRoot, 'dev'), { recursive: true, force: true });
      mkdirSync(join(this.#s.sysfsRoot, 'block'), { recursive: true });
    }
    for (let i = 0; i < this.#s.initialLoops; i++) this.#s.loop.add(i);
  }

  /**
   * Drops every piece of kernel state (dm devices, loops, pools, mounts, fds, /dev) and boots
   * afresh; also clears the call log, counters, fault rules, hooks and a crash. Files on the real
   * filesystem (backing files, with any pool metadata committed into them) are left alone.
   */
  reset(): void {
    this.reboot();
    this.#s.calls = [];
    this.#s.callIndex = 0;
    this.#s.rules = [];
    this.#s.hooks.clear();
    this.#s.crash = undefined;
    this.#s.crashed = false;
  }

  /**
   * A machine reboot: kernel state is lost (uncommitted thin metadata too), fds are gone, real
   * files — and the pool metadata committed into them — survive. Logs, rules and hooks stay.
   */
  reboot(): void {
    for (const l of this.#s.loops.values()) if (l.bound) closeQuietly(l.bound.fd);
    for (const fd of this.#s.realFds.keys()) closeQuietly(fd);
    for (const md of this.#s.dm.values()) for (const w of md.waiters) w();
    for (const w of this.#s.globalWaiters) w();
    this.#s.fds.clear();
    this.#s.realFds.clear();
    this.#s.dm.clear();
    this.#s.dmByMinor.clear();
    this.#s.loops.clear();
    this.#s.pools.clear();
    this.#s.memStorage.clear();
    // A filesystem on a real file (a loop backing file, or a thin id in pool metadata kept in
    // one) is on disk and survives the reboot; marks of in-memory devices do not.
    for (const key of [...this.#s.fsMarks.keys()]) if (!key.startsWith('file:') && !key.startsWith('thin:file:')) this.#s.fsMarks.delete(key);
    this.#s.mounts = [];
    this.#s.globalEvent = 0;
    this.#s.globalWaiters.clear();
    this.#s.crashed = false;
    this.#s.crash = undefined;
    this.#boot();
  }

  /** Closes the fake's own backing-file fds and removes a temp sysfs dir it made. */
  dispose(): void {
    for (const l of this.#s.loops.values()) if (l.bound) closeQuietly(l.bound.fd);
    for (const fd of this.#s.realFds.keys()) closeQuietly(fd);
    this.#s.realFds.clear();
    this.#s.loops.clear();
    if (this.#s.ownsSysfs && this.#s.sysfsRoot) rmSync(this.#s.sysfsRoot, { recursive: true, force: true });
  }

  /** Makes /run/udev/control appear or vanish (DmControl's "is udev running" test). */
  setUdevRunning(running: boolean): void {
    this.#s.udevRunning = running;
    const exists = this.#s.devfs.lookup('/run/udev/control') !== undefined;
    if (running && !exists) this.#s.devfs.kernelNode('/run/udev/control', 0o100644, 0n);
    if (!running && exists) this.#s.devfs.unlink('/run/udev/control');
  }

  /** Every syscall made so far (most recent last). */
  get calls(): readonly FakeCall[] {
    return this.#s.calls;
  }

  /** Number of syscalls made so far (= index the next one gets). */
  get callCount(): number {
    return this.#s.callIndex;
  }

  clearCalls(): void {
    this.#s.calls = [];
  }

  /**
   * Fails matching syscalls with `errno` — before they take effect (default) or after.
   * @example fake.failNext({ request: 'DM_DEV_REMOVE', errno: 'EBUSY', times: 3 })
   */
  failNext(rule: FailRule): FailHandle {
    return this.#s.faults.arm(rule);
  }

  /**
   * Arms a crash point: the first `n` syscalls from now succeed, the next one throws
   * {@link SimulatedCrash} — without effect (`when: 'before'`, default) or after the kernel did it
   * (`'after'`) — and so does every syscall after it, until {@link revive}. `crashAfter(null)`
   * disarms.
   */
  crashAfter(n: number | null, options: { when?: 'before' | 'after' } = {}): void {
    this.#s.crash = n === null ? undefined : { at: this.#s.callIndex + n, when: options.when ?? 'before' };
  }

  /** True once a crash point fired (until {@link revive}). */
  get crashed(): boolean {
    return this.#s.crashed;
  }

  /**
   * Ends a simulated crash the way the death of the process would: every fd it had open is closed
   * (autoclear loops detach, deferred removes run), then syscalls work again.
   */
  revive(options: { keepFds?: boolean } = {}): void {
    this.#s.crashed = false;
    this.#s.crash = undefined;
    if (options.keepFds) return;
    for (const fd of [...this.#s.fds.keys()]) this.#s.fds.delete(fd);
    for (const fd of [...this.#s.realFds.keys()]) {
      closeQuietly(fd);
      this.#s.realFds.delete(fd);
    }
    this.#s.block.settle();
  }

  /**
   * Calls `cb` at the start of every syscall with its record (index, syscall, request, path).
   * `cb` may throw (a SimulatedCrash, an IoctlError…) to stop the call. Returns an unsubscribe.
   */
  onCall(cb: (call: FakeCall) => void): () => void {
    this.#s.hooks.add(cb);
    return () => this.#s.hooks.delete(cb);
  }

  /** Every dm device, sorted by name. */
  devices(): FakeDmDeviceInfo[] {
    return [...this.#s.dm.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((md) => ({
        name: md.name,
        uuid: md.uuid,
        major: this.dmMajor,
        minor: md.minor,
        suspended: md.suspended,
        openCount: this.#s.block.openers(md.dev),
        eventNr: md.eventNr,
        deferredRemove: md.deferredRemove,
        readOnly: md.readOnly,
        live: md.live ? this.#s.dmTargets.lines(md.live, true) : null,
        inactive: md.inactive ? this.#s.dmTargets.lines(md.inactive, true) : null,
      }));
  }

  /** One dm device by name, or undefined. */
  device(name: string): FakeDmDeviceInfo | undefined {
    return this.devices().find((d) => d.name === name);
  }

  /**
   * The fake-device fds open now (the dm control node, loop-control, block devices, other fake
   * /dev nodes), by fd number; real files opened through the fake are not listed.
   */
  openFds(): { fd: number; kind: 'dm-control' | 'loop-control' | 'block' | 'other' }[] {
    return [...this.#s.fds].sort(([a], [b]) => a - b).map(([fd, e]) => ({ fd, kind: e.kind }));
  }

  /** Every loop device, by index. */
  loops(): FakeLoopInfo[] {
    return [...this.#s.loops.values()]
      .sort((a, b) => a.index - b.index)
      .map((l) => {
        const base = { index: l.index, path: `${this.devDir}/loop${l.index}`, openCount: this.#s.block.openers(l.dev), bound: l.bound !== null };
        if (!l.bound) return base;
        const b = l.bound;
        return { ...base, backingFile: b.path, offset: b.offset, sizeLimit: b.sizeLimit, flags: b.flags, sizeBytes: b.sizeBytes, blockSize: b.blockSize };
      });
  }

  /** The thin pool whose pool device is `name`, or undefined. */
  pool(name: string): FakePoolInfo | undefined {
    const md = this.#s.dm.get(name);
    const e = md ? this.#s.pools.get(md.minor) : undefined;
    if (!e) return undefined;
    const m = e.model.meta;
    return {
      name,
      transactionId: m.transactionId,
      mode: e.model.mode,
      dataBlockSize: m.dataBlockSize,
      dataBlocks: m.dataBlocks,
      usedDataBlocks: e.model.usedDataBlocks(),
      metadataBlocks: m.metadataBlocks,
      heldRoot: m.heldRoot,
      needsCheck: m.needsCheck,
      thins: new Map([...m.devices].map(([id, map]) => [id, map.size])),
      openThins: [...e.model.openThins].filter(([, n]) => n > 0).map(([id]) => id).sort((a, b) => a - b),
    };
  }

  /** Forces a pool into a mode ('ro', 'fail', 'out_of_data_space', 'rw') or sets needs_check. */
  setPoolMode(name: string, mode: FakePoolMode, options: { needsCheck?: boolean } = {}): void {
    const e = this.#s.dmTargets.poolByName(name);
    e.model.mode = mode;
    if (options.needsCheck !== undefined) e.model.meta.needsCheck = options.needsCheck;
    this.#s.dmIoctl.mdEvent(e.md);
  }

  /** Active mounts, oldest first. */
  mounts(): FakeMount[] {
    return this.#s.mounts.map(({ source, target, fstype, flags, data }) => ({ source, target, fstype, flags, data }));
  }

  /** Marks a mount busy: umount2 without MNT_DETACH then fails EBUSY (an open file inside). */
  setMountBusy(target: string, busy: boolean): void {
    const m = this.#s.mounts.filter((x) => x.target === posix.normalize(target)).pop();
    if (!m) throw new Error(`nothing mounted on ${target}`);
    m.busy = busy;
  }

  /**
   * "Writes" `count` pool data blocks of the thin device `name` (a dm device whose live table is
   * one thin target) starting at block `first`: allocation, CoW after snapshots, low-water and
   * out-of-data-space events as dm-thin does them. Commits afterwards (as an fsync would) unless
   * `commit: false`.
   * @throws FakeIoError ENOSPC when the pool runs out of data space, EIO past the device end
   */
  writeThin(name: string, first: number, count = 1, options: { commit?: boolean } = {}): void {
    const { entry, id, md } = this.#s.dmTargets.thinByName(name);
    const bs = BigInt(entry.model.meta.dataBlockSize);
    if (BigInt(first + count) * bs > tableSectors(md.live)) throw new FakeIoError('EIO', `write past the end of ${name}`);
    try {
      entry.model.write(id, first, count);
    } finally {
      if (options.commit !== false) entry.model.commit();
    }
  }

  /** Discards (unmaps) `count` blocks of thin device `name` from block `first`. */
  discardThin(name: string, first: number, count = 1): void {
    const { entry, id } = this.#s.dmTargets.thinByName(name);
    entry.model.discard(id, first, count);
    entry.model.commit();
  }

  /**
   * Puts a filesystem signature on a device (what mkfs would): `mountAsync` of the device then
   * works with that fstype. On a thin device the mark lives in the pool metadata, so snapshots
   * taken later carry it too. `device` is a /dev path or a dm name.
   */
  mkfs(device: string, fstype = 'ext4'): void {
    this.#s.fsMarks.set(this.#s.fs.markKey(this.#s.fs.devOfSpec(device)), fstype);
  }

  /**
   * The filesystem a mkfs mark says `device` holds (what a superblock probe would find), or null.
   * @throws ENOENT/ENXIO-like FakeIoError when the device does not exist (as open(2) would).
   */
  filesystemOf(device: string): string | null {
    if (this.#s.crashed) throw new SimulatedCrash(-1, 'before', 'probe after death');
    let dev: bigint;
    try {
      dev = this.#s.fs.devOfSpec(device);
    } catch (err) {
      throw kerr('ENOENT', String(err));
    }
    return this.#s.fsMarks.get(this.#s.fs.markKey(dev)) ?? null;
  }

  // -------------------------------------------------------------------------------------------
  // Syscalls

  open(path: string, flags: number, mode = 0): number {
    return this.#s.faults.syncCall({ syscall: 'open', path }, () => this.#open(path, flags, mode));
  }

  close(fd: number): void {
    this.#s.faults.syncCall({ syscall: 'close', fd }, () => this.#close(fd));
  }

  ioctl(fd: number, request: number, arg: IoctlArg, requestName: string): number {
    return this.#s.faults.syncCall(
      { syscall: 'ioctl', fd, request: requestName },
      () => {
        const r = this.#ioctl(fd, request, arg);
        if (typeof r === 'number') return r;
        // Only DM_DEV_WAIT can block; a synchronous caller would hang forever in the kernel.
        r.catch(() => {});
        throw kerr('EINTR', 'synchronous DM_DEV_WAIT would block (use ioctlAsync)');
      },
      requestNameOf(request, requestName),
    );
  }

  ioctlAsync(fd: number, request: number, arg: IoctlArg, requestName: string): Promise<number> {
    return this.#s.faults.asyncCall({ syscall: 'ioctl', fd, request: requestName }, () => this.#ioctl(fd, request, arg), requestNameOf(request, requestName));
  }

  fstat(fd: number): StatResult {
    return this.#s.faults.syncCall({ syscall: 'fstat', fd }, () => {
      const e = this.#s.fds.get(fd);
      if (e) {
        if (e.kind === 'dm-control') return { ...this.#nodeStat(makedev(MISC_MAJOR, DM_CONTROL_MINOR), S_IFCHR | 0o600) };
        if (e.kind === 'loop-control') return { ...this.#nodeStat(makedev(MISC_MAJOR, LOOP_CTRL_MINOR), S_IFCHR | 0o660) };
        if (e.kind === 'block') return this.#nodeStat(e.dev, S_IFBLK | 0o660);
        return this.#s.devfs.stat(e.path);
      }
      if (!this.#s.realFds.has(fd)) throw kerr('EBADF');
      return realStat(() => fstatSync(fd, { bigint: true }));
    });
  }

  #nodeStat(rdev: bigint, mode: number): StatResult {
    return { dev: 5n, ino: 1n, rdev, mode, size: 0n, blocks: 0n };
  }

  stat(path: string): StatResult {
    return this.#s.faults.syncCall({ syscall: 'stat', path }, () => this.#stat(path));
  }

  /** The same stat, through the fault boundary's asynchronous side (what the real seam runs on a worker). */
  statAsync(path: string): Promise<StatResult> {
    return this.#s.faults.asyncCall({ syscall: 'stat', path }, () => this.#stat(path));
  }

  #stat(path: string): StatResult {
    if (this.#s.devfs.owns(path)) return this.#s.devfs.stat(path);
    return realStat(() => statSync(path, { bigint: true }));
  }

  lstat(path: string): StatResult {
    return this.#s.faults.syncCall({ syscall: 'lstat', path }, () => {
      if (this.#s.devfs.owns(path)) return this.#s.devfs.lstat(path);
      return realStat(() => lstatSync(path, { bigint: true }));
    });
  }

  mknod(path: string, mode: number, dev: bigint): void {
    this.#s.faults.syncCall({ syscall: 'mknod', path }, () => {
      if (!this.#s.devfs.owns(path)) throw kerr('EPERM', 'the fake only makes nodes under its /dev');
      this.#s.devfs.mknod(path, mode, dev);
    });
  }

  unlink(path: string): void {
    this.#s.faults.syncCall({ syscall: 'unlink', path }, () => {
      if (this.#s.devfs.owns(path)) return this.#s.devfs.unlink(path);
      realCall(() => rmSync(path));
    });
  }

  rename(from: string, to: string): void {
    this.#s.faults.syncCall({ syscall: 'rename', path: from, dest: to }, () => {
      const a = this.#s.devfs.owns(from);
      const b = this.#s.devfs.owns(to);
      if (a !== b) throw kerr('EXDEV');
      if (a) return this.#s.devfs.rename(from, to);
      realCall(() => renameSync(from, to));
    });
  }

  mkdir(path: string, mode: number): void {
    this.#s.faults.syncCall({ syscall: 'mkdir', path }, () => {
      if (this.#s.devfs.owns(path)) return this.#s.devfs.mkdir(path, mode);
      realCall(() => mkdirSync(path, { mode }));
    });
  }

  fsync(fd: number): void {
    this.#s.faults.syncCall({ syscall: 'fsync', fd }, () => {
      if (this.#s.fds.has(fd)) return;
      if (!this.#s.realFds.has(fd)) throw kerr('EBADF');
      realCall(() => fsyncSync(fd));
    });
  }

  /**
   * flock(2). On a real file (every path outside the fake /dev) this is the real flock(2) on the
   * real fd, so two FakeKernels — in one process or in two — exclude each other exactly as the
   * kernel makes two processes do (fs/locks.c: the lock belongs to the open file description).
   * {@link revive} and {@link reboot} close the real fds of the "dead process", which drops its
   * locks as the kernel does at exit. On fds of fake devices: EINVAL (not modelled).
   */
  flock(fd: number, operation: number): void {
    this.#s.faults.syncCall({ syscall: 'flock', fd }, () => {
      if (this.#s.fds.has(fd)) throw kerr('EINVAL', 'the fake models flock on real files only');
      if (!this.#s.realFds.has(fd)) throw kerr('EBADF');
      try {
        realSyscalls().flock(fd, operation);
      } catch (e) {
        if (e instanceof IoctlError) throw kerr(e.code, e.message);
        throw e;
      }
    });
  }

  mountAsync(source: string, target: string, fstype: string, flags: bigint, data: string | null): Promise<void> {
    return this.#s.faults.asyncCall({ syscall: 'mount', path: source, dest: target }, () => this.#s.fs.mount(source, target, fstype, flags, data));
  }

  umount2Async(target: string, flags: number): Promise<void> {
    return this.#s.faults.asyncCall({ syscall: 'umount2', path: target }, () => this.#s.fs.umount(target, flags));
  }

  pollAsync(fd: number, events: number, timeoutMs: number): Promise<number> {
    return this.#s.faults.asyncCall({ syscall: 'poll', fd }, () => this.#poll(fd, events, timeoutMs));
  }

  /**
   * Batches run inline, step by step through {@link ioctl} (so faults, crash points and the call
   * log see each step as a call of its own), stopping at the first failure as the real worker does.
   */
  openBatch(): IoctlBatcher {
    return inlineBatcher(this);
  }

  // -------------------------------------------------------------------------------------------
  // Path routing: open (char/block nodes of the fake /dev, else real files), close, ioctl

  #open(path: string, flags: number, mode: number): number {
    if (!this.#s.devfs.owns(path)) {
      const fd = realCall(() => openSync(path, flags, mode));
      this.#s.realFds.set(fd, { path, flags });
      return fd;
    }
    if (flags & O_CREAT && !this.#s.devfs.lookup(path)) {
      this.#s.devfs.mknod(path, 0o100000 | (mode & 0o7777), 0n);
    }
    const { node } = this.#s.devfs.resolve(path);
    const type = node.mode & S_IFMT;
    const write = (flags & O_ACCMODE) === O_WRONLY || (flags & O_ACCMODE) === O_RDWR;
    let entry: FdEntry;
    if (type === S_IFCHR) {
      if (node.rdev === makedev(MISC_MAJOR, DM_CONTROL_MINOR)) entry = { kind: 'dm-control', armed: this.#s.globalEvent };
      else if (node.rdev === makedev(MISC_MAJOR, LOOP_CTRL_MINOR)) entry = { kind: 'loop-control' };
      else throw kerr('ENXIO', `no driver for char device ${fmtDev(node.rdev)}`);
    } else if (type === S_IFBLK) {
      const dev = node.rdev;
      this.#s.block.checkOpen(dev, write, (flags & O_EXCL) !== 0);
      entry = { kind: 'block', dev, write, path };
    } else if (type === S_IFDIR) {
      if (write) throw kerr('EISDIR', path);
      entry = { kind: 'other', path };
    } else entry = { kind: 'other', path };
    const fd = this.#s.nextFd++;
    this.#s.fds.set(fd, entry);
    return fd;
  }

  #close(fd: number): void {
    if (this.#s.fds.delete(fd)) {
      this.#s.block.settle();
      return;
    }
    if (!this.#s.realFds.has(fd)) throw kerr('EBADF');
    this.#s.realFds.delete(fd);
    realCall(() => closeSync(fd));
  }

  #ioctl(fd: number, request: number, arg: IoctlArg): number | Promise<number> {
    const e = this.#s.fds.get(fd);
    if (!e) {
      if (this.#s.realFds.has(fd)) throw kerr('ENOTTY', 'ioctl on a regular file');
      throw kerr('EBADF');
    }
    switch (e.kind) {
      case 'dm-control':
        return this.#s.dmIoctl.ctlIoctl(e, request >>> 0, arg);
      case 'loop-control':
        return this.#s.loop.control(request >>> 0, arg);
      case 'block':
        return this.#s.block.ioctl(e, request >>> 0, arg);
      default:
        throw kerr('ENOTTY');
    }
  }

  #poll(fd: number, events: number, timeoutMs: number): number | Promise<number> {
    const e = this.#s.fds.get(fd);
    if (!e) return this.#s.realFds.has(fd) ? events & (POLLIN | POLLOUT) : POLLNVAL;
    if (e.kind !== 'dm-control') return events & (POLLIN | POLLOUT);
    return this.#s.dmIoctl.poll(e, events, timeoutMs);
  }
}
