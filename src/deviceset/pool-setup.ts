// SPDX-License-Identifier: MIT
// Finding, adopting or creating the DeviceSet's thin pool and its loopback files; growing the
// loopback data file; the pool's part of the DeviceSet's status.
/**
 * # Pool setup
 *
 * One of three pools: dm.thinpooldev (an external pool, opened with Docker's ownership checks),
 * `<prefix>-pool` left live by an earlier process (adopted: its loop devices found back, its
 * backing files checked and grown), or a new `<prefix>-pool` over `<root>/devicemapper/{data,metadata}`
 * loop files or dm.datadev/dm.metadatadev. The pool is handed to the caller ({@link PoolSetupDeps.onPool})
 * the moment it exists, so that a failed init knows what to tear down.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DeviceNotFoundError, type DmControl } from '../dm/index.js';
import { BackingFileLinkError, ensureSparseFile, LoopAbortedError, SparseFileShrinkError, type LoopAttachment, type LoopControl } from '../loop/index.js';
import {
  ThinPool,
  UnexpectedTargetError,
  classifyMetadataHead,
  METADATA_BLOCK_BYTES,
  parseDevNumber,
  SECTOR_SIZE,
  THIN_METADATA_MAX_BYTES,
  type BlockDevices,
  type ThinPoolStatus,
  type ThinPoolWorkingStatus,
} from '../thin/index.js';
import type { CrashHook } from './crash.js';
import { BackingFileInUseError, BackingFilesLostError, DeviceSizeError, OperationAbortedError, ThinPoolOwnershipError, UnsafePathError } from './errors.js';
import { checkAbort } from './abort.js';
import { progressTo, traceStep, type ProgressCallback } from './diagnostics.js';
import { poolNameFor } from './hash.js';
import type { ResolvedDeviceSetOptions } from './options.js';
import type { Journal } from './journal.js';
import { minFreeBlocks, poolParamsFor } from './pool-sizing.js';
import { ensureOwnedDirAsync, lstatIfPresentAsync, openNoFollowAsync } from './safe-path.js';
import type { DeviceSetLog, DeviceSetStatus, PoolSource, SpaceUsage } from './types.js';

/** What {@link PoolSetup} works with. */
export interface PoolSetupDeps {
  readonly root: string;
  readonly prefix: string;
  readonly options: ResolvedDeviceSetOptions;
  readonly dm: DmControl;
  readonly loops: LoopControl;
  readonly blockDevices: BlockDevices | undefined;
  readonly crash: CrashHook;
  readonly log: DeviceSetLog;
  /** DeviceSetInit.discardRecordsOnBlankMetadata. */
  readonly discardRecordsOnBlank: boolean;
  /** DeviceSetInit.signal: honoured while the loopback files are made or grown. */
  readonly signal: AbortSignal | undefined;
  /** Called as soon as the pool is open or created (`createdHere`: a failed init removes it). */
  onPool(pool: ThinPool, createdHere: boolean): void;
}

/** Finds, adopts or creates the pool: {@link PoolSetup.run}, then {@link PoolSetup.source}. */
export class PoolSetup {
  readonly #root: string;
  readonly #prefix: string;
  readonly #options: ResolvedDeviceSetOptions;
  readonly #dm: DmControl;
  readonly #loops: LoopControl;
  readonly #blockDevices: BlockDevices | undefined;
  readonly #crash: CrashHook;
  readonly #log: DeviceSetLog;
  readonly #discardRecordsOnBlank: boolean;
  readonly #signal: AbortSignal | undefined;
  readonly #onPool: (pool: ThinPool, createdHere: boolean) => void;
  #pool!: ThinPool;
  #source!: PoolSource;
  #identity = '';
  #status: ThinPoolStatus | undefined;

  constructor(d: PoolSetupDeps) {
    this.#root = d.root;
    this.#prefix = d.prefix;
    this.#options = d.options;
    this.#dm = d.dm;
    this.#loops = d.loops;
    this.#blockDevices = d.blockDevices;
    this.#crash = d.crash;
    this.#log = d.log;
    this.#discardRecordsOnBlank = d.discardRecordsOnBlank;
    this.#signal = d.signal;
    this.#onPool = (pool, createdHere) => d.onPool(pool, createdHere);
  }

