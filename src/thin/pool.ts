// SPDX-License-Identifier: MIT
// ThinPool: a live `thin-pool` dm device over a metadata and a data block device, and the pool
// messages that manage its thin devices (Documentation/admin-guide/device-mapper/thin-provisioning.rst).
import { DeviceBusyError, dmNameProblems, dmUuidProblems } from '../dm/index.js';
import { InvalidArgumentError, errnoCode, type ValidationProblem } from '../errors.js';
import {
  METADATA_BLOCK_BYTES,
  classifyMetadataHead,
  realBlockDevices,
  type BlockDeviceInfo,
  type BlockDevices,
} from './block-device.js';
import { deviceRefProblem } from './device-ref.js';
import { thinDeviceId } from './device-id.js';
import type { ThinDm, ThinDmDevNum, ThinDmTarget } from './dm-port.js';
import { mapThinMessageError } from './errno-map.js';
import { ROLLBACK_RETRY, singleTarget, theOnlyTarget } from './live-table.js';
import {
  createSnapMessage,
  createThinMessage,
  deleteMessage,
  releaseMetadataSnapMessage,
  reserveMetadataSnapMessage,
  setTransactionIdMessage,
} from './messages.js';
import {
  SECTOR_SIZE,
  formatPoolParams,
  parsePoolParams,
  poolLengthSectors,
  poolParamsProblems,
  type ParsedThinPoolParams,
  type ThinPoolFeatures,
} from './pool-params.js';
import {
  PoolBusyError,
  PoolMetadataMismatchError,
  PoolMetadataNotEmptyError,
  PoolShrinkError,
  TransactionIdMismatchError,
} from './errors.js';
import { parseThinPoolStatus, poolStatusError, type ThinPoolStatus, type ThinPoolWorkingStatus } from './pool-status.js';
import { parseThinParams } from './thin-params.js';
import { U64_MAX } from './u64.js';

/** dm target type of a pool. */
export const THIN_POOL_TARGET = 'thin-pool';

/** Options of {@link ThinPool.create}. */
export interface ThinPoolCreateOptions {
  /** dm name of the pool device. */
  readonly name: string;
  /** Optional dm uuid. */
  readonly uuid?: string;
  /** Metadata block device: `'major:minor'` or a device path. Never a regular file. */
  readonly metadataDev: string;
  /** Data block device: `'major:minor'` or a device path. Never a regular file. */
  readonly dataDev: string;
  /** Data block size in sectors: 128 … 2097152, a multiple of 128. Fixed for the pool's life. */
  readonly dataBlockSize: number;
  /** Free data blocks below which the kernel raises a dm event. */
  readonly lowWaterMark: bigint | number;
  readonly features?: ThinPoolFeatures;
  /**
   * Pool length in sectors, a multiple of `dataBlockSize`, at most the data device size.
   * Default: the whole data device, rounded down to whole data blocks.
   */
  readonly lengthSectors?: bigint;
  /**
   * `'new'`: the metadata device must be blank (first 4 KiB zero) and the kernel formats it;
   * `'reuse'`: it must already hold thin-pool metadata with the same data block size.
   */
  readonly metadata: 'new' | 'reuse';
  /** With `metadata: 'new'`: zero the first 4 KiB of the metadata device ourselves first. */
  readonly zeroMetadata?: boolean;
  /** Block-device primitives (tests inject fakes). Default: node:fs + sysfs. */
  readonly blockDevices?: BlockDevices;
}

/** Options of {@link ThinPool.open}. */
export interface ThinPoolOpenOptions {
  readonly blockDevices?: BlockDevices;
}

