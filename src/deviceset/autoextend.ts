// SPDX-License-Identifier: MIT
// Autoextend for the pool a DeviceSet owns: dmeventd's thin plugin (LVM's
// thin_pool_autoextend_threshold), in the library, over loopback files.
/**
 * # Autoextend
 *
 * With `dm.autoextend_threshold` set, the DeviceSet runs a {@link PoolMonitor} on its pool and
 * grows the sparse loopback files before the pool runs dry:
 *
 * - the pool's low water mark is `floor(data blocks × (100 − threshold) / 100)` (at least 1,
 *   {@link autoextendLowWaterMark}), so dm-thin raises its low-water event (dm-thin.c
 *   check_low_water_mark(), from alloc_data_block()) exactly when `threshold`% of the data is
 *   used; every grow reloads the table with the mark of the new length;
 * - `lowWater` (and `outOfDataSpace`, the fallback when writes outran the grow) grows the data
 *   file with resizePool's own steps (growLoopbackData) under {@link AutoextendDeps.locked}: the
 *   same pool lock, and the same crash recovery (each step compares sizes: file → LOOP_SET_CAPACITY → table
 *   reload; the next init's adoption of the live pool finishes a grow a crash interrupted);
 * - `metadataLow` (the kernel's own metadata threshold, calc_metadata_threshold()), or metadata
 *   used ≥ threshold% at any check, grows the metadata file the same way (the reload makes
 *   dm-thin extend its metadata space map to the device's new size: pool_preresume() →
 *   maybe_resize_metadata_dev());
 * - each step is `percent`% of the file's current size, rounded up to whole pool blocks (4 KiB
 *   metadata blocks), bounded by `dm.autoextend_max` (data; the kernel's 15.875 GiB for metadata)
 *   and by the host filesystem's free space (statfs f_bavail × f_bsize): the pool will fill what
 *   it grows into. A step is cut to what fits; when nothing fits the state becomes `ceiling` or
 *   `hostFull`, the matching event fires and status() says so: never a silent stop.
 *
 * After a grow the pool is read again and grown again while still at or above the threshold (a
 * fast writer may outrun one step), at most {@link MAX_STEPS_PER_CHECK} steps per event.
 *
 * The grow runs in the service's process: nothing in it blocks the event loop on a call that can
 * wait. File calls are asynchronous (fs/promises), the table load and the resume run on koffi's
 * worker threads; synchronous are only the dm readings answered from memory (noflush status),
 * LOOP_SET_CAPACITY and BLKGETSIZE64 (no I/O), and the deviceset record's write (the journal is
 * synchronous by design). test/unit/deviceset/autoextend-sync-calls.test.ts holds it to that;
 * docs/deviceset.md ("Autoextend and the event loop") has the lag measured in the VM.
 *
 * Each grow is recorded in the deviceset record (DeviceSetRecord.lastExtension, through
 * {@link ExtensionStore}) once it finished, so status() — of this process, of a later one, of the
 * CLI's one-shot `ds status` — shows the last one. A crash before that write loses the entry, not
 * the grow; a failed write is logged and the grow stands.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { ensureSparseFile, type LoopControl } from '../loop/index.js';
import { growLoopbackData } from './pool-setup.js';
import { PoolMonitor, THIN_METADATA_MAX_BYTES, metadataThreshold, type PoolMonitorOptions, type ThinPool, type ThinPoolWorkingStatus } from '../thin/index.js';
import { DeviceSetClosedError } from './errors.js';
import type { Journal } from './journal.js';
import type { ResolvedDeviceSetOptions } from './options.js';
import { autoextendLowWaterMark } from './pool-sizing.js';
import type { AutoextendExtension, AutoextendInit, AutoextendState, AutoextendStatus, AutoextendTrigger, DeviceSetLog, PoolSource } from './types.js';

export type { AutoextendExtension, AutoextendInit, AutoextendState, AutoextendStatus, AutoextendTrigger };

/** At most this many grow steps answer one event (each re-reads the pool first). */
export const MAX_STEPS_PER_CHECK = 16;

const METADATA_BLOCK = 4096n;

