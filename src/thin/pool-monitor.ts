// SPDX-License-Identifier: MIT
// PoolMonitor: watches thin pools by kernel events (dmeventd's thin plugin, in the library).
//
// Where the kernel raises the events we wait for (drivers/md/dm-thin.c):
// - check_low_water_mark(), called from alloc_data_block(): when free data blocks are
//   `<= pool->low_water_blocks` and `!pool->low_water_triggered`, it sets low_water_triggered and
//   calls dm_table_event(). The flag is cleared again only by pool_resume(), so the kernel raises
//   this event once per resume (edge-triggered).
// - set_pool_mode() → notify_of_pool_mode_change() → dm_table_event() on every mode change
//   (PM_WRITE ↔ PM_OUT_OF_DATA_SPACE, PM_READ_ONLY / PM_OUT_OF_METADATA_SPACE, PM_FAIL), e.g.
//   alloc_data_block() switching to PM_OUT_OF_DATA_SPACE, or commit() → check_for_data_space()
//   switching back to PM_WRITE once a resize left free blocks. do_no_space_timeout() also calls
//   notify_of_pool_mode_change() when a queue_if_no_space pool turns to erroring IO.
// - metadata_low_callback() → dm_table_event(): registered as the metadata space map's threshold
//   (dm_pool_register_metadata_threshold with calc_metadata_threshold()); the space map's
//   check_threshold() (drivers/md/persistent-data/dm-space-map-metadata.c) fires it, edge-triggered,
//   when free metadata blocks fall to `<= threshold`.
// dm_table_event() → event_callback() (drivers/md/dm.c) bumps the device's event_nr, wakes
// DM_DEV_WAIT sleepers and calls dm_issue_global_event(), which wakes poll(2) on every
// /dev/mapper/control fd armed with DM_DEV_ARM_POLL (dm-ioctl.c dm_poll()). Removing a device
// (dm-ioctl.c __hash_remove()) raises dm_table_event() on its live table too, and create/remove/
// rename issue a global event: so a pool going away or appearing also wakes us.
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import { DeviceNotFoundError, DmControl, dmNameProblems, type DeviceInfo, type DmControlOptions, type TargetLine } from '../dm/index.js';
import { UnexpectedTargetError } from './errors.js';
import { parsePoolParams } from './pool-params.js';
import { parseThinPoolStatus, poolDataFree, poolMetadataFree, type ThinPoolStatus, type ThinPoolWorkingStatus } from './pool-status.js';

/** The pool's mode as the monitor reports it: status field 5, or `fail` for a pool in fail mode. */
export type PoolMonitorMode = 'rw' | 'out_of_data_space' | 'ro' | 'fail';

/** How the monitor waits for events. */
export type PoolMonitorMechanism = 'arm-poll' | 'dev-wait';

/** The last observation of one pool. */
export interface PoolMonitorState {
  readonly pool: string;
  /** The pool device's number as `major:minor` (a recreated pool may get a different one). */
  readonly dev: string;
  /** The device's event counter (DM_DEV_STATUS event_nr) at the time of the read. */
  readonly eventNr: number;
  readonly status: ThinPoolStatus;
  /** null when the status was `Error` (a metadata query failed inside the kernel). */
  readonly mode: PoolMonitorMode | null;
  /** The table's low water mark, in data blocks. */
  readonly lowWaterMark: bigint;
  /** Free data blocks `<= lowWaterMark` (check_low_water_mark's condition). */
  readonly belowLowWater: boolean;
  /** Free metadata blocks `<=` the metadata threshold ({@link metadataThreshold}). */
  readonly metadataLow: boolean;
}