/** Options of {@link ThinPool.resize}. */
export interface ThinPoolResizeOptions {
  /**
   * New pool length in sectors (a multiple of the data block size). Default: the whole data
   * device as it is now, rounded down to whole data blocks. Smaller than now → PoolShrinkError.
   */
  readonly dataLengthSectors?: bigint;
  /**
   * The metadata device, when it has grown too. It must be the same device the pool already
   * uses (dm-thin refuses to swap it: "different pool cannot replace a pool"); the kernel picks
   * up its new size when the pool resumes.
   */
  readonly metadataDev?: string;
  /**
   * A new low water mark (data blocks) for the reloaded table; default: the current one. A pool
   * whose mark follows its size (the DeviceSet's dm.autoextend_threshold) passes the one for the
   * new length. pool_resume() re-arms the kernel's low-water event either way (dm-thin.c).
   */
  readonly lowWaterMark?: bigint | number;
}

/** Options of {@link ThinPool.createSnap}. */
export interface CreateSnapOptions {
  /**
   * The origin's active dm device (a ThinDevice or a dm name). When given and active, it is
   * suspended before `create_snap` and always resumed afterwards, also when the message fails.
   */
  readonly origin?: CreateSnapOrigin | string;
}

/**
 * What {@link ThinPool.createSnap} reads of an origin handle: its pool, its thin id and its active
 * dm name. A ThinDevice has this shape; the type is structural so that pool.ts does not import
 * thin-device.ts (which imports pool.ts).
 */
export interface CreateSnapOrigin {
  readonly pool: { readonly name: string };
  readonly id: number;
  readonly activeName: string | undefined;
}

/** True when `err` is the dm layer's DeviceBusyError or has an EBUSY in its cause chain. @internal */
export function isBusy(err: unknown): boolean {
  return err instanceof DeviceBusyError || errnoCode(err) === 'EBUSY';
}

/** `major:minor` of a device number. @internal */
export function devString(dev: ThinDmDevNum): string {
  return `${dev.major}:${dev.minor}`;
}

function sectorsProblem(value: unknown, path: string, blockSize: number | undefined): ValidationProblem | undefined {
  if (typeof value !== 'bigint' || value <= 0n || value > U64_MAX) {
    return { path, message: 'must be a positive bigint number of sectors', value };
  }
  if (blockSize !== undefined && Number.isInteger(blockSize) && blockSize > 0 && value % BigInt(blockSize) !== 0n) {
    return { path, message: `must be a multiple of the data block size (${blockSize} sectors)`, value };
  }
  return undefined;
}

function u64Arg(value: unknown, path: string, problems: ValidationProblem[]): bigint {
  if (typeof value === 'bigint' && value >= 0n && value <= U64_MAX) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  problems.push({ path, message: 'must be a non-negative integer (bigint, or a safe-integer number)', value });
  return 0n;
}

/**
 * A thin-pool dm device. Create one with {@link ThinPool.create} or attach to an existing one
 * with {@link ThinPool.open}; thin devices are then created by message ({@link createThin},
 * {@link createSnap}) and activated as `thin` targets (see ThinDevice).
 *
 * The pool runs over any two block devices given as `major:minor` or path; it never takes files
 * (attach loop devices for file-backed pools, as src/deviceset does).
 */
export class ThinPool {
  /** dm name of the pool device. */
  readonly name: string;
  /** Device number of the pool device; `poolDev` is its `major:minor` form for thin tables. */
  readonly dev: ThinDmDevNum;
  readonly #dm: ThinDm;
  readonly #blockDevices: BlockDevices;
  #params: ParsedThinPoolParams;
  #lengthSectors: bigint;
  /** Metadata device size seen at create/open/resize (bytes): the floor for a metadata resize. */
  #metadataBytes: bigint | undefined;

  private constructor(
    dm: ThinDm,
    name: string,
    dev: ThinDmDevNum,
    params: ParsedThinPoolParams,
    lengthSectors: bigint,
    blockDevices: BlockDevices,
    metadataBytes: bigint | undefined,
  ) {
    this.#dm = dm;
    this.name = name;
    this.dev = { major: dev.major, minor: dev.minor };
    this.#params = params;
    this.#lengthSectors = lengthSectors;
    this.#blockDevices = blockDevices;
    this.#metadataBytes = metadataBytes;
  }

