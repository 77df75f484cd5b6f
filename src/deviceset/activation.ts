// SPDX-License-Identifier: MIT
// The DeviceSet's activation verbs: a record's thin device made live under its dm name (a pending
// deferred remove cancelled instead), removed again (deferred when busy and allowed), discarded,
// described and queried. The caller holds the device's lock; nothing here writes the journal.
import { DeviceBusyError, DeviceNotFoundError, type DmControl, type DmVersion } from '../dm/index.js';
import { errnoCode } from '../errors.js';
import type { Syscalls } from '../ioctl/index.js';
import { discardBlockDevice, LoopAbortedError } from '../loop/index.js';
import { progressTo, type ProgressCallback } from './diagnostics.js';
import { ThinDevice, parseThinStatus } from '../thin/index.js';
import { DeviceMarkedDeletedError, DeviceSetUnsupportedError, OperationAbortedError } from './errors.js';
import { dmNameFor } from './hash.js';
import type { Journal } from './journal.js';
import type { DeviceRecord } from './metadata.js';
import type { ResolvedDeviceSetOptions } from './options.js';
import type { DeviceSetDevice, DeviceSetLog, DeviceStatus } from './types.js';

/** deleteDevice's plain-remove retries before it defers (10 × 100 ms): {@link Activation.removeUnlessBusy}. */
const TRANSIENT_BUSY_RETRY = Object.freeze({ attempts: 10, delayMs: 100 });

/** Deferred remove exists in dm ioctl ≥ 4.27.0. */
const DEFERRED_REMOVE_MINOR = 27;

/**
 * Whether removals and deletions may be deferred: dm.use_deferred_removal and
 * dm.use_deferred_deletion against the dm interface `version` (`'auto'` follows the kernel).
 * @throws DeviceSetUnsupportedError when deferred removal is asked for and the kernel lacks it.
 */
export function deferredModes(version: DmVersion, o: ResolvedDeviceSetOptions): { removal: boolean; deletion: boolean } {
  const supported = version[0] > 4 || (version[0] === 4 && version[1] >= DEFERRED_REMOVE_MINOR);
  if (o.useDeferredRemoval === true && !supported) {
    throw new DeviceSetUnsupportedError(`deferred removal cannot be enabled: the kernel's dm interface is ${version.join('.')}, it needs 4.27.0`);
  }
  const removal = o.useDeferredRemoval === 'auto' ? supported : o.useDeferredRemoval;
  return { removal, deletion: o.useDeferredDeletion === 'auto' ? removal : o.useDeferredDeletion };
}

/** What an {@link Activation} works with. */
export interface ActivationDeps {
  readonly dm: DmControl;
  readonly sys: Syscalls;
  /** The DeviceSet's dm name prefix. */
  readonly prefix: string;
  /** The pool's holder (set once it is found or created). */
  readonly journal: Journal;
  readonly log: DeviceSetLog;
}

/** An origin settled for its running snapshots: how many, its dm name when active, whether to deactivate it after. */
interface Settled {
  users: number;
  readonly flags: { deactivate: boolean };
  readonly name: Promise<string | undefined>;
}

export class Activation {
  readonly #dm: DmControl;
  readonly #d: ActivationDeps;
  /** Whether a removal may be deferred (dm.use_deferred_removal as resolved at init). */
  deferredRemoval = false;
  /** While init runs: the dm names it activated, the only ones a failed init removes. */
  #activatedHere: Set<string> | undefined = new Set();
  /** Origins settled for the snapshots running now ({@link withOriginSettled}). */
  readonly #settled = new Map<string, Settled>();

  constructor(d: ActivationDeps) {
    this.#d = d;
    this.#dm = d.dm;
  }

