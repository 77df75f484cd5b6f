// SPDX-License-Identifier: MIT
// The DeviceSet's base image: created once (create_thin, activate, mkfs, initialized, UUID),
// verified at every init (UUID, filesystem, dm.basesize), and grown through a journalled intent.
/**
 * # Base image
 *
 * A grow is journalled in the device's own record: `growTo` is saved first, the filesystem is
 * grown on a private mount under `mnt/.grow-*`, and only then does `size` change. A crash in
 * between is finished (the base device) or undone (a new snapshot from addDevice) by the next
 * init; a grow mount left behind is detached by {@link BaseImage.cleanGrowMounts}.
 *
 * ## When the base check is skipped
 * The full check at init activates the base device, reads its filesystem UUID and deactivates it
 * again: six dm ioctls and a superblock read, several seconds of a `ds` command under TCG with
 * udev. Once a check has passed, it is recorded durably in the deviceset record
 * (`baseVerified`), keyed on what it saw; a later init skips it while all of these still hold
 * ({@link BaseImage.skipReason}), and does the full check (and records it anew) otherwise:
 * - a check was recorded, and this init did no recovery work (no open transaction or
 *   reconcile plan, no grow mount left, no interrupted addDevice undone);
 * - the base record is initialized, ready, not deleted, with no grow intent (`growTo`), a known
 *   filesystem, and the thin id, size and UUID the check saw (a recreated base has a new thin id
 *   and drops the mark before its mkfs); the deviceset record carries the same UUID;
 * - dm.fs is the one in force then, and a given dm.basesize equals the base's size (a grow or a
 *   refused shrink takes the full path);
 * - the pool's identity is the same (PoolSetup.identity: the loopback files' dev/ino, else the
 *   device numbers in its table, plus the dm uuid of a dm.thinpooldev): a pool recreated over
 *   other files or devices under the same name is checked;
 * - the pool's transaction id is not below the recorded one (a metadata rolled back or a fresh
 *   pool is checked). It is not required to be equal: every addDevice/deleteDevice moves it
 *   (set_transaction_id through the journal) without touching the base's blocks, and an equality
 *   would make every open after a change pay the full check;
 * - the base's dm device is not active (one DM_DEV_STATUS): someone, or a crash in the middle of
 *   a check or a grow, has it open, so its filesystem may be changing.
 * activateDevice('') and mountDevice('') drop the mark first (the caller may mkfs the base).
 * What this cannot see: the base's filesystem rewritten (a new UUID) through a dm device of the
 * base's thin id that someone made under another name and removed since, or the metadata
 * replaced in place (same inode) by one at a transaction id at or above the recorded one. The
 * full check saw only the UUID too: a base changed outside us with its UUID kept passes either.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { MNT_DETACH, UMOUNT_NOFOLLOW, type Syscalls } from '../ioctl/index.js';
import { checkAbort, runTool } from './abort.js';
import type { CrashHook } from './crash.js';
import { BaseUuidMismatchError, DeviceSizeError, UnknownFilesystemError } from './errors.js';
import { probeDeviceFilesystem, type FsTools } from './fs-tools.js';
import type { Journal } from './journal.js';
import type { DeviceRecord, DeviceSetRecord } from './metadata.js';
import type { KeyedMutex } from './mutex.js';
import type { BaseFilesystem, ResolvedDeviceSetOptions } from './options.js';
import { ensurePrivateMountDir, removePrivateMountDir } from './safe-path.js';
import type { DeviceSetLog } from './types.js';

/** FsTools.probe, or the superblock probe through node:fs for FsTools written before it existed. */
export async function probeFilesystem(tools: FsTools, device: string): Promise<BaseFilesystem | null> {
  return tools.probe ? tools.probe(device) : probeDeviceFilesystem(device);
}