/** Payload of `lowWater`. */
export interface PoolLowWaterEvent {
  readonly pool: string;
  readonly status: ThinPoolWorkingStatus;
  readonly lowWaterMark: bigint;
  readonly freeDataBlocks: bigint;
}
/** Payload of `outOfDataSpace` and `needsCheck`. */
export interface PoolStatusEvent {
  readonly pool: string;
  readonly status: ThinPoolWorkingStatus;
}
/** Payload of `modeChange`. */
export interface PoolModeChangeEvent {
  readonly pool: string;
  readonly from: PoolMonitorMode;
  readonly to: PoolMonitorMode;
  readonly status: ThinPoolStatus;
}
/** Payload of `metadataLow`. */
export interface PoolMetadataLowEvent {
  readonly pool: string;
  readonly status: ThinPoolWorkingStatus;
  /** The threshold used, in 4 KiB metadata blocks ({@link metadataThreshold}). */
  readonly threshold: bigint;
  readonly freeMetadataBlocks: bigint;
}
/** Payload of `poolGone` (removed, or its live table dropped) and `poolAppeared`. */
export interface PoolPresenceEvent {
  readonly pool: string;
}
/** Payload of `poolAppeared`: the first observation after the pool was absent. */
export interface PoolAppearedEvent {
  readonly pool: string;
  readonly state: PoolMonitorState;
}

/**
 * Payload of `readingSkipped`: a reading whose status and table disagree on the pool's data size
 * (taken while a reload was between its table swap and the end of its resume), twice in a row.
 */
export interface PoolReadingSkippedEvent {
  readonly pool: string;
  /** The live table's data length in data blocks (table length / data block size). */
  readonly tableDataBlocks: bigint;
  /** The status's total data blocks (the pool's data space map). */
  readonly statusDataBlocks: bigint;
}

/** How often {@link PoolMonitor} reads a pool whose status and table disagree before it skips the round. */
export const CONSISTENT_READ_ATTEMPTS = 2;

/** The monitor's events and their listener arguments (a typed EventEmitter). */
export interface PoolMonitorEvents {
  /** Free data blocks fell to the low water mark or below (edge). */
  lowWater: [PoolLowWaterEvent];
  /** The pool entered `out_of_data_space` (edge; also reported as a modeChange). */
  outOfDataSpace: [PoolStatusEvent];
  /** The pool's mode changed between two observations. */
  modeChange: [PoolModeChangeEvent];
  /** The metadata got the `needs_check` flag (edge). */
  needsCheck: [PoolStatusEvent];
  /** Free metadata blocks fell to the kernel's metadata threshold or below (edge). */
  metadataLow: [PoolMetadataLowEvent];
  /** The pool device is gone (or has no live table) where it was seen before. */
  poolGone: [PoolPresenceEvent];
  /** The pool is (back) there after being absent or recreated; conditions are re-evaluated from scratch. */
  poolAppeared: [PoolAppearedEvent];
  /**
   * A round judged nothing: its readings were mixed (mid-reload); the previous state stands until
   * the pool is read again, on the next event or after 100 ms (doubling, up to 5 s).
   */
  readingSkipped: [PoolReadingSkippedEvent];
  /** A read failed (`pool` set) or the wait itself failed (`pool` undefined; the monitor then stops). */
  error: [Error, string | undefined];
  /** The monitor stopped and its control fd is closed. */
  close: [];
}

/** Options of {@link PoolMonitor}. */
export interface PoolMonitorOptions {
  /** Stops the monitor (as {@link PoolMonitor.close}) when aborted. */
  readonly signal?: AbortSignal;
  /**
   * `'auto'` (default): DM_DEV_ARM_POLL + poll(2) on the monitor's own control fd, falling back to
   * DM_DEV_WAIT per pool when the kernel refuses ARM_POLL (EINVAL for a dm interface older than
   * 4.36, ENOTTY for an unknown command). `'arm-poll'` / `'dev-wait'` force one.
   */
  readonly mechanism?: 'auto' | PoolMonitorMechanism;
  /**
   * Options of the monitor's own DmControl (syscalls, devDir, procMiscPath). Its node policy is
   * always `'none'`: the monitor only reads.
   */
  readonly dm?: Omit<DmControlOptions, 'nodes'>;
  /**
   * DM_DEV_WAIT mode only: how often a pool that is absent is looked for again (ms, default 1000).
   * DM_DEV_WAIT cannot wait for a device that does not exist; with ARM_POLL the creation event
   * wakes the monitor instead and this is unused.
   */
  readonly absentRecheckMs?: number;
  /**
   * ARM_POLL mode: every pool is read again after this long without any dm event (ms, default
   * 10000, the period of dmeventd's own checks: DM_EVENT_DEFAULT_TIMEOUT in lvm2's
   * daemons/dmeventd/dmeventd.h); 0 reads on events only. Events are the fast path; the re-read
   * is the safety net for a condition the kernel reached without an event this monitor could
   * judge (a reading taken mid-reload, see `readingSkipped`). A re-read emits only what changed.
   * DM_DEV_WAIT cannot be interrupted, so in that mode there is no periodic re-read.
   */
  readonly recheckMs?: number;
}

