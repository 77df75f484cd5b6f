// SPDX-License-Identifier: MIT
// The fault kit: dm-flakey, dm-delay and dm-log-writes devices over a block device, for tests in
// (QEMU-booted) kernels, each a handle that `await using` removes again. Built on DmControl and the
// target codecs of src/dm/targets (flakey.ts, delay.ts, log-writes.ts, which cite the kernel).
//
// Every handle's device gets a uuid of its own (`FAULTKIT-<random>`), and every later operation
// (reload, resume, message, remove) addresses the device by that uuid: a handle never touches a
// device it did not create, even when a device of the same name appears after its own is gone.
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import {
  DeviceNotFoundError,
  DmControl,
  delayTarget,
  dmNameProblems,
  flakeyTarget,
  logWritesMarkMessage,
  logWritesTarget,
  parseLogWritesStatus,
  type DelayParams,
  type DevNum,
  type FlakeyParams,
  type LogWritesStatus,
  type TargetLine,
} from '../dm/index.js';
import { BLKGETSIZE64, O_CLOEXEC, S_IFBLK, S_IFMT, major, minor, realSyscalls, type Syscalls } from '../ioctl/index.js';

/** Options every fault-kit helper takes. */
export interface FaultKitOptions {
  /** The dm device's name. Default `faultkit-<kind>-<random>`. */
  readonly name?: string;
  /** The DmControl to use (it stays open). Default: a new one, closed when the handle is disposed. */
  readonly dm?: DmControl;
  /** Seam for stat and BLKGETSIZE64 of the underlying devices, and for the DmControl made by default (default: the real libc). */
  readonly syscalls?: Syscalls;
}

/** What every fault-kit handle has. `await using` (or `await handle[Symbol.asyncDispose]()`) removes the device. */
export interface FaultDevice extends AsyncDisposable {
  /** The dm device's name. */
  readonly name: string;
  /** Its uuid (`FAULTKIT-…`), by which the handle addresses it. */
  readonly uuid: string;
  /** Its node, `/dev/mapper/<name>`. */
  readonly path: string;
  /** Its device number. */
  readonly dev: DevNum;
  /** Its length in 512-byte sectors (the underlying device's). */
  readonly sectors: bigint;
}

/**
 * What a flakey device does with I/O while down (drivers/md/dm-flakey.c): `'drop'` (`drop_writes`:
 * writes succeed and are lost, reads work), `'error'` (`error_writes`: writes fail with EIO, reads
 * work), `'fail'` (no feature: every read and write fails with EIO).
 */
export type FlakeyMode = 'drop' | 'error' | 'fail';

export interface FlakeyOverOptions extends FaultKitOptions {
  /** Seconds up, then `down` seconds down, repeating from the table's load (`flakey_map`). 0..2^32-1. */
  readonly up: number;
  readonly down: number;
  readonly mode: FlakeyMode;
}

/** A flakey device: the interval schedule it was made with, until goDown / goUp. */
export interface FlakeyDevice extends FaultDevice {
  /** `'intervals'` (the up/down schedule it was made with), `'down'` or `'up'`. */
  readonly state: 'intervals' | 'down' | 'up';
  /**
   * Down from now on: loads `up 0, down 2^32-1` (`elapsed % (up + down) >= up` always holds, and a
   * new table restarts the clock) and resumes. I/O that completed before this returned went
   * through the old table (resume suspends it first, waiting for in-flight I/O).
   */
  goDown(): Promise<void>;
  /** Up from now on (`up 2^32-1, down 0`: never down, I/O passes through as with linear), then resumes. */
  goUp(): Promise<void>;
}

export interface DelayOverOptions extends FaultKitOptions {
  /** Milliseconds each read is held (default 0). */
  readonly readMs?: number;
  /** Milliseconds each write is held (default 0). */
  readonly writeMs?: number;
  /** Milliseconds each flush (a write with REQ_PREFLUSH) is held (default 0). */
  readonly flushMs?: number;
}

/** A delay device (drivers/md/dm-delay.c, the 9-argument form: read, write and flush classes). */
export interface DelayDevice extends FaultDevice {
  readonly readMs: number;
  readonly writeMs: number;
  readonly flushMs: number;
}

/** A log-writes device (drivers/md/dm-log-writes.c): every write to it is logged onto `logDevice`. */
export interface LogWritesDevice extends FaultDevice {
  /** The log device's path as given. */
  readonly logDevice: string;
  /**
   * Logs a mark entry named `name` (the target's `mark` message). Flush first (fsync): writes not yet
   * flushed are logged after the mark (`normal_end_io` holds them until the next flush).
   * @throws InvalidArgumentError for an empty name, or one with blanks, `\`, NUL or over 479 bytes
   */
  mark(name: string): Promise<void>;
  /** The target's status: entries logged so far, the last log sector used, whether logging still works. */
  status(): Promise<LogWritesStatus>;
}

const U32_MAX = 0xffffffff;

interface BlockDev {
  readonly num: DevNum;
  readonly sectors: bigint;
}