  /** The DmControl this pool talks through (ThinDevice uses it for its own dm device). */
  get dm(): ThinDm {
    return this.#dm;
  }
  /** `major:minor` of the pool device, as thin tables reference it. */
  get poolDev(): string {
    return devString(this.dev);
  }
  /** The live table's params (metadata/data device as `major:minor`, block size, features). */
  get params(): ParsedThinPoolParams {
    return this.#params;
  }
  /** Data block size in sectors. */
  get dataBlockSize(): number {
    return this.#params.dataBlockSize;
  }
  /** Length of the pool target in sectors (= data blocks × block size). */
  get lengthSectors(): bigint {
    return this.#lengthSectors;
  }

  /**
   * Creates and activates a pool: validates every option (no kernel or disk access before that
   * passes), resolves both devices, checks the metadata device's first 4 KiB (blank for `'new'`,
   * a thin superblock with the same block size for `'reuse'`), zeroes it with `zeroMetadata`,
   * then DM_DEV_CREATE → TABLE_LOAD (`thin-pool`) → resume. If the load or resume fails, the
   * half-made device is removed again and the original error is thrown.
   *
   * @throws InvalidArgumentError for bad options (every problem listed), a device that is not
   *   a block device, a length beyond the data device.
   * @throws PoolMetadataNotEmptyError / PoolMetadataMismatchError from the metadata check.
   * @throws BlockDeviceBusyError when the metadata device is held (e.g. by a live pool).
   * @example
   *   const pool = await ThinPool.create(dm, { name: 'pool', metadataDev: '/dev/loop0',
   *     dataDev: '/dev/loop1', dataBlockSize: 128, lowWaterMark: 0, metadata: 'new', zeroMetadata: true });
   */
  static async create(dm: ThinDm, options: ThinPoolCreateOptions): Promise<ThinPool> {
    const problems: ValidationProblem[] = [];
    const o = (typeof options === 'object' && options !== null ? options : {}) as Partial<Record<keyof ThinPoolCreateOptions, unknown>>;
    problems.push(...dmNameProblems(o.name, '/name'));
    if (o.uuid !== undefined) problems.push(...dmUuidProblems(o.uuid, '/uuid'));
    if (o.metadata !== 'new' && o.metadata !== 'reuse') {
      problems.push({ path: '/metadata', message: "must be 'new' or 'reuse'", value: o.metadata });
    }
    if (o.zeroMetadata !== undefined && typeof o.zeroMetadata !== 'boolean') {
      problems.push({ path: '/zeroMetadata', message: 'must be a boolean', value: o.zeroMetadata });
    } else if (o.zeroMetadata === true && o.metadata === 'reuse') {
      problems.push({ path: '/zeroMetadata', message: "cannot zero metadata that is to be reused (metadata: 'reuse')", value: true });
    }
    problems.push(
      ...poolParamsProblems({
        metadataDev: o.metadataDev,
        dataDev: o.dataDev,
        dataBlockSize: o.dataBlockSize,
        lowWaterMark: o.lowWaterMark,
        features: o.features,
      }),
    );
    if (o.lengthSectors !== undefined) {
      const p = sectorsProblem(o.lengthSectors, '/lengthSectors', o.dataBlockSize as number);
      if (p) problems.push(p);
    }
    if (problems.length > 0) throw new InvalidArgumentError('thin-pool create options', problems);

    const blockDevices = options.blockDevices ?? realBlockDevices;
    const meta = await blockDevices.inspect(options.metadataDev);
    const data = await blockDevices.inspect(options.dataDev);
    const bs = options.dataBlockSize;
    const later: ValidationProblem[] = [];
    if (meta.major === data.major && meta.minor === data.minor) {
      later.push({ path: '/dataDev', message: `is the same device (${devString(data)}) as metadataDev`, value: options.dataDev });
    }
    const dataSectors = data.sizeBytes / BigInt(SECTOR_SIZE);
    let lengthSectors = options.lengthSectors;
    if (lengthSectors === undefined) {
      lengthSectors = poolLengthSectors(data.sizeBytes, bs);
    } else if (lengthSectors > dataSectors) {
      later.push({ path: '/lengthSectors', message: `exceeds the data device (${dataSectors} sectors)`, value: lengthSectors });
    }
    if (later.length > 0) throw new InvalidArgumentError('thin-pool create options', later);

    await checkMetadataHead(blockDevices, meta, options.metadata, options.zeroMetadata === true, bs, options.name);

    const params = {
      metadataDev: devString(meta),
      dataDev: devString(data),
      dataBlockSize: bs,
      lowWaterMark: BigInt(options.lowWaterMark),
      features: {
        skipBlockZeroing: options.features?.skipBlockZeroing === true,
        ignoreDiscard: options.features?.ignoreDiscard === true,
        noDiscardPassdown: options.features?.noDiscardPassdown === true,
        readOnly: options.features?.readOnly === true,
        errorIfNoSpace: options.features?.errorIfNoSpace === true,
      },
    };
    const line: ThinDmTarget = { start: 0n, length: lengthSectors, type: THIN_POOL_TARGET, params: formatPoolParams(params) };

    await dm.deviceCreate(options.name, options.uuid === undefined ? {} : { uuid: options.uuid });
    try {
      await dm.tableLoad(options.name, [line]);
      const info = await dm.deviceResume(options.name);
      return new ThinPool(dm, options.name, info.dev, params, lengthSectors, blockDevices, meta.sizeBytes);
    } catch (err) {
      // Roll back (libdm does the same): never leave a half-made pool device behind.
      try {
        await dm.deviceRemove(options.name, ROLLBACK_RETRY);
      } catch {
        // The original error matters more; a survivor is visible in `dmsetup ls`.
      }
      throw err;
    }
  }