/**
 * After a `readingSkipped` (a reload in flight), the pool is read again this long after (ms),
 * doubling while the readings stay mixed, up to `SKIPPED_RETRY_MAX_MS`: the resume that
 * settles the reading does not raise an event of its own.
 */
const SKIPPED_RETRY_MS = 100;
/** The longest wait between re-reads of a pool whose readings stay mixed (ms). */
const SKIPPED_RETRY_MAX_MS = 5000;

/**
 * The kernel's metadata low water mark, in 4 KiB metadata blocks: dm-thin.c's
 * calc_metadata_threshold() is `min(1024 /* 4 MiB *\/, metadata device blocks / 4)` — the
 * SMALLER of 4 MiB worth of blocks and 25 % of the metadata device. Kernels that print status
 * field 9 report exactly this value; for older ones it is computed from the status's total.
 */
export function metadataThreshold(status: ThinPoolWorkingStatus): bigint {
  if (status.metadataLowWatermark !== null) return status.metadataLowWatermark;
  const quarter = status.totalMetadataBlocks / 4n;
  return quarter < 1024n ? quarter : 1024n;
}

function modeOf(status: ThinPoolStatus): PoolMonitorMode | null {
  if (status.kind === 'fail') return 'fail';
  if (status.kind === 'error') return null;
  return status.mode;
}

function formatDev(info: DeviceInfo): string {
  return `${info.dev.major}:${info.dev.minor}`;
}

function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The one thin-pool line of a table, or UnexpectedTargetError. */
function poolLine(pool: string, lines: readonly TargetLine[]): TargetLine {
  const line = lines.length === 1 ? lines[0] : undefined;
  if (!line || line.type !== 'thin-pool') throw new UnexpectedTargetError(pool, 'thin-pool', lines.map((l) => l.type));
  return line;
}

class Stopped extends Error {}

/**
 * Watches thin pools by kernel events (and a periodic re-read as a safety net) and emits typed events when a pool crosses
 * its low water mark, runs out of data space, changes mode, gets `needs_check` or runs low on
 * metadata. A typed EventEmitter (see {@link PoolMonitorEvents}); each event carries the parsed
 * status.
 *
 * How it waits: with its OWN DmControl (one control fd, closed by {@link close}) it arms
 * DM_DEV_ARM_POLL, reads every pool (DM_DEV_STATUS, the table, and the status with
 * DM_NOFLUSH_FLAG so reading never makes the pool commit), compares with the previous
 * observation, emits, then waits for POLLIN with poll(2) on a libuv worker thread (koffi async, in
 * 250 ms slices so close/abort are honoured within one slice): the event loop stays free. Any dm
 * event on any device wakes it; pools whose state did not change emit nothing. Without any event
 * it reads again after `recheckMs` (10 s, as dmeventd), and a reading skipped mid-reload is
 * retried after 100 ms: a reload's resume raises no event of its own, and on
 * 6.1 a resize that crossed the metadata threshold was seen to leave the pool's event counter at
 * 0, so a monitor that waited for the next event waited for ever (test/privileged
 * deviceset-autoextend-off.test.ts, 1 run in 11 under load). On a kernel without ARM_POLL it falls
 * back to one DM_DEV_WAIT per pool (each also on a worker thread).
 *
 * Edges: `lowWater`, `outOfDataSpace`, `needsCheck` and `metadataLow` fire when their condition
 * becomes true between two observations, and also on the first observation of a pool (or after
 * it reappears) if already true; `modeChange` needs two observations. A pool removed and created
 * again under the same name emits `poolGone` then `poolAppeared` and is watched on.
 *
 * Errors: a failed read of one pool emits `error` (err, pool) once per distinct error and the
 * monitor goes on; a failed wait emits `error` (err, undefined) and stops. With no `error`
 * listener the error is passed to `process.emitWarning` instead of throwing.
 *
 * Threads: with ARM_POLL the monitor occupies one libuv worker thread while it waits; with the
 * DM_DEV_WAIT fallback, one per pool (libuv has 4 by default, UV_THREADPOOL_SIZE), which the
 * rest of the process (fs, crypto, other koffi calls) shares.
 *
 * @example
 * const monitor = new PoolMonitor(['docker-pool']);
 * monitor.on('lowWater', ({ pool, freeDataBlocks }) => console.log(pool, 'low:', freeDataBlocks));
 * await monitor.ready;   // armed, first statuses read
 * // …
 * await monitor.close(); // the control fd is closed when this resolves
 */