/** stat + BLKGETSIZE64 of a block device node. */
function blockDevice(sys: Syscalls, path: string, what: string): BlockDev {
  const st = sys.stat(path);
  if ((st.mode & S_IFMT) !== S_IFBLK) throw new InvalidArgumentError(what, [{ path: '', message: 'is not a block device', value: path }]);
  const fd = sys.open(path, fsc.O_RDONLY | O_CLOEXEC);
  const buf = Buffer.alloc(8);
  try {
    sys.ioctl(fd, BLKGETSIZE64, buf, 'BLKGETSIZE64');
  } finally {
    sys.close(fd);
  }
  const bytes = buf.readBigUInt64LE(0);
  if (bytes < 512n) throw new InvalidArgumentError(what, [{ path: '', message: `has ${bytes} bytes, less than one sector`, value: path }]);
  return { num: { major: major(st.rdev), minor: minor(st.rdev) }, sectors: bytes / 512n };
}

function commonProblems(device: unknown, options: unknown): ValidationProblem[] {
  const out: ValidationProblem[] = [];
  if (typeof device !== 'string' || device === '') out.push({ path: '/device', message: 'must be the path of a block device', value: device });
  if (typeof options !== 'object' || options === null) {
    out.push({ path: '/options', message: 'must be an object', value: options });
    return out;
  }
  const o = options as FaultKitOptions;
  if (o.name !== undefined) out.push(...dmNameProblems(o.name, '/options/name'));
  if (o.dm !== undefined && !(o.dm instanceof DmControl)) out.push({ path: '/options/dm', message: 'must be a DmControl', value: o.dm });
  if (o.syscalls !== undefined && (typeof o.syscalls !== 'object' || o.syscalls === null)) out.push({ path: '/options/syscalls', message: 'must be a Syscalls object', value: o.syscalls });
  return out;
}

function intProblem(v: unknown, path: string, max = U32_MAX): ValidationProblem[] {
  return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max ? [] : [{ path, message: `must be an integer in 0..${max}`, value: v }];
}

/** The machinery every handle shares: create with a uuid, reload by it, remove by it once. */
class Made {
  readonly dm: DmControl;
  readonly ownsDm: boolean;
  readonly name: string;
  readonly uuid: string;
  dev: DevNum = { major: 0, minor: 0 };
  #removed = false;

  constructor(kind: string, options: FaultKitOptions) {
    this.ownsDm = options.dm === undefined;
    this.dm = options.dm ?? new DmControl(options.syscalls !== undefined ? { syscalls: options.syscalls } : {});
    const id = randomBytes(8).toString('hex');
    this.name = options.name ?? `faultkit-${kind}-${id}`;
    this.uuid = `FAULTKIT-${kind}-${id}`;
  }

  async create(line: TargetLine): Promise<void> {
    try {
      this.dev = (await this.dm.createDevice(this.name, [line], { uuid: this.uuid })).dev;
    } catch (e) {
      if (this.ownsDm) this.dm.close();
      throw e;
    }
  }

  async reload(line: TargetLine): Promise<void> {
    await this.dm.tableLoad({ uuid: this.uuid }, [line]);
    await this.dm.deviceResume({ uuid: this.uuid });
  }