  /**
   * Attaches to an existing, active pool by dm name: reads its table back
   * (TABLE_STATUS with DM_STATUS_TABLE_FLAG) and its device number (from the same reply when the
   * port has `tableStatusWithInfo`, else one DM_DEV_STATUS more).
   * @throws UnexpectedTargetError when `name` is not a single thin-pool target.
   */
  static async open(dm: ThinDm, name: string, options: ThinPoolOpenOptions = {}): Promise<ThinPool> {
    // One DM_TABLE_STATUS answers both when the port can say so (DmControl); else a DM_DEV_STATUS too.
    let target: ThinDmTarget;
    let dev: ThinDmDevNum;
    if (dm.tableStatusWithInfo) {
      const read = await dm.tableStatusWithInfo(name, { mode: 'table' });
      target = theOnlyTarget(name, THIN_POOL_TARGET, read.targets);
      dev = read.info.dev;
    } else {
      target = await singleTarget(dm, name, THIN_POOL_TARGET, { mode: 'table' });
      dev = (await dm.deviceInfo(name)).dev;
    }
    const params = parsePoolParams(target.params);
    const blockDevices = options.blockDevices ?? realBlockDevices;
    let metadataBytes: bigint | undefined;
    try {
      metadataBytes = (await blockDevices.inspect(params.metadataDev)).sizeBytes;
    } catch {
      metadataBytes = undefined; // only the metadata-shrink check needs it
    }
    return new ThinPool(dm, name, dev, params, target.length, blockDevices, metadataBytes);
  }

  /**
   * The pool's parsed status line. Without `noflush` the kernel commits metadata first.
   * @throws UnexpectedTargetError, KernelOutputError
   */
  async status(options: { readonly noflush?: boolean } = {}): Promise<ThinPoolStatus> {
    const target = await singleTarget(this.#dm, this.name, THIN_POOL_TARGET, { mode: 'status', noflush: options.noflush === true });
    return parseThinPoolStatus(target.params);
  }

  /**
   * Reads the status and throws the typed error that explains why the pool cannot take changes
   * (PoolFailedError, PoolNeedsCheckError, PoolReadOnlyError, PoolOutOfDataSpaceError), or
   * returns the working status.
   */
  async assertWritable(): Promise<ThinPoolWorkingStatus> {
    const status = await this.status({ noflush: true });
    const err = poolStatusError(status, this.name);
    if (err) throw err;
    return status as ThinPoolWorkingStatus;
  }

  /**
   * Sends one pool message (sector 0) and translates its failure: EEXIST → ThinIdInUseError,
   * ENODATA → ThinIdNotFoundError, EBUSY on delete → ThinDeviceBusyError, ENOSPC →
   * PoolOutOfMetadataSpaceError, EOPNOTSUPP → failed / needs-check / read-only per the status.
   */
  async #message(message: string): Promise<void> {
    try {
      await this.#dm.targetMessage(this.name, 0n, message);
    } catch (err) {
      throw await this.#mapMessageError(err, message);
    }
  }