/** Payload of `ceiling` and `hostFull`. */
export interface AutoextendLimitEvent {
  readonly what: 'data' | 'metadata';
  /** The file's size now. */
  readonly size: bigint;
  /** The ceiling (`ceiling`) or the host's free bytes (`hostFull`). */
  readonly limit: bigint;
  readonly message: string;
}

/** The Autoextender's events (a typed EventEmitter). */
export interface AutoextendEvents {
  /** A file grew. */
  extended: [AutoextendExtension];
  /** A file must grow but is at its ceiling. */
  ceiling: [AutoextendLimitEvent];
  /** A file must grow but the host filesystem has no room. */
  hostFull: [AutoextendLimitEvent];
  /** A grow or the monitor failed (the state is `error`; the next event tries again). */
  extendFailed: [Error];
}

/** What the {@link Autoextender} works with (the DeviceSet passes these). */
export interface AutoextendDeps {
  readonly options: Pick<ResolvedDeviceSetOptions, 'autoextendThreshold' | 'autoextendPercent' | 'autoextendMax' | 'blockSize'>;
  readonly init: AutoextendInit;
  /** The DeviceSet's pool (set once init found it). */
  pool(): ThinPool;
  /** The pool's files (set once init found it). */
  source(): PoolSource;
  readonly loops: LoopControl;
  /** Runs `fn` as resizePool does: counted by shutdown, under the pool lock. */
  locked<T>(fn: () => Promise<T>): Promise<T>;
  /** Where the last extension is kept across restarts (the deviceset record: `journalExtensionStore`). */
  readonly record: ExtensionStore;
  /** Options of the monitor's DmControl when {@link AutoextendInit.monitor} does not give them. */
  readonly monitorDm: NonNullable<PoolMonitorOptions['dm']>;
  readonly log: DeviceSetLog;
}

/** Keeps the last extension across restarts. */
export interface ExtensionStore {
  /** The extension recorded by this or an earlier process, or null. */
  load(): AutoextendExtension | null;
  /** Records `ext` durably (may reject: the caller logs it, the grow stands). */
  save(ext: AutoextendExtension): Promise<void>;
}

/**
 * The deviceset record (`metadata/deviceset-metadata`, DeviceSetRecord.lastExtension) as the
 * {@link ExtensionStore}: an atomic, fsynced write of the record (metadata.ts). The journal's copy
 * is replaced in the same tick as the write is queued, and the store lands writes of one record
 * in call order, so a later write (made from the new copy) never lands before this one.
 */
export function journalExtensionStore(journal: Pick<Journal, 'deviceSet' | 'store'>): ExtensionStore {
  return {
    load: () => {
      const r = journal.deviceSet.lastExtension;
      return r === undefined ? null : { at: r.at, what: r.what, from: BigInt(r.from), to: BigInt(r.to), trigger: r.trigger };
    },
    save: async (ext) => {
      const next = { ...journal.deviceSet, lastExtension: { at: ext.at, what: ext.what, from: Number(ext.from), to: Number(ext.to), trigger: ext.trigger } };
      const written = journal.store.saveDeviceSet(next);
      journal.deviceSet = next;
      await written;
    },
  };
}

/** statfs(2) of `path`: bytes an unprivileged writer may still use. */
export async function statfsFreeBytes(path: string): Promise<bigint> {
  const s = await fs.promises.statfs(path, { bigint: true });
  return s.bavail * s.bsize;
}

/**
 * Grows the loopback metadata file to `bytes`, refreshes its loop device (LOOP_SET_CAPACITY) and
 * reloads the pool so dm-thin extends its metadata space map. Caller holds the pool lock. Like
 * growLoopbackData, each step is idempotent and a crash between two is finished by the next init.
 */
export async function growLoopbackMetadata(loops: LoopControl, pool: ThinPool, metadataFile: string, metadataDevice: string, bytes: bigint): Promise<void> {
  await ensureSparseFile(metadataFile, bytes, { noFollow: true });
  await loops.setCapacity(metadataDevice);
  await pool.resize({ metadataDev: metadataDevice });
}

function roundUp(n: bigint, unit: bigint): bigint {
  return ((n + unit - 1n) / unit) * unit;
}

/**
 * Watches the DeviceSet's pool and grows its loopback files: see the file comment. Built by the
 * DeviceSet (`DeviceSet.autoextender`); {@link start} after init, {@link stop} at shutdown.
 */
