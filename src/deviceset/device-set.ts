// SPDX-License-Identifier: MIT
// DeviceSet: Docker's devicemapper graph-driver core (deviceset.go) over ThinPool/ThinDevice,
// loop devices and the crash-safe metadata store.
/**
 * # DeviceSet
 *
 * `DeviceSet.init(root, options)` does, in order, what Docker's NewDeviceSet → initDevmapper →
 * setupBaseImage did:
 * 1. resolve the options (both forms; every problem listed before anything is touched);
 * 2. create `<root>` (0700), take `<root>/devmapper.lock`, derive the name prefix
 *    `devmapper-<major>:<minor>-<inode>` from stat(root); create `<root>/metadata` (0700) once the
 *    dm VERSION ioctl answered;
 * 3. find or create the pool (`<prefix>-pool` over `<root>/devicemapper/{data,metadata}` loop
 *    files, or dm.datadev/dm.metadatadev), or open dm.thinpooldev with Docker's ownership checks;
 * 4. load the records, probe the thin id named by an open transaction, plan with
 *    {@link reconcile} and apply the plan;
 * 5. create the base device once (create_thin, activate, mkfs, initialized, UUID), or verify
 *    its UUID and grow it when dm.basesize grew; the check is skipped while the one recorded
 *    still holds (base-image.ts, "When the base check is skipped"), so that reopening a healthy
 *    set costs the records, the pool lookup and its status, and no base activation.
 *
 * ## Pool mutations: the journal
 * Every create_thin / create_snap / delete goes through the {@link Journal} (journal.ts), in the
 * write order documented in reconcile.ts; init's recovery probes the open transaction's thin id
 * and applies {@link reconcile}'s plan there. The pool (and its part of status()) comes from
 * pool-setup.ts, the base device from base-image.ts, the mount mechanics from mount.ts, the dm
 * verbs on a record's device (activate, deactivate, discard, query) from activation.ts.
 *
 * ## Locks
 * Per-device locks, then the pool lock (see mutex.ts). Pool messages, the transaction id and
 * metadata writes happen under the pool lock only; activation, mkfs, mount and grow happen under
 * the device's lock only.
 */
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { openKernelLog } from './kernel-log.js';
import { InvalidArgumentError } from '../errors.js';
import { DeviceBusyError, DmControl } from '../dm/index.js';
import { LoopControl } from '../loop/index.js';
import { realSyscalls, type Syscalls } from '../ioctl/index.js';
import { checkAbort } from './abort.js';
import { StepTracer, hashOfNodePath, traceActivation, traceStep, traceTools } from './diagnostics.js';
import { checkAddDeviceArgs, checkDeleteDeviceArgs, checkHashArg, checkInitArgs, checkLookupArg, checkMountArgs, checkResizePoolArgs, checkUnmountArgs } from './arguments.js';
import { CRASH_POINTS, noCrashHook, type CrashHook } from './crash.js';
import {
  DeviceAlreadyExistsError,
  DeviceFaultyError,
  DeviceInUseError,
  DeviceMarkedDeletedError,
  DeviceSetClosedError,
  DeviceSizeError,
} from './errors.js';
import { realFsTools, type FsTools } from './fs-tools.js';
import { assertValidHash, prefixFor } from './hash.js';
import { importedNamePrefixAsync } from './docker-names.js';
import {
  METADATA_FORMAT_VERSION,
  MetadataStore,
  type DeviceRecord,
} from './metadata.js';
import { KeyedMutex } from './mutex.js';
import {
  formatDmOptions,
  resolveDeviceSetOptionsReport,
  type ResolvedDeviceSetOptions,
} from './options.js';
import { reconcile } from './reconcile.js';
import { mountThinDevice, unmountPath, type MountDeps } from './mount.js';
import { Journal, MIN_DEVICE_ID } from './journal.js';
import { Activation, deferredModes } from './activation.js';
import { BaseImage } from './base-image.js';
import { PoolSetup, assertPoolUsable, growLoopbackData, statusReport } from './pool-setup.js';
import { RootLock } from './root-lock.js';
import { Autoextender, journalExtensionStore } from './autoextend.js';
import type { DeleteDeviceOptions, DeviceSetDevice, DeviceSetInit, DeviceSetLogLevel, DeviceSetStatus, DeviceStatus, MountDeviceOptions, ResizePoolOptions } from './types.js';
import { assertOwnedDirIfPresentAsync, ensureOwnedDirAsync, ensureRootDirAsync } from './safe-path.js';