/** What {@link BaseImage} works with: the DeviceSet's state and its activation verbs. */
export interface BaseImageDeps {
  readonly root: string;
  readonly options: ResolvedDeviceSetOptions;
  readonly sys: Syscalls;
  readonly tools: FsTools;
  readonly journal: Journal;
  readonly devLocks: KeyedMutex;
  readonly crash: CrashHook;
  readonly log: DeviceSetLog;
  /** Activates the device of `rec`; returns its node path. */
  activate(rec: DeviceRecord): Promise<string>;
  deactivate(hash: string, deferred: boolean): Promise<void>;
  /** The DeviceSet's delete (discard, deactivate, journalled delete); the caller holds the device lock. */
  deleteLocked(rec: DeviceRecord, sync: boolean): Promise<'deleted' | 'deferred'>;
  /** True when the dm device of `hash` exists (one DM_DEV_STATUS). */
  isActive(hash: string): Promise<boolean>;
}

/** What {@link BaseImage.setup} keys a skipped base check on (see the file comment). */
export interface BaseCheckKey {
  /** The pool's own transaction id (its status line) at this init. */
  readonly transactionId: bigint;
  /** PoolSetup.identity. */
  readonly pool: string;
  /** This init did recovery work before the base setup. */
  readonly recovered: boolean;
}

export class BaseImage {
  readonly #root: string;
  readonly #options: ResolvedDeviceSetOptions;
  readonly #sys: Syscalls;
  readonly #tools: FsTools;
  readonly #journal: Journal;
  readonly #devLocks: KeyedMutex;
  readonly #crash: CrashHook;
  readonly #log: DeviceSetLog;
  readonly #activate: (rec: DeviceRecord) => Promise<string>;
  readonly #deactivate: (hash: string, deferred: boolean) => Promise<void>;
  readonly #deleteLocked: (rec: DeviceRecord, sync: boolean) => Promise<'deleted' | 'deferred'>;
  readonly #isActive: (hash: string) => Promise<boolean>;

  constructor(d: BaseImageDeps) {
    this.#root = d.root;
    this.#options = d.options;
    this.#sys = d.sys;
    this.#tools = d.tools;
    this.#journal = d.journal;
    this.#devLocks = d.devLocks;
    this.#crash = d.crash;
    this.#log = d.log;
    this.#activate = (rec) => d.activate(rec);
    this.#deactivate = (hash, deferred) => d.deactivate(hash, deferred);
    this.#deleteLocked = (rec, sync) => d.deleteLocked(rec, sync);
    this.#isActive = (hash) => d.isActive(hash);
  }

