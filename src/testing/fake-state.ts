// SPDX-License-Identifier: MIT
// The FakeKernel's shared state: what the kernel keeps about dm devices (struct mapped_device,
// dm_table, dm_target), loop devices (struct loop_device), thin pools, mounts and open files, in
// one object every handler (fake-dm-ioctl.ts, fake-dm-targets.ts, fake-loop.ts, fake-block.ts,
// fake-mounts.ts, fake-sysfs.ts, fake-faults.ts) reads and changes.
import { closeSync } from 'node:fs';
import { major as devMajor, minor as devMinor, type IoctlArg, type StatResult } from '../ioctl/index.js';
import type { Devfs } from './devfs.js';
import { kerr } from './errors.js';
import type { PoolFeatures, ThinMetadata, ThinPoolModel } from './thin-model.js';
import type { FailHandle, FailRule, FakeCall, FakeMount, FakeTableLine } from './fake-types.js';

// ---------------------------------------------------------------------------------------------
// Internal model

export const O_ACCMODE = 3;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const FAKE_FD_BASE = 1_000_000;
export const LOOP_MAJOR = 7;
export const MISC_MAJOR = 10;
export const DM_CONTROL_MINOR = 236;
export const LOOP_CTRL_MINOR = 237;
export const SECTOR = 512n;
export const MINORBITS_MAX = 1 << 20;

export type TargetKind =
  | { kind: 'linear'; dev: bigint; offset: bigint }
  | { kind: 'zero' }
  | { kind: 'error' }
  | {
      kind: 'thin-pool';
      metaDev: bigint;
      dataDev: bigint;
      blockSize: number;
      lowWater: bigint;
      features: PoolFeatures;
    }
  | { kind: 'thin'; poolDev: bigint; id: number; origin: bigint | null };

export interface FakeTarget {
  start: bigint;
  length: bigint;
  type: string;
  impl: TargetKind;
}

export interface FakeTable {
  targets: FakeTarget[];
  readOnly: boolean;
  /** Devices the table holds open, most recently added first (dm_table.devices order). */
  devices: bigint[];
}

export interface DmDev {
  name: string;
  uuid: string | null;
  minor: number;
  dev: bigint;
  live: FakeTable | null;
  inactive: FakeTable | null;
  suspended: boolean;
  eventNr: number;
  deferredRemove: boolean;
  /** The gendisk is registered (first TABLE_LOAD, Linux ≥ 5.15): /dev/dm-N exists, opens work. */
  diskAdded: boolean;
  readOnly: boolean;
  waiters: Set<() => void>;
}

export interface LoopBinding {
  /** Canonical path of the backing file (sysfs loop/backing_file). */
  path: string;
  /** The fake's own real fd on the file (the kernel's reference). */
  fd: number;
  fileDev: bigint;
  fileIno: bigint;
  offset: bigint;
  sizeLimit: bigint;
  flags: number;
  fileName: string;
  blockSize: number;
  sizeBytes: bigint;
}

export interface LoopDev {
  index: number;
  dev: bigint;
  bound: LoopBinding | null;
}

export interface PoolEntry {
  model: ThinPoolModel;
  md: DmDev;
  metaDev: bigint;
  dataDev: bigint;
}

export type FdEntry =
  | { kind: 'dm-control'; armed: number }
  | { kind: 'loop-control' }
  | { kind: 'block'; dev: bigint; write: boolean; path: string }
  | { kind: 'other'; path: string };

export interface RealFd {
  path: string;
  flags: number;
}

export interface ArmedRule extends FailRule {
  left: number;
  skipLeft: number;
}

export interface MountEntry extends FakeMount {
  dev: bigint;
  busy: boolean;
}

export function fmtDev(dev: bigint): string {
  return `${devMajor(dev)}:${devMinor(dev)}`;
}

export function tableSectors(t: FakeTable | null): bigint {
  const last = t?.targets[t.targets.length - 1];
  return last ? last.start + last.length : 0n;
}

/** Runs a node:fs call, turning its error into the errno the seam reports. */
export function realCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) throw kerr(code, (e as Error).message);
    throw e;
  }
}

export function realStat(fn: () => import('node:fs').BigIntStats): StatResult {
  const st = realCall(fn);
  return { dev: st.dev, ino: st.ino, rdev: st.rdev, mode: Number(st.mode), size: st.size, blocks: st.blocks };
}

/** Closes one of the fake's own real fds, ignoring EBADF (already closed). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

/** Options the handlers read (fixed at construction). */
export interface FakeStateOptions {
  readonly dmVersion: readonly [number, number, number];
  readonly dmMajor: number;
  readonly devDir: string;
  readonly initialLoops: number;
  readonly sysfsOption: string | boolean;
  readonly udevRunning: boolean;
  readonly rejectReserved: boolean;
}

// ---------------------------------------------------------------------------------------------
// What one handler calls on another. Each handler class implements its interface here, so the
// handler files import this file and never each other (no import cycle through FakeState).