export { CRASH_POINTS };

const DEFAULT_DEFERRED_DELETE_MS = 30_000;

interface MountEntry {
  path: string;
  count: number;
}

/**
 * A set of thin devices in one pool, Docker-style: a base device with a filesystem, and
 * snapshots of it (images, containers) named by hash. Create with {@link DeviceSet.init}; end
 * with {@link DeviceSet.shutdown}.
 */
export class DeviceSet {
  readonly root: string;
  /** dm name prefix `devmapper-<major>:<minor>-<inode>`. */
  readonly prefix: string;
  readonly options: ResolvedDeviceSetOptions;
  readonly #dm: DmControl;
  readonly #ownDm: boolean;
  readonly #loops: LoopControl;
  readonly #sys: Syscalls;
  readonly #tools: FsTools;
  readonly #crash: CrashHook;
  readonly #journal: Journal;
  readonly #log: (level: DeviceSetLogLevel, message: string) => void;
  readonly #lock: RootLock;
  readonly #devLocks = new KeyedMutex();
  readonly #mounts = new Map<string, MountEntry>();
  #deferredDeletion = false;
  #worker: NodeJS.Timeout | undefined;
  #deferredDeleteIntervalMs: number;
  #closed = false;
  /** Set during init: its signal, and whether it created the pool (a failed init removes it then). */
  #initSignal: AbortSignal | undefined;
  #poolCreatedHere = false;
  #inflight = 0;
  #drained: (() => void) | undefined;
  readonly #mountDeps: MountDeps;
  readonly #base: BaseImage;
  readonly #setup: PoolSetup;
  readonly #act: Activation;
  /** dm.autoextend_*: started at the end of init, stopped first at shutdown (autoextend.ts). */
  readonly autoextender: Autoextender;