export class Autoextender extends EventEmitter<AutoextendEvents> {
  readonly #d: AutoextendDeps;
  readonly #threshold: number | null;
  #monitor: PoolMonitor | undefined;
  #state: AutoextendState;
  #message: string | null = null;
  #last: AutoextendExtension | null = null;
  #count = 0;
  #stopped = false;
  #running: Promise<void> | undefined;
  #again: AutoextendTrigger | undefined;
  /** The data file's size after this process's last completed data grow. */
  #dataGrownTo: bigint | null = null;

  constructor(deps: AutoextendDeps) {
    super();
    this.#d = deps;
    this.#threshold = deps.options.autoextendThreshold;
    this.#state = this.#threshold === null ? 'off' : 'notWatching';
  }

  /** True when dm.autoextend_threshold is set. */
  get enabled(): boolean {
    return this.#threshold !== null;
  }

  /** The monitor, while it runs (for its own events). */
  get monitor(): PoolMonitor | undefined {
    return this.#monitor;
  }

  /**
   * The low water mark for a pool of `dataBlocks` blocks when enabled ({@link autoextendLowWaterMark}),
   * else undefined (the table keeps its mark).
   */
  readonly lowWaterMarkFor = (dataBlocks: bigint): bigint | undefined =>
    this.#threshold === null ? undefined : autoextendLowWaterMark(dataBlocks, this.#threshold);

  status(): AutoextendStatus {
    const o = this.#d.options;
    let lowWaterMark: bigint | null = null;
    if (this.#threshold !== null) {
      try {
        lowWaterMark = this.#d.pool().params.lowWaterMark;
      } catch {
        lowWaterMark = null;
      }
    }
    return {
      enabled: this.enabled,
      threshold: this.#threshold,
      percent: o.autoextendPercent,
      max: o.autoextendMax,
      lowWaterMark,
      state: this.#state,
      message: this.#message,
      lastExtension: this.#last ?? this.#recorded(),
      extensions: this.#count,
    };
  }