  /**
   * A crash during a grow leaves `mnt/.grow-*` mounted (the directory of #growFilesystem): detach
   * each (UMOUNT_NOFOLLOW: a link planted there is not followed) and remove the directory only
   * when it is empty. Never a recursive removal: it could still be a mount point. Resolves true
   * when there was one (recovery work).
   */
  async cleanGrowMounts(): Promise<boolean> {
    const dir = join(this.#root, 'mnt');
    let names: string[];
    try {
      names = (await fs.promises.readdir(dir)).filter((n) => n.startsWith('.grow-'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
    for (const n of names) {
      const path = join(dir, n);
      try {
        await this.#sys.umount2Async(path, MNT_DETACH | UMOUNT_NOFOLLOW);
        this.#log('info', `recovery: unmounted ${path}, left by an interrupted filesystem grow`);
      } catch (err) {
        // EINVAL: not a mount point (the crash came before the mount or after the unmount).
        if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'ENOENT') throw err;
      }
      try {
        await fs.promises.rmdir(path);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') this.#log('warn', `${path} stays: ${String(err)}`);
      }
    }
    return names.length > 0;
  }

  /**
   * addDevice with a size grows the new snapshot's filesystem after creating it; the record carries
   * `growTo` until the grow is done. A crash in between leaves a device its caller never got:
   * delete it (the record proves it is ours), so that a retry of the add works. Resolves true
   * when it deleted one (recovery work).
   */
  async undoInterruptedAdds(): Promise<boolean> {
    let undone = false;
    for (const rec of [...this.#journal.records.values()]) {
      if (rec.hash === '' || rec.growTo === undefined || rec.deleted) continue;
      undone = true;
      this.#log('info', `recovery: deleting ${rec.hash}, whose addDevice was interrupted while growing its filesystem`);
      const release = await this.#devLocks.lockMany([rec.hash]);
      try {
        await this.#deleteLocked(rec, true);
      } finally {
        release();
      }
    }
    return undone;
  }

  /**
   * Docker's setupBaseImage: recreate an uninitialized base, create a missing one, else verify (and
   * grow) it, unless a recorded check still holds for `key` (the file comment). A check that
   * passes, and a creation, are recorded.
   */
  async setup(baseSizeGiven: boolean, signal: AbortSignal | undefined, key: BaseCheckKey): Promise<void> {
    const release = await this.#devLocks.lockMany(['']);
    try {
      let base = this.#journal.records.get('');
      if (base && (!base.initialized || base.deleted || base.state !== 'ready')) {
        this.#log('info', `base device is ${base.state}${base.initialized ? '' : ', not initialized'}${base.deleted ? ', deleted' : ''}: recreating it`);
        await this.#deleteLocked(base, true);
        base = undefined;
      }
      if (!base) {
        await this.#createBase(signal, key.pool);
        return;
      }
      const why = await this.skipReason(base, baseSizeGiven, key);
      if (why === null) return;
      this.#log('debug', `checking the base device: ${why}`);
      await this.#verifyBase(base, baseSizeGiven, signal);
      await this.#recordVerified(key.pool);
    } finally {
      release();
    }
  }

  /**
   * Null when the recorded check of `base` still holds for `key` (the file comment's rules), else
   * why the full check must run.
   */
  async skipReason(base: DeviceRecord, baseSizeGiven: boolean, key: BaseCheckKey): Promise<string | null> {
    const o = this.#options;
    const ds = this.#journal.deviceSet;
    const v = ds.baseVerified;
    if (v === undefined) return 'no check recorded';
    if (key.recovered) return 'this init did recovery work';
    if (!base.initialized || base.deleted || base.state !== 'ready' || base.growTo !== undefined) return 'the base record is not ready';
    if (base.filesystem === undefined) return 'the base record names no filesystem';
    if (baseSizeGiven && o.baseSize !== BigInt(base.size)) return `dm.basesize=${o.baseSize} is not the base's size ${base.size}`;
    if (v.fs !== o.fs) return `dm.fs changed (${v.fs} → ${o.fs})`;
    if (v.deviceId !== base.deviceId || v.size !== base.size) return 'the base record is not the one checked';
    if (v.uuid !== base.filesystemUuid || v.uuid !== ds.baseFilesystemUuid) return 'the recorded UUIDs differ from the checked one';
    if (v.pool !== key.pool) return 'the pool is not the one checked';
    if (key.transactionId < BigInt(v.transactionId)) return `the pool's transaction id went back (${v.transactionId} → ${key.transactionId})`;
    if (await this.#isActive('')) return 'the base device is active';
    return null;
  }

  /** Records that the base passed a full check (or was just created) in pool `pool`. */
  async #recordVerified(pool: string): Promise<void> {
    const verified = await this.#verifiedMark(pool);
    if (verified === undefined) return;
    await this.#journal.poolLock.run(async () => {
      this.#journal.deviceSet = { ...this.#journal.deviceSet, baseVerified: verified };
      await this.#journal.store.saveDeviceSet(this.#journal.deviceSet);
    });
  }

  /** The `baseVerified` mark of the base as recorded now, or undefined when it lacks a part. */
  async #verifiedMark(pool: string, uuid = this.#journal.deviceSet.baseFilesystemUuid): Promise<DeviceSetRecord['baseVerified']> {
    const base = this.#journal.records.get('');
    if (!base || uuid === undefined || base.filesystemUuid !== uuid) return undefined;
    const status = await this.#journal.pool.status({ noflush: true });
    if (status.kind !== 'working') return undefined;
    return { uuid, deviceId: base.deviceId, size: base.size, fs: this.#options.fs, transactionId: Number(status.transactionId), pool };
  }

  /**
   * activateDevice('') and mountDevice('') hand the base to the caller, who may change its
   * filesystem: the next init checks it in full. Caller holds the base's device lock.
   */
  async forgetVerified(): Promise<void> {
    if (this.#journal.deviceSet.baseVerified === undefined) return;
    await this.#journal.poolLock.run(async () => {
      const { baseVerified: _dropped, ...rest } = this.#journal.deviceSet;
      this.#journal.deviceSet = rest;
      await this.#journal.store.saveDeviceSet(this.#journal.deviceSet);
    });
  }

  async #createBase(signal: AbortSignal | undefined, pool: string): Promise<void> {
    const o = this.#options;
    const rec = await this.#journal.createThin('', o.baseSize);
    this.#crash('base:before-activate');
    const path = await this.#activate(rec);
    this.#crash('base:before-mkfs');
    await this.#journal.poolLock.run(async () => {
      // A recreated base gets a new filesystem uuid: forget the old one before mkfs, or a crash
      // before the new one is saved would fail every later init with BaseUuidMismatchError.
      const { baseFilesystemUuid: _previous, baseVerified: _checked, ...rest } = this.#journal.deviceSet;
      this.#journal.deviceSet = { ...rest, baseFilesystem: o.fs };
      await this.#journal.store.saveDeviceSet(this.#journal.deviceSet);
    });
    const call = signal ? { signal } : undefined;
    await runTool(signal, 'DeviceSet.init', () => this.#tools.mkfs(o.fs, path, o.mkfsArgs, call));
    this.#crash('base:before-initialized');
    // No directory fsync for the two base record writes: the deviceset record's write in
    // #saveBaseUuid fsyncs the directory after both renames. A crash before it may lose either:
    // a base not initialized is recreated, a uuid in one record only is copied (verifyBase).
    await this.#journal.saveRecord({ ...rec, initialized: true, filesystem: o.fs }, { durable: false });
    const uuid = await runTool(signal, 'DeviceSet.init', () => this.#tools.uuid(path, call));
    this.#crash('base:before-uuid-save');
    await this.#saveBaseUuid(uuid, { durable: false }, pool);
    await this.#deactivate('', false);
  }

  /**
   * `baseRecord.durable: false`: the base record's rename is made durable by the deviceset record's
   * directory fsync that follows. With `checkedIn` (a new base, its UUID just read) the same
   * deviceset write records the check.
   */
  async #saveBaseUuid(uuid: string, baseRecord: { readonly durable?: boolean } = {}, checkedIn?: string): Promise<void> {
    const base = this.#journal.records.get('');
    if (base) await this.#journal.saveRecord({ ...base, filesystemUuid: uuid }, baseRecord);
    const verified = checkedIn === undefined ? undefined : await this.#verifiedMark(checkedIn, uuid);
    await this.#journal.poolLock.run(async () => {
      this.#journal.deviceSet = { ...this.#journal.deviceSet, baseFilesystemUuid: uuid, ...(verified ? { baseVerified: verified } : {}) };
      await this.#journal.store.saveDeviceSet(this.#journal.deviceSet);
    });
  }

  async #verifyBase(found: DeviceRecord, baseSizeGiven: boolean, signal: AbortSignal | undefined): Promise<void> {
    const o = this.#options;
    let base = found;
    if (base.growTo !== undefined) {
      // A grow that a crash interrupted: finish it. A filesystem the tool may have grown in part
      // must never go back to a smaller device.
      this.#log('info', `recovery: finishing the interrupted grow of the base device to ${base.growTo} bytes`);
      base = await this.growDevice(base, base.growTo, signal, 'DeviceSet.init');
    }
    if (baseSizeGiven && o.baseSize < BigInt(base.size)) {
      throw new DeviceSizeError(`base device size cannot be smaller than ${base.size} bytes (dm.basesize=${o.baseSize})`, o.baseSize, BigInt(base.size));
    }
    const path = await this.#activate(base);
    try {
      const uuid = await this.#tools.uuid(path);
      const stored = this.#journal.deviceSet.baseFilesystemUuid ?? base.filesystemUuid;
      if (stored !== undefined && stored !== uuid) throw new BaseUuidMismatchError(uuid, stored);
      // Both records carry it: a crash between the two writes of #saveBaseUuid left one without.
      if (this.#journal.deviceSet.baseFilesystemUuid === undefined || base.filesystemUuid === undefined) await this.#saveBaseUuid(uuid);
      const fsType = base.filesystem ?? this.#journal.deviceSet.baseFilesystem ?? (await probeFilesystem(this.#tools, path)) ?? undefined;
      if (fsType === undefined) throw new UnknownFilesystemError(path);
      // From the current record: #saveBaseUuid may just have added the uuid to it.
      if (base.filesystem === undefined) await this.#journal.saveRecord({ ...(this.#journal.records.get('') ?? base), filesystem: fsType });
      if (fsType !== o.fs) this.#log('warn', `the base device has ${fsType}; dm.fs=${o.fs} is ignored`);
    } finally {
      await this.#deactivate('', false);
    }
    const current = this.#journal.records.get('') ?? base;
    if (baseSizeGiven && o.baseSize > BigInt(current.size)) {
      checkAbort(signal, 'DeviceSet.init');
      this.#crash('base:before-grow');
      try {
        await this.growDevice(current, Number(o.baseSize), signal, 'DeviceSet.init');
      } catch (err) {
        // The tool refused (or the caller aborted): the record keeps its old size, so the next
        // init with the old dm.basesize opens the root as before.
        await this.#dropGrowIntent('');
        throw err;
      }
    }
  }

  /**
   * The journalled grow of `rec` to `to` bytes: the intent (`growTo`) is saved first; the record's
   * size changes only after the filesystem grew. Returns the grown record. On a throw the intent
   * stays: the caller undoes it ({@link #dropGrowIntent}, or deletes a new device).
   */
  async growDevice(rec: DeviceRecord, to: number, signal: AbortSignal | undefined, operation: string): Promise<DeviceRecord> {
    const intent: DeviceRecord = { ...rec, growTo: to };
    if (rec.growTo !== to) await this.#journal.saveRecord(intent);
    await this.#growFilesystem(intent, signal, operation);
    this.#crash('grow:before-size-save');
    const { growTo: _done, ...rest } = intent;
    const grown: DeviceRecord = { ...rest, size: to };
    await this.#journal.saveRecord(grown);
    return grown;
  }

  /**
   * addDevice's grow of the new snapshot `rec` to `to` bytes. When the grow fails or is aborted
   * the half-made device is deleted (a failed delete is left to the next init), so that a retry
   * works. Returns the grown record. The caller holds the device lock.
   */
  async growNewDevice(rec: DeviceRecord, to: number, signal: AbortSignal | undefined): Promise<DeviceRecord> {
    try {
      checkAbort(signal, 'addDevice');
      this.#crash('add:before-grow');
      return await this.growDevice(rec, to, signal, 'addDevice');
    } catch (err) {
      try {
        await this.#deleteLocked(this.#journal.records.get(rec.hash) ?? rec, true);
      } catch (undoErr) {
        this.#log('error', `could not delete ${rec.hash} after its grow failed (init will): ${String(undoErr)}`);
      }
      throw err;
    }
  }

  async #dropGrowIntent(hash: string): Promise<void> {
    const rec = this.#journal.records.get(hash);
    if (rec?.growTo === undefined) return;
    const { growTo: _dropped, ...rest } = rec;
    await this.#journal.saveRecord(rest);
  }

  /**
   * Activates `rec` at its grow target, mounts it on a private directory and grows its filesystem.
   * The directory is removed (rmdir, never recursively) only once it is unmounted; a crash
   * leaves it for {@link #cleanGrowMounts}.
   */
  async #growFilesystem(rec: DeviceRecord, signal: AbortSignal | undefined, operation: string): Promise<void> {
    const fsType = rec.filesystem ?? this.#journal.deviceSet.baseFilesystem ?? this.#options.fs;
    await this.#deactivate(rec.hash, false);
    const device = await this.#activate(rec);
    const mnt = ensurePrivateMountDir(this.#root, `.grow-${rec.hash || 'base'}`);
    try {
      this.#crash('grow:before-mount');
      await this.#sys.mountAsync(device, mnt, fsType, 0n, fsType === 'xfs' ? 'nouuid' : null);
      try {
        this.#crash('grow:before-tool');
        await runTool(signal, operation, () => this.#tools.grow(fsType, device, mnt, signal ? { signal } : undefined));
        this.#crash('grow:before-unmount');
      } finally {
        await this.#sys.umount2Async(mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
      }
      removePrivateMountDir(mnt);
    } finally {
      await this.#deactivate(rec.hash, false);
    }
  }
}
