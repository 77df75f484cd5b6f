// SPDX-License-Identifier: MIT
// FakeKernel: an in-process stand-in for the Linux kernel behind the `Syscalls` seam. It decodes
// the request buffers DmControl and LoopControl really send (with the src/ioctl layouts, never a
// parallel encoding) and answers with the state changes, payloads and errnos of
// drivers/md/dm-ioctl.c, drivers/md/dm-thin.c, drivers/block/loop.c and block/ioctl.c.
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
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import {
  BLKDISCARD,
  BLKFLSBUF,
  BLKGETSIZE64,
  BLKSSZGET,
  DM_ACTIVE_PRESENT_FLAG,
  DM_BUFFER_FULL_FLAG,
  DM_COMMANDS,
  DM_DATA_OUT_FLAG,
  DM_DEFERRED_REMOVE,
  DM_DEV_ARM_POLL_CMD,
  DM_DEV_CREATE_CMD,
  DM_DEV_REMOVE_CMD,
  DM_DEV_RENAME_CMD,
  DM_DEV_SET_GEOMETRY_CMD,
  DM_DEV_STATUS_CMD,
  DM_DEV_SUSPEND_CMD,
  DM_DEV_WAIT_CMD,
  DM_GET_TARGET_VERSION_CMD,
  DM_INACTIVE_PRESENT_FLAG,
  DM_INTERNAL_SUSPEND_FLAG,
  DM_IOCTL,
  DM_IOCTL_DATA_OFFSET,
  DM_IOCTL_SIZE,
  DM_LIST_DEVICES_CMD,
  DM_LIST_VERSIONS_CMD,
  DM_NAME_LEN,
  DM_NOFLUSH_FLAG,
  DM_PERSISTENT_DEV_FLAG,
  DM_QUERY_INACTIVE_TABLE_FLAG,
  DM_READONLY_FLAG,
  DM_REMOVE_ALL_CMD,
  DM_SECURE_DATA_FLAG,
  DM_STATUS_TABLE_FLAG,
  DM_SUSPEND_FLAG,
  DM_TABLE_CLEAR_CMD,
  DM_TABLE_DEPS_CMD,
  DM_TABLE_LOAD_CMD,
  DM_TABLE_STATUS_CMD,
  DM_TARGET_MSG_CMD,
  DM_TARGET_SPEC_SIZE,
  DM_UEVENT_GENERATED_FLAG,
  DM_UUID_FLAG,
  DM_UUID_LEN,
  DM_VERSION_CMD,
  LOOP_CLR_FD,
  LOOP_CONFIGURE,
  LOOP_CONFIGURE_SETTABLE_FLAGS,
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
  LOOP_SET_STATUS_CLEARABLE_FLAGS,
  LOOP_SET_STATUS_SETTABLE_FLAGS,
  LO_CRYPT_NONE,
  LO_FLAGS_AUTOCLEAR,
  LO_FLAGS_DIRECT_IO,
  LO_FLAGS_PARTSCAN,
  LO_FLAGS_READ_ONLY,
  LO_KEY_SIZE,
  MNT_DETACH,
  MNT_EXPIRE,
  MNT_FORCE,
  MS_BIND,
  MS_RDONLY,
  MS_REMOUNT,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  decodeDmIoctl,
  decodeLoopConfig,
  decodeLoopInfo64,
  dmRequestName,
  encodeDmIoctl,
  encodeLoopInfo64,
  encodeNameList,
  encodeTargetDeps,
  encodeTargetSpecs,
  encodeTargetVersions,
  huge_decode_dev,
  huge_encode_dev,
  major as devMajor,
  makedev,
  minor as devMinor,
  readCString,
  walkTargetSpecs,
  type IoctlArg,
  type RawDmIoctl,
  type StatResult,
  type SyscallName,
  type Syscalls,
} from '../ioctl/index.js';
import { Devfs } from './devfs.js';
import { FakeIoError, KernelErrno, SimulatedCrash, kerr, seamError } from './errors.js';
import {
  THIN_MAX_DEV_ID,
  THIN_METADATA_BLOCK_BYTES,
  THIN_METADATA_MAX_BLOCKS,
  ThinPoolModel,
  cloneMetadata,
  emptyMetadata,
  parseMetadata,
  poolFeatureText,
  serializeMetadata,
  type FakePoolMode,
  type PoolFeatures,
  type ThinMetadata,
} from './thin-model.js';

// ---------------------------------------------------------------------------------------------
// Public types

/** Options of {@link FakeKernel}. */
export interface FakeKernelOptions {
  /** dm ioctl interface version the fake speaks. Default 4.47.0. */
  readonly dmVersion?: readonly [number, number, number];
  /** Block major of dm devices. Default 253. */
  readonly dmMajor?: number;
  /** Where the fake /dev lives. Default '/dev'. */
  readonly devDir?: string;
  /** loop0…loopN-1 exist at boot (CONFIG_BLK_DEV_LOOP_MIN_COUNT). Default 8. */
  readonly initialLoops?: number;
  /**
   * Keep a sysfs tree (block/loopN/…, block/dm-N/…) in this real directory, for LoopControl's
   * `sysfsRoot`; `true` makes a temp dir (removed by {@link FakeKernel.dispose}). Default: none.
   */
  readonly sysfs?: string | boolean;
  /** Pretend udev runs (/run/udev/control exists). Default false. */
  readonly udevRunning?: boolean;
  /**
   * Refuse the names 'control', '.' and '..' on create/rename (EINVAL), as kernels newer than 6.1
   * do. Default false: Linux 6.1 (dm ioctl 4.47, the VM's kernel) accepts them; only '/' is refused.
   */
  readonly rejectReservedNames?: boolean;
}

/** One recorded syscall. */
export interface FakeCall {
  /** 0-based, counted over the FakeKernel's life (reset() restarts it). */
  readonly index: number;
  readonly syscall: SyscallName;
  /** C request name for ioctls ('DM_DEV_REMOVE'). */
  readonly request?: string;
  readonly fd?: number;
  readonly path?: string;
  readonly dest?: string;
  /** 'ok', an errno name, or 'crash'. Set when the call ends (undefined while a DEV_WAIT blocks). */
  result?: string;
}

/** A scripted failure: see {@link FakeKernel.failNext}. */
export interface FailRule {
  /** Match an ioctl by C request name ('DM_DEV_REMOVE', 'LOOP_CONFIGURE', 'BLKDISCARD'). */
  readonly request?: string;
  /** Match a syscall ('open', 'mount'…). Default: any (or 'ioctl' when `request` is given). */
  readonly syscall?: SyscallName;
  /** Match the path argument: exact string or RegExp. */
  readonly path?: string | RegExp;
  /** Errno name to fail with ('EBUSY'). */
  readonly errno: string;
  /** How many matching calls fail. Default 1. */
  readonly times?: number;
  /** Matching calls to let through before failing. Default 0. */
  readonly skip?: number;
  /**
   * 'before' (default): the call fails without effect. 'after': the kernel carries it out and the
   * caller still gets the errno (an interrupted-but-done operation).
   */
  readonly when?: 'before' | 'after';
}

/** Handle of an armed rule. */
export interface FailHandle {
  /** Failures left to inject. */
  readonly remaining: number;
  cancel(): void;
}

/** Introspection of one dm device. */
export interface FakeDmDeviceInfo {
  readonly name: string;
  readonly uuid: string | null;
  readonly major: number;
  readonly minor: number;
  readonly suspended: boolean;
  readonly openCount: number;
  readonly eventNr: number;
  readonly deferredRemove: boolean;
  readonly readOnly: boolean;
  /** Live table lines as loaded (params as the kernel normalised them), or null. */
  readonly live: FakeTableLine[] | null;
  readonly inactive: FakeTableLine[] | null;
}

export interface FakeTableLine {
  readonly start: bigint;
  readonly length: bigint;
  readonly type: string;
  readonly params: string;
}

/** Introspection of one loop device. */
export interface FakeLoopInfo {
  readonly index: number;
  readonly path: string;
  readonly openCount: number;
  readonly bound: boolean;
  readonly backingFile?: string;
  readonly offset?: bigint;
  readonly sizeLimit?: bigint;
  readonly flags?: number;
  readonly sizeBytes?: bigint;
  readonly blockSize?: number;
}

/** Introspection of a thin pool. */
export interface FakePoolInfo {
  readonly name: string;
  readonly transactionId: bigint;
  readonly mode: FakePoolMode;
  readonly dataBlockSize: number;
  readonly dataBlocks: number;
  readonly usedDataBlocks: number;
  readonly metadataBlocks: number;
  readonly heldRoot: bigint | null;
  readonly needsCheck: boolean;
  /** Thin ids with their mapped block counts. */
  readonly thins: ReadonlyMap<number, number>;
  /** Thin ids currently opened by thin targets. */
  readonly openThins: readonly number[];
}

/** A mount made through the fake. */
export interface FakeMount {
  readonly source: string;
  readonly target: string;
  readonly fstype: string;
  readonly flags: bigint;
  readonly data: string | null;
}

// ---------------------------------------------------------------------------------------------
// Internal model

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const FAKE_FD_BASE = 1_000_000;
const LOOP_MAJOR = 7;
const MISC_MAJOR = 10;
const DM_CONTROL_MINOR = 236;
const LOOP_CTRL_MINOR = 237;
const SECTOR = 512n;
const MINORBITS_MAX = 1 << 20;

/** Target types the fake constructs, with the versions it reports (those of Linux 6.1). */
const TARGET_TYPES: readonly { name: string; version: [number, number, number] }[] = [
  { name: 'thin-pool', version: [1, 23, 0] },
  { name: 'thin', version: [1, 23, 0] },
  { name: 'zero', version: [1, 2, 0] },
  { name: 'error', version: [1, 6, 0] },
  { name: 'linear', version: [1, 4, 0] },
];

type TargetKind =
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

interface FakeTarget {
  start: bigint;
  length: bigint;
  type: string;
  impl: TargetKind;
}

interface FakeTable {
  targets: FakeTarget[];
  readOnly: boolean;
  /** Devices the table holds open, most recently added first (dm_table.devices order). */
  devices: bigint[];
}

interface DmDev {
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

interface LoopBinding {
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

interface LoopDev {
  index: number;
  dev: bigint;
  bound: LoopBinding | null;
}

interface PoolEntry {
  model: ThinPoolModel;
  md: DmDev;
  metaDev: bigint;
  dataDev: bigint;
}

type FdEntry =
  | { kind: 'dm-control'; armed: number }
  | { kind: 'loop-control' }
  | { kind: 'block'; dev: bigint; write: boolean; path: string }
  | { kind: 'other'; path: string };

interface RealFd {
  path: string;
  flags: number;
}

interface ArmedRule extends FailRule {
  left: number;
  skipLeft: number;
}

interface MountEntry extends FakeMount {
  dev: bigint;
  busy: boolean;
}

/** Request names by number for the non-dm requests the fake knows (for fault matching). */
const OTHER_REQUESTS = new Map<number, string>([
  [LOOP_SET_FD, 'LOOP_SET_FD'],
  [LOOP_CLR_FD, 'LOOP_CLR_FD'],
  [LOOP_SET_STATUS64, 'LOOP_SET_STATUS64'],
  [LOOP_GET_STATUS64, 'LOOP_GET_STATUS64'],
  [LOOP_SET_CAPACITY, 'LOOP_SET_CAPACITY'],
  [LOOP_SET_DIRECT_IO, 'LOOP_SET_DIRECT_IO'],
  [LOOP_SET_BLOCK_SIZE, 'LOOP_SET_BLOCK_SIZE'],
  [LOOP_CONFIGURE, 'LOOP_CONFIGURE'],
  [LOOP_CTL_ADD, 'LOOP_CTL_ADD'],
  [LOOP_CTL_REMOVE, 'LOOP_CTL_REMOVE'],
  [LOOP_CTL_GET_FREE, 'LOOP_CTL_GET_FREE'],
  [BLKGETSIZE64, 'BLKGETSIZE64'],
  [BLKSSZGET, 'BLKSSZGET'],
  [BLKFLSBUF, 'BLKFLSBUF'],
  [BLKDISCARD, 'BLKDISCARD'],
]);

function requestNameOf(request: number, given: string): string[] {
  const names = new Set<string>([given]);
  const dm = dmRequestName(request);
  if (!dm.startsWith('0x')) names.add(dm);
  const other = OTHER_REQUESTS.get(request >>> 0);
  if (other) names.add(other);
  return [...names];
}

/** dm_split_args: whitespace-separated words, `\` escapes the next character. */
function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

const isUint = (s: string | undefined): s is string => s !== undefined && /^\d+$/.test(s);

function fmtDev(dev: bigint): string {
  return `${devMajor(dev)}:${devMinor(dev)}`;
}

function tableSectors(t: FakeTable | null): bigint {
  const last = t?.targets[t.targets.length - 1];
  return last ? last.start + last.length : 0n;
}

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
  readonly #initialLoops: number;
  readonly #sysfsOption: string | boolean;
  #sysfsRoot: string | undefined;
  #ownsSysfs = false;
  #udevRunning: boolean;
  readonly #rejectReserved: boolean;