export class PoolMonitor extends EventEmitter<PoolMonitorEvents> {
  readonly #pools: readonly string[];
  readonly #dm: DmControl;
  readonly #stop = new AbortController();
  readonly #states = new Map<string, PoolMonitorState | null>();
  /** Pools read at least once, present or absent (a later presence after absence is an appearance). */
  readonly #looked = new Set<string>();
  /** The last read error reported per pool (cleared by a good read). */
  readonly #lastError = new Map<string, string>();
  readonly #absentRecheckMs: number;
  readonly #recheckMs: number;
  /** Pools whose last reading was skipped (mixed), with the wait before the next re-read. */
  readonly #skipped = new Map<string, number>();
  readonly #requested: 'auto' | PoolMonitorMechanism;
  readonly #userSignal: AbortSignal | undefined;
  readonly #onAbort = (): void => void this.close();
  #mechanism: PoolMonitorMechanism | undefined;
  #closed = false;
  readonly #done: Promise<void>;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;

  /**
   * Starts watching `pools` (dm names of thin-pool devices) at once. A pool that does not exist
   * yet is watched for; `poolAppeared` fires when it comes.
   * @throws InvalidArgumentError for an empty list, a bad name or a duplicate, before anything opens
   */
  constructor(pools: readonly string[], options: PoolMonitorOptions = {}) {
    super();
    const problems: ValidationProblem[] = [];
    if (!Array.isArray(pools) || pools.length === 0) problems.push({ path: 'pools', message: 'must be a non-empty array of dm names', value: pools });
    else {
      pools.forEach((p, i) => problems.push(...dmNameProblems(p, `pools[${i}]`)));
      const dup = pools.find((p, i) => pools.indexOf(p) !== i);
      if (dup !== undefined) problems.push({ path: 'pools', message: `lists ${JSON.stringify(dup)} twice`, value: pools });
    }
    const mechanism = options.mechanism ?? 'auto';
    if (!['auto', 'arm-poll', 'dev-wait'].includes(mechanism)) problems.push({ path: 'mechanism', message: "must be 'auto', 'arm-poll' or 'dev-wait'", value: mechanism });
    const recheck = options.absentRecheckMs ?? 1000;
    if (!Number.isFinite(recheck) || recheck < 0) problems.push({ path: 'absentRecheckMs', message: 'must be a finite number ≥ 0', value: recheck });
    const every = options.recheckMs ?? 10_000;
    if (!Number.isFinite(every) || every < 0) problems.push({ path: 'recheckMs', message: 'must be a finite number ≥ 0 (0: on events only)', value: every });
    if (problems.length > 0) throw new InvalidArgumentError('PoolMonitor options', problems);

    this.#pools = [...pools];
    this.#requested = mechanism;
    this.#absentRecheckMs = recheck;
    this.#recheckMs = every;
    this.#dm = new DmControl({ ...options.dm, nodes: 'none' });
    for (const p of this.#pools) this.#states.set(p, null);
    this.#ready = new Promise<void>((resolve) => (this.#resolveReady = resolve));
    this.#userSignal = options.signal;
    if (this.#userSignal?.aborted) this.#stop.abort();
    else this.#userSignal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#done = this.#run();
  }

  /** The pools watched, in the order given. */
  get pools(): readonly string[] {
    return this.#pools;
  }

  /** How the monitor waits; undefined until it has tried ARM_POLL. */
  get mechanism(): PoolMonitorMechanism | undefined {
    return this.#mechanism;
  }

  /** True once the monitor stops: {@link close}, the signal, or a failed wait (after its `error`). */
  get closed(): boolean {
    return this.#closed || this.#stop.signal.aborted;
  }

  /**
   * Resolves once every pool has been read for the first time after arming (so any kernel event
   * from then on is seen), or when the monitor stops before that.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** The last observation of `pool`: null while it is absent (or not read yet). */
  state(pool: string): PoolMonitorState | null {
    return this.#states.get(pool) ?? null;
  }

  /**
   * Stops watching. Resolves when the wait has returned and the monitor's control fd is closed
   * (at most one 250 ms poll slice with ARM_POLL). With DM_DEV_WAIT the fd is closed at once, but
   * a kernel wait already in progress cannot be cancelled: its worker thread returns at the pool's
   * next event (or its removal), and nothing is emitted after close.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    if (this.#mechanism === 'dev-wait') this.#dm.close();
    return this.#done;
  }

  #checkOpen(): void {
    if (this.#stop.signal.aborted) throw new Stopped();
  }

  /**
   * The DmControl, for one call, only while the monitor runs. DmControl reopens its fd on use,
   * and DmControl's methods take the fd synchronously when called: checking here, right before
   * each call, means nothing can reopen the fd after close() closed it.
   */
  #ctl(): DmControl {
    this.#checkOpen();
    return this.#dm;
  }

  #emitError(err: Error, pool: string | undefined): void {
    if (this.listenerCount('error') > 0) this.emit('error', err, pool);
    else process.emitWarning(err);
  }

