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
import type { DeviceRecord } from './metadata.js';
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
  }

  /**
   * A crash during a grow leaves `mnt/.grow-*` mounted (the directory of #growFilesystem): detach
   * each (UMOUNT_NOFOLLOW: a link planted there is not followed) and remove the directory only
   * when it is empty. Never a recursive removal: it could still be a mount point.
   */
  async cleanGrowMounts(): Promise<void> {
    const dir = join(this.#root, 'mnt');
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((n) => n.startsWith('.grow-'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
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
        fs.rmdirSync(path);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') this.#log('warn', `${path} stays: ${String(err)}`);
      }
    }
  }

  /**
   * addDevice with a size grows the new snapshot's filesystem after creating it; the record carries
   * `growTo` until the grow is done. A crash in between leaves a device its caller never got:
   * delete it (the record proves it is ours), so that a retry of the add works.
   */
  async undoInterruptedAdds(): Promise<void> {
    for (const rec of [...this.#journal.records.values()]) {
      if (rec.hash === '' || rec.growTo === undefined || rec.deleted) continue;
      this.#log('info', `recovery: deleting ${rec.hash}, whose addDevice was interrupted while growing its filesystem`);
      const release = await this.#devLocks.lockMany([rec.hash]);
      try {
        await this.#deleteLocked(rec, true);
      } finally {
        release();
      }
    }
  }

  /** Docker's setupBaseImage: recreate an uninitialized base, create a missing one, else verify (and grow) it. */
  async setup(baseSizeGiven: boolean, signal: AbortSignal | undefined): Promise<void> {
    const release = await this.#devLocks.lockMany(['']);
    try {
      let base = this.#journal.records.get('');
      if (base && (!base.initialized || base.deleted || base.state !== 'ready')) {
        this.#log('info', `base device is ${base.state}${base.initialized ? '' : ', not initialized'}${base.deleted ? ', deleted' : ''}: recreating it`);
        await this.#deleteLocked(base, true);
        base = undefined;
      }
      if (!base) {
        await this.#createBase(signal);
        return;
      }
      await this.#verifyBase(base, baseSizeGiven, signal);
    } finally {
      release();
    }
  }

  async #createBase(signal: AbortSignal | undefined): Promise<void> {
    const o = this.#options;
    const rec = await this.#journal.createThin('', o.baseSize);
    this.#crash('base:before-activate');
    const path = await this.#activate(rec);
    this.#crash('base:before-mkfs');
    await this.#journal.poolLock.run(async () => {
      // A recreated base gets a new filesystem uuid: forget the old one before mkfs, or a crash
      // before the new one is saved would fail every later init with BaseUuidMismatchError.
      const { baseFilesystemUuid: _previous, ...rest } = this.#journal.deviceSet;
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
    await this.#saveBaseUuid(uuid, { durable: false });
    await this.#deactivate('', false);
  }

  /** `baseRecord.durable: false`: the base record's rename is made durable by the deviceset record's directory fsync that follows. */
  async #saveBaseUuid(uuid: string, baseRecord: { readonly durable?: boolean } = {}): Promise<void> {
    const base = this.#journal.records.get('');
    if (base) await this.#journal.saveRecord({ ...base, filesystemUuid: uuid }, baseRecord);
    await this.#journal.poolLock.run(async () => {
      this.#journal.deviceSet = { ...this.#journal.deviceSet, baseFilesystemUuid: uuid };
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