  #devfs!: Devfs;
  #fds = new Map<number, FdEntry>();
  #realFds = new Map<number, RealFd>();
  #nextFd = FAKE_FD_BASE;
  #dm = new Map<string, DmDev>();
  #dmByMinor = new Map<number, DmDev>();
  #loops = new Map<number, LoopDev>();
  #pools = new Map<number, PoolEntry>();
  #memStorage = new Map<string, Buffer>();
  #fsMarks = new Map<string, string>();
  #mounts: MountEntry[] = [];
  #globalEvent = 0;
  #globalWaiters = new Set<() => void>();

  #calls: FakeCall[] = [];
  #callIndex = 0;
  #rules: ArmedRule[] = [];
  #hooks = new Set<(call: FakeCall) => void>();
  #crash: { at: number; when: 'before' | 'after' } | undefined;
  #crashed = false;

  constructor(options: FakeKernelOptions = {}) {
    this.dmVersion = options.dmVersion ?? [4, 47, 0];
    this.dmMajor = options.dmMajor ?? 253;
    this.devDir = (options.devDir ?? '/dev').replace(/\/+$/, '') || '/dev';
    this.#initialLoops = options.initialLoops ?? 8;
    this.#sysfsOption = options.sysfs ?? false;
    this.#udevRunning = options.udevRunning ?? false;
    this.#rejectReserved = options.rejectReservedNames ?? false;
    this.#boot();
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle, introspection, fault injection

  /** The fake sysfs root (for LoopControl's `sysfsRoot`), when enabled. */
  get sysfsRoot(): string | undefined {
    return this.#sysfsRoot;
  }

  #boot(): void {
    this.#devfs = new Devfs([this.devDir, '/run/udev']);
    this.#devfs.mkdir(`${this.devDir}/mapper`, 0o755);
    this.#devfs.kernelNode(`${this.devDir}/mapper/control`, S_IFCHR | 0o600, makedev(MISC_MAJOR, DM_CONTROL_MINOR));
    this.#devfs.kernelNode(`${this.devDir}/loop-control`, S_IFCHR | 0o660, makedev(MISC_MAJOR, LOOP_CTRL_MINOR));
    if (this.#udevRunning) this.#devfs.kernelNode('/run/udev/control', 0o100644, 0n);
    if (this.#sysfsOption !== false && this.#sysfsRoot === undefined) {
      if (this.#sysfsOption === true) {
        this.#sysfsRoot = mkdtempSync(join(tmpdir(), 'devmapper-fake-sysfs-'));
        this.#ownsSysfs = true;
      } else this.#sysfsRoot = this.#sysfsOption;
    }
    if (this.#sysfsRoot) {
      rmSync(join(this.#sysfsRoot, 'block'), { recursive: true, force: true });
      mkdirSync(join(this.#sysfsRoot, 'block'), { recursive: true });
    }
    for (let i = 0; i < this.#initialLoops; i++) this.#addLoop(i);
  }

  /**
   * Drops every piece of kernel state (dm devices, loops, pools, mounts, fds, /dev) and boots
   * afresh; also clears the call log, counters, fault rules, hooks and a crash. Files on the real
   * filesystem (backing files, with any pool metadata committed into them) are left alone.
   */
  reset(): void {
    this.reboot();
    this.#calls = [];
    this.#callIndex = 0;
    this.#rules = [];
    this.#hooks.clear();
    this.#crash = undefined;
    this.#crashed = false;
  }

  /**
   * A machine reboot: kernel state is lost (uncommitted thin metadata too), fds are gone, real
   * files — and the pool metadata committed into them — survive. Logs, rules and hooks stay.
   */
  reboot(): void {
    for (const l of this.#loops.values()) if (l.bound) this.#closeQuietly(l.bound.fd);
    for (const fd of this.#realFds.keys()) this.#closeQuietly(fd);
    for (const md of this.#dm.values()) for (const w of md.waiters) w();
    for (const w of this.#globalWaiters) w();
    this.#fds.clear();
    this.#realFds.clear();
    this.#dm.clear();
    this.#dmByMinor.clear();
    this.#loops.clear();
    this.#pools.clear();
    this.#memStorage.clear();
    // A filesystem on a real file (a loop backing file, or a thin id in pool metadata kept in
    // one) is on disk and survives the reboot; marks of in-memory devices do not.
    for (const key of [...this.#fsMarks.keys()]) if (!key.startsWith('file:') && !key.startsWith('thin:file:')) this.#fsMarks.delete(key);
    this.#mounts = [];
    this.#globalEvent = 0;
    this.#globalWaiters.clear();
    this.#crashed = false;
    this.#crash = undefined;
    this.#boot();
  }

  /** Closes the fake's own backing-file fds and removes a temp sysfs dir it made. */
  dispose(): void {
    for (const l of this.#loops.values()) if (l.bound) this.#closeQuietly(l.bound.fd);
    for (const fd of this.#realFds.keys()) this.#closeQuietly(fd);
    this.#realFds.clear();
    this.#loops.clear();
    if (this.#ownsSysfs && this.#sysfsRoot) rmSync(this.#sysfsRoot, { recursive: true, force: true });
  }

  #closeQuietly(fd: number): void {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
  }

  /** Makes /run/udev/control appear or vanish (DmControl's "is udev running" test). */
  setUdevRunning(running: boolean): void {
    this.#udevRunning = running;
    const exists = this.#devfs.lookup('/run/udev/control') !== undefined;
    if (running && !exists) this.#devfs.kernelNode('/run/udev/control', 0o100644, 0n);
    if (!running && exists) this.#devfs.unlink('/run/udev/control');
  }

  /** Every syscall made so far (most recent last). */
  get calls(): readonly FakeCall[] {
    return this.#calls;
  }

  /** Number of syscalls made so far (= index the next one gets). */
  get callCount(): number {
    return this.#callIndex;
  }

  clearCalls(): void {
    this.#calls = [];
  }

  /**
   * Fails matching syscalls with `errno` — before they take effect (default) or after.
   * @example fake.failNext({ request: 'DM_DEV_REMOVE', errno: 'EBUSY', times: 3 })
   */
  failNext(rule: FailRule): FailHandle {
    const armed: ArmedRule = { ...rule, left: rule.times ?? 1, skipLeft: rule.skip ?? 0 };
    this.#rules.push(armed);
    const rules = (): ArmedRule[] => this.#rules;
    return {
      get remaining() {
        return armed.left;
      },
      cancel: () => {
        this.#rules = rules().filter((r) => r !== armed);
      },
    };
  }

  /**
   * Arms a crash point: the first `n` syscalls from now succeed, the next one throws
   * {@link SimulatedCrash} — without effect (`when: 'before'`, default) or after the kernel did it
   * (`'after'`) — and so does every syscall after it, until {@link revive}. `crashAfter(null)`
   * disarms.
   */
  crashAfter(n: number | null, options: { when?: 'before' | 'after' } = {}): void {
    this.#crash = n === null ? undefined : { at: this.#callIndex + n, when: options.when ?? 'before' };
  }

  /** True once a crash point fired (until {@link revive}). */
  get crashed(): boolean {
    return this.#crashed;
  }

  /**
   * Ends a simulated crash the way the death of the process would: every fd it had open is closed
   * (autoclear loops detach, deferred removes run), then syscalls work again.
   */
  revive(options: { keepFds?: boolean } = {}): void {
    this.#crashed = false;
    this.#crash = undefined;
    if (options.keepFds) return;
    for (const fd of [...this.#fds.keys()]) this.#fds.delete(fd);
    for (const fd of [...this.#realFds.keys()]) {
      this.#closeQuietly(fd);
      this.#realFds.delete(fd);
    }
    this.#settle();
  }

  /**
   * Calls `cb` at the start of every syscall with its record (index, syscall, request, path).
   * `cb` may throw (a SimulatedCrash, an IoctlError…) to stop the call. Returns an unsubscribe.
   */
  onCall(cb: (call: FakeCall) => void): () => void {
    this.#hooks.add(cb);
    return () => this.#hooks.delete(cb);
  }

  /** Every dm device, sorted by name. */
  devices(): FakeDmDeviceInfo[] {
    return [...this.#dm.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((md) => ({
        name: md.name,
        uuid: md.uuid,
        major: this.dmMajor,
        minor: md.minor,
        suspended: md.suspended,
        openCount: this.#openers(md.dev),
        eventNr: md.eventNr,
        deferredRemove: md.deferredRemove,
        readOnly: md.readOnly,
        live: md.live ? this.#lines(md.live, true) : null,
        inactive: md.inactive ? this.#lines(md.inactive, true) : null,
      }));
  }

  /** One dm device by name, or undefined. */
  device(name: string): FakeDmDeviceInfo | undefined {
    return this.devices().find((d) => d.name === name);
  }

  /** Every loop device, by index. */
  loops(): FakeLoopInfo[] {
    return [...this.#loops.values()]
      .sort((a, b) => a.index - b.index)
      .map((l) => {
        const base = { index: l.index, path: `${this.devDir}/loop${l.index}`, openCount: this.#openers(l.dev), bound: l.bound !== null };
        if (!l.bound) return base;
        const b = l.bound;
        return { ...base, backingFile: b.path, offset: b.offset, sizeLimit: b.sizeLimit, flags: b.flags, sizeBytes: b.sizeBytes, blockSize: b.blockSize };
      });
  }

  /** The thin pool whose pool device is `name`, or undefined. */
  pool(name: string): FakePoolInfo | undefined {
    const md = this.#dm.get(name);
    const e = md ? this.#pools.get(md.minor) : undefined;
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
    const e = this.#poolByName(name);
    e.model.mode = mode;
    if (options.needsCheck !== undefined) e.model.meta.needsCheck = options.needsCheck;
    this.#mdEvent(e.md);
  }

  /** Active mounts, oldest first. */
  mounts(): FakeMount[] {
    return this.#mounts.map(({ source, target, fstype, flags, data }) => ({ source, target, fstype, flags, data }));
  }

  /** Marks a mount busy: umount2 without MNT_DETACH then fails EBUSY (an open file inside). */
  setMountBusy(target: string, busy: boolean): void {
    const m = this.#mounts.filter((x) => x.target === posix.normalize(target)).pop();
    if (!m) throw new Error(`nothing mounted on ${target}`);
    m.busy = busy;
  }

  #poolByName(name: string): PoolEntry {
    const md = this.#dm.get(name);
    const e = md ? this.#pools.get(md.minor) : undefined;
    if (!e) throw new Error(`no thin pool device named ${name}`);
    return e;
  }

  /**
   * "Writes" `count` pool data blocks of the thin device `name` (a dm device whose live table is
   * one thin target) starting at block `first`: allocation, CoW after snapshots, low-water and
   * out-of-data-space events as dm-thin does them. Commits afterwards (as an fsync would) unless
   * `commit: false`.
   * @throws FakeIoError ENOSPC when the pool runs out of data space, EIO past the device end
   */
  writeThin(name: string, first: number, count = 1, options: { commit?: boolean } = {}): void {
    const { entry, id, md } = this.#thinOf(name);
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
    const { entry, id } = this.#thinOf(name);
    entry.model.discard(id, first, count);
    entry.model.commit();
  }

  #thinOf(name: string): { entry: PoolEntry; id: number; md: DmDev } {
    const md = this.#dm.get(name);
    const t = md?.live?.targets[0]?.impl;
    if (!md || !t || t.kind !== 'thin') throw new Error(`${name} is not an active thin device`);
    if (md.suspended) throw new Error(`${name} is suspended: the write would block`);
    const pmd = this.#dmByMinor.get(devMinor(t.poolDev));
    const entry = pmd ? this.#pools.get(pmd.minor) : undefined;
    if (!entry) throw new FakeIoError('EIO', 'pool gone');
    return { entry, id: t.id, md };
  }

  /**
   * Puts a filesystem signature on a device (what mkfs would): `mountAsync` of the device then
   * works with that fstype. On a thin device the mark lives in the pool metadata, so snapshots
   * taken later carry it too. `device` is a /dev path or a dm name.
   */
  mkfs(device: string, fstype = 'ext4'): void {
    this.#fsMarks.set(this.#fsKey(this.#devOfSpec(device)), fstype);
  }

  /**
   * The filesystem a mkfs mark says `device` holds (what a superblock probe would find), or null.
   * @throws ENOENT/ENXIO-like FakeIoError when the device does not exist (as open(2) would).
   */
  filesystemOf(device: string): string | null {
    if (this.#crashed) throw new SimulatedCrash(-1, 'before', 'probe after death');
    let dev: bigint;
    try {
      dev = this.#devOfSpec(device);
    } catch (err) {
      throw kerr('ENOENT', String(err));
    }
    return this.#fsMarks.get(this.#fsKey(dev)) ?? null;
  }

  #devOfSpec(spec: string): bigint {
    if (!spec.includes('/')) {
      const md = this.#dm.get(spec);
      if (!md) throw new Error(`no dm device ${spec}`);
      return md.dev;
    }
    const st = this.#devfs.stat(spec);
    if ((st.mode & S_IFMT) !== S_IFBLK) throw new Error(`${spec} is not a block device`);
    return st.rdev;
  }

  /** Filesystem marks follow the data: thin id in its pool's metadata storage, loop backing file, else dev. */
  #fsKey(dev: bigint): string {
    const md = this.#mdOf(dev);
    const t = md?.live?.targets[0]?.impl;
    if (md && t?.kind === 'thin') {
      const pmd = this.#dmByMinor.get(devMinor(t.poolDev));
      const e = pmd ? this.#pools.get(pmd.minor) : undefined;
      if (e) {
        // Snapshot inheritance: walk to the oldest ancestor sharing blocks is not tracked; the
        // mark is copied on create_snap instead (see #poolMessage).
        return `thin:${this.#storageKey(e.metaDev)}:${t.id}`;
      }
    }
    const loop = this.#loopOf(dev);
    if (loop?.bound) return `file:${loop.bound.fileDev}:${loop.bound.fileIno}`;
    return `dev:${dev}`;
  }

  // -------------------------------------------------------------------------------------------
  // The syscall boundary: logging, hooks, crash points, scripted failures, errno mapping

  #begin(rec: FakeCall, names: readonly string[]): { rule: ArmedRule | undefined; crashAfterCall: boolean } {
    this.#calls.push(rec);
    for (const h of [...this.#hooks]) h(rec);
    let crashAfterCall = false;
    if (this.#crashed) {
      rec.result = 'crash';
      throw new SimulatedCrash(rec.index, 'before', describeCall(rec));
    }
    if (this.#crash && rec.index >= this.#crash.at) {
      if (this.#crash.when === 'before' || rec.index > this.#crash.at) {
        this.#crashed = true;
        rec.result = 'crash';
        throw new SimulatedCrash(rec.index, 'before', describeCall(rec));
      }
      crashAfterCall = true;
    }
    const rule = this.#matchRule(rec, names);
    if (rule && (rule.when ?? 'before') === 'before') {
      rec.result = rule.errno;
      throw seamError(rule.errno, this.#ctx(rec));
    }
    return { rule, crashAfterCall };
  }

  #matchRule(rec: FakeCall, names: readonly string[]): ArmedRule | undefined {
    for (const r of this.#rules) {
      if (r.left <= 0) continue;
      const syscall = r.syscall ?? (r.request ? 'ioctl' : undefined);
      if (syscall && syscall !== rec.syscall) continue;
      if (r.request && !names.includes(r.request)) continue;
      if (r.path !== undefined) {
        const p = rec.path ?? '';
        if (typeof r.path === 'string' ? r.path !== p : !r.path.test(p)) continue;
      }
      if (r.skipLeft > 0) {
        r.skipLeft--;
        continue;
      }
      r.left--;
      if (r.left <= 0) this.#rules = this.#rules.filter((x) => x !== r);
      return r;
    }
    return undefined;
  }

  #ctx(rec: FakeCall): { syscall: SyscallName; request?: string; fd?: number; path?: string; dest?: string } {
    const c: { syscall: SyscallName; request?: string; fd?: number; path?: string; dest?: string } = { syscall: rec.syscall };
    if (rec.request !== undefined) c.request = rec.request;
    if (rec.fd !== undefined) c.fd = rec.fd;
    if (rec.path !== undefined) c.path = rec.path;
    if (rec.dest !== undefined) c.dest = rec.dest;
    return c;
  }

  #end(rec: FakeCall, gate: { rule: ArmedRule | undefined; crashAfterCall: boolean }): void {
    if (gate.crashAfterCall) {
      this.#crashed = true;
      rec.result = 'crash';
      throw new SimulatedCrash(rec.index, 'after', describeCall(rec));
    }
    if (gate.rule) {
      rec.result = gate.rule.errno;
      throw seamError(gate.rule.errno, this.#ctx(rec));
    }
    rec.result = 'ok';
  }

  #fail(rec: FakeCall, e: unknown): never {
    if (e instanceof KernelErrno) {
      rec.result = e.code;
      throw seamError(e.code, this.#ctx(rec));
    }
    throw e;
  }

  #sync<T>(info: Omit<FakeCall, 'index'>, fn: () => T, names: readonly string[] = []): T {
    const rec: FakeCall = { index: this.#callIndex++, ...info };
    const gate = this.#begin(rec, names);
    let r: T;
    try {
      r = fn();
    } catch (e) {
      if (gate.crashAfterCall) this.#end(rec, gate);
      return this.#fail(rec, e);
    }
    this.#end(rec, gate);
    return r;
  }

  async #async<T>(info: Omit<FakeCall, 'index'>, fn: () => T | Promise<T>, names: readonly string[] = []): Promise<T> {
    const rec: FakeCall = { index: this.#callIndex++, ...info };
    const gate = this.#begin(rec, names);
    let r: T;
    try {
      r = await fn();
    } catch (e) {
      if (gate.crashAfterCall) this.#end(rec, gate);
      return this.#fail(rec, e);
    }
    this.#end(rec, gate);
    return r;
  }

  // -------------------------------------------------------------------------------------------
  // Syscalls

  open(path: string, flags: number, mode = 0): number {
    return this.#sync({ syscall: 'open', path }, () => this.#open(path, flags, mode));
  }

  close(fd: number): void {
    this.#sync({ syscall: 'close', fd }, () => this.#close(fd));
  }

  ioctl(fd: number, request: number, arg: IoctlArg, requestName: string): number {
    return this.#sync(
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
    return this.#async({ syscall: 'ioctl', fd, request: requestName }, () => this.#ioctl(fd, request, arg), requestNameOf(request, requestName));
  }

  fstat(fd: number): StatResult {
    return this.#sync({ syscall: 'fstat', fd }, () => {
      const e = this.#fds.get(fd);
      if (e) {
        if (e.kind === 'dm-control') return { ...this.#nodeStat(makedev(MISC_MAJOR, DM_CONTROL_MINOR), S_IFCHR | 0o600) };
        if (e.kind === 'loop-control') return { ...this.#nodeStat(makedev(MISC_MAJOR, LOOP_CTRL_MINOR), S_IFCHR | 0o660) };
        if (e.kind === 'block') return this.#nodeStat(e.dev, S_IFBLK | 0o660);
        return this.#devfs.stat(e.path);
      }
      if (!this.#realFds.has(fd)) throw kerr('EBADF');
      return realStat(() => fstatSync(fd, { bigint: true }));
    });
  }

  #nodeStat(rdev: bigint, mode: number): StatResult {
    return { dev: 5n, ino: 1n, rdev, mode, size: 0n, blocks: 0n };
  }

  stat(path: string): StatResult {
    return this.#sync({ syscall: 'stat', path }, () => {
      if (this.#devfs.owns(path)) return this.#devfs.stat(path);
      return realStat(() => statSync(path, { bigint: true }));
    });
  }

  mknod(path: string, mode: number, dev: bigint): void {
    this.#sync({ syscall: 'mknod', path }, () => {
      if (!this.#devfs.owns(path)) throw kerr('EPERM', 'the fake only makes nodes under its /dev');
      this.#devfs.mknod(path, mode, dev);
    });
  }

  unlink(path: string): void {
    this.#sync({ syscall: 'unlink', path }, () => {
      if (this.#devfs.owns(path)) return this.#devfs.unlink(path);
      realCall(() => rmSync(path));
    });
  }

  rename(from: string, to: string): void {
    this.#sync({ syscall: 'rename', path: from, dest: to }, () => {
      const a = this.#devfs.owns(from);
      const b = this.#devfs.owns(to);
      if (a !== b) throw kerr('EXDEV');
      if (a) return this.#devfs.rename(from, to);
      realCall(() => renameSync(from, to));
    });
  }

  mkdir(path: string, mode: number): void {
    this.#sync({ syscall: 'mkdir', path }, () => {
      if (this.#devfs.owns(path)) return this.#devfs.mkdir(path, mode);
      realCall(() => mkdirSync(path, { mode }));
    });
  }

  fsync(fd: number): void {
    this.#sync({ syscall: 'fsync', fd }, () => {
      if (this.#fds.has(fd)) return;
      if (!this.#realFds.has(fd)) throw kerr('EBADF');
      realCall(() => fsyncSync(fd));
    });
  }

  mountAsync(source: string, target: string, fstype: string, flags: bigint, data: string | null): Promise<void> {
    return this.#async({ syscall: 'mount', path: source, dest: target }, () => this.#mount(source, target, fstype, flags, data));
  }

  umount2Async(target: string, flags: number): Promise<void> {
    return this.#async({ syscall: 'umount2', path: target }, () => this.#umount(target, flags));
  }

  pollAsync(fd: number, events: number, timeoutMs: number): Promise<number> {
    return this.#async({ syscall: 'poll', fd }, () => this.#poll(fd, events, timeoutMs));
  }

  // -------------------------------------------------------------------------------------------
  // open / close

  #open(path: string, flags: number, mode: number): number {
    if (!this.#devfs.owns(path)) {
      const fd = realCall(() => openSync(path, flags, mode));
      this.#realFds.set(fd, { path, flags });
      return fd;
    }
    if (flags & O_CREAT && !this.#devfs.lookup(path)) {
      this.#devfs.mknod(path, 0o100000 | (mode & 0o7777), 0n);
    }
    const { node } = this.#devfs.resolve(path);
    const type = node.mode & S_IFMT;
    const write = (flags & O_ACCMODE) === O_WRONLY || (flags & O_ACCMODE) === O_RDWR;
    let entry: FdEntry;
    if (type === S_IFCHR) {
      if (node.rdev === makedev(MISC_MAJOR, DM_CONTROL_MINOR)) entry = { kind: 'dm-control', armed: this.#globalEvent };
      else if (node.rdev === makedev(MISC_MAJOR, LOOP_CTRL_MINOR)) entry = { kind: 'loop-control' };
      else throw kerr('ENXIO', `no driver for char device ${fmtDev(node.rdev)}`);
    } else if (type === S_IFBLK) {
      const dev = node.rdev;
      this.#checkBlockOpen(dev, write, (flags & O_EXCL) !== 0);
      entry = { kind: 'block', dev, write, path };
    } else if (type === S_IFDIR) {
      if (write) throw kerr('EISDIR', path);
      entry = { kind: 'other', path };
    } else entry = { kind: 'other', path };
    const fd = this.#nextFd++;
    this.#fds.set(fd, entry);
    return fd;
  }

  #checkBlockOpen(dev: bigint, write: boolean, excl: boolean): void {
    const loop = this.#loopOf(dev);
    const md = this.#mdOf(dev);
    if (!loop && !md) throw kerr('ENXIO', `no block device ${fmtDev(dev)}`);
    if (md && !md.diskAdded) throw kerr('ENXIO', `${md.name} has no disk yet (no table was ever loaded)`);
    if (write && loop?.bound && loop.bound.flags & LO_FLAGS_READ_ONLY) throw kerr('EROFS', 'read-only loop device');
    if (write && md?.readOnly) throw kerr('EROFS', 'read-only dm device');
    if (excl && this.#holders(dev) > 0) throw kerr('EBUSY', `${fmtDev(dev)} is held`);
  }

  #close(fd: number): void {
    if (this.#fds.delete(fd)) {
      this.#settle();
      return;
    }
    if (!this.#realFds.has(fd)) throw kerr('EBADF');
    this.#realFds.delete(fd);
    realCall(() => closeSync(fd));
  }

  // -------------------------------------------------------------------------------------------
  // Open counts, autoclear, deferred remove

  /** Openers of a block device: fds, dm tables holding it, mounts. */
  #openers(dev: bigint): number {
    let n = 0;
    for (const e of this.#fds.values()) if (e.kind === 'block' && e.dev === dev) n++;
    return n + this.#holders(dev);
  }

  /** Kernel-side holders: dm devices whose live or inactive table uses `dev`, and mounts. */
  #holders(dev: bigint): number {
    let n = 0;
    for (const md of this.#dm.values()) if (md.live?.devices.includes(dev) || md.inactive?.devices.includes(dev)) n++;
    for (const m of this.#mounts) if (m.dev === dev) n++;
    return n;
  }

  /** Runs what last-close triggers (loop autoclear, deferred dm remove) until nothing changes. */
  #settle(): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const l of this.#loops.values()) {
        if (l.bound && l.bound.flags & LO_FLAGS_AUTOCLEAR && this.#openers(l.dev) === 0) {
          this.#unbindLoop(l);
          changed = true;
        }
      }
      for (const md of [...this.#dm.values()]) {
        if (md.deferredRemove && this.#openers(md.dev) === 0) {
          this.#removeDm(md);
          changed = true;
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // ioctl dispatch

  #ioctl(fd: number, request: number, arg: IoctlArg): number | Promise<number> {
    const e = this.#fds.get(fd);
    if (!e) {
      if (this.#realFds.has(fd)) throw kerr('ENOTTY', 'ioctl on a regular file');
      throw kerr('EBADF');
    }
    switch (e.kind) {
      case 'dm-control':
        return this.#dmIoctl(e, request >>> 0, arg);
      case 'loop-control':
        return this.#loopControl(request >>> 0, arg);
      case 'block':
        return this.#blockIoctl(e, request >>> 0, arg);
      default:
        throw kerr('ENOTTY');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Device-mapper: ctl_ioctl

  #dmIoctl(fdState: { armed: number }, request: number, arg: IoctlArg): number | Promise<number> {
    if (((request >>> 8) & 0xff) !== DM_IOCTL) throw kerr('ENOTTY', 'not a dm request');
    if (!Buffer.isBuffer(arg) || arg.length < DM_IOCTL_DATA_OFFSET) throw kerr('EFAULT');
    const cmd = request & 0xff;
    // check_version: the kernel's version is written back whatever happens next.
    const [kMaj, kMin, kPatch] = this.dmVersion;
    const vMaj = arg.readUInt32LE(0);
    const vMin = arg.readUInt32LE(4);
    arg.writeUInt32LE(kMaj, 0);
    arg.writeUInt32LE(kMin, 4);
    arg.writeUInt32LE(kPatch, 8);
    if (vMaj !== kMaj || vMin > kMin) throw kerr('EINVAL', `dm version ${vMaj}.${vMin} vs kernel ${kMaj}.${kMin}`);
    if (cmd === DM_VERSION_CMD) return 0;
    const info = DM_COMMANDS[cmd];
    if (!info || info.cmd !== cmd || info.minVersion[1] > kMin) throw kerr('ENOTTY', `unknown dm command ${cmd}`);
    // copy_params
    const paramSize = arg.readUInt32LE(12);
    if (paramSize < DM_IOCTL_DATA_OFFSET) throw kerr('EINVAL', `data_size ${paramSize} < 305`);
    if (paramSize > arg.length) throw kerr('EFAULT', 'data_size beyond the buffer');
    const k = Buffer.alloc(Math.max(paramSize, DM_IOCTL_SIZE));
    arg.copy(k, 0, 0, paramSize);
    k[48 + DM_NAME_LEN - 1] = 0; // validate_params forces the strings' NULs
    k[176 + DM_UUID_LEN - 1] = 0;
    const h = decodeDmIoctl(k);
    if (h.flags & DM_SECURE_DATA_FLAG) {
      arg.fill(0, 0, paramSize);
      arg.writeUInt32LE(kMaj, 0);
      arg.writeUInt32LE(kMin, 4);
      arg.writeUInt32LE(kPatch, 8);
    }
    // validate_params
    h.flags &= ~(DM_BUFFER_FULL_FLAG | DM_UEVENT_GENERATED_FLAG | DM_SECURE_DATA_FLAG | DM_DATA_OUT_FLAG);
    if (cmd !== DM_REMOVE_ALL_CMD && cmd !== DM_LIST_DEVICES_CMD && cmd !== DM_LIST_VERSIONS_CMD) {
      if (cmd === DM_DEV_CREATE_CMD) {
        if (!h.name) throw kerr('EINVAL', 'name not supplied when creating device');
      } else if (h.name && h.uuid) throw kerr('EINVAL', 'only supply one of name or uuid');
    }
    const call: DmCall = { h, k, paramSize, fdState };
    h.data_size = DM_IOCTL_DATA_OFFSET;
    const finish = (): number => {
      encodeDmIoctl(h, k);
      k.writeUInt32LE(kMaj, 0);
      k.writeUInt32LE(kMin, 4);
      k.writeUInt32LE(kPatch, 8);
      k.copy(arg, 0, 0, Math.min(h.data_size, arg.length));
      return call.rc ?? 0;
    };
    const r = this.#dmCommand(cmd, call);
    if (r instanceof Promise) return r.then(finish);
    return finish();
  }

  #dmCommand(cmd: number, c: DmCall): void | Promise<void> {
    switch (cmd) {
      case DM_REMOVE_ALL_CMD:
        return this.#removeAll(c);
      case DM_LIST_DEVICES_CMD:
        return this.#listDevices(c);
      case DM_DEV_CREATE_CMD:
        return this.#devCreate(c);
      case DM_DEV_REMOVE_CMD:
        return this.#devRemove(c);
      case DM_DEV_RENAME_CMD:
        return this.#devRename(c);
      case DM_DEV_SUSPEND_CMD:
        return c.h.flags & DM_SUSPEND_FLAG ? this.#doSuspend(c) : this.#doResume(c);
      case DM_DEV_STATUS_CMD:
        return this.#devStatus(this.#find(c), c.h);
      case DM_DEV_WAIT_CMD:
        return this.#devWait(c);
      case DM_TABLE_LOAD_CMD:
        return this.#tableLoad(c);
      case DM_TABLE_CLEAR_CMD:
        return this.#tableClear(c);
      case DM_TABLE_DEPS_CMD:
        return this.#tableDeps(c);
      case DM_TABLE_STATUS_CMD:
        return this.#tableStatus(c);
      case DM_LIST_VERSIONS_CMD:
        return this.#listVersions(c, undefined);
      case DM_TARGET_MSG_CMD:
        return this.#targetMessage(c);
      case DM_DEV_SET_GEOMETRY_CMD:
        return this.#setGeometry(c);
      case DM_DEV_ARM_POLL_CMD:
        c.fdState.armed = this.#globalEvent;
        return;
      case DM_GET_TARGET_VERSION_CMD:
        return this.#listVersions(c, c.h.name);
      default:
        throw kerr('ENOTTY');
    }
  }

  /** __find_device_hash_cell: uuid, else name, else dev; writes name/uuid back, INACTIVE_PRESENT. */
  #find(c: DmCall): DmDev {
    const h = c.h;
    let md: DmDev | undefined;
    if (h.uuid) {
      if (!h.name && h.dev === 0n) md = [...this.#dm.values()].find((d) => d.uuid === h.uuid);
    } else if (h.name) {
      if (h.dev === 0n) md = this.#dm.get(h.name);
    } else if (h.dev !== 0n) md = this.#mdOf(h.dev);
    if (!md) throw kerr('ENXIO', 'no such device');
    h.name = md.name;
    h.uuid = md.uuid ?? '';
    if (md.inactive) h.flags |= DM_INACTIVE_PRESENT_FLAG;
    else h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    return md;
  }

  #mdOf(dev: bigint): DmDev | undefined {
    const { major, minor } = huge_decode_dev(dev);
    if (major !== this.dmMajor) return undefined;
    return this.#dmByMinor.get(minor);
  }

  #loopOf(dev: bigint): LoopDev | undefined {
    const { major, minor } = huge_decode_dev(dev);
    if (major !== LOOP_MAJOR) return undefined;
    return this.#loops.get(minor);
  }

  /** __dev_status. */
  #devStatus(md: DmDev, h: RawDmIoctl): void {
    h.flags &= ~(DM_SUSPEND_FLAG | DM_READONLY_FLAG | DM_ACTIVE_PRESENT_FLAG | DM_INTERNAL_SUSPEND_FLAG);
    if (md.suspended) h.flags |= DM_SUSPEND_FLAG;
    if (md.deferredRemove) h.flags |= DM_DEFERRED_REMOVE;
    h.dev = md.dev;
    h.open_count = this.#openers(md.dev);
    h.event_nr = md.eventNr;
    h.target_count = 0;
    if (md.live) {
      if (!(h.flags & DM_QUERY_INACTIVE_TABLE_FLAG)) {
        if (md.readOnly) h.flags |= DM_READONLY_FLAG;
        h.target_count = md.live.targets.length;
      }
      h.flags |= DM_ACTIVE_PRESENT_FLAG;
    }
    if (h.flags & DM_QUERY_INACTIVE_TABLE_FLAG && md.inactive) {
      if (md.inactive.readOnly) h.flags |= DM_READONLY_FLAG;
      h.target_count = md.inactive.targets.length;
    }
  }

  #globalEventBump(): void {
    this.#globalEvent++;
    const ws = [...this.#globalWaiters];
    this.#globalWaiters.clear();
    for (const w of ws) w();
  }

  /** dm_table_event → event_callback: the device's event counter, DEV_WAIT waiters, poll. */
  #mdEvent(md: DmDev): void {
    md.eventNr = (md.eventNr + 1) >>> 0;
    const ws = [...md.waiters];
    md.waiters.clear();
    for (const w of ws) w();
    this.#globalEventBump();
  }

  #resultSpace(c: DmCall): number {
    return Math.max(0, c.paramSize - DM_IOCTL_SIZE);
  }

  #removeAll(c: DmCall): void {
    const deferred = (c.h.flags & DM_DEFERRED_REMOVE) !== 0;
    for (let progress = true; progress; ) {
      progress = false;
      for (const md of [...this.#dm.values()]) {
        if (!this.#dm.has(md.name)) continue;
        if (this.#openers(md.dev) > 0) {
          if (deferred) md.deferredRemove = true;
          continue;
        }
        this.#removeDm(md);
        progress = true;
      }
    }
    this.#settle();
  }

  #listDevices(c: DmCall): void {
    const h = c.h;
    const minor = this.dmVersion[1];
    const filter = minor >= 45;
    const withUuid = (h.flags & DM_UUID_FLAG) !== 0 && minor >= 45;
    const list = [...this.#dm.values()]
      .filter((d) => !filter || (d.name.startsWith(h.name) && (d.uuid ?? '').startsWith(h.uuid)))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    const entries = list.map((d) => ({ name: d.name, dev: d.dev, event_nr: d.eventNr, ...(d.uuid ? { uuid: d.uuid } : {}) }));
    const payload = entries.length === 0 ? Buffer.alloc(0) : encodeNameList(entries, minor, withUuid, DM_IOCTL_SIZE);
    const len = this.#resultSpace(c);
    if (len < payload.length || len < 8) {
      h.flags |= DM_BUFFER_FULL_FLAG;
      return;
    }
    c.k.fill(0, DM_IOCTL_SIZE, DM_IOCTL_SIZE + 8);
    payload.copy(c.k, DM_IOCTL_SIZE);
    h.data_start = DM_IOCTL_SIZE;
    h.data_size = DM_IOCTL_SIZE + payload.length;
  }

  #devCreate(c: DmCall): void {
    const h = c.h;
    checkName(h.name, this.#rejectReserved);
    let minor: number;
    if (h.flags & DM_PERSISTENT_DEV_FLAG) {
      minor = huge_decode_dev(h.dev).minor;
      if (minor >= MINORBITS_MAX) throw kerr('EINVAL');
      // Observed on Linux 6.1: a taken minor fails with ENXIO (not EBUSY as the idr code suggests).
      if (this.#dmByMinor.has(minor)) throw kerr('ENXIO', `minor ${minor} in use`);
    } else {
      minor = 0;
      while (this.#dmByMinor.has(minor)) minor++;
    }
    if (this.#dm.has(h.name)) throw kerr('EBUSY', `name ${h.name} in use`);
    if (h.uuid && [...this.#dm.values()].some((d) => d.uuid === h.uuid)) throw kerr('EBUSY', `uuid ${h.uuid} in use`);
    const md: DmDev = {
      name: h.name,
      uuid: h.uuid || null,
      minor,
      dev: huge_encode_dev(this.dmMajor, minor),
      live: null,
      inactive: null,
      suspended: false,
      eventNr: 0,
      deferredRemove: false,
      diskAdded: false,
      readOnly: false,
      waiters: new Set(),
    };
    this.#dm.set(md.name, md);
    this.#dmByMinor.set(minor, md);
    this.#globalEventBump();
    h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    this.#devStatus(md, h);
  }

  #devRemove(c: DmCall): void {
    const h = c.h;
    const md = this.#find(c);
    if (this.#openers(md.dev) > 0) {
      if (h.flags & DM_DEFERRED_REMOVE) {
        md.deferredRemove = true;
        return;
      }
      throw kerr('EBUSY', `${md.name} is open`);
    }
    const added = md.diskAdded;
    this.#removeDm(md);
    h.flags &= ~DM_DEFERRED_REMOVE;
    if (added) h.flags |= DM_UEVENT_GENERATED_FLAG;
    this.#settle();
  }

  /** __hash_remove + dm_destroy: tables destroyed, waiters woken, minor freed, node gone. */
  #removeDm(md: DmDev): void {
    if (md.live) this.#mdEvent(md);
    this.#dm.delete(md.name);
    this.#dmByMinor.delete(md.minor);
    const live = md.live;
    const inactive = md.inactive;
    md.live = null;
    md.inactive = null;
    if (live) this.#releaseTable(md, live);
    if (inactive) this.#releaseTable(md, inactive);
    for (const w of md.waiters) w();
    md.waiters.clear();
    if (md.diskAdded) this.#devfs.kernelRemove(`${this.devDir}/dm-${md.minor}`, md.dev);
    this.#sysfsDm(md, true);
    this.#globalEventBump();
  }

  #devRename(c: DmCall): void {
    const h = c.h;
    const changeUuid = (h.flags & DM_UUID_FLAG) !== 0;
    let next: string;
    try {
      next = readCString(c.k, DM_IOCTL_SIZE, c.paramSize, 'rename payload').value;
    } catch {
      throw kerr('EINVAL', 'invalid new name or uuid');
    }
    if (h.data_start < DM_IOCTL_DATA_OFFSET || !next || Buffer.byteLength(next) > (changeUuid ? DM_UUID_LEN - 1 : DM_NAME_LEN - 1))
      throw kerr('EINVAL', 'invalid new name or uuid');
    if (!changeUuid) checkName(next, this.#rejectReserved);
    const taken = changeUuid ? [...this.#dm.values()].some((d) => d.uuid === next) : this.#dm.has(next);
    if (taken) throw kerr('EBUSY', `${next} already exists`);
    const md = this.#dm.get(h.name);
    if (!md) throw kerr('ENXIO', `rename of non-existent device ${h.name}`);
    if (changeUuid && md.uuid) throw kerr('EINVAL', `uuid already set to ${md.uuid}`);
    if (changeUuid) md.uuid = next;
    else {
      this.#dm.delete(md.name);
      md.name = next;
      this.#dm.set(next, md);
    }
    if (md.live) this.#mdEvent(md);
    else this.#globalEventBump();
    if (md.diskAdded) h.flags |= DM_UEVENT_GENERATED_FLAG;
    this.#sysfsDm(md);
    // dev_rename reports __dev_status only: name/uuid in the reply stay as sent.
    this.#devStatus(md, h);
  }

  #suspendMd(md: DmDev): void {
    if (md.suspended) return;
    md.suspended = true;
    for (const t of md.live?.targets ?? []) {
      if (t.impl.kind === 'thin-pool') {
        const e = this.#pools.get(md.minor);
        if (e) {
          e.model.commit();
          e.model.suspended = true;
        }
      }
    }
    this.#sysfsDm(md);
  }

  #doSuspend(c: DmCall): void {
    const md = this.#find(c);
    this.#suspendMd(md);
    this.#devStatus(md, c.h);
  }

  #doResume(c: DmCall): void {
    const h = c.h;
    const md = this.#find(c);
    const next = md.inactive;
    md.inactive = null;
    h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    if (next) {
      this.#suspendMd(md);
      const old = md.live;
      md.live = next;
      md.readOnly = next.readOnly;
      if (old) this.#releaseTable(md, old, false);
      this.#globalEventBump();
    }
    if (md.suspended) {
      // preresume/resume of the targets: a thin-pool sizes its data device and raises an event.
      for (const t of md.live?.targets ?? []) {
        if (t.impl.kind !== 'thin-pool') continue;
        const e = this.#pools.get(md.minor);
        if (!e) continue;
        e.model.features = t.impl.features;
        e.model.lowWaterBlocks = t.impl.lowWater;
        e.model.resume(t.length, this.#metadataBlocksOf(e.metaDev));
      }
      md.suspended = false;
      if (md.diskAdded) h.flags |= DM_UEVENT_GENERATED_FLAG;
    }
    this.#sysfsDm(md);
    this.#settle();
    this.#devStatus(md, h);
  }

  #devWait(c: DmCall): void | Promise<void> {
    const md = this.#find(c);
    const reply = (): void => {
      this.#devStatus(md, c.h);
      const t = c.h.flags & DM_QUERY_INACTIVE_TABLE_FLAG ? md.inactive : md.live;
      if (t) this.#retrieveStatus(md, t, c);
    };
    if (md.eventNr !== c.h.event_nr) return reply();
    return new Promise<void>((resolve) => md.waiters.add(resolve)).then(reply);
  }

  #tableStatus(c: DmCall): void {
    const md = this.#find(c);
    this.#devStatus(md, c.h);
    const t = c.h.flags & DM_QUERY_INACTIVE_TABLE_FLAG ? md.inactive : md.live;
    if (t) this.#retrieveStatus(md, t, c);
  }

  /** retrieve_status: specs + status/table strings, DM_BUFFER_FULL_FLAG when they don't fit. */
  #retrieveStatus(md: DmDev, t: FakeTable, c: DmCall): void {
    const table = (c.h.flags & DM_STATUS_TABLE_FLAG) !== 0;
    const noflush = (c.h.flags & DM_NOFLUSH_FLAG) !== 0;
    const len = this.#resultSpace(c);
    const lines = t.targets.map((x) => ({
      sector_start: x.start,
      length: x.length,
      target_type: x.type,
      params: table ? this.#tableText(x) : this.#statusText(md, x, noflush),
    }));
    let used = 0;
    let off = 0;
    const specs: typeof lines = [];
    for (const l of lines) {
      const strBytes = Buffer.byteLength(l.params) + 1;
      // The kernel gives up when the spec does not fit, or the string fills the rest exactly.
      const remaining = len - off - DM_TARGET_SPEC_SIZE;
      if (len - off <= DM_TARGET_SPEC_SIZE || strBytes >= remaining) {
        c.h.flags |= DM_BUFFER_FULL_FLAG;
        break;
      }
      specs.push(l);
      used = DM_IOCTL_SIZE + off + DM_TARGET_SPEC_SIZE + strBytes;
      off = Math.ceil((off + DM_TARGET_SPEC_SIZE + strBytes) / 8) * 8;
    }
    if (specs.length > 0) {
      const payload = encodeTargetSpecs(specs, 'data_start');
      payload.copy(c.k, DM_IOCTL_SIZE, 0, Math.min(payload.length, c.k.length - DM_IOCTL_SIZE));
    }
    c.h.data_start = DM_IOCTL_SIZE;
    if (used) c.h.data_size = used;
    c.h.target_count = t.targets.length;
  }

  #tableText(x: FakeTarget): string {
    const i = x.impl;
    switch (i.kind) {
      case 'linear':
        return `${fmtDev(i.dev)} ${i.offset}`;
      case 'zero':
      case 'error':
        return '';
      case 'thin-pool':
        return `${fmtDev(i.metaDev)} ${fmtDev(i.dataDev)} ${i.blockSize} ${i.lowWater} ${poolFeatureText(i.features)}`;
      case 'thin':
        return `${fmtDev(i.poolDev)} ${i.id}${i.origin !== null ? ` ${fmtDev(i.origin)}` : ''}`;
    }
  }

  #statusText(md: DmDev, x: FakeTarget, noflush: boolean): string {
    const i = x.impl;
    if (i.kind === 'thin-pool') {
      const e = this.#pools.get(md.minor);
      if (!e) return 'Error';
      if (!noflush && !md.suspended) e.model.commit();
      return e.model.infoStatus();
    }
    if (i.kind === 'thin') {
      const pmd = this.#dmByMinor.get(devMinor(i.poolDev));
      const e = pmd ? this.#pools.get(pmd.minor) : undefined;
      return e ? e.model.thinStatus(i.id) : 'Fail';
    }
    return '';
  }

  #tableClear(c: DmCall): void {
    const md = this.#find(c);
    const old = md.inactive;
    md.inactive = null;
    c.h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    if (old) this.#releaseTable(md, old);
    this.#devStatus(md, c.h);
  }

  #tableDeps(c: DmCall): void {
    const md = this.#find(c);
    this.#devStatus(md, c.h);
    const t = c.h.flags & DM_QUERY_INACTIVE_TABLE_FLAG ? md.inactive : md.live;
    if (!t) return;
    const payload = encodeTargetDeps(t.devices);
    if (this.#resultSpace(c) < payload.length) {
      c.h.flags |= DM_BUFFER_FULL_FLAG;
      return;
    }
    payload.copy(c.k, DM_IOCTL_SIZE);
    c.h.data_start = DM_IOCTL_SIZE;
    c.h.data_size = DM_IOCTL_SIZE + payload.length;
  }

  #listVersions(c: DmCall, name: string | undefined): void {
    let types = TARGET_TYPES;
    if (name !== undefined) {
      const t = TARGET_TYPES.find((x) => x.name === name);
      if (!t) throw kerr('EINVAL', `unknown target type ${name}`);
      types = [t];
    }
    const needed = types.reduce((n, t) => n + 16 + Buffer.byteLength(t.name) + 1 + 7, 0);
    if (this.#resultSpace(c) < needed) {
      c.h.flags |= DM_BUFFER_FULL_FLAG;
      return;
    }
    encodeTargetVersions(types).copy(c.k, DM_IOCTL_SIZE);
    c.h.data_start = DM_IOCTL_SIZE;
    c.h.data_size = DM_IOCTL_SIZE + needed;
  }

  #targetMessage(c: DmCall): void {
    const md = this.#find(c);
    let sector: bigint;
    let message: string;
    try {
      sector = c.k.readBigUInt64LE(c.h.data_start);
      message = readCString(c.k, c.h.data_start + 8, c.paramSize, 'dm_target_msg').value;
    } catch {
      throw kerr('EINVAL', 'invalid target message parameters');
    }
    if (c.h.data_start < DM_IOCTL_DATA_OFFSET) throw kerr('EINVAL', 'invalid target message parameters');
    const argv = splitArgs(message);
    if (argv.length === 0) throw kerr('EINVAL', 'empty message');
    let r = 2;
    if (argv[0]!.startsWith('@')) {
      if (argv[0]!.toLowerCase() === '@cancel_deferred_remove') {
        if (argv.length !== 1) throw kerr('EINVAL');
        md.deferredRemove = false;
        r = 0;
      } else throw kerr('EINVAL', `unsupported dm core message ${argv[0]}`);
    } else {
      // Observed on Linux 6.1: without a live table the message fails EINVAL.
      if (!md.live) throw kerr('EINVAL', 'no live table to deliver the message to');
      const t = md.live.targets.find((x) => sector >= x.start && sector < x.start + x.length);
      if (!t) throw kerr('EINVAL', 'target message sector outside device');
      if (t.impl.kind !== 'thin-pool') throw kerr('EINVAL', 'target type does not support messages');
      const e = this.#pools.get(md.minor);
      if (!e) throw kerr('EINVAL');
      this.#poolMessage(e, argv);
      r = 0;
    }
    this.#devStatus(md, c.h);
    c.rc = r;
  }