  private constructor(root: string, prefix: string, options: ResolvedDeviceSetOptions, init: DeviceSetInit, lock: RootLock) {
    this.root = root;
    this.prefix = prefix;
    this.options = options;
    this.#ownDm = init.dm === undefined;
    this.#dm = init.dm ?? new DmControl();
    this.#loops = init.loops ?? new LoopControl();
    this.#sys = init.syscalls ?? realSyscalls();
    // Tracing on the devmapper:deviceset channel wraps the seams (diagnostics.ts).
    this.#tools = traceTools(init.tools ?? realFsTools, hashOfNodePath(this.#dm.nodePath(`${prefix}-base`)));
    const tracer = new StepTracer((id) => [...this.#journal.records.values()].find((r) => r.deviceId === id)?.hash ?? null);
    this.#crash = init.crashPoint ?? noCrashHook;
    this.#log = init.log ?? ((level, message) => (level === 'warn' || level === 'error' ? console.error(`devmapper ${level}: ${message}`) : undefined));
    this.#lock = lock;
    this.#deferredDeleteIntervalMs = init.deferredDeleteIntervalMs ?? DEFAULT_DEFERRED_DELETE_MS;
    this.#initSignal = init.signal;
    this.#journal = new Journal({
      store: tracer.traceStore(new MetadataStore(root, init.metadataFs)),
      crash: this.#crash,
      log: this.#log,
      minFreeSpacePercent: options.minFreeSpacePercent,
      deviceSet: { formatVersion: METADATA_FORMAT_VERSION, nextDeviceId: MIN_DEVICE_ID, options: formatDmOptions(options) },
    });
    this.#setup = new PoolSetup({
      root,
      prefix,
      options,
      dm: this.#dm,
      loops: this.#loops,
      blockDevices: init.blockDevices,
      crash: this.#crash,
      log: this.#log,
      discardRecordsOnBlank: init.discardRecordsOnBlankMetadata === true,
      signal: init.signal,
      onPool: (pool, createdHere) => {
        this.#journal.pool = tracer.tracePool(pool);
        this.#poolCreatedHere = createdHere;
      },
    });
    this.#act = traceActivation(new Activation({ dm: this.#dm, sys: this.#sys, prefix, journal: this.#journal, log: this.#log }));
    this.#base = new BaseImage({
      root,
      options,
      sys: this.#sys,
      tools: this.#tools,
      journal: this.#journal,
      devLocks: this.#devLocks,
      crash: this.#crash,
      log: this.#log,
      activate: (rec) => this.#act.activate(rec),
      deactivate: (hash, deferred) => this.#act.deactivate(hash, deferred),
      deleteLocked: (rec, sync) => this.#deleteLocked(rec, sync),
      isActive: async (hash) => (await this.#dm.findDevice(this.#act.dmName(hash))) !== null,
    });
    this.autoextender = new Autoextender({
      options,
      init: init.autoextend ?? {},
      pool: () => this.#journal.pool,
      source: () => this.#setup.source,
      loops: this.#loops,
      locked: (fn) => this.#op([], () => this.#journal.poolLock.run(fn)),
      record: journalExtensionStore(this.#journal),
      monitorDm: { devDir: dirname(dirname(this.#dm.controlPath)), ...(init.syscalls ? { syscalls: init.syscalls } : {}) },
      log: this.#log,
    });
    this.#mountDeps = {
      dm: this.#dm,
      sys: this.#sys,
      tools: this.#tools,
      kernelLog: init.kernelLog ?? openKernelLog,
      options,
      dmName: (hash) => this.#act.dmName(hash),
      undoActivate: (hash) => this.#act.deactivate(hash, true).catch(() => undefined),
    };
  }

  // ------------------------------------------------------------------------------------ init

  /**
   * Docker's NewDeviceSet(root, doInit=true, options) (the Driver's `doInit: false` is in
   * src/driver/driver.ts, Driver.init).
   * Opens (and on first use creates) the DeviceSet rooted at `root`. See the file comment for
   * the steps. On failure everything this call set up is undone (a pool it created is removed,
   * the lock released).
   * @throws InvalidArgumentError (options, before anything is created), DeviceSetLockedError,
   *   ThinPoolOwnershipError, BaseUuidMismatchError, DeviceSizeError (base shrink),
   *   MetadataCorruptError, pool-state errors from src/thin, UnsafePathError (the root,
   *   `devicemapper/` or `metadata/` is a link, not ours or group/other writable; a loopback file
   *   or record is a link), before anything is created under the root when the directories are at fault.
   */
  static async init(root: string, init: DeviceSetInit = {}): Promise<DeviceSet> {
    checkInitArgs(root, init);
    if (typeof root !== 'string' || !root.startsWith('/')) {
      throw new InvalidArgumentError('DeviceSet root', [{ path: '/root', message: 'must be an absolute path', value: root }]);
    }
    const { options, given } = resolveDeviceSetOptionsReport(init.options ?? {});
    checkAbort(init.signal, 'DeviceSet.init');
    // Before anything is created under it: the root (resolved once, as Docker does) and the
    // directories in it must be ours and private, links refused (safe-path.ts).
    // Through fs/promises, as every file look of init (issue #17 §2; init-sync-calls.test.ts).
    root = await ensureRootDirAsync(root);
    await assertOwnedDirIfPresentAsync(join(root, 'devicemapper'));
    await assertOwnedDirIfPresentAsync(join(root, 'metadata'));
    const st = await fs.promises.stat(root, { bigint: true });
    const lock = await RootLock.acquireAsync(root, init.syscalls ?? realSyscalls());
    let set: DeviceSet | undefined;
    try {
      set = new DeviceSet(root, await namePrefixOf(root, st), options, init, lock);
      await set.#init(given.has('baseSize'));
    } catch (err) {
      // Every throw after the lock is taken releases it (the constructor's too).
      if (set) await set.#abortInit();
      else lock.release();
      throw err;
    }
    return set;
  }

  /** Docker's initDevmapper, ending in setupBaseImage ({@link BaseImage.setup}). */
  async #init(baseSizeGiven: boolean): Promise<void> {
    const version = await this.#dm.version();
    // Only once device-mapper answered: a host without it keeps no metadata/ behind.
    await ensureOwnedDirAsync(join(this.root, 'metadata'), 0o700);
    const o = this.options;
    ({ removal: this.#act.deferredRemoval, deletion: this.#deferredDeletion } = deferredModes(version, o));

    const loaded = await this.#journal.store.loadAll();
    if (loaded.removedTempFiles.length > 0) this.#log('info', `removed ${loaded.removedTempFiles.length} temp files of interrupted writes`);
    const firstUse = loaded.deviceSet === undefined && loaded.devices.size === 0;
    if (loaded.deviceSet) this.#journal.deviceSet = { ...loaded.deviceSet, options: formatDmOptions(o) };

    const newPool = await this.#setup.run(firstUse, loaded.devices.size);
    this.#journal.owned = this.#setup.source.owned;
    const growMountsLeft = await this.#base.cleanGrowMounts();
    checkAbort(this.#initSignal, 'DeviceSet.init');

    // Recovery: what the pool holds, as far as it can be known.
    const status = this.#setup.takeStatus() ?? (await this.#journal.pool.status({ noflush: true }));
    assertPoolUsable(this.#journal.pool.name, status, o.thinPoolDevice !== null && firstUse);
    const recovered = await this.#journal.recover(loaded, status, newPool, (hash) => this.#act.quietDeactivate(hash));

    this.#crash('init:before-deviceset-save');
    // Unchanged (a healthy reopen with the same options): nothing to make durable.
    if (!isDeepStrictEqual(loaded.deviceSet, this.#journal.deviceSet)) await this.#journal.store.saveDeviceSet(this.#journal.deviceSet);
    checkAbort(this.#initSignal, 'DeviceSet.init');

    const addsUndone = await this.#base.undoInterruptedAdds();
    await this.#base.setup(baseSizeGiven, this.#initSignal, {
      transactionId: status.transactionId,
      pool: this.#setup.identity,
      recovered: growMountsLeft || recovered || addsUndone || newPool,
    });
    this.#act.endInit();
    this.#initSignal = undefined;
    this.#startWorker();
    await this.autoextender.start();
  }

  /**
   * Undoes what this init itself created, and nothing else: the devices it activated, and the pool
   * if it created it. A pool it adopted (left live by an earlier process) stays as it was found,
   * with every device on it, mounted or not, whatever made the init fail.
   */
  async #abortInit(): Promise<void> {
    this.#closed = true;
    this.#stopWorker();
    await this.autoextender.stop();
    await this.#act.removeActivatedByInit();
    try {
      if (this.#journal.pool && this.#poolCreatedHere) await this.#journal.pool.remove();
    } catch (err) {
      this.#log('warn', `cleanup after a failed init: ${String(err)}`);
    }
    await this.#lock.releaseAsync();
    if (this.#ownDm) this.#dm.close();
  }

  // ------------------------------------------------------------------------ journalled ops

  /** Runs `fn` with the device locks of `hashes` (and of `shared`, shared), refusing when closed; shutdown waits for it. */
  async #op<T>(hashes: readonly string[], fn: () => Promise<T>, shared: readonly string[] = []): Promise<T> {
    if (this.#closed) throw new DeviceSetClosedError();
    this.#inflight++;
    try {
      const release = await this.#devLocks.lockMany(hashes, shared);
      try {
        if (this.#closed) throw new DeviceSetClosedError();
        return await fn();
      } finally {
        release();
      }
    } finally {
      if (--this.#inflight === 0) this.#drained?.();
    }
  }

  /** Docker's deleteDevice: discard, deactivate, journalled delete. Caller holds the device lock. */
  async #deleteLocked(rec: DeviceRecord, sync: boolean, call: DeleteDeviceOptions = {}): Promise<'deleted' | 'deferred'> {
    this.#crash('delete:before-discard');
    if (this.options.blkDiscard) await this.#act.discard(rec, call);
    this.#crash('delete:before-deactivate');
    const deferOk = this.#deferredDeletion && !sync;
    try {
      if (deferOk && this.#act.deferredRemoval) await this.#act.removeUnlessBusy(rec.hash);
      await this.#act.deactivate(rec.hash, deferOk);
    } catch (err) {
      if (!(err instanceof DeviceBusyError) || !deferOk) throw err;
      // Busy: the pool delete below answers EBUSY and the deletion is deferred.
    }
    return this.#journal.delete(rec, this.#deferredDeletion && !sync);
  }

  // ------------------------------------------------------------------------- public API

  /** The pool's dm name. */
  get poolName(): string {
    return this.#journal.pool.name;
  }

  /** Whether deferred removal / deletion ended up enabled. */
  get deferredRemoval(): boolean {
    return this.#act.deferredRemoval;
  }
  get deferredDeletion(): boolean {
    return this.#deferredDeletion;
  }

  /**
   * Docker's AddDevice: a thin snapshot `hash` of `baseHash` ('' = the base device). A `size`
   * above the parent's grows the new device's filesystem; below it is refused. Checks
   * dm.min_free_space first; an active parent is suspended around create_snap.
   * @throws UnknownDeviceError, DeviceAlreadyExistsError, DeviceMarkedDeletedError,
   *   DeviceFaultyError, DeviceSizeError, PoolFreeSpaceError, pool errors.
   */
  async addDevice(hash: string, baseHash: string, options: { size?: bigint | number | string; signal?: AbortSignal } = {}): Promise<DeviceSetDevice> {
    const { size: wanted } = checkAddDeviceArgs(hash, baseHash, options);
    assertValidHash(hash);
    assertValidHash(baseHash, '/baseHash');
    if (hash === '') throw new InvalidArgumentError('device hash', [{ path: '/hash', message: "'' is the base device, created by init", value: hash }]);
    const signal = options.signal;
    checkAbort(signal, 'addDevice');
    // The parent's lock is shared: snapshots of one parent reach the journal together and share
    // its durable writes (group commit, journal.ts); deleting or mounting the parent waits for them.
    return this.#op([hash], async () => {
      checkAbort(signal, 'addDevice');
      const parent = this.#journal.record(baseHash);
      if (parent.deleted) throw new DeviceMarkedDeletedError(baseHash, 'snapshot');
      if (parent.state !== 'ready') throw new DeviceFaultyError(baseHash, parent.lastError ?? parent.state);
      const existing = this.#journal.records.get(hash);
      if (existing) throw new DeviceAlreadyExistsError(hash, existing.deleted);
      const size = wanted ?? BigInt(parent.size);
      if (size < BigInt(parent.size)) {
        throw new DeviceSizeError(`container size ${size} cannot be smaller than the parent's ${parent.size} bytes`, size, BigInt(parent.size));
      }
      // A larger device is created at the parent's size with the grow as its intent (growTo), so
      // that a crash before the grow finished is undone by the next init, not left half-made.
      const growTo = size > BigInt(parent.size) ? Number(size) : undefined;
      const rec = await this.#act.withOriginSettled(baseHash, (originActiveName) =>
        this.#journal.createSnap(hash, BigInt(parent.size), parent, originActiveName, growTo),
      );
      return this.#act.describe(growTo === undefined ? rec : await this.#base.growNewDevice(rec, growTo, signal));
    }, [baseHash]);
  }

  /**
   * Docker's DeleteDevice: BLKDISCARD (dm.blkdiscard), deactivate, journalled pool delete. With
   * deferred deletion on and `sync` false, a busy device is marked deleted and retried by the
   * background worker; resolves 'deferred' then.
   * @throws UnknownDeviceError, DeviceInUseError (mounted here), DeviceBusyError (still open when
   *   not deferring: the dm remove gave up), ThinDeviceBusyError, pool errors.
   */
  async deleteDevice(hash: string, options: DeleteDeviceOptions = {}): Promise<'deleted' | 'deferred'> {
    checkDeleteDeviceArgs(hash, options);
    assertValidHash(hash);
    checkAbort(options.signal, 'deleteDevice');
    return this.#op([hash], async () => {
      checkAbort(options.signal, 'deleteDevice');
      const rec = this.#journal.record(hash);
      const m = this.#mounts.get(hash);
      if (m) throw new DeviceInUseError(hash, `mounted by this DeviceSet at ${m.path} (${m.count} references)`);
      return this.#deleteLocked(rec, options.sync === true, options);
    });
  }

  /** Activates a device (no-op when active; cancels a pending deferred remove). Returns its node path. */
  async activateDevice(hash: string): Promise<string> {
    checkHashArg('activateDevice', hash);
    assertValidHash(hash);
    return this.#op([hash], async () => {
      const rec = this.#journal.record(hash);
      if (rec.state === 'faulty') throw new DeviceFaultyError(hash, rec.lastError);
      if (hash === '') await this.#base.forgetVerified();
      return this.#act.activate(rec);
    });
  }

  /** Deactivates a device (deferred when busy and dm.use_deferred_removal is on). */
  async deactivateDevice(hash: string): Promise<void> {
    checkHashArg('deactivateDevice', hash);
    assertValidHash(hash);
    return this.#op([hash], async () => {
      this.#journal.record(hash);
      if (this.#mounts.has(hash)) throw new DeviceInUseError(hash, `mounted by this DeviceSet at ${this.#mounts.get(hash)?.path}`);
      await this.#act.deactivate(hash, true);
    });
  }

  /**
   * Docker's MountDevice: activate, probe the filesystem, mount with nouuid (xfs), dm.mountopt,
   * `options` and the label. Mounting again at the same path only counts a reference.
   * @throws MountFailedError (with the errno's explanation), DeviceInUseError (mounted
   *   elsewhere), DeviceMarkedDeletedError, UnknownFilesystemError.
   */
  async mountDevice(hash: string, path: string, options: MountDeviceOptions = {}): Promise<void> {
    checkMountArgs(hash, path, options);
    assertValidHash(hash);
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new InvalidArgumentError('mount point', [{ path: '/path', message: 'must be an absolute path', value: path }]);
    }
    checkAbort(options.signal, 'mountDevice');
    return this.#op([hash], async () => {
      checkAbort(options.signal, 'mountDevice');
      const rec = this.#journal.record(hash);
      if (rec.deleted) throw new DeviceMarkedDeletedError(hash, 'mount');
      if (rec.state === 'faulty') throw new DeviceFaultyError(hash, rec.lastError);
      const m = this.#mounts.get(hash);
      if (m) {
        if (m.path !== path) throw new DeviceInUseError(hash, `already mounted at ${m.path}; a device is mounted in one place only`);
        m.count++;
        return;
      }
      if (hash === '') await this.#base.forgetVerified();
      const node = await this.#act.activate(rec);
      await traceStep('mount', hash, () => mountThinDevice(this.#mountDeps, hash, node, path, options));
      this.#mounts.set(hash, { path, count: 1 });
    });
  }

  /**
   * Docker's UnmountDevice: drops a reference; the last one unmounts (MNT_DETACH) and deactivates.
   * @throws UnknownDeviceError; InvalidArgumentError when not mounted at `path`.
   */
  async unmountDevice(hash: string, path: string): Promise<void> {
    checkUnmountArgs(hash, path);
    assertValidHash(hash);
    return this.#op([hash], async () => {
      this.#journal.record(hash);
      const m = this.#mounts.get(hash);
      if (!m || m.path !== path) {
        throw new InvalidArgumentError('unmount', [{ path: '/path', message: m ? `device is mounted at ${m.path}` : 'device is not mounted by this DeviceSet', value: path }]);
      }
      if (--m.count > 0) return;
      await traceStep('unmount', hash, () => unmountPath(this.#sys, path));
      this.#mounts.delete(hash);
      await this.#act.deactivate(hash, true);
    });
  }

  /** True when `hash` has a record (deferred-deleted ones included, as Docker). */
  hasDevice(hash: string): boolean {
    checkLookupArg('hasDevice', hash);
    return this.#journal.records.has(hash);
  }

  /** Hashes of every device except the base device and deferred-deleted ones, sorted. */
  list(): string[] {
    return [...this.#journal.records.values()].filter((r) => r.hash !== '' && !r.deleted).map((r) => r.hash).sort();
  }

  /** The record of one device. @throws UnknownDeviceError */
  deviceInfo(hash: string): DeviceSetDevice {
    checkLookupArg('deviceInfo', hash);
    const rec = this.#journal.record(hash);
    return this.#act.describe(rec);
  }

  /** Docker's GetDeviceStatus (activates the device for the query if it is not active). */
  async deviceStatus(hash: string): Promise<DeviceStatus> {
    checkHashArg('deviceStatus', hash);
    assertValidHash(hash);
    return this.#op([hash], async () => {
      const rec = this.#journal.record(hash);
      return this.#act.status(rec);
    });
  }

  /** Docker's Status, plus the pool's mode, needs_check and transaction id. */
  async status(): Promise<DeviceSetStatus> {
    if (this.#closed) throw new DeviceSetClosedError();
    const report = await statusReport(this.#journal, this.#setup.source, this.options.minFreeSpacePercent, { removal: this.#act.deferredRemoval, deletion: this.#deferredDeletion });
    return { ...report, autoextend: this.autoextender.status() };
  }

  /**
   * Grows the loopback data file to `size` bytes, refreshes the loop device and reloads the pool
   * at the new length. Loopback pools only; never shrinks.
   */
  async resizePool(size: bigint | number | string, options: ResizePoolOptions = {}): Promise<void> {
    const bytes = checkResizePoolArgs(size, options);
    checkAbort(options.signal, 'resizePool');
    if (this.#closed) throw new DeviceSetClosedError();
    const src = this.#setup.source;
    if (!src.dataFile || !src.dataDevice) {
      throw new InvalidArgumentError('resizePool', [{ path: '', message: 'only a loopback pool (no dm.datadev or dm.thinpooldev) can be resized here', value: bytes }]);
    }
    const dataFile = src.dataFile;
    const dataDevice = src.dataDevice;
    // Through #op (no device locks) so that shutdown() waits for it before removing the pool.
    await this.#op([], () =>
      this.#journal.poolLock.run(async () => {
        checkAbort(options.signal, 'resizePool');
        await growLoopbackData(this.#loops, this.#journal.pool, dataFile, dataDevice, bytes, this.autoextender.lowWaterMarkFor, options);
      }),
    );
  }

  /** Runs one pass of the deferred deletion worker now; resolves with the hashes still pending. */
  async cleanupDeleted(): Promise<string[]> {
    const pending = this.#journal.deletedHashes();
    for (const hash of pending) {
      try {
        await this.#op([hash], async () => {
          const rec = this.#journal.records.get(hash);
          if (rec?.deleted) await this.#deleteLocked(rec, false);
        });
      } catch (err) {
        if (err instanceof DeviceSetClosedError) break;
        this.#log('warn', `deferred deletion of ${hash}: ${String(err)}`);
      }
    }
    return this.#journal.deletedHashes();
  }

  #startWorker(): void {
    if (!this.#deferredDeletion || this.#deferredDeleteIntervalMs <= 0) return;
    this.#worker = setInterval(() => {
      if (this.#journal.deletedHashes().length > 0) void this.cleanupDeleted();
    }, this.#deferredDeleteIntervalMs);
    this.#worker.unref();
  }

  #stopWorker(): void {
    if (this.#worker) clearInterval(this.#worker);
    this.#worker = undefined;
  }

  /** `await using ds = await DeviceSet.init(root, init)`: {@link shutdown} at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /**
   * Docker's Shutdown: stops the worker, waits for running calls, saves the deviceset record,
   * unmounts what this DeviceSet mounted, deactivates its devices, removes the pool if it owns
   * it (its loop devices then auto-clear) and releases the lock. Idempotent.
   */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWorker();
    await this.autoextender.stop();
    if (this.#inflight > 0) await new Promise<void>((r) => (this.#drained = r));
    this.#crash('shutdown:before-save');
    await this.#journal.store.saveDeviceSet(this.#journal.deviceSet);
    this.#crash('shutdown:before-unmount');
    for (const [hash, m] of this.#mounts) {
      try {
        await unmountPath(this.#sys, m.path);
      } catch (err) {
        this.#log('warn', `unmounting ${hash} at ${m.path}: ${String(err)}`);
      }
    }
    this.#mounts.clear();
    this.#crash('shutdown:before-deactivate');
    await this.#act.deactivateAll();
    this.#crash('shutdown:before-pool-remove');
    if (this.#setup.source.owned) {
      try {
        await this.#journal.pool.remove();
      } catch (err) {
        this.#log('warn', `the pool ${this.#journal.pool.name} stays: ${String(err)}`);
      }
    }
    this.#crash('shutdown:before-unlock');
    await this.#lock.releaseAsync();
    if (this.#ownDm) this.#dm.close();
  }
}

/**
 * The set's dm name prefix: {@link prefixFor} of stat(root), or Docker's `docker-MAJ:MIN-INO`
 * for a root imported from Docker, whose deviceset record says so (docker-names.ts; an import a
 * crash stopped between its two renames is finished first). Caller holds the root lock.
 */
async function namePrefixOf(root: string, st: fs.BigIntStats): Promise<string> {
  return (await importedNamePrefixAsync(root, st)) ?? prefixFor({ dev: st.dev, ino: st.ino });
}