  /**
   * After init: sets the table's low water mark for the threshold (a pool adopted from a run
   * without autoextend, or one a crash left mid-grow), grows once if the pool is already over the
   * threshold, then starts the monitor (unless `watch` is false). No-op when off.
   */
  async start(): Promise<void> {
    if (this.#threshold === null || this.#stopped) return;
    const pool = this.#d.pool();
    const blocks = pool.lengthSectors / BigInt(pool.dataBlockSize);
    const mark = autoextendLowWaterMark(blocks, this.#threshold);
    if (pool.params.lowWaterMark !== mark) {
      await this.#d.locked(() => pool.resize({ dataLengthSectors: pool.lengthSectors, lowWaterMark: mark }));
    }
    await this.check('start');
    if (this.#d.init.watch === false || this.#stopped) return;
    const monitor = new PoolMonitor([pool.name], { dm: this.#d.monitorDm, ...this.#d.init.monitor });
    this.#monitor = monitor;
    monitor.on('lowWater', (e) => this.#kickUnlessStale('lowWater', e.status));
    monitor.on('outOfDataSpace', (e) => this.#kickUnlessStale('outOfDataSpace', e.status));
    monitor.on('metadataLow', () => this.#kick('metadataLow'));
    monitor.on('error', (err, name) => {
      if (name !== undefined) {
        this.#d.log('warn', `autoextend: reading ${name}: ${err.message}`);
        return;
      }
      // The wait itself failed: the monitor stopped. Say so, loudly, and keep saying it.
      this.#setProblem('error', `the pool monitor stopped: ${err.message}`);
      this.emit('extendFailed', err);
    });
    await monitor.ready;
    if (this.#state === 'notWatching') this.#state = 'watching';
  }

  /** Stops the monitor and waits for a grow in progress. Idempotent; holds no fd afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const m = this.#monitor;
    this.#monitor = undefined;
    if (m) await m.close();
    if (this.#running) await this.#running;
    if (this.#state === 'watching') this.#state = 'notWatching';
  }

  /** Runs one check now (what an event does); resolves when it and any queued one are done. */
  check(trigger: AutoextendTrigger = 'check'): Promise<void> {
    this.#kick(trigger);
    return this.#running ?? Promise.resolve();
  }

  /**
   * A data event whose reading shows a pool smaller than our last completed grow made it was
   * read before that grow: it proves nothing about the pool now. Ignored (a later crossing of the
   * grown pool raises its own event: pool_resume() cleared low_water_triggered).
   */
  #kickUnlessStale(trigger: 'lowWater' | 'outOfDataSpace', status: ThinPoolWorkingStatus): void {
    const grown = this.#dataGrownTo;
    const readBytes = status.totalDataBlocks * this.#d.options.blockSize;
    if (grown !== null && readBytes < grown) {
      this.#d.log('info', `autoextend: ignoring ${trigger} read from a ${readBytes}-byte pool: the data file was grown to ${grown} bytes since`);
      return;
    }
    this.#kick(trigger);
  }

  #kick(trigger: AutoextendTrigger): void {
    if (this.#threshold === null || this.#stopped) return;
    if (this.#running) {
      this.#again = trigger;
      return;
    }
    this.#running = (async () => {
      try {
        let t: AutoextendTrigger | undefined = trigger;
        while (t !== undefined && !this.#stopped) {
          this.#again = undefined;
          await this.#checkOnce(t);
          t = this.#again;
        }
      } finally {
        this.#running = undefined;
      }
    })();
  }

  async #checkOnce(trigger: AutoextendTrigger): Promise<void> {
    try {
      for (let step = 0; step < MAX_STEPS_PER_CHECK && !this.#stopped; step++) {
        const status = await this.#d.pool().status({ noflush: true });
        if (status.kind !== 'working') {
          this.#setProblem('error', `the pool reports ${status.kind === 'fail' ? 'Fail' : 'Error'}: it cannot be grown (thin_check/thin_repair)`);
          return;
        }
        const needs = this.#needs(status, trigger, step);
        if (needs.length === 0) {
          this.#ok();
          return;
        }
        let grew = false;
        // Each file on its own: data at its ceiling does not keep the metadata from growing.
        for (const what of needs) if (await this.#grow(what, trigger)) grew = true;
        if (!grew) return;
      }
    } catch (err) {
      if (err instanceof DeviceSetClosedError || this.#stopped) return;
      const e = err instanceof Error ? err : new Error(String(err));
      this.#setProblem('error', `growing the pool failed: ${e.message}`);
      this.#d.log('error', `autoextend: ${e.message}`);
      this.emit('extendFailed', e);
    }
  }

  /** Which files need to grow now. The kernel's metadata-low event counts once, at step 0. */
  #needs(s: ThinPoolWorkingStatus, trigger: AutoextendTrigger, step: number): Array<'data' | 'metadata'> {
    const t = BigInt(this.#threshold ?? 100);
    const out: Array<'data' | 'metadata'> = [];
    if (s.mode === 'out_of_data_space' || s.usedDataBlocks * 100n >= s.totalDataBlocks * t) out.push('data');
    const metaLow = s.usedMetadataBlocks * 100n >= s.totalMetadataBlocks * t || s.totalMetadataBlocks - s.usedMetadataBlocks <= metadataThreshold(s);
    if (metaLow || (trigger === 'metadataLow' && step === 0)) out.push('metadata');
    return out;
  }

  /**
   * One grow step of `what`; false when it could not grow (ceiling, host full) or, re-read under
   * the pool lock, no longer needs to (another grow got there first).
   *
   * Everything the step is computed from is read under the pool lock, after any grow queued
   * before it has finished: the file's size (the step's base), and for data the pool's status
   * again (the evidence). A reading taken before the lock may predate a grow (ours, or a
   * resizePool of the DeviceSet's user) and would grow the file a second time for one crossing,
   * from a size it no longer has.
   */
  async #grow(what: 'data' | 'metadata', trigger: AutoextendTrigger): Promise<boolean> {
    const src = this.#d.source();
    const file = what === 'data' ? src.dataFile : src.metadataFile;
    const device = what === 'data' ? src.dataDevice : src.metadataDevice;
    if (file === null || device === null) {
      this.#setProblem('error', 'the pool has no loopback files to grow');
      return false;
    }
    // The host's free space is a bound, not evidence: read it before the lock (a seam may block).
    const free = await (this.#d.init.hostFreeBytes ?? statfsFreeBytes)(dirname(file));
    const grown = await this.#d.locked(async () => {
      if (this.#stopped) return null;
      const unit = what === 'data' ? this.#d.options.blockSize : METADATA_BLOCK;
      const max = what === 'data' ? this.#d.options.autoextendMax : THIN_METADATA_MAX_BYTES - (THIN_METADATA_MAX_BYTES % METADATA_BLOCK);
      // Asynchronously, like every file call of the grow (a stat can wait for the inode's disk).
      const from = (await fs.promises.stat(file, { bigint: true })).size;
      if (what === 'data') {
        const pool = this.#d.pool();
        const s = await pool.status({ noflush: true });
        // Under the lock no reload is in flight: the status and the table agree (pool_status()
        // prints the data space map that pool_preresume() → maybe_resize_data_dev() sized to
        // the table). Grow only when this reading still shows the need.
        if (s.kind !== 'working' || !this.#needs(s, trigger, 1).includes('data')) {
          this.#d.log('info', `autoextend (${trigger}): the data file ${file} is ${from} bytes and the pool no longer needs to grow`);
          return null;
        }
      }
      let step = roundUp((from * BigInt(this.#d.options.autoextendPercent)) / 100n, unit);
      if (step < unit) step = unit;
      if (max !== null) {
        const room = max > from ? ((max - from) / unit) * unit : 0n;
        if (room === 0n) {
          this.#limit('ceiling', what, from, max, `the ${what} file is at its ceiling (${from} of ${max} bytes${what === 'data' ? ', dm.autoextend_max' : ', the most thin metadata the kernel uses'}) and ${this.#used(what)}`);
          return false;
        }
        if (step > room) step = room;
      }
      const fits = (free / unit) * unit;
      if (fits === 0n) {
        this.#limit('hostFull', what, from, free, `the host filesystem of ${file} has ${free} bytes free, less than one ${unit}-byte block, and ${this.#used(what)}`);
        return false;
      }
      if (step > fits) step = fits;
      const to = from + step;
      this.#d.log('info', `autoextend (${trigger}): growing the ${what} file ${file} from ${from} to ${to} bytes`);
      if (what === 'data') {
        // resizePool's own steps (growLoopbackData), under the lock this callback already holds.
        await growLoopbackData(this.#d.loops, this.#d.pool(), file, device, to, this.lowWaterMarkFor);
        this.#dataGrownTo = to;
      } else {
        await growLoopbackMetadata(this.#d.loops, this.#d.pool(), file, device, to);
      }
      return { from, to };
    });
    if (grown === null) {
      if (!this.#stopped) this.#ok();
      return false;
    }
    if (grown === false) return false;
    const { from, to } = grown;
    const ext: AutoextendExtension = { at: new Date().toISOString(), what, from, to, trigger };
    this.#last = ext;
    this.#count++;
    try {
      await this.#d.record.save(ext);
    } catch (err) {
      // The grow stands (the pool has the room); only its entry in the record is missing.
      this.#d.log('warn', `autoextend: the ${what} file grew from ${from} to ${to} bytes, but recording it in the deviceset record failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.#ok();
    this.emit('extended', ext);
    return true;
  }

  /** The extension recorded by an earlier process (or this one), from the record in memory. */
  #recorded(): AutoextendExtension | null {
    return this.#d.record.load();
  }

  #used(what: 'data' | 'metadata'): string {
    return `the pool needs more ${what} space (threshold ${this.#threshold}%)`;
  }

  #ok(): void {
    this.#state = this.#monitor || this.#d.init.watch !== false ? 'watching' : 'notWatching';
    if (this.#stopped) this.#state = 'notWatching';
    this.#message = null;
  }

  #setProblem(state: 'ceiling' | 'hostFull' | 'error', message: string): void {
    this.#state = state;
    this.#message = message;
  }

  #limit(kind: 'ceiling' | 'hostFull', what: 'data' | 'metadata', size: bigint, limit: bigint, message: string): void {
    const repeat = this.#state === kind && this.#message === message;
    this.#setProblem(kind, message);
    if (repeat) return;
    this.#d.log('warn', `autoextend: ${message}`);
    this.emit(kind, { what, size, limit, message });
  }
}
