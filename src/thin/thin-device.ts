// SPDX-License-Identifier: MIT
// ThinDevice: one thin id inside a ThinPool, and its optional active `thin` dm device
// (thin_ctr()/thin_status() in drivers/md/dm-thin.c).
import { dmNameProblems, dmUuidProblems } from '../dm/index.js';
import { InvalidArgumentError, errnoCode, type ValidationProblem } from '../errors.js';
import { thinDeviceId, type ThinDeviceId } from './device-id.js';
import type { ThinDmDevNum, ThinDmTarget } from './dm-port.js';
import { PoolFailedError, ThinDeviceBusyError, ThinIdNotFoundError } from './errors.js';
import { ROLLBACK_RETRY, singleTarget } from './live-table.js';
import type { ThinPool } from './pool.js';
import { parseThinPoolStatus } from './pool-status.js';
import { formatThinParams, parseThinParams, thinParamsProblems } from './thin-params.js';
import { parseThinStatus, type ThinStatus } from './thin-status.js';
import { U64_MAX } from './u64.js';
import type { ThinPoolWorkingStatus } from './pool-status.js';

/** dm target type of a thin device. */
export const THIN_TARGET = 'thin';

/** Options of {@link ThinDevice.activate}. */
export interface ThinActivateOptions {
  /** Load the table read-only (DM_READONLY_FLAG). */
  readonly readOnly?: boolean;
  /**
   * Read-only external origin (`major:minor` or path): reads of unprovisioned blocks go there.
   * Every snapshot of this thin must be activated with the same origin.
   */
  readonly externalOrigin?: string;
  /** Optional dm uuid of the thin device. */
  readonly uuid?: string;
}

/**
 * A thin device: a 24-bit id in a pool's metadata, plus (when activated) a dm device with the
 * table `0 <size> thin <pool maj:min> <id>`. The pool stores no size; the size is whatever the
 * activation says.
 *
 * A ThinDevice object is a handle: {@link ThinDevice.create} sends `create_thin`,
 * {@link ThinDevice.of} only wraps an id that already exists.
 */
export class ThinDevice {
  readonly pool: ThinPool;
  readonly id: ThinDeviceId;
  #activeName: string | undefined;
  #dev: ThinDmDevNum | undefined;

  private constructor(pool: ThinPool, id: ThinDeviceId, activeName?: string, dev?: ThinDmDevNum) {
    this.pool = pool;
    this.id = id;
    this.#activeName = activeName;
    this.#dev = dev;
  }

  /** dm name of the active device, or undefined while inactive. */
  get activeName(): string | undefined {
    return this.#activeName;
  }
  /** Device number of the active device, or undefined while inactive. */
  get dev(): ThinDmDevNum | undefined {
    return this.#dev;
  }
  /** `/dev/mapper/<name>` of the active device, or undefined while inactive. */
  get path(): string | undefined {
    return this.#activeName === undefined ? undefined : `/dev/mapper/${this.#activeName}`;
  }

  /**
   * Sends `create_thin <id>` and returns the (inactive) device.
   * @throws InvalidArgumentError (before any ioctl), ThinIdInUseError, pool-state errors.
   */
  static async create(pool: ThinPool, id: number): Promise<ThinDevice> {
    const devId = thinDeviceId(id);
    await pool.createThin(devId);
    return new ThinDevice(pool, devId);
  }

  /** A handle on an id that already exists in the pool (no kernel call). */
  static of(pool: ThinPool, id: number): ThinDevice {
    return new ThinDevice(pool, thinDeviceId(id));
  }

  /**
   * A handle on an already active thin dm device of `pool`, read back from its table.
   * @throws UnexpectedTargetError, InvalidArgumentError when it maps another pool.
   */
  static async open(pool: ThinPool, name: string): Promise<ThinDevice> {
    const target = await singleTarget(pool.dm, name, THIN_TARGET, { mode: 'table' });
    const params = parseThinParams(target.params);
    if (params.poolDev !== pool.poolDev) {
      throw new InvalidArgumentError('thin device', [
        { path: '/name', message: `dm device '${name}' belongs to pool ${params.poolDev}, not ${pool.poolDev}`, value: name },
      ]);
    }
    const info = await pool.dm.deviceInfo(name);
    return new ThinDevice(pool, params.devId, name, info.dev);
  }