  dmName(hash: string): string {
    return dmNameFor(this.#d.prefix, hash);
  }

  /** Init succeeded: what it activated is no longer its to remove. */
  endInit(): void {
    this.#activatedHere = undefined;
  }

  /** After a failed init: removes the devices it activated, newest first. */
  async removeActivatedByInit(): Promise<void> {
    for (const name of [...(this.#activatedHere ?? [])].reverse()) {
      try {
        await this.#dm.deviceRemove(name);
      } catch (err) {
        if (!(err instanceof DeviceNotFoundError)) this.#d.log('warn', `cleanup after a failed init: ${name} stays: ${String(err)}`);
      }
    }
  }

  /** Activates the device if needed (cancelling a pending deferred remove); returns its node path. */
  async activate(rec: DeviceRecord, evenIfDeleted = false): Promise<string> {
    if (rec.deleted && !evenIfDeleted) throw new DeviceMarkedDeletedError(rec.hash, 'activate');
    const name = this.dmName(rec.hash);
    const path = this.#dm.nodePath(name);
    const info = await this.#dm.findDevice(name);
    if (info) {
      if (!info.deferredRemove) return path;
      try {
        await this.#dm.cancelDeferredRemove(name);
        return path;
      } catch (err) {
        if (!(err instanceof DeviceNotFoundError) && errnoCode(err) !== 'ENXIO') throw err;
        // Removed meanwhile: create it again below.
      }
    }
    // A grow in flight activates at its target: the filesystem may already be larger than `size`.
    const bytes = rec.growTo !== undefined && rec.growTo > rec.size ? rec.growTo : rec.size;
    await ThinDevice.of(this.#d.journal.pool, rec.deviceId).activate(name, BigInt(bytes) / 512n);
    this.#activatedHere?.add(name);
    return path;
  }

  /**
   * Runs `fn` (a create_snap of `hash`'s device) with the origin settled: a pending deferred
   * remove of the origin is cancelled first (moby#23418: it must not race the snapshot) and the
   * origin deactivated again after. `fn` gets the origin's dm name when it is active.
   * Snapshots of one origin may run together (addDevice holds the origin's lock shared): the first
   * settles it, the others share that, and the last one out deactivates it again when the first
   * cancelled a deferred remove (else a remove could race a later snapshot's suspend of it).
   */
  async withOriginSettled<T>(hash: string, fn: (originActiveName: string | undefined) => Promise<T>): Promise<T> {
    let s = this.#settled.get(hash);
    if (s) s.users++;
    else {
      const originName = this.dmName(hash);
      const flags = { deactivate: false };
      const name = (async () => {
        const info = await this.#dm.findDevice(originName);
        if (info?.deferredRemove) {
          await this.#dm.cancelDeferredRemove(originName).catch(() => undefined);
          flags.deactivate = true;
        }
        return info ? originName : undefined;
      })();
      s = { users: 1, flags, name };
      this.#settled.set(hash, s);
    }
    try {
      return await fn(await s.name);
    } finally {
      if (--s.users === 0) {
        this.#settled.delete(hash);
        if (s.flags.deactivate) await this.deactivate(hash, true).catch(() => undefined);
      }
    }
  }

  /** Removes the device if it is active (deferred when `deferred` and deferred removal is on). */
  async deactivate(hash: string, deferred: boolean): Promise<void> {
    const name = this.dmName(hash);
    try {
      if ((await this.#dm.findDevice(name)) === null) return;
      await this.#dm.deviceRemove(name, { deferred: deferred && this.deferredRemoval });
    } catch (err) {
      if (err instanceof DeviceNotFoundError) return;
      throw err;
    }
  }

  /**
   * Before a delete defers: a plain remove, retried for about a second. A delete usually follows
   * activity (the discard before it, a recent unmount), and udev's rules then open the device for a
   * moment (blkid on the change event that closing a written device raises). With deferred
   * removal the kernel would defer at once on that EBUSY, and the thin id would stay until the
   * background worker's next pass; libdm's dm_task_retry_remove retries for the same reason.
   * Still busy after that (someone really holds it): the caller's deferred remove takes over.
   */
  async removeUnlessBusy(hash: string): Promise<void> {
    const name = this.dmName(hash);
    try {
      if ((await this.#dm.findDevice(name)) === null) return;
      await this.#dm.deviceRemove(name, { retry: TRANSIENT_BUSY_RETRY });
    } catch (err) {
      if (!(err instanceof DeviceBusyError) && !(err instanceof DeviceNotFoundError)) throw err;
    }
  }

  /** Recovery's deactivation before a pool delete: only when nobody has it open; never throws. */
  async quietDeactivate(hash: string): Promise<void> {
    try {
      const info = await this.#dm.findDevice(this.dmName(hash));
      if (info && info.openCount === 0) await this.#dm.deviceRemove(this.dmName(hash), { retry: { attempts: 3, delayMs: 100 } });
    } catch {
      // the pool delete reports what matters
    }
  }

  /** Every dm device of this set except the pool, removed (deferred when busy and allowed). */
  async deactivateAll(): Promise<void> {
    const poolName = this.#d.journal.pool?.name;
    for (const d of await this.#dm.listDevices({ namePrefix: `${this.#d.prefix}-` })) {
      if (d.name === poolName) continue;
      try {
        await this.#dm.deviceRemove(d.name, { deferred: this.deferredRemoval });
      } catch (err) {
        this.#d.log('warn', `could not deactivate ${d.name}: ${String(err)}`);
      }
    }
  }

  /**
   * BLKDISCARD over the whole device when nobody has it open, so the loop file gets its space back.
   * `call.signal` stops it between 1 GiB chunks (OperationAbortedError of deleteDevice: the record
   * is untouched, the device stays active, the chunks done stay discarded); `call.onProgress` and
   * the channel get the chunks. Any other failure is logged and ignored, as in Docker.
   */
  async discard(rec: DeviceRecord, call: { readonly signal?: AbortSignal | undefined; readonly onProgress?: ProgressCallback | undefined } = {}): Promise<void> {
    try {
      const path = await this.activate(rec, true);
      const info = await this.#dm.findDevice(this.dmName(rec.hash));
      if (!info || info.openCount > 0) return;
      const onProgress = progressTo(rec.hash, call.onProgress);
      await discardBlockDevice(this.#d.sys, path, BigInt(rec.size), { ...(call.signal ? { signal: call.signal } : {}), ...(onProgress ? { onProgress } : {}) });
    } catch (err) {
      if (err instanceof LoopAbortedError) throw new OperationAbortedError('deleteDevice', { cause: err.cause });
      this.#d.log('warn', `discard of ${rec.hash || 'base'} failed (ignored): ${String(err)}`);
    }
  }

  /** The public description of a record: its fields, dm name and node path. */
  describe(rec: DeviceRecord): DeviceSetDevice {
    const dmName = this.dmName(rec.hash);
    return {
      hash: rec.hash,
      deviceId: rec.deviceId,
      size: BigInt(rec.size),
      transactionId: rec.transactionId,
      state: rec.state,
      deleted: rec.deleted,
      dmName,
      devicePath: this.#dm.nodePath(dmName),
    };
  }

  /** Docker's GetDeviceStatus: activates the device for the query if it is not active. */
  async status(rec: DeviceRecord): Promise<DeviceStatus> {
    const name = this.dmName(rec.hash);
    const wasActive = (await this.#dm.findDevice(name)) !== null;
    await this.activate(rec, true);
    try {
      const line = (await this.#dm.tableStatus(name))[0];
      const st = parseThinStatus(line?.params ?? '');
      return {
        deviceId: rec.deviceId,
        size: BigInt(rec.size),
        transactionId: rec.transactionId,
        sizeInSectors: BigInt(rec.size) / 512n,
        mappedSectors: st.kind === 'working' ? st.mappedSectors : 0n,
        highestMappedSector: st.kind === 'working' ? st.highestMappedSector : null,
      };
    } finally {
      if (!wasActive) await this.deactivate(rec.hash, false);
    }
  }
}