  async #run(): Promise<void> {
    try {
      this.#checkOpen();
      this.#mechanism = await this.#arm();
      this.#checkOpen();
      if (this.#mechanism === 'arm-poll') await this.#armPollLoop();
      else await this.#devWaitLoops();
    } catch (e) {
      if (!(e instanceof Stopped) && !this.#stop.signal.aborted) this.#emitError(e instanceof Error ? e : new Error(String(e)), undefined);
    } finally {
      this.#stop.abort();
      this.#userSignal?.removeEventListener('abort', this.#onAbort);
      this.#dm.close();
      this.#resolveReady();
      this.emit('close');
    }
  }

  /** First DM_DEV_ARM_POLL; 'dev-wait' when the kernel does not know it. */
  async #arm(): Promise<PoolMonitorMechanism> {
    if (this.#requested === 'dev-wait') return 'dev-wait';
    try {
      await this.#ctl().armPoll();
      return 'arm-poll';
    } catch (e) {
      // check_version() answers EINVAL to a request stamped with a newer minor than the kernel's
      // (ARM_POLL is stamped 4.36); lookup_ioctl() answers ENOTTY to a command number it lacks.
      const code = errnoOf(e);
      if (this.#requested === 'auto' && (code === 'EINVAL' || code === 'ENOTTY')) return 'dev-wait';
      throw e;
    }
  }

  async #armPollLoop(): Promise<void> {
    for (;;) {
      // Armed (above, or at the end of the previous turn) BEFORE reading: an event during the
      // reads leaves POLLIN set, so the wait below returns at once and nothing is missed.
      for (const pool of this.#pools) {
        this.#checkOpen();
        await this.#observe(pool);
      }
      this.#resolveReady();
      this.#checkOpen();
      // No event for a while (recheckMs), or a skipped reading to settle: read again anyway.
      const retry = this.#skipped.size > 0 ? Math.min(...this.#skipped.values()) : undefined;
      const timeoutMs = retry ?? (this.#recheckMs > 0 ? this.#recheckMs : undefined);
      try {
        await this.#ctl().waitForEvent({ signal: this.#stop.signal, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
      } catch (e) {
        if (this.#stop.signal.aborted) throw new Stopped();
        throw e;
      }
      this.#checkOpen();
      await this.#ctl().armPoll();
    }
  }

  async #devWaitLoops(): Promise<void> {
    let first = this.#pools.length;
    const firstDone = (): void => {
      if (--first === 0) this.#resolveReady();
    };
    // A DM_DEV_WAIT in progress cannot be cancelled, so close() does not wait for the loops: it
    // wins this race, and a loop that wakes later finds the monitor stopped and ends (Stopped).
    const stopped = new Promise<void>((resolve) => {
      if (this.#stop.signal.aborted) resolve();
      else this.#stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    const loops = this.#pools.map((p) =>
      this.#devWaitLoop(p, firstDone).catch((e: unknown) => {
        if (!(e instanceof Stopped) && !this.#stop.signal.aborted) throw e;
      }),
    );
    // The first loop to fail for real stops the monitor (a rejection of Promise.all); the others
    // are already handled by their own catch.
    await Promise.race([Promise.all(loops), stopped]);
  }

  async #devWaitLoop(pool: string, firstDone: () => void): Promise<void> {
    let announced = false;
    for (;;) {
      this.#checkOpen();
      const info = await this.#observe(pool);
      if (!announced) {
        announced = true;
        firstDone();
      }
      this.#checkOpen();
      // No DM_DEV_WAIT for an absent pool (it needs an existing device: look again later), nor for
      // one whose reading was skipped (a reload in flight: the resume that settles it raises no
      // event of its own, so read again after a short wait instead).
      const wait = info === null ? this.#absentRecheckMs : this.#skipped.get(pool);
      if (info === null || wait !== undefined) {
        try {
          await delay(wait, undefined, { signal: this.#stop.signal });
        } catch {
          throw new Stopped();
        }
        continue;
      }
      try {
        // Blocks in the kernel (dev_wait → dm_wait_event) on a worker thread until the pool's
        // event_nr moves past the one we read; a removal wakes it too (__hash_remove).
        await this.#ctl().deviceWait(pool, info.eventNr, { noflush: true });
      } catch (e) {
        this.#checkOpen();
        if (e instanceof DeviceNotFoundError) continue; // removed meanwhile: #observe reports it
        throw e;
      }
    }
  }

  /**
   * Reads one pool and emits what changed. Returns the device info, or null when the pool is absent.
   * Read failures other than "absent" emit `error` (with the pool) and keep the previous state.
   */
  async #observe(pool: string): Promise<DeviceInfo | null> {
    let info: DeviceInfo;
    let next: PoolMonitorState;
    try {
      info = await this.#ctl().deviceInfo(pool);
      if (!info.activeTable) {
        this.#setAbsent(pool);
        return null;
      }
      // A reading is only evidence when the table and the status describe the same pool. A reload
      // swaps the table (do_resume() → dm_swap_table()) before the resume grows the data space
      // map (pool_preresume() → maybe_resize_data_dev() → dm_pool_resize_data_dev()), and
      // pool_status() prints the space map's size (dm_pool_get_data_dev_size()), not the
      // table's: a reading in between pairs the new table's length and low water mark with the
      // old pool's free count (or the other way round). check_low_water_mark() itself compares
      // the free count with pool->low_water_blocks, which bind_control_target() sets from the
      // same table the resume installs, so the kernel never mixes them: neither do we. Read
      // again; if still mixed, judge nothing this round (the previous state stands).
      let table: TargetLine | undefined;
      let status: ThinPoolStatus | undefined;
      let params: ReturnType<typeof parsePoolParams> | undefined;
      let mixed: PoolReadingSkippedEvent | undefined;
      for (let attempt = 0; attempt < CONSISTENT_READ_ATTEMPTS; attempt++) {
        if (attempt > 0) this.#checkOpen();
        table = poolLine(pool, await this.#ctl().tableStatus(pool, { mode: 'table' }));
        params = parsePoolParams(table.params);
        // DM_NOFLUSH_FLAG: pool_status() skips its commit(), and the ioctl stays a quick synchronous one.
        status = parseThinPoolStatus(poolLine(pool, await this.#ctl().tableStatus(pool, { noflush: true })).params);
        mixed = undefined;
        if (status.kind !== 'working') break;
        const tableDataBlocks = table.length / BigInt(params.dataBlockSize);
        if (status.totalDataBlocks * BigInt(params.dataBlockSize) === table.length) break;
        mixed = { pool, tableDataBlocks, statusDataBlocks: status.totalDataBlocks };
      }
      if (mixed !== undefined || !status || !params) {
        this.#checkOpen();
        const last = this.#skipped.get(pool);
        this.#skipped.set(pool, last === undefined ? SKIPPED_RETRY_MS : Math.min(last * 2, SKIPPED_RETRY_MAX_MS));
        if (mixed) this.emit('readingSkipped', mixed);
        return info;
      }
      this.#skipped.delete(pool);
      const lowWaterMark = params.lowWaterMark;
      const working = status.kind === 'working' ? status : null;
      next = {
        pool,
        dev: formatDev(info),
        eventNr: info.eventNr,
        status,
        mode: modeOf(status),
        lowWaterMark,
        belowLowWater: working !== null && poolDataFree(working) <= lowWaterMark,
        metadataLow: working !== null && poolMetadataFree(working) <= metadataThreshold(working),
      };
    } catch (e) {
      if (e instanceof DeviceNotFoundError) {
        this.#setAbsent(pool);
        return null;
      }
      this.#checkOpen();
      const err = e instanceof Error ? e : new Error(String(e));
      // Every wake re-reads every pool: a pool that stays unreadable is reported once per
      // distinct error, not once per event anywhere on the machine.
      const key = `${err.name}: ${err.message}`;
      if (this.#lastError.get(pool) !== key) {
        this.#lastError.set(pool, key);
        this.#emitError(err, pool);
      }
      return null;
    }
    this.#checkOpen();
    this.#lastError.delete(pool);
    this.#compare(pool, next);
    return info;
  }

  #setAbsent(pool: string): void {
    this.#checkOpen();
    this.#skipped.delete(pool);
    const prev = this.#states.get(pool) ?? null;
    this.#states.set(pool, null);
    this.#looked.add(pool);
    if (prev !== null) this.emit('poolGone', { pool });
  }

  #compare(pool: string, next: PoolMonitorState): void {
    let prev = this.#states.get(pool) ?? null;
    // A different device number, or an event counter that went backwards (event_nr only grows on
    // one mapped_device), means the pool was removed and created again between two reads.
    if (prev !== null && (prev.dev !== next.dev || next.eventNr < prev.eventNr)) {
      this.#states.set(pool, null);
      this.emit('poolGone', { pool });
      prev = null;
    }
    this.#states.set(pool, next);
    if (prev === null && this.#looked.has(pool)) this.emit('poolAppeared', { pool, state: next });
    this.#looked.add(pool);
    const status = next.status;
    if (prev !== null && prev.mode !== null && next.mode !== null && prev.mode !== next.mode) {
      this.emit('modeChange', { pool, from: prev.mode, to: next.mode, status });
    }
    if (status.kind !== 'working') return;
    const was = prev?.status.kind === 'working' ? prev.status : null;
    // A table reload with a new length or mark went through pool_resume(), which clears the
    // kernel's low_water_triggered: the kernel raises the event again, and so do we, also when no
    // reading fell between the grow and the next crossing.
    const rearmed = was !== null && (was.totalDataBlocks !== status.totalDataBlocks || prev?.lowWaterMark !== next.lowWaterMark);
    if (next.belowLowWater && (!(prev?.belowLowWater ?? false) || rearmed)) {
      this.emit('lowWater', { pool, status, lowWaterMark: next.lowWaterMark, freeDataBlocks: poolDataFree(status) });
    }
    if (status.mode === 'out_of_data_space' && was?.mode !== 'out_of_data_space') this.emit('outOfDataSpace', { pool, status });
    if (status.needsCheck && !(was?.needsCheck ?? false)) this.emit('needsCheck', { pool, status });
    // A grown metadata device has a new threshold (calc_metadata_threshold() of the new size).
    const metaRearmed = was !== null && was.totalMetadataBlocks !== status.totalMetadataBlocks;
    if (next.metadataLow && (!(prev?.metadataLow ?? false) || metaRearmed)) {
      this.emit('metadataLow', { pool, status, threshold: metadataThreshold(status), freeMetadataBlocks: poolMetadataFree(status) });
    }
  }

}