/** fake-faults.ts: the syscall boundary (call log, hooks, failNext rules, crash points). */
export interface FaultsPort {
  arm(rule: FailRule): FailHandle;
  syncCall<T>(info: Omit<FakeCall, 'index'>, fn: () => T, names?: readonly string[]): T;
  asyncCall<T>(info: Omit<FakeCall, 'index'>, fn: () => T | Promise<T>, names?: readonly string[]): Promise<T>;
}

/** fake-dm-ioctl.ts: ctl_ioctl and the DM_* commands (drivers/md/dm-ioctl.c). */
export interface DmIoctlPort {
  ctlIoctl(fdState: { armed: number }, request: number, arg: IoctlArg): number | Promise<number>;
  mdEvent(md: DmDev): void;
  removeDm(md: DmDev): void;
  poll(e: { armed: number }, events: number, timeoutMs: number): number | Promise<number>;
}

/** fake-dm-targets.ts: the target types (dm-linear.c, dm-thin.c …). */
export interface DmTargetsPort {
  tableText(x: FakeTarget): string;
  statusText(md: DmDev, x: FakeTarget, noflush: boolean): string;
  poolMessage(e: PoolEntry, argv: string[]): void;
  construct(md: DmDev, type: string, params: string, length: bigint, table: FakeTable): TargetKind;
  metadataBlocksOf(dev: bigint): number;
  releaseTargets(targets: readonly FakeTarget[]): void;
  releaseTable(md: DmDev, t: FakeTable, settle?: boolean): void;
  dropPoolIfUnused(md: DmDev): void;
  lines(t: FakeTable, table: boolean): FakeTableLine[];
  poolByName(name: string): PoolEntry;
  thinByName(name: string): { entry: PoolEntry; id: number; md: DmDev };
}

/** fake-loop.ts: loop-control and lo_ioctl (drivers/block/loop.c). */
export interface LoopPort {
  control(request: number, arg: IoctlArg): number;
  add(index: number): void;
  ioctl(l: LoopDev, e: { dev: bigint; write: boolean }, request: number, arg: IoctlArg): number;
  unbind(l: LoopDev): void;
}

/** fake-block.ts: block devices (block/bdev.c, block/ioctl.c) and their storage. */
export interface BlockPort {
  checkOpen(dev: bigint, write: boolean, excl: boolean): void;
  openers(dev: bigint): number;
  settle(): void;
  mdOf(dev: bigint): DmDev | undefined;
  loopOf(dev: bigint): LoopDev | undefined;
  storageKey(dev: bigint): string;
  readStorage(dev: bigint, len: number): Buffer;
  persistMetadata(dev: bigint, m: ThinMetadata): void;
  sizeBytes(dev: bigint): bigint;
  ioctl(e: { dev: bigint; write: boolean }, request: number, arg: IoctlArg): number;
}

/** fake-mounts.ts: mount(2) and umount2(2). */
export interface MountsPort {
  devOfSpec(spec: string): bigint;
  markKey(dev: bigint): string;
  mount(source: string, target: string, fstype: string, flags: bigint, data: string | null): void;
  umount(target: string, flags: number): void;
}

/** fake-sysfs.ts: /sys/block entries of loop and dm devices. */
export interface SysfsPort {
  loop(l: LoopDev, removed?: boolean): void;
  dm(md: DmDev, removed?: boolean): void;
}

/**
 * Everything the fake kernel knows, shared by the handlers. The handlers themselves hang off it
 * too (wired by FakeKernel's constructor) so one can call another: `s.block.settle()`.
 */
export class FakeState {
  readonly dmVersion: readonly [number, number, number];
  readonly dmMajor: number;
  readonly devDir: string;
  readonly initialLoops: number;
  readonly sysfsOption: string | boolean;
  sysfsRoot: string | undefined;
  ownsSysfs = false;
  udevRunning: boolean;
  readonly rejectReserved: boolean;

  devfs!: Devfs;
  fds = new Map<number, FdEntry>();
  realFds = new Map<number, RealFd>();
  nextFd = FAKE_FD_BASE;
  dm = new Map<string, DmDev>();
  dmByMinor = new Map<number, DmDev>();
  loops = new Map<number, LoopDev>();
  pools = new Map<number, PoolEntry>();
  memStorage = new Map<string, Buffer>();
  fsMarks = new Map<string, string>();
  mounts: MountEntry[] = [];
  globalEvent = 0;
  globalWaiters = new Set<() => void>();

  calls: FakeCall[] = [];
  callIndex = 0;
  rules: ArmedRule[] = [];
  hooks = new Set<(call: FakeCall) => void>();
  crash: { at: number; when: 'before' | 'after' } | undefined;
  crashed = false;

  faults!: FaultsPort;
  dmIoctl!: DmIoctlPort;
  dmTargets!: DmTargetsPort;
  loop!: LoopPort;
  block!: BlockPort;
  fs!: MountsPort;
  sysfs!: SysfsPort;

  constructor(o: FakeStateOptions) {
    this.dmVersion = o.dmVersion;
    this.dmMajor = o.dmMajor;
    this.devDir = o.devDir;
    this.initialLoops = o.initialLoops;
    this.sysfsOption = o.sysfsOption;
    this.udevRunning = o.udevRunning;
    this.rejectReserved = o.rejectReserved;
  }
}