  #poolMessage(e: PoolEntry, argv: string[]): void {
    const before = new Set(e.model.meta.devices.keys());
    e.model.message(argv);
    const cmd = argv[0]!.toLowerCase();
    const key = this.#storageKey(e.metaDev);
    if (cmd === 'create_snap') {
      const mark = this.#fsMarks.get(`thin:${key}:${argv[2]}`);
      if (mark) this.#fsMarks.set(`thin:${key}:${argv[1]}`, mark);
    }
    if (cmd === 'delete' || cmd === 'create_thin') {
      for (const id of [...before, ...e.model.meta.devices.keys()]) {
        if (!e.model.meta.devices.has(id) || !before.has(id)) this.#fsMarks.delete(`thin:${key}:${id}`);
      }
    }
  }

  #setGeometry(c: DmCall): void {
    this.#find(c);
    let s: string;
    try {
      s = readCString(c.k, c.h.data_start, c.paramSize, 'geometry').value;
    } catch {
      throw kerr('EINVAL', 'invalid geometry');
    }
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(s);
    if (!m) throw kerr('EINVAL', 'unable to interpret geometry');
    const [cyl, heads, sectors, start] = [BigInt(m[1]!), BigInt(m[2]!), BigInt(m[3]!), BigInt(m[4]!)];
    if (cyl > 65535n || heads > 255n || sectors > 255n) throw kerr('EINVAL', 'geometry exceeds range limits');
    if (start > cyl * heads * sectors) throw kerr('EINVAL', 'start sector beyond the geometry');
    c.h.data_size = 0;
  }

  // -------------------------------------------------------------------------------------------
  // Tables

  #tableLoad(c: DmCall): void {
    const h = c.h;
    const md = this.#find(c);
    if (h.target_count === 0) throw kerr('EINVAL', 'no targets specified');
    let specs;
    try {
      specs = walkTargetSpecs(c.k, h.data_start, c.paramSize, h.target_count, 'spec');
    } catch {
      throw kerr('EINVAL', 'malformed target spec list');
    }
    if (h.data_start < DM_IOCTL_SIZE) throw kerr('EINVAL', 'spec overlaps the header');
    const table: FakeTable = { targets: [], readOnly: (h.flags & DM_READONLY_FLAG) !== 0, devices: [] };
    const built: FakeTarget[] = [];
    try {
      for (const s of specs) {
        if (s.length === 0n) throw kerr('EINVAL', 'zero-length target');
        const prev = built[built.length - 1];
        const expected = prev ? prev.start + prev.length : 0n;
        if (!TARGET_TYPES.some((t) => t.name === s.target_type)) throw kerr('EINVAL', `unknown target type ${s.target_type}`);
        if (s.sector_start !== expected) throw kerr('EINVAL', 'gap in table');
        const impl = this.#construct(md, s.target_type, s.params, s.length, table);
        built.push({ start: s.sector_start, length: s.length, type: s.target_type, impl });
        table.targets = built;
      }
      if (built.some((t) => t.impl.kind === 'thin-pool') && built.length > 1) throw kerr('EINVAL', 'thin-pool must be the only target');
      const immutable = (t: FakeTable | null): boolean => !!t?.targets.some((x) => x.impl.kind === 'thin-pool');
      if ((immutable(md.live) || immutable(md.inactive)) && !immutable(table)) throw kerr('EINVAL', "can't replace immutable target type thin-pool");
    } catch (e) {
      this.#releaseTargets(built);
      this.#dropPoolIfUnused(md);
      throw e;
    }
    const old = md.inactive;
    md.inactive = table;
    if (old) this.#releaseTable(md, old);
    if (!md.diskAdded) {
      md.diskAdded = true;
      this.#devfs.kernelNode(`${this.devDir}/dm-${md.minor}`, S_IFBLK | 0o660, md.dev);
    }
    this.#sysfsDm(md);
    h.flags |= DM_INACTIVE_PRESENT_FLAG;
    this.#devStatus(md, h);
  }

  /** dm_get_device: `maj:min` or a path to a block node; the device must exist. */
  #getDevice(arg: string | undefined, table: FakeTable, self: DmDev): bigint {
    if (arg === undefined) throw kerr('EINVAL', 'device argument missing');
    let dev: bigint;
    const m = /^(\d+):(\d+)$/.exec(arg);
    if (m) {
      const ma = Number(m[1]);
      const mi = Number(m[2]);
      if (ma > 0xfff || mi > 0xfffff) throw kerr('EOVERFLOW');
      dev = makedev(ma, mi);
    } else {
      let st: StatResult;
      if (this.#devfs.owns(arg)) st = this.#devfs.stat(arg);
      else st = realStat(() => statSync(arg, { bigint: true }));
      if ((st.mode & S_IFMT) !== S_IFBLK) throw kerr('ENOTBLK', arg);
      dev = st.rdev;
    }
    if (dev === self.dev) throw kerr('EINVAL', 'table refers to its own device');
    const md = this.#mdOf(dev);
    if (!this.#loopOf(dev) && !(md && md.diskAdded)) throw kerr('ENXIO', `no device ${fmtDev(dev)}`);
    if (!table.devices.includes(dev)) table.devices.unshift(dev);
    return dev;
  }

  #construct(md: DmDev, type: string, params: string, length: bigint, table: FakeTable): TargetKind {
    const argv = splitArgs(params);
    switch (type) {
      case 'linear': {
        if (argv.length !== 2) throw kerr('EINVAL', 'invalid argument count');
        const dev = this.#getDevice(argv[0], table, md);
        if (!isUint(argv[1])) throw kerr('EINVAL', 'invalid device sector');
        return { kind: 'linear', dev, offset: BigInt(argv[1]) };
      }
      case 'zero':
        if (argv.length !== 0) throw kerr('EINVAL', 'no arguments required');
        return { kind: 'zero' };
      case 'error':
        return { kind: 'error' };
      case 'thin-pool':
        return this.#poolCtr(md, argv, length, table);
      case 'thin':
        return this.#thinCtr(md, argv, table);
      default:
        throw kerr('EINVAL', `unknown target type ${type}`);
    }
  }

  #poolCtr(md: DmDev, argv: string[], length: bigint, table: FakeTable): TargetKind {
    if (argv.length < 4) throw kerr('EINVAL', 'invalid argument count');
    const features: PoolFeatures = { skipBlockZeroing: false, ignoreDiscard: false, noDiscardPassdown: false, readOnly: false, errorIfNoSpace: false };
    if (argv.length > 4) {
      const n = argv[4];
      if (!isUint(n) || Number(n) > 4 || Number(n) !== argv.length - 5) throw kerr('EINVAL', 'invalid number of pool feature arguments');
      for (const f of argv.slice(5)) {
        switch (f.toLowerCase()) {
          case 'skip_block_zeroing':
            features.skipBlockZeroing = true;
            break;
          case 'ignore_discard':
            features.ignoreDiscard = true;
            break;
          case 'no_discard_passdown':
            features.noDiscardPassdown = true;
            break;
          case 'read_only':
            features.readOnly = true;
            break;
          case 'error_if_no_space':
            features.errorIfNoSpace = true;
            break;
          default:
            throw kerr('EINVAL', `unrecognised pool feature ${f}`);
        }
      }
    }
    if (argv[0] === argv[1]) throw kerr('EINVAL', 'metadata and data devices must differ');
    const metaDev = this.#getDevice(argv[0], table, md);
    const dataDev = this.#getDevice(argv[1], table, md);
    const bs = argv[2];
    if (!isUint(bs) || Number(bs) < 128 || Number(bs) > 2_097_152 || Number(bs) % 128 !== 0) throw kerr('EINVAL', 'invalid block size');
    if (!isUint(argv[3])) throw kerr('EINVAL', 'invalid low water mark');
    const blockSize = Number(bs);
    const lowWater = BigInt(argv[3]);
    for (const [minor, e] of this.#pools) {
      if (minor === md.minor) continue;
      if (e.metaDev === metaDev) throw kerr('EBUSY', 'metadata device already in use by a pool');
      if (e.dataDev === dataDev) throw kerr('EBUSY', 'data device already in use by a pool');
    }
    const existing = this.#pools.get(md.minor);
    if (existing) {
      if (existing.metaDev !== metaDev) throw kerr('EINVAL', 'different pool cannot replace a pool');
      if (existing.model.meta.dataBlockSize !== blockSize) throw kerr('EINVAL', 'changing the data block size is not supported');
    } else {
      const meta = this.#openPoolMetadata(metaDev, blockSize, features.readOnly);
      const model = new ThinPoolModel(meta, features, (m) => this.#persistMetadata(metaDev, m), () => {
        const owner = this.#dmByMinor.get(md.minor);
        if (owner) this.#mdEvent(owner);
      });
      model.lowWaterBlocks = lowWater;
      this.#pools.set(md.minor, { model, md, metaDev, dataDev });
      void length;
    }
    return { kind: 'thin-pool', metaDev, dataDev, blockSize, lowWater, features };
  }

  #openPoolMetadata(metaDev: bigint, blockSize: number, readOnly: boolean): ThinMetadata {
    const block = this.#readStorage(metaDev, 1 << 20);
    const parsed = parseMetadata(block);
    if (parsed === 'garbage') throw kerr('EILSEQ', 'superblock validation failed');
    if (parsed === 'unformatted') {
      if (readOnly) throw kerr('EPERM', 'cannot format metadata in read_only mode');
      const meta = emptyMetadata(blockSize, this.#metadataBlocksOf(metaDev));
      this.#persistMetadata(metaDev, meta);
      return meta;
    }
    if (parsed.dataBlockSize !== blockSize) throw kerr('EINVAL', 'changing the data block size is not supported');
    return parsed;
  }

  #metadataBlocksOf(dev: bigint): number {
    return Math.min(THIN_METADATA_MAX_BLOCKS, Number(this.#sizeBytes(dev) / BigInt(THIN_METADATA_BLOCK_BYTES)));
  }

  #thinCtr(md: DmDev, argv: string[], table: FakeTable): TargetKind {
    if (argv.length !== 2 && argv.length !== 3) throw kerr('EINVAL', 'invalid argument count');
    const origin = argv.length === 3 ? this.#getDevice(argv[2], table, md) : null;
    const poolDev = this.#getDevice(argv[0], table, md);
    const pmd = this.#mdOf(poolDev);
    if (!pmd) throw kerr('EINVAL', "couldn't get pool mapped device");
    const idArg = argv[1];
    if (!isUint(idArg) || BigInt(idArg) > BigInt(THIN_MAX_DEV_ID)) throw kerr('EINVAL', 'invalid device id');
    const id = Number(idArg);
    const e = this.#pools.get(pmd.minor);
    if (!e) throw kerr('EINVAL', "couldn't find pool object");
    if (e.model.mode === 'fail') throw kerr('EINVAL', 'pool in fail mode');
    if (!e.model.meta.devices.has(id)) throw kerr('ENODATA', `thin id ${id} not in pool`);
    if (e.model.suspended) throw kerr('EINVAL', 'unable to activate thin device while pool is suspended');
    e.model.openThins.set(id, (e.model.openThins.get(id) ?? 0) + 1);
    return { kind: 'thin', poolDev, id, origin };
  }

  #releaseTargets(targets: readonly FakeTarget[]): void {
    for (const t of targets) {
      if (t.impl.kind !== 'thin') continue;
      const pmd = this.#dmByMinor.get(devMinor(t.impl.poolDev));
      const e = pmd ? this.#pools.get(pmd.minor) : undefined;
      if (!e) continue;
      const n = (e.model.openThins.get(t.impl.id) ?? 1) - 1;
      if (n > 0) e.model.openThins.set(t.impl.id, n);
      else e.model.openThins.delete(t.impl.id);
    }
  }

  /** Destroys a table that is no longer live or staged: thin ids released, pool freed when unused. */
  #releaseTable(md: DmDev, t: FakeTable, settle = true): void {
    this.#releaseTargets(t.targets);
    this.#dropPoolIfUnused(md);
    if (settle) this.#settle();
  }

  #dropPoolIfUnused(md: DmDev): void {
    const e = this.#pools.get(md.minor);
    if (!e || e.md !== md) return;
    const uses = (t: FakeTable | null): boolean => !!t?.targets.some((x) => x.impl.kind === 'thin-pool');
    if (this.#dm.get(md.name) === md && (uses(md.live) || uses(md.inactive))) return;
    e.model.commit();
    this.#pools.delete(md.minor);
  }

  // -------------------------------------------------------------------------------------------
  // Storage behind block devices (for thin metadata)

  #storageKey(dev: bigint): string {
    const loop = this.#loopOf(dev);
    if (loop?.bound) return `file:${loop.bound.fileDev}:${loop.bound.fileIno}:${loop.bound.offset}`;
    const md = this.#mdOf(dev);
    const t = md?.live?.targets[0] ?? md?.inactive?.targets[0];
    if (t?.impl.kind === 'linear' && t.start === 0n) return `${this.#storageKey(t.impl.dev)}+${t.impl.offset}`;
    return `dev:${dev}`;
  }

  /** Resolves a device to a real file and byte offset (loop, or linear at sector 0 over one). */
  #fileOf(dev: bigint): { fd: number; offset: bigint } | undefined {
    const loop = this.#loopOf(dev);
    if (loop?.bound) return { fd: loop.bound.fd, offset: loop.bound.offset };
    const md = this.#mdOf(dev);
    const t = md?.live?.targets[0] ?? md?.inactive?.targets[0];
    if (t?.impl.kind === 'linear' && t.start === 0n) {
      const inner = this.#fileOf(t.impl.dev);
      return inner ? { fd: inner.fd, offset: inner.offset + t.impl.offset * SECTOR } : undefined;
    }
    return undefined;
  }

  #readStorage(dev: bigint, len: number): Buffer {
    const f = this.#fileOf(dev);
    const buf = Buffer.alloc(len);
    if (f) {
      readSync(f.fd, buf, 0, len, Number(f.offset));
      return buf;
    }
    const mem = this.#memStorage.get(this.#storageKey(dev));
    if (mem) mem.copy(buf, 0, 0, Math.min(len, mem.length));
    return buf;
  }

  #persistMetadata(dev: bigint, m: ThinMetadata): void {
    const data = serializeMetadata(cloneMetadata(m));
    const f = this.#fileOf(dev);
    if (f) {
      writeSync(f.fd, data, 0, data.length, Number(f.offset));
      return;
    }
    this.#memStorage.set(this.#storageKey(dev), data);
  }

  /** Size in bytes of a block device (BLKGETSIZE64). */
  #sizeBytes(dev: bigint): bigint {
    const loop = this.#loopOf(dev);
    if (loop) return loop.bound?.sizeBytes ?? 0n;
    const md = this.#mdOf(dev);
    return md ? tableSectors(md.live) * SECTOR : 0n;
  }

  #logicalBlockSize(dev: bigint, depth = 0): number {
    const loop = this.#loopOf(dev);
    if (loop) return loop.bound?.blockSize ?? 512;
    const md = this.#mdOf(dev);
    if (!md?.live || depth > 16) return 512;
    return Math.max(512, ...md.live.devices.map((d) => this.#logicalBlockSize(d, depth + 1)));
  }

  // -------------------------------------------------------------------------------------------
  // Block device ioctls (block/ioctl.c) and loop ioctls (drivers/block/loop.c)

  #blockIoctl(e: { dev: bigint; write: boolean }, request: number, arg: IoctlArg): number {
    const loop = this.#loopOf(e.dev);
    switch (request) {
      case BLKGETSIZE64:
        if (!Buffer.isBuffer(arg) || arg.length < 8) throw kerr('EFAULT');
        arg.writeBigUInt64LE(this.#sizeBytes(e.dev), 0);
        return 0;
      case BLKSSZGET:
        if (!Buffer.isBuffer(arg) || arg.length < 4) throw kerr('EFAULT');
        arg.writeInt32LE(this.#logicalBlockSize(e.dev), 0);
        return 0;
      case BLKFLSBUF:
        return 0;
      case BLKDISCARD:
        return this.#discard(e, arg);
    }
    if (loop) return this.#loopIoctl(loop, e, request, arg);
    throw kerr('ENOTTY');
  }

  #discard(e: { dev: bigint; write: boolean }, arg: IoctlArg): number {
    if (!Buffer.isBuffer(arg) || arg.length < 16) throw kerr('EFAULT');
    if (!e.write) throw kerr('EBADF', 'BLKDISCARD needs a writable fd');
    const start = arg.readBigUInt64LE(0);
    const len = arg.readBigUInt64LE(8);
    const lbs = BigInt(this.#logicalBlockSize(e.dev));
    if (start % lbs !== 0n || len % lbs !== 0n) throw kerr('EINVAL', 'unaligned discard');
    if (start + len > this.#sizeBytes(e.dev)) throw kerr('EINVAL', 'discard beyond the end');
    const md = this.#mdOf(e.dev);
    const t = md?.live?.targets[0]?.impl;
    if (md && t?.kind === 'thin') {
      const pmd = this.#dmByMinor.get(devMinor(t.poolDev));
      const pe = pmd ? this.#pools.get(pmd.minor) : undefined;
      if (pe) {
        if (pe.model.features.ignoreDiscard) throw kerr('EOPNOTSUPP');
        const blockBytes = BigInt(pe.model.meta.dataBlockSize) * SECTOR;
        const first = (start + blockBytes - 1n) / blockBytes;
        const end = (start + len) / blockBytes;
        if (end > first) pe.model.discard(t.id, Number(first), Number(end - first));
      }
    }
    return 0;
  }

  #loopControl(request: number, arg: IoctlArg): number {
    const n = typeof arg === 'bigint' ? Number(BigInt.asIntN(64, arg)) : typeof arg === 'number' ? arg : NaN;
    switch (request) {
      case LOOP_CTL_GET_FREE: {
        for (const l of [...this.#loops.values()].sort((a, b) => a.index - b.index)) if (!l.bound) return l.index;
        let i = 0;
        while (this.#loops.has(i)) i++;
        this.#addLoop(i);
        return i;
      }
      case LOOP_CTL_ADD: {
        if (!Number.isInteger(n) || n < -1 || n >= MINORBITS_MAX) throw kerr('EINVAL');
        if (n >= 0 && this.#loops.has(n)) throw kerr('EEXIST', `loop${n} exists`);
        let i = n;
        if (i < 0) for (i = 0; this.#loops.has(i); i++);
        this.#addLoop(i);
        return i;
      }
      case LOOP_CTL_REMOVE: {
        if (!Number.isInteger(n) || n < 0) throw kerr('EINVAL');
        const l = this.#loops.get(n);
        if (!l) throw kerr('ENODEV', `no loop${n}`);
        if (l.bound || this.#openers(l.dev) > 0) throw kerr('EBUSY', `loop${n} is in use`);
        this.#loops.delete(n);
        this.#devfs.kernelRemove(`${this.devDir}/loop${n}`, l.dev);
        this.#sysfsLoop(l, true);
        return 0;
      }
      default:
        throw kerr('ENOSYS');
    }
  }

  #addLoop(index: number): void {
    const l: LoopDev = { index, dev: makedev(LOOP_MAJOR, index), bound: null };
    this.#loops.set(index, l);
    this.#devfs.kernelNode(`${this.devDir}/loop${index}`, S_IFBLK | 0o660, l.dev);
    this.#sysfsLoop(l);
  }

  #loopIoctl(l: LoopDev, e: { dev: bigint; write: boolean }, request: number, arg: IoctlArg): number {
    switch (request) {
      case LOOP_CONFIGURE: {
        if (!Buffer.isBuffer(arg)) throw kerr('EFAULT');
        const cfg = decodeLoopConfig(arg);
        this.#bindLoop(l, e.write, cfg.fd, cfg.block_size, cfg.info, true);
        return 0;
      }
      case LOOP_SET_FD: {
        const fd = Number(arg);
        this.#bindLoop(l, e.write, fd, 0, undefined, false);
        return 0;
      }
      case LOOP_CLR_FD:
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        l.bound.flags |= LO_FLAGS_AUTOCLEAR;
        this.#sysfsLoop(l);
        return 0;
      case LOOP_GET_STATUS64: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        if (!Buffer.isBuffer(arg) || arg.length < LOOP_INFO64_SIZE) throw kerr('EFAULT');
        const b = l.bound;
        encodeLoopInfo64(
          {
            lo_device: b.fileDev,
            lo_inode: b.fileIno,
            lo_rdevice: 0n,
            lo_offset: b.offset,
            lo_sizelimit: b.sizeLimit,
            lo_number: l.index,
            lo_flags: b.flags,
            lo_file_name: b.fileName,
          },
          arg,
        );
        return 0;
      }
      case LOOP_SET_STATUS64: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        if (!Buffer.isBuffer(arg) || arg.length < LOOP_INFO64_SIZE) throw kerr('EFAULT');
        const info = decodeLoopInfo64(arg);
        this.#statusFromInfo(info);
        const b = l.bound;
        b.offset = info.lo_offset;
        b.sizeLimit = info.lo_sizelimit;
        b.fileName = info.lo_file_name;
        const set = info.lo_flags & LOOP_SET_STATUS_SETTABLE_FLAGS;
        const clear = ~info.lo_flags & LOOP_SET_STATUS_CLEARABLE_FLAGS;
        b.flags = (b.flags | set) & ~clear;
        b.sizeBytes = this.#loopSize(b);
        this.#sysfsLoop(l);
        return 0;
      }
      case LOOP_SET_CAPACITY:
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        l.bound.sizeBytes = this.#loopSize(l.bound);
        this.#sysfsLoop(l);
        return 0;
      case LOOP_SET_DIRECT_IO: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        const on = Number(arg) !== 0;
        l.bound.flags = on ? l.bound.flags | LO_FLAGS_DIRECT_IO : l.bound.flags & ~LO_FLAGS_DIRECT_IO;
        this.#sysfsLoop(l);
        return 0;
      }
      case LOOP_SET_BLOCK_SIZE: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        const bs = Number(arg);
        if (!validBlockSize(bs)) throw kerr('EINVAL', 'bad block size');
        l.bound.blockSize = bs;
        this.#sysfsLoop(l);
        return 0;
      }
      default:
        throw kerr('EINVAL', 'unknown loop request');
    }
  }

  #statusFromInfo(info: { lo_encrypt_key_size: number; lo_encrypt_type: number; lo_offset: bigint; lo_sizelimit: bigint }): void {
    if (info.lo_encrypt_key_size > LO_KEY_SIZE) throw kerr('EINVAL');
    if (info.lo_encrypt_type !== LO_CRYPT_NONE) throw kerr('EINVAL');
    const LLONG_MAX = (1n << 63n) - 1n;
    if (info.lo_offset > LLONG_MAX || info.lo_sizelimit > LLONG_MAX) throw kerr('EOVERFLOW');
  }

  #bindLoop(
    l: LoopDev,
    devWritable: boolean,
    backingFd: number,
    blockSize: number,
    info: ReturnType<typeof decodeLoopInfo64> | undefined,
    configure: boolean,
  ): void {
    const real = this.#realFds.get(backingFd);
    const fake = this.#fds.get(backingFd);
    if (!real && !fake) throw kerr('EBADF', 'bad backing fd');
    if (l.bound) throw kerr('EBUSY', `loop${l.index} is bound`);
    if (!real) throw kerr(fake?.kind === 'block' && fake.dev === l.dev ? 'EBADF' : 'EINVAL', 'backing must be a regular file here');
    const st = fstatSync(backingFd, { bigint: true });
    if ((Number(st.mode) & S_IFMT) !== 0o100000) throw kerr('EINVAL', 'backing file is neither a regular file nor a block device');
    if (info) {
      if ((info.lo_flags & ~LOOP_CONFIGURE_SETTABLE_FLAGS) !== 0) throw kerr('EINVAL', 'unsupported lo_flags');
      if (blockSize && !validBlockSize(blockSize)) throw kerr('EINVAL', 'bad block size');
      this.#statusFromInfo(info);
    }
    const fileWritable = (real.flags & O_ACCMODE) !== 0;
    const readOnly = !fileWritable || !devWritable || ((info?.lo_flags ?? 0) & LO_FLAGS_READ_ONLY) !== 0;
    const fd = realCall(() => openSync(real.path, readOnly ? 'r' : 'r+'));
    let canonical = real.path;
    try {
      canonical = realpathSync(real.path);
    } catch {
      /* keep as given */
    }
    const flags = ((configure ? info?.lo_flags ?? 0 : 0) & ~LO_FLAGS_READ_ONLY) | (readOnly ? LO_FLAGS_READ_ONLY : 0);
    const b: LoopBinding = {
      path: canonical,
      fd,
      fileDev: st.dev,
      fileIno: st.ino,
      offset: info?.lo_offset ?? 0n,
      sizeLimit: info?.lo_sizelimit ?? 0n,
      flags,
      fileName: info?.lo_file_name ?? '',
      blockSize: blockSize || 512,
      sizeBytes: 0n,
    };
    b.sizeBytes = this.#loopSize(b);
    l.bound = b;
    this.#sysfsLoop(l);
  }

  /** (file size − offset) limited by sizelimit, rounded down to 512 bytes. */
  #loopSize(b: LoopBinding): bigint {
    const size = fstatSync(b.fd, { bigint: true }).size;
    let n = size > b.offset ? size - b.offset : 0n;
    if (b.sizeLimit > 0n && b.sizeLimit < n) n = b.sizeLimit;
    return (n / SECTOR) * SECTOR;
  }

  #unbindLoop(l: LoopDev): void {
    if (!l.bound) return;
    this.#closeQuietly(l.bound.fd);
    l.bound = null;
    this.#sysfsLoop(l);
  }

  // -------------------------------------------------------------------------------------------
  // mount / umount / poll

  #mount(source: string, target: string, fstype: string, flags: bigint, data: string | null): void {
    const tgt = posix.normalize(target);
    if (flags & MS_REMOUNT) {
      const m = this.#mounts.filter((x) => x.target === tgt).pop();
      if (!m) throw kerr('EINVAL', `${target} is not mounted`);
      Object.assign(m, { flags, data });
      return;
    }
    this.#checkMountTarget(tgt);
    if (flags & MS_BIND) {
      this.#mounts.push({ source, target: tgt, fstype, flags, data, dev: 0n, busy: false });
      return;
    }
    if (!this.#devfs.owns(source)) throw kerr('ENOTBLK', source);
    const st = this.#devfs.stat(source);
    if ((st.mode & S_IFMT) !== S_IFBLK) throw kerr('ENOTBLK', source);
    const dev = st.rdev;
    const md = this.#mdOf(dev);
    const loop = this.#loopOf(dev);
    if (!(md?.diskAdded && md.live) && !loop?.bound) throw kerr('ENXIO', `no usable device at ${source}`);
    if (md?.suspended) throw kerr('EINTR', 'device is suspended: mount would block');
    const fs = this.#fsMarks.get(this.#fsKey(dev));
    if (!fs || fs !== fstype) throw kerr('EINVAL', fs ? `${source} holds ${fs}, not ${fstype}` : `no ${fstype} filesystem on ${source}`);
    if (!(flags & MS_RDONLY) && (md?.readOnly || (loop?.bound && loop.bound.flags & LO_FLAGS_READ_ONLY))) throw kerr('EACCES', 'read-only device');
    if (this.#mounts.some((m) => m.dev === dev && m.target === tgt)) throw kerr('EBUSY', `${source} already mounted on ${target}`);
    this.#mounts.push({ source, target: tgt, fstype, flags, data, dev, busy: false });
  }

  #checkMountTarget(tgt: string): void {
    if (this.#devfs.owns(tgt)) {
      if ((this.#devfs.stat(tgt).mode & S_IFMT) !== S_IFDIR) throw kerr('ENOTDIR', tgt);
      return;
    }
    const st = realStat(() => statSync(tgt, { bigint: true }));
    if ((st.mode & S_IFMT) !== S_IFDIR) throw kerr('ENOTDIR', tgt);
  }

  #umount(target: string, flags: number): void {
    if (flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | 8)) throw kerr('EINVAL', 'bad umount flags');
    if (flags & MNT_EXPIRE && flags & (MNT_FORCE | MNT_DETACH)) throw kerr('EINVAL');
    const tgt = posix.normalize(target);
    const idx = this.#mounts.map((m) => m.target).lastIndexOf(tgt);
    if (idx < 0) throw kerr('EINVAL', `${target} is not a mount point`);
    const m = this.#mounts[idx]!;
    if (m.busy && !(flags & MNT_DETACH)) throw kerr('EBUSY', `${target} is busy`);
    this.#mounts.splice(idx, 1);
    this.#settle();
  }

  #poll(fd: number, events: number, timeoutMs: number): number | Promise<number> {
    const e = this.#fds.get(fd);
    if (!e) return this.#realFds.has(fd) ? events & (POLLIN | POLLOUT) : POLLNVAL;
    if (e.kind !== 'dm-control') return events & (POLLIN | POLLOUT);
    const ready = (): number => (this.#globalEvent !== e.armed ? events & POLLIN : 0);
    if (ready() || timeoutMs === 0) return ready();
    return new Promise<number>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = (): void => {
        if (timer) clearTimeout(timer);
        this.#globalWaiters.delete(wake);
        resolve(ready());
      };
      this.#globalWaiters.add(wake);
      if (timeoutMs > 0) timer = setTimeout(wake, timeoutMs);
    });
  }

  // -------------------------------------------------------------------------------------------
  // sysfs tree (for LoopControl's injectable sysfsRoot)

  #sysfsLoop(l: LoopDev, removed = false): void {
    if (!this.#sysfsRoot) return;
    const dir = join(this.#sysfsRoot, 'block', `loop${l.index}`);
    if (removed) {
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    const b = l.bound;
    writeAttr(dir, 'dev', `${LOOP_MAJOR}:${l.index}`);
    writeAttr(dir, 'size', String(b ? b.sizeBytes / SECTOR : 0n));
    writeAttr(dir, 'ro', b && b.flags & LO_FLAGS_READ_ONLY ? '1' : '0');
    writeAttr(join(dir, 'queue'), 'logical_block_size', String(b?.blockSize ?? 512));
    const loopDir = join(dir, 'loop');
    if (!b) {
      rmSync(loopDir, { recursive: true, force: true });
      return;
    }
    writeAttr(loopDir, 'backing_file', b.path);
    writeAttr(loopDir, 'offset', String(b.offset));
    writeAttr(loopDir, 'sizelimit', String(b.sizeLimit));
    writeAttr(loopDir, 'autoclear', b.flags & LO_FLAGS_AUTOCLEAR ? '1' : '0');
    writeAttr(loopDir, 'partscan', b.flags & LO_FLAGS_PARTSCAN ? '1' : '0');
    writeAttr(loopDir, 'dio', b.flags & LO_FLAGS_DIRECT_IO ? '1' : '0');
  }

  #sysfsDm(md: DmDev, removed = false): void {
    if (!this.#sysfsRoot) return;
    const dir = join(this.#sysfsRoot, 'block', `dm-${md.minor}`);
    if (removed || !md.diskAdded) {
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    writeAttr(dir, 'dev', `${this.dmMajor}:${md.minor}`);
    writeAttr(dir, 'size', String(tableSectors(md.live)));
    writeAttr(dir, 'ro', md.readOnly ? '1' : '0');
    writeAttr(join(dir, 'dm'), 'name', md.name);
    writeAttr(join(dir, 'dm'), 'uuid', md.uuid ?? '');
    writeAttr(join(dir, 'dm'), 'suspended', md.suspended ? '1' : '0');
  }

  #lines(t: FakeTable, table: boolean): FakeTableLine[] {
    return t.targets.map((x) => ({ start: x.start, length: x.length, type: x.type, params: table ? this.#tableText(x) : '' }));
  }
}

interface DmCall {
  h: RawDmIoctl;
  /** The kernel's copy of the request buffer (param_size bytes, at least 312). */
  k: Buffer;
  /** data_size as sent. */
  paramSize: number;
  fdState: { armed: number };
  /** Non-zero ioctl return, for a handler that needs one. */
  rc?: number;
}

/** check_name: no '/'; on newer kernels also not 'control', '.' or '..'. */
function checkName(name: string, rejectReserved: boolean): void {
  if (name.includes('/')) throw kerr('EINVAL', `invalid device name ${name}`);
  if (rejectReserved && (name === 'control' || name === '.' || name === '..')) throw kerr('EINVAL', `reserved device name ${name}`);
}

function validBlockSize(bs: number): boolean {
  return Number.isInteger(bs) && bs >= 512 && bs <= 4096 && (bs & (bs - 1)) === 0;
}

function describeCall(c: FakeCall): string {
  return [c.syscall, c.request, c.path, c.fd !== undefined ? `fd ${c.fd}` : undefined].filter(Boolean).join(' ');
}

function writeAttr(dir: string, name: string, value: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `${value}\n`);
}

/** Runs a node:fs call, turning its error into the errno the seam reports. */
function realCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) throw kerr(code, (e as Error).message);
    throw e;
  }
}

function realStat(fn: () => import('node:fs').BigIntStats): StatResult {
  const st = realCall(fn);
  return { dev: st.dev, ino: st.ino, rdev: st.rdev, mode: Number(st.mode), size: st.size, blocks: st.blocks };
}