  /** Removes the device this handle made (by its uuid), once; a device already gone is no error. */
  async dispose(): Promise<void> {
    if (this.#removed) return;
    try {
      await this.dm.deviceRemove({ uuid: this.uuid });
    } catch (e) {
      if (!(e instanceof DeviceNotFoundError)) throw e;
    }
    this.#removed = true;
    if (this.ownsDm) this.dm.close();
  }
}

/**
 * A dm-flakey device over `device` (a block device path), working `up` seconds and then
 * misbehaving `down` seconds as `mode` says, repeatedly, from creation; {@link FlakeyDevice.goDown}
 * and {@link FlakeyDevice.goUp} switch it at a moment of the test's choosing.
 * @example
 * await using f = await flakeyOver('/dev/loop0', { up: 3600, down: 0, mode: 'drop' });
 * // … write through f.path …
 * await f.goDown(); // writes from now on succeed and are lost
 * @throws InvalidArgumentError listing every problem, before anything is created
 */
export async function flakeyOver(device: string, options: FlakeyOverOptions): Promise<FlakeyDevice> {
  const problems = commonProblems(device, options);
  if (typeof options === 'object' && options !== null) {
    const up = intProblem(options.up, '/options/up');
    const down = intProblem(options.down, '/options/down');
    problems.push(...up, ...down);
    if (up.length === 0 && down.length === 0) {
      const sum = options.up + options.down;
      if (sum === 0) problems.push({ path: '/options/down', message: 'up + down must not be zero (flakey_ctr refuses it)', value: 0 });
      else if (sum > U32_MAX) problems.push({ path: '/options/down', message: `up + down must be at most ${U32_MAX}`, value: sum });
    }
    if (options.mode !== 'drop' && options.mode !== 'error' && options.mode !== 'fail')
      problems.push({ path: '/options/mode', message: "must be 'drop', 'error' or 'fail'", value: options.mode });
  }
  if (problems.length > 0) throw new InvalidArgumentError('flakeyOver', problems);
  const sys = options.syscalls ?? realSyscalls();
  const bd = blockDevice(sys, device, 'flakeyOver device');
  const line = (upInterval: number, downInterval: number): TargetLine => {
    const p: FlakeyParams = {
      device: bd.num,
      offset: 0n,
      upInterval,
      downInterval,
      ...(options.mode === 'fail' ? {} : { writes: options.mode }),
    };
    return flakeyTarget(0n, bd.sectors, p);
  };
  const first = line(options.up, options.down);
  const made = new Made('flakey', options);
  await made.create(first);
  let state: FlakeyDevice['state'] = 'intervals';
  return {
    name: made.name,
    uuid: made.uuid,
    path: made.dm.nodePath(made.name),
    dev: made.dev,
    sectors: bd.sectors,
    get state() {
      return state;
    },
    async goDown() {
      await made.reload(line(0, U32_MAX));
      state = 'down';
    },
    async goUp() {
      await made.reload(line(U32_MAX, 0));
      state = 'up';
    },
    [Symbol.asyncDispose]: () => made.dispose(),
  };
}

/**
 * A dm-delay device over `device` holding each read, write and flush for the given milliseconds
 * (`delay_ctr`'s 9-argument form: all three classes on `device` from sector 0).
 * @example
 * await using d = await delayOver('/dev/loop0', { writeMs: 200 });
 * @throws InvalidArgumentError listing every problem, before anything is created
 */
export async function delayOver(device: string, options: DelayOverOptions = {}): Promise<DelayDevice> {
  const problems = commonProblems(device, options);
  if (typeof options === 'object' && options !== null)
    for (const k of ['readMs', 'writeMs', 'flushMs'] as const) if (options[k] !== undefined) problems.push(...intProblem(options[k], `/options/${k}`));
  if (problems.length > 0) throw new InvalidArgumentError('delayOver', problems);
  const sys = options.syscalls ?? realSyscalls();
  const bd = blockDevice(sys, device, 'delayOver device');
  const readMs = options.readMs ?? 0;
  const writeMs = options.writeMs ?? 0;
  const flushMs = options.flushMs ?? 0;
  const cls = (delayMs: number) => ({ device: bd.num, offset: 0n, delayMs });
  const p: DelayParams = { ...cls(readMs), write: cls(writeMs), flush: cls(flushMs) };
  const made = new Made('delay', options);
  await made.create(delayTarget(0n, bd.sectors, p));
  return {
    name: made.name,
    uuid: made.uuid,
    path: made.dm.nodePath(made.name),
    dev: made.dev,
    sectors: bd.sectors,
    readMs,
    writeMs,
    flushMs,
    [Symbol.asyncDispose]: () => made.dispose(),
  };
}

/**
 * A dm-log-writes device over `device`, logging every write (once flushed) onto `logDevice`.
 * Disposing it removes the device, which logs the kernel's own `dm-log-writes-end` mark and
 * rewrites the log's super block: read the log (readWriteLog, replayLog) after that.
 * @example
 * {
 *   await using lw = await logWritesOver('/dev/loop0', '/dev/loop1');
 *   // … write and fsync through lw.path …
 *   await lw.mark('after-fsync');
 * }
 * await replayLog('/dev/loop1', '/dev/loop2', { until: { mark: 'after-fsync' } });
 * @throws InvalidArgumentError listing every problem, before anything is created
 */
export async function logWritesOver(device: string, logDevice: string, options: FaultKitOptions = {}): Promise<LogWritesDevice> {
  const problems = commonProblems(device, options);
  if (typeof logDevice !== 'string' || logDevice === '') problems.push({ path: '/logDevice', message: 'must be the path of a block device', value: logDevice });
  if (problems.length > 0) throw new InvalidArgumentError('logWritesOver', problems);
  const sys = options.syscalls ?? realSyscalls();
  const bd = blockDevice(sys, device, 'logWritesOver device');
  const log = blockDevice(sys, logDevice, 'logWritesOver logDevice');
  // logWritesTarget refuses the same device for both (the log would overwrite the data).
  const line = logWritesTarget(0n, bd.sectors, { device: bd.num, logDevice: log.num });
  const made = new Made('logw', options);
  await made.create(line);
  return {
    name: made.name,
    uuid: made.uuid,
    path: made.dm.nodePath(made.name),
    dev: made.dev,
    sectors: bd.sectors,
    logDevice,
    async mark(name: string) {
      await made.dm.targetMessage({ uuid: made.uuid }, 0n, logWritesMarkMessage(name));
    },
    async status() {
      const lines = await made.dm.tableStatus({ uuid: made.uuid });
      return parseLogWritesStatus(lines[0]?.params ?? '');
    },
    [Symbol.asyncDispose]: () => made.dispose(),
  };
}