  /** Where the pool's data and metadata come from (set by {@link run}). */
  get source(): PoolSource {
    return this.#source;
  }

  /**
   * What identifies the pool (set by {@link run}), a key of the skipped base check (base-image.ts):
   * for the loopback pool the dev/ino of its data and metadata files (run() has checked that the
   * pool's loop devices are bound to exactly those inodes, or attached them itself); for
   * dm.datadev/dm.metadatadev the device numbers in the pool's table; for dm.thinpooldev the
   * pool's dm uuid and the device numbers of its data and metadata devices.
   */
  get identity(): string {
    return this.#identity;
  }

  /**
   * The pool status {@link run} read while checking an adopted pool for a grow, when it changed
   * nothing after it; once (init's recovery uses it instead of reading it again).
   */
  takeStatus(): ThinPoolStatus | undefined {
    const st = this.#status;
    this.#status = undefined;
    return st;
  }

  #setPool(pool: ThinPool, createdHere: boolean): void {
    this.#pool = pool;
    this.#onPool(pool, createdHere);
  }

  /**
   * The pool part of Docker's initDevmapper: finds or creates the pool. Returns true when the pool was created with fresh metadata (so it
   * is known to hold no thin ids at all).
   */
  async run(firstUse: boolean, deviceRecords: number): Promise<boolean> {
    const o = this.#options;
    if (o.thinPoolDevice !== null) {
      const name = o.thinPoolDevice;
      this.#source = { owned: false, dataFile: null, metadataFile: null, dataDevice: null, metadataDevice: null };
      const found = await this.#dm.findDevice(name);
      if (found === null) throw new ThinPoolOwnershipError(name, 'no such device-mapper device (dm.thinpooldev)');
      try {
        this.#setPool(await ThinPool.open(this.#dm, name, this.#poolOptions()), false);
      } catch (err) {
        if (err instanceof UnexpectedTargetError) throw new ThinPoolOwnershipError(name, 'is not a thin pool', { cause: err });
        throw err;
      }
      this.#source.dataDevice = this.#pool.params.dataDev;
      this.#source.metadataDevice = this.#pool.params.metadataDev;
      this.#identity = `external ${name} uuid=${found.uuid || '-'} data=${this.#pool.params.dataDev} metadata=${this.#pool.params.metadataDev}`;
      return false;
    }

    const name = poolNameFor(this.#prefix);
    const loopback = o.dataDevice === null;
    const loopDir = join(this.#root, 'devicemapper');
    const dataFile = loopback ? join(loopDir, 'data') : null;
    const metadataFile = loopback ? join(loopDir, 'metadata') : null;
    this.#source = { owned: true, dataFile, metadataFile, dataDevice: o.dataDevice, metadataDevice: o.metadataDevice };

    const found = await this.#dm.findDevice(name);
    if (found !== null && !found.activeTable) {
      // A crash inside ThinPool.create, between DEV_CREATE and the resume of its table: the device
      // was never a pool and holds nothing but (maybe) an inactive table. Remove it and start over.
      this.#log('warn', `removing ${name}: a pool device without a live table, left by an interrupted init`);
      await this.#dm.deviceRemove(name);
    } else if (found !== null) {
      // Left over from a crash or a busy shutdown: adopt it and find its loop devices back.
      this.#setPool(await ThinPool.open(this.#dm, name, this.#poolOptions()), false);
      if (dataFile !== null && metadataFile !== null) {
        await this.#assertBackingFilesPresent(name, [
          [dataFile, this.#pool.params.dataDev],
          [metadataFile, this.#pool.params.metadataDev],
        ]);
        const dataDevice = await this.#loopFor(dataFile, this.#pool.params.dataDev);
        const metadataDevice = await this.#loopFor(metadataFile, this.#pool.params.metadataDev);
        this.#source.dataDevice = dataDevice;
        this.#source.metadataDevice = metadataDevice;
        await this.#growAdoptedPool(dataFile, dataDevice, metadataFile, metadataDevice);
      }
      this.#identity = await this.#ownedIdentity(dataFile, metadataFile);
      return false;
    }

    const handles: LoopAttachment[] = [];
    try {
      let dataDev: string;
      let metaDev: string;
      let dataBytes: bigint;
      let metadataHead: Buffer;
      if (dataFile !== null && metadataFile !== null) {
        if (deviceRecords > 0) {
          const missing: string[] = [];
          for (const f of [dataFile, metadataFile]) if (!(await lexists(f))) missing.push(f);
          if (missing.length > 0 && this.#discardRecordsOnBlank !== true) {
            throw new BackingFilesLostError(
              name,
              `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing while ${deviceRecords} device record(s) exist: ` +
                'restore the files (or pass discardRecordsOnBlankMetadata to start an empty pool and drop the records)',
            );
          }
        }
        await this.#refuseFilesInUse([dataFile, metadataFile]);
        await ensureOwnedDirAsync(loopDir, 0o700);
        await this.#makeLoopFiles([
          [dataFile, o.loopDataSize],
          [metadataFile, o.loopMetadataSize],
        ]);
        metadataHead = await readHead(metadataFile, true);
        const data = await this.#loops.attach(dataFile, { autoclear: true, noFollow: true });
        handles.push(data);
        const meta = await this.#loops.attach(metadataFile, { autoclear: true, noFollow: true });
        handles.push(meta);
        dataDev = data.path;
        metaDev = meta.path;
        dataBytes = (await fs.promises.stat(dataFile, { bigint: true })).size;
      } else {
        dataDev = o.dataDevice ?? '';
        metaDev = o.metadataDevice ?? '';
        metadataHead = await readHead(metaDev);
        dataBytes = await this.#loops.sizeOf(dataDev);
      }
      this.#source.dataDevice = dataDev;
      this.#source.metadataDevice = metaDev;
      const head = classifyMetadataHead(metadataHead);
      if (head.kind === 'other') {
        throw new ThinPoolOwnershipError(name, `metadata device ${metaDev} holds something that is not thin-pool metadata; zero its first 4 KiB to start a new pool`);
      }
      const fresh = head.kind === 'blank';
      if (fresh && deviceRecords > 0) {
        if (this.#discardRecordsOnBlank !== true) {
          throw new BackingFilesLostError(
            name,
            `the pool metadata on ${metaDev} is blank but ${deviceRecords} device record(s) exist: the metadata was zeroed or replaced; ` +
              'restore it (or pass discardRecordsOnBlankMetadata to start an empty pool and drop the records)',
          );
        }
        this.#log('warn', `the pool metadata on ${metaDev} is blank but records exist: they are dropped (discardRecordsOnBlankMetadata)`);
      } else if (fresh && !firstUse) {
        this.#log('info', `the pool metadata on ${metaDev} is blank: starting an empty pool`);
      }
      const params = poolParamsFor(o, dataBytes);
      this.#crash('init:before-pool-create');
      const pool = await ThinPool.create(this.#dm, {
        name,
        metadataDev: metaDev,
        dataDev,
        dataBlockSize: params.dataBlockSize,
        lowWaterMark: params.lowWaterMark,
        features: params.features,
        metadata: fresh ? 'new' : 'reuse',
        ...this.#poolOptions(),
      });
      this.#setPool(pool, true);
      this.#identity = await this.#ownedIdentity(dataFile, metadataFile);
      this.#crash('init:before-loop-close');
      return fresh;
    } finally {
      // The pool table holds the loop devices now (or nothing does): autoclear takes it from here.
      for (const h of handles) h.close();
    }
  }

  /**
   * Docker grows the loopback files when dm.loopdatasize / dm.loopmetadatasize grew between
   * starts, and never shrinks them. A pool created here gets that before its loops are attached;
   * an adopted pool is live, so it takes three steps: the file, the loop device's capacity
   * (LOOP_SET_CAPACITY), the pool table (reload + resume: dm-thin then extends its data space
   * map to the new length and its metadata space map to the metadata device's size, see
   * Documentation/admin-guide/device-mapper/thin-provisioning.rst "Resizing"). Each step compares
   * sizes instead of trusting a flag, so a crash between two of them is finished by the next init.
   */
  async #growAdoptedPool(dataFile: string, dataDevice: string, metadataFile: string, metadataDevice: string): Promise<void> {
    const o = this.#options;
    await this.#ensureLoopFile(dataFile, o.loopDataSize);
    await this.#ensureLoopFile(metadataFile, o.loopMetadataSize);
    const pairs: Array<[string, string]> = [
      [dataFile, dataDevice],
      [metadataFile, metadataDevice],
    ];
    for (const [file, device] of pairs) {
      const fileBytes = (await fs.promises.stat(file, { bigint: true })).size;
      if ((await this.#loops.sizeOf(device)) < fileBytes) {
        this.#crash('init:before-pool-grow');
        await this.#loops.setCapacity(device);
      }
    }
    const bs = BigInt(this.#pool.params.dataBlockSize);
    const dataLength = ((await this.#loops.sizeOf(dataDevice)) / BigInt(SECTOR_SIZE) / bs) * bs;
    const status = await this.#pool.status({ noflush: true });
    // A failed or erroring pool is refused by #init right after this, with the repair advice;
    // reloading its table here would only turn that into a raw kernel error.
    this.#status = status;
    if (status.kind !== 'working') return;
    // dm-thin uses at most THIN_METADATA_MAX_BYTES (15.875 GiB) of the metadata device.
    const metadataBytes = await this.#loops.sizeOf(metadataDevice);
    const metadataBlocks = (metadataBytes < THIN_METADATA_MAX_BYTES ? metadataBytes : THIN_METADATA_MAX_BYTES) / BigInt(METADATA_BLOCK_BYTES);
    const metadataGrew = metadataBlocks > status.totalMetadataBlocks;
    if (dataLength > this.#pool.lengthSectors || metadataGrew) {
      this.#log('info', `growing ${this.#pool.name}: data ${this.#pool.lengthSectors} → ${dataLength} sectors${metadataGrew ? `, metadata → ${metadataBlocks} blocks` : ''}`);
      this.#status = undefined;
      this.#crash('init:before-pool-grow');
      await this.#pool.resize();
    }
  }

  /** {@link identity} of `<prefix>-pool`: its loopback files' dev/ino, else its table's device numbers. */
  async #ownedIdentity(dataFile: string | null, metadataFile: string | null): Promise<string> {
    const p = this.#pool.params;
    if (dataFile === null || metadataFile === null) return `block data=${p.dataDev} metadata=${p.metadataDev}`;
    const id = async (file: string): Promise<string> => {
      const st = await fs.promises.lstat(file, { bigint: true });
      return `${st.dev}:${st.ino}`;
    };
    return `loop data=${await id(dataFile)} metadata=${await id(metadataFile)}`;
  }

  #poolOptions(): { blockDevices?: BlockDevices } {
    return this.#blockDevices ? { blockDevices: this.#blockDevices } : {};
  }

  /**
   * Creates or grows the loopback files of a pool this init creates, honouring the init's signal.
   * An abort leaves nothing half-made: ensureSparseFile undoes its own call (removes the file it
   * created, truncates back the growth it made), and a file an earlier call of this loop created
   * is removed too. Only such files: ensureSparseFile's `created` means its O_CREAT|O_EXCL open
   * made the file (so no one had it before), inside `devicemapper/`, a directory that is ours and
   * private (ensureOwnedDir), under the root lock. A file that existed, or was grown, stays.
   */
  async #makeLoopFiles(files: ReadonlyArray<readonly [string, bigint]>): Promise<void> {
    const createdHere: string[] = [];
    try {
      for (const [path, size] of files) {
        if (await this.#ensureLoopFile(path, size)) createdHere.push(path);
      }
    } catch (err) {
      if (err instanceof OperationAbortedError) {
        for (const path of createdHere.reverse()) {
          try {
            await fs.promises.unlink(path);
          } catch (e) {
            this.#log('warn', `cleanup after an aborted init: cannot remove ${path}, which it created: ${String(e)}`);
          }
        }
      }
      throw err;
    }
  }

  /** ensureSparseFile with the init's signal; true when it created the file. */
  async #ensureLoopFile(path: string, size: bigint): Promise<boolean> {
    try {
      // Progress on the devmapper:deviceset channel only (onProgress is undefined without a subscriber).
      const onProgress = progressTo(null, undefined);
      const signal = this.#signal;
      return (await ensureSparseFile(path, size, { noFollow: true, ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) })).created;
    } catch (err) {
      if (err instanceof LoopAbortedError) throw new OperationAbortedError('DeviceSet.init', { cause: err.cause });
      if (err instanceof BackingFileLinkError) throw new UnsafePathError(path, 'symlink', 'a symbolic link', 'a regular file (links are not followed)', { cause: err });
      if (!(err instanceof SparseFileShrinkError)) throw err;
      this.#log('warn', `can't shrink loopback file ${path} to ${size} bytes; keeping its size`);
      return false;
    }
  }

  /**
   * A live pool found by name must still have its backing files (d6): when they were deleted the
   * pool runs on unlinked inodes, and creating new empty files next to it would lose every
   * device at the next reboot. The data is still reachable through the live loop devices.
   */
  async #assertBackingFilesPresent(pool: string, pairs: ReadonlyArray<readonly [string, string]>): Promise<void> {
    for (const [file, devNumber] of pairs) {
      if (await lexists(file)) continue;
      const m = /^7:(\d+)$/.exec(devNumber);
      const loop = m ? this.#loops.devicePath(Number(m[1])) : devNumber;
      throw new BackingFilesLostError(
        pool,
        `it is live but its backing file ${file} is gone (deleted or moved): the data is still reachable through ${loop}; ` +
          `copy it back (e.g. dd if=${loop} of=${file} conv=sparse) before the pool is stopped, then init again`,
      );
    }
  }

  /**
   * Refuses to attach `files` when a loop device already bound to one of them is used by a live
   * device-mapper device (d9): e.g. the root was moved to a new directory (a new inode, so a new
   * name prefix) while its pool was live. The kernel would let a second pool open the same
   * metadata; dm-thin keeps its metadata cached per pool, so two pools corrupt it.
   */
  async #refuseFilesInUse(files: readonly string[]): Promise<void> {
    for (const file of files) {
      const bound = await this.#loops.findByBackingFile(file);
      if (bound.length === 0) continue;
      const numbers = new Set(bound.map((b) => `${b.major}:${b.minor}`));
      const holders: string[] = [];
      for (const d of await this.#dm.listDevices()) {
        let lines: Awaited<ReturnType<DmControl['tableStatus']>>;
        try {
          lines = await this.#dm.tableStatus(d.name, { mode: 'table' });
        } catch (err) {
          if (err instanceof DeviceNotFoundError) continue;
          throw err;
        }
        // Table lines name block devices as major:minor (drivers/md/dm-table.c, format_dev_t).
        if (lines.some((l) => l.params.split(/\s+/).some((t) => numbers.has(t)))) holders.push(d.name);
      }
      if (holders.length > 0) throw new BackingFileInUseError(file, bound.map((b) => b.path), holders);
    }
  }

  /**
   * The loop device backing `file` whose number is `devNumber` (from the live pool table): that
   * device alone is read and proven ours (its backing dev/ino is `file`'s), no scan of every loop.
   */
  async #loopFor(file: string, devNumber: string): Promise<string> {
    const device = parseDevNumber(devNumber);
    const match = device && (await this.#loops.findByBackingFile(file, { device })).find((m) => `${m.major}:${m.minor}` === devNumber);
    if (!match) {
      throw new ThinPoolOwnershipError(poolNameFor(this.#prefix), `its device ${devNumber} is not a loop device of ${file}: the pool does not belong to this root`);
    }
    return match.path;
  }
}

/** True when `path` exists (a dangling link counts: lstat, never followed). */
async function lexists(path: string): Promise<boolean> {
  return (await lstatIfPresentAsync(path)) !== undefined;
}

/** existsSync(path) through fs/promises: access(F_OK), following links as existsSync does. */
async function existsAsync(path: string): Promise<boolean> {
  try {
    await fs.promises.access(path);
    return true;
  } catch {
    return false;
  }
}

/** The first 4 KiB of `path`; `noFollow` for our loopback file (a dm.metadatadev may well be a link). */
async function readHead(path: string, noFollow = false): Promise<Buffer> {
  const handle = noFollow ? await openNoFollowAsync(path, fs.constants.O_RDONLY, undefined, 'file') : await fs.promises.open(path, 'r');
  try {
    // A short read leaves the rest of the zeroed buffer zero.
    const buf = Buffer.alloc(4096);
    await handle.read(buf, 0, buf.length, 0);
    return buf;
  } finally {
    await handle.close();
  }
}

/**
 * Refuses a pool that reports Fail or Error (repair it first), and, when `takingOwnership` (the
 * first use of a dm.thinpooldev), one that is not empty: used data blocks or a transaction id.
 */
export function assertPoolUsable(name: string, status: ThinPoolStatus, takingOwnership: boolean): asserts status is ThinPoolWorkingStatus {
  if (status.kind !== 'working') {
    throw new ThinPoolOwnershipError(name, `the pool reports "${status.kind === 'fail' ? 'Fail' : 'Error'}": repair it (thin_check/thin_repair) first`);
  }
  if (takingOwnership) {
    if (status.usedDataBlocks !== 0n) throw new ThinPoolOwnershipError(name, `unable to take ownership: it already has ${status.usedDataBlocks} used data blocks`);
    if (status.transactionId !== 0n) throw new ThinPoolOwnershipError(name, `unable to take ownership: its transaction id is ${status.transactionId}, not 0`);
  }
}

/** The part of a statfs result Docker's Status uses. */
export type FreeSpaceStat = Pick<fs.BigIntStatsFs, 'bfree' | 'bsize'>;

/**
 * Data and metadata space of a working pool (`w`; zero for a failed one), in bytes. With loopback
 * files, each one's available space is capped by the free space of the file system holding *that*
 * file: f_bfree × f_bsize, as Docker's getUnderlyingAvailableSpace (deviceset.go Status), not
 * f_bavail. `statfs` is for tests.
 */
export async function poolSpace(
  w: ThinPoolWorkingStatus | undefined,
  blockBytes: bigint,
  files: { readonly dataFile: string | null; readonly metadataFile: string | null },
  statfs: (file: string) => Promise<FreeSpaceStat> = (f) => fs.promises.statfs(f, { bigint: true }),
): Promise<{ data: SpaceUsage; metadata: SpaceUsage }> {
  let data: SpaceUsage = { used: 0n, total: 0n, available: 0n };
  let metadata: SpaceUsage = { used: 0n, total: 0n, available: 0n };
  if (w) {
    const capped = async (avail: bigint, file: string | null): Promise<bigint> => {
      const cap = file ? await freeBytesUnder(file, statfs) : null;
      return cap !== null && cap < avail ? cap : avail;
    };
    data = { used: w.usedDataBlocks * blockBytes, total: w.totalDataBlocks * blockBytes, available: await capped((w.totalDataBlocks - w.usedDataBlocks) * blockBytes, files.dataFile) };
    metadata = { used: w.usedMetadataBlocks * 4096n, total: w.totalMetadataBlocks * 4096n, available: await capped((w.totalMetadataBlocks - w.usedMetadataBlocks) * 4096n, files.metadataFile) };
  }
  return { data, metadata };
}

/**
 * Docker's Status over the pool `journal.pool` of `src`, with the journal's records, plus the
 * pool's mode, needs_check and transaction id; `deferred` is what init enabled.
 */
export async function statusReport(journal: Journal, src: PoolSource, minFreeSpacePercent: number, deferred: { removal: boolean; deletion: boolean }): Promise<Omit<DeviceSetStatus, 'autoextend'>> {
  const st = await journal.pool.status({ noflush: true });
  const blockBytes = BigInt(journal.pool.dataBlockSize) * 512n;
  const w = st.kind === 'working' ? st : undefined;
  const { data, metadata } = await poolSpace(w, blockBytes, src);
  const base = journal.records.get('');
  return {
    poolName: journal.pool.name,
    dataFile: src.dataDevice,
    dataLoopback: src.dataFile,
    metadataFile: src.metadataDevice,
    metadataLoopback: src.metadataFile,
    data,
    metadata,
    sectorSize: blockBytes,
    udevSyncSupported: await existsAsync('/run/udev/control'),
    deferredRemoveEnabled: deferred.removal,
    deferredDeleteEnabled: deferred.deletion,
    deferredDeletedDeviceCount: journal.deletedHashes().length,
    baseDeviceSize: base ? BigInt(base.size) : 0n,
    baseDeviceFS: base?.filesystem ?? journal.deviceSet.baseFilesystem ?? null,
    minFreeSpace: w ? minFreeBlocks(w.totalDataBlocks, minFreeSpacePercent) * blockBytes : 0n,
    transactionId: w ? w.transactionId : 0n,
    mode: st.kind === 'working' ? st.mode : st.kind,
    needsCheck: w ? w.needsCheck : false,
    poolOwned: src.owned,
    quarantinedThinIds: journal.deviceSet.quarantinedIds ?? [],
  };
}

/** Cancellation and progress of {@link growLoopbackData} (resizePool's options). */
export interface GrowCall {
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ProgressCallback | undefined;
  /** The operation an abort names (default 'resizePool'). */
  readonly operation?: string;
}

/** The stages of {@link growLoopbackData}'s `grow-data` progress. */
export const GROW_DATA_STAGES = 3;

/**
 * Grows the loopback data file to `bytes` (never shrinks), refreshes its loop device's capacity
 * and reloads the pool at the new length; with `lowWaterMark` (dm.autoextend_threshold) the table
 * gets the mark of the new block count. Caller holds the pool lock.
 *
 * `call.signal` is honoured until the file has grown (ensureSparseFile then shrinks back what it
 * grew): the call rejects with OperationAbortedError and nothing changed. Once the file grew, the
 * two ioctls that follow are finished whatever the signal says, so the loop device and the pool
 * never lag the file because of an abort. Progress: `sparse-file` stages, then `grow-data`
 * 0..3 of 3 (start, file grown, loop capacity, pool reloaded), to `call.onProgress` and the channel.
 */
export async function growLoopbackData(
  loops: LoopControl,
  pool: ThinPool,
  dataFile: string,
  dataDevice: string,
  bytes: bigint,
  lowWaterMark?: (dataBlocks: bigint) => bigint | undefined,
  call: GrowCall = {},
): Promise<void> {
  const operation = call.operation ?? 'resizePool';
  await traceStep('grow-data', null, async () => {
    const current = (await fs.promises.stat(dataFile, { bigint: true })).size;
    if (bytes < current) throw new DeviceSizeError(`can't shrink the data file from ${current} to ${bytes} bytes`, bytes, current);
    checkAbort(call.signal, operation);
    const progress = progressTo(null, call.onProgress);
    const stage = (done: number): void => progress?.({ step: 'grow-data', done, total: GROW_DATA_STAGES });
    stage(0);
    try {
      await ensureSparseFile(dataFile, bytes, { noFollow: true, ...(call.signal ? { signal: call.signal } : {}), ...(progress ? { onProgress: progress } : {}) });
    } catch (err) {
      if (err instanceof LoopAbortedError) throw new OperationAbortedError(operation, { cause: err.cause });
      throw err;
    }
    stage(1);
    await loops.setCapacity(dataDevice);
    stage(2);
    const mark = lowWaterMark?.(bytes / (BigInt(pool.dataBlockSize) * BigInt(SECTOR_SIZE)));
    await pool.resize(mark === undefined ? {} : { lowWaterMark: mark });
    stage(3);
  });
}

async function freeBytesUnder(file: string, statfs: (file: string) => Promise<FreeSpaceStat>): Promise<bigint | null> {
  try {
    const s = await statfs(file);
    return s.bfree * s.bsize;
  } catch {
    return null;
  }
}