  /**
   * Activates the thin device as dm device `name` of `sizeSectors`: create → load → resume,
   * removing the half-made device again on failure. The id must exist in the pool; a load that
   * fails with ENODATA (the metadata lookup of the id) becomes {@link ThinIdNotFoundError};
   * EINVAL is checked against the pool status (failed pool → PoolFailedError).
   * @throws InvalidArgumentError before any ioctl for bad arguments or when already active.
   */
  async activate(name: string, sizeSectors: bigint, options: ThinActivateOptions = {}): Promise<void> {
    const problems: ValidationProblem[] = [];
    problems.push(...dmNameProblems(name, '/name'));
    if (typeof sizeSectors !== 'bigint' || sizeSectors <= 0n || sizeSectors > U64_MAX) {
      problems.push({ path: '/sizeSectors', message: 'must be a positive bigint number of sectors', value: sizeSectors });
    }
    if (options.uuid !== undefined) problems.push(...dmUuidProblems(options.uuid, '/uuid'));
    const tp = {
      poolDev: this.pool.poolDev,
      devId: this.id,
      ...(options.externalOrigin === undefined ? {} : { externalOriginDev: options.externalOrigin }),
    };
    problems.push(...thinParamsProblems(tp).map((p) => (p.path === '/externalOriginDev' ? { ...p, path: '/externalOrigin' } : p)));
    if (this.#activeName !== undefined) {
      problems.push({ path: '', message: `thin ${this.id} is already active as '${this.#activeName}' on this handle`, value: name });
    }
    if (problems.length > 0) throw new InvalidArgumentError('thin activation', problems);

    const dm = this.pool.dm;
    const line: ThinDmTarget = { start: 0n, length: sizeSectors, type: THIN_TARGET, params: formatThinParams(tp) };
    await dm.deviceCreate(name, options.uuid === undefined ? {} : { uuid: options.uuid });
    try {
      await dm.tableLoad(name, [line], options.readOnly === true ? { readOnly: true } : {});
      const info = await dm.deviceResume(name);
      this.#activeName = name;
      this.#dev = info.dev;
    } catch (err) {
      try {
        await dm.deviceRemove(name, ROLLBACK_RETRY);
      } catch {
        // keep the original error
      }
      throw await this.#mapActivateError(err);
    }
  }

  async #mapActivateError(err: unknown): Promise<unknown> {
    const code = errnoCode(err);
    const ctx = { pool: this.pool.name, devId: this.id };
    if (code === 'ENODATA') return new ThinIdNotFoundError(ctx, { cause: err });
    if (code === 'EINVAL') {
      // thin_ctr() also says EINVAL for a failed or suspended pool; look before blaming the id.
      try {
        const target = await singleTarget(this.pool.dm, this.pool.name, 'thin-pool', { mode: 'status', noflush: true });
        if (parseThinPoolStatus(target.params).kind !== 'working') return new PoolFailedError(ctx, { cause: err });
      } catch {
        // fall through to the original error
      }
    }
    return err;
  }

  /**
   * Removes the active dm device (DmControl's EBUSY retry policy applies). The thin id and its
   * data stay in the pool. No-op when inactive.
   */
  async deactivate(): Promise<void> {
    const name = this.#activeName;
    if (name === undefined) return;
    await this.pool.dm.deviceRemove(name);
    this.#activeName = undefined;
    this.#dev = undefined;
  }

  /**
   * Takes an internal snapshot as thin `newId` via `create_snap`; if this device is active it is
   * suspended around the message (and always resumed). Returns the new, inactive device.
   */
  async snapshot(newId: number): Promise<ThinDevice> {
    const id = thinDeviceId(newId);
    await this.pool.createSnap(id, this.id, { origin: this });
    return new ThinDevice(this.pool, id);
  }

  /**
   * Sends `delete <id>`: frees the thin device and its unshared blocks, irreversibly.
   * @throws ThinDeviceBusyError while active (checked before any ioctl, and mapped from EBUSY).
   */
  async delete(): Promise<void> {
    if (this.#activeName !== undefined) {
      throw new ThinDeviceBusyError({ pool: this.pool.name, devId: this.id });
    }
    await this.pool.deleteThin(this.id);
  }

  /**
   * The parsed status of the active device (mapped sectors, highest mapped sector), `Fail` or
   * `Error` from a broken pool; `{kind: 'inactive'}` when this handle is not active.
   */
  async status(options: { readonly noflush?: boolean } = {}): Promise<ThinStatus> {
    const name = this.#activeName;
    if (name === undefined) return { kind: 'inactive' };
    const target = await singleTarget(this.pool.dm, name, THIN_TARGET, { mode: 'status', noflush: options.noflush === true });
    return parseThinStatus(target.params);
  }

  /**
   * Checks the pool behind this device and throws PoolOutOfDataSpaceError, PoolReadOnlyError,
   * PoolNeedsCheckError or PoolFailedError when its status shows it.
   */
  async assertWritable(): Promise<ThinPoolWorkingStatus> {
    return this.pool.assertWritable();
  }
}