  async #mapMessageError(err: unknown, message: string): Promise<unknown> {
    let status: ThinPoolStatus | undefined;
    if (errnoCode(err) === 'EOPNOTSUPP') {
      try {
        status = await this.status({ noflush: true });
      } catch {
        status = undefined;
      }
    }
    // The errno is read under any dm wrapper; the outermost error (with the dm context) is the cause.
    return mapThinMessageError(err, message, { pool: this.name, ...(status ? { status } : {}) });
  }

  /**
   * `create_thin <id>`: a new, empty thin device in the pool metadata (not yet active).
   * @throws InvalidArgumentError (bad id, before any ioctl), ThinIdInUseError, pool-state errors.
   */
  async createThin(id: number): Promise<void> {
    await this.#message(createThinMessage(thinDeviceId(id)));
  }

  /**
   * `create_snap <id> <originId>`: an internal snapshot. If `options.origin` names the origin's
   * active dm device, it is checked to be thin `originId` of this pool, suspended (flushing and
   * freezing a mounted filesystem) before the message and ALWAYS resumed afterwards, also when
   * the message fails. A device that was already suspended is left as found.
   * @throws InvalidArgumentError, ThinIdInUseError, ThinIdNotFoundError (origin), pool-state errors.
   */
  async createSnap(id: number, originId: number, options: CreateSnapOptions = {}): Promise<void> {
    const message = createSnapMessage(id, originId); // validates both ids first
    const origin = options.origin;
    let originName: string | undefined;
    // A dm name is checked against the pool (table read); a ThinDevice handle of this pool and id
    // is trusted — its pool and id are known, and the table read was one of the two extra ioctls
    // before the floor's suspend + message + resume.
    let verify = false;
    if (typeof origin === 'string') {
      originName = origin;
      verify = true;
    } else if (origin !== undefined) {
      if (origin.pool !== this || origin.id !== originId) {
        throw new InvalidArgumentError('create_snap origin', [
          { path: '/origin', message: `is thin ${origin.id} of pool ${origin.pool.name}, not thin ${originId} of pool ${this.name}`, value: origin.id },
        ]);
      }
      originName = origin.activeName;
    }
    if (originName === undefined) {
      await this.#message(message);
      return;
    }

    if (verify) {
      const table = parseThinParams((await singleTarget(this.#dm, originName, 'thin', { mode: 'table' })).params);
      if (table.poolDev !== this.poolDev || table.devId !== originId) {
        throw new InvalidArgumentError('create_snap origin', [
          { path: '/origin', message: `dm device '${originName}' maps thin ${table.devId} of ${table.poolDev}, not thin ${originId} of ${this.poolDev}`, value: originName },
        ]);
      }
    }
    // The info read stays: DM_DEV_SUSPEND's reply cannot say whether the device was suspended
    // before (drivers/md/dm-ioctl.c do_suspend() skips dm_suspend() when already suspended and
    // then reports DM_SUSPEND_FLAG either way), and an origin someone else suspended must not be
    // resumed by us. DEV_STATUS is a sync in-memory call.
    const info = await this.#dm.deviceInfo(originName);
    const suspendHere = !info.suspended;
    let failure: { err: unknown } | undefined;
    // Batched (DmControl): suspend + create_snap + resume in one hop. Which step failed keeps the
    // rollback exact: a failed suspend changed nothing, a failed resume follows a done message,
    // and after a failed message the origin is still suspended and is resumed below as before.
    const batched = suspendHere && this.#dm.suspendMessageResume ? await this.#dm.suspendMessageResume(originName, this.name, 0n, message) : null;
    if (batched !== null) {
      if (batched.failed === undefined) return;
      if (batched.failed !== 'message') throw batched.error;
      failure = { err: await this.#mapMessageError(batched.error, message) };
    } else {
      if (suspendHere) await this.#dm.deviceSuspend(originName);
      try {
        await this.#message(message);
      } catch (err) {
        failure = { err };
      }
    }
    if (suspendHere) {
      try {
        await this.#dm.deviceResume(originName);
      } catch (resumeErr) {
        if (failure) {
          throw new AggregateError([failure.err, resumeErr], `create_snap failed and origin '${originName}' could not be resumed`);
        }
        throw resumeErr;
      }
    }
    if (failure) throw failure.err;
  }

  /**
   * `delete <id>`: irreversibly frees a thin device and its unshared blocks.
   * @throws InvalidArgumentError, ThinIdNotFoundError, ThinDeviceBusyError (still active), pool-state errors.
   */
  async deleteThin(id: number): Promise<void> {
    await this.#message(deleteMessage(thinDeviceId(id)));
  }

  /**
   * `set_transaction_id <current> <next>`: compare-and-swap of the pool's transaction id.
   * On EINVAL the status is re-read; if the id really differs from `current` the failure is a
   * {@link TransactionIdMismatchError} carrying the actual id.
   */
  async setTransactionId(current: bigint | number, next: bigint | number): Promise<void> {
    const problems: ValidationProblem[] = [];
    const cur = u64Arg(current, '/current', problems);
    const nxt = u64Arg(next, '/next', problems);
    if (problems.length > 0) throw new InvalidArgumentError('set_transaction_id', problems);
    const message = setTransactionIdMessage(cur, nxt);
    try {
      await this.#dm.targetMessage(this.name, 0n, message);
    } catch (err) {
      if (errnoCode(err) === 'EINVAL') {
        let status: ThinPoolStatus | undefined;
        try {
          status = await this.status({ noflush: true });
        } catch {
          status = undefined;
        }
        if (status?.kind === 'working' && status.transactionId !== cur) {
          throw new TransactionIdMismatchError(cur, status.transactionId, { pool: this.name, message }, { cause: err });
        }
      }
      throw await this.#mapMessageError(err, message);
    }
  }

  /** `reserve_metadata_snap`: hold a metadata snapshot (for thin_dump -m). EBUSY if one is held. */
  async reserveMetadataSnap(): Promise<void> {
    await this.#message(reserveMetadataSnapMessage());
  }

  /** `release_metadata_snap`: drop the held metadata snapshot. EINVAL if none is held. */
  async releaseMetadataSnap(): Promise<void> {
    await this.#message(releaseMetadataSnapMessage());
  }

  /**
   * Grows the pool: reloads the table with a longer data length (by default the whole data
   * device as it is now) and resumes; the kernel then extends the data space map, and also the
   * metadata space map if the metadata device grew. Shrinking is refused before any ioctl.
   * @throws InvalidArgumentError, PoolShrinkError
   */
  async resize(options: ThinPoolResizeOptions = {}): Promise<void> {
    const problems: ValidationProblem[] = [];
    const bs = this.#params.dataBlockSize;
    if (options.dataLengthSectors !== undefined) {
      const p = sectorsProblem(options.dataLengthSectors, '/dataLengthSectors', bs);
      if (p) problems.push(p);
    }
    if (options.metadataDev !== undefined) {
      const p = deviceRefProblem(options.metadataDev, '/metadataDev');
      if (p) problems.push(p);
    }
    if (options.lowWaterMark !== undefined) {
      problems.push(...poolParamsProblems({ ...this.#params, lowWaterMark: options.lowWaterMark }).filter((p) => p.path === '/lowWaterMark'));
    }
    if (problems.length > 0) throw new InvalidArgumentError('thin-pool resize options', problems);

    const ctx = { pool: this.name };
    const data = await this.#blockDevices.inspect(this.#params.dataDev);
    const dataSectors = data.sizeBytes / BigInt(SECTOR_SIZE);
    const length = options.dataLengthSectors ?? (dataSectors / BigInt(bs)) * BigInt(bs);
    if (length < this.#lengthSectors) throw new PoolShrinkError('data', this.#lengthSectors, length, ctx);
    if (length > dataSectors) {
      throw new InvalidArgumentError('thin-pool resize options', [
        { path: '/dataLengthSectors', message: `exceeds the data device (${dataSectors} sectors)`, value: length },
      ]);
    }
    let metadataBytes = this.#metadataBytes;
    if (options.metadataDev !== undefined) {
      const meta = await this.#blockDevices.inspect(options.metadataDev);
      if (devString(meta) !== this.#params.metadataDev) {
        throw new InvalidArgumentError('thin-pool resize options', [
          { path: '/metadataDev', message: `is ${devString(meta)}, but the pool's metadata device is ${this.#params.metadataDev} (it cannot be swapped)`, value: options.metadataDev },
        ]);
      }
      if (metadataBytes !== undefined && meta.sizeBytes < metadataBytes) {
        throw new PoolShrinkError('metadata', metadataBytes / BigInt(SECTOR_SIZE), meta.sizeBytes / BigInt(SECTOR_SIZE), ctx);
      }
      metadataBytes = meta.sizeBytes;
    }

    const params = options.lowWaterMark === undefined ? this.#params : { ...this.#params, lowWaterMark: BigInt(options.lowWaterMark) };
    const line: ThinDmTarget = { start: 0n, length, type: THIN_POOL_TARGET, params: formatPoolParams(params) };
    await this.#dm.tableLoad(this.name, [line]);
    await this.#dm.deviceResume(this.name);
    this.#lengthSectors = length;
    this.#metadataBytes = metadataBytes;
    this.#params = params;
  }

  /**
   * Removes the pool device. Refused with {@link PoolBusyError} while anything (active thin
   * devices) holds it open, checked first and also mapped from EBUSY. The metadata stays on the
   * metadata device: {@link ThinPool.create} with `metadata: 'reuse'` brings the pool back.
   */
  async remove(): Promise<void> {
    const info = await this.#dm.deviceInfo(this.name);
    if (info.openCount > 0) throw new PoolBusyError({ pool: this.name });
    try {
      await this.#dm.deviceRemove(this.name);
    } catch (err) {
      if (isBusy(err)) throw new PoolBusyError({ pool: this.name }, { cause: err });
      throw err;
    }
  }
}

/**
 * Checks block 0 of the metadata device against the caller's intent, zeroing it first when asked.
 * Only node:fs I/O; no ioctl.
 */
async function checkMetadataHead(
  blockDevices: BlockDevices,
  meta: BlockDeviceInfo,
  intent: 'new' | 'reuse',
  zero: boolean,
  dataBlockSize: number,
  pool: string,
): Promise<void> {
  const ctx = { pool };
  const ref = devString(meta);
  if (intent === 'new' && zero) {
    await blockDevices.zeroHead(meta.path, METADATA_BLOCK_BYTES);
    return;
  }
  const head = classifyMetadataHead(await blockDevices.readHead(meta.path, METADATA_BLOCK_BYTES));
  if (intent === 'new') {
    if (head.kind !== 'blank') throw new PoolMetadataNotEmptyError(ref, ctx);
    return;
  }
  if (head.kind === 'blank') {
    throw new PoolMetadataMismatchError(ref, 'blank', 'its first 4 KiB are zero: there is no metadata to reuse', ctx);
  }
  if (head.kind === 'other') {
    throw new PoolMetadataMismatchError(ref, 'not-thin-metadata', 'block 0 is not a thin-pool superblock', ctx);
  }
  if (head.dataBlockSize !== dataBlockSize) {
    throw new PoolMetadataMismatchError(
      ref,
      'data-block-size',
      `it records a data block size of ${head.dataBlockSize} sectors, not ${dataBlockSize}`,
      ctx,
    );
  }
}

