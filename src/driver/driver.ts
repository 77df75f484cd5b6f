// SPDX-License-Identifier: MIT
/**
 * # Driver: the seed's graph driver above the DeviceSet
 *
 * Docker's `daemon/graphdriver/devmapper/driver.go` (moby ≤ v24; read at v20.10): a `Driver`
 * wraps a DeviceSet rooted at `home` and serves the daemon's graph-driver verbs. The call chain
 * and where each step lives here:
 *
 * | Docker (Go) | here |
 * |---|---|
 * | `Init(home, options, …)` | {@link Driver.init} |
 * | `NewDeviceSet(home, doInit, options, …)` | {@link DeviceSet.init} (`doInit: false`: {@link Driver.init} checks first that the set is complete, see {@link assertInitialized}) |
 * | `initDevmapper(doInit)` | DeviceSet.init steps 2–4: root, lock, pool (pool-setup.ts), records and recovery (journal.ts) |
 * | `setupBaseImage()` | DeviceSet.init step 5: `BaseImage.setup` (base-image.ts) |
 * | `Create` / `CreateReadWrite` → `AddDevice` | {@link Driver.create} / {@link Driver.createReadWrite} → `DeviceSet.addDevice` |
 * | `Get` → `MountDevice` | {@link Driver.get} → `DeviceSet.mountDevice` |
 * | `Put` → `UnmountDevice` | {@link Driver.put} → `DeviceSet.unmountDevice` (or umount2 + `deactivateDevice` for a mount another process made) |
 * | `Remove` → `DeleteDevice(id, false)` | {@link Driver.remove} → `DeviceSet.deleteDevice` |
 * | `Exists` → `HasDevice` | {@link Driver.exists} → `DeviceSet.hasDevice` |
 * | `Status` | {@link Driver.status} (from `DeviceSet.status`) |
 * | `GetMetadata` → `exportDeviceMetadata` | {@link Driver.getMetadata} → `DeviceSet.deviceInfo` |
 * | `Cleanup` → `Shutdown` | {@link Driver.cleanup} → `DeviceSet.shutdown` |
 *
 * ## Reference counting
 * `get` counts references per mount point `home/mnt/<id>` (Docker's graphdriver.RefCounter, see
 * refcount.ts): the first `get` mounts, later ones only count; `put` drops one and the last one
 * unmounts and removes the mount point. The first time a process looks at a mount point, a mount
 * the kernel's mount table already has there counts as one reference: that is how a second process
 * (a restarted daemon, the next CLI run) sees the layers the first one left mounted. A per-id lock
 * (Docker's locker, locker.ts) serialises get/put/remove of one id; different ids run side by side.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import { MNT_DETACH, realSyscalls, type Syscalls } from '../ioctl/index.js';
import {
  BASE_FILE,
  DEVICESET_FILE,
  DeviceSet,
  OperationAbortedError,
  UnknownDeviceError,
  ensureOwnedDir,
  hashProblem,
  parseSize,
  readFileNoFollow,
  resolveDeviceSetOptions,
  type DeviceSetInit,
  type DeviceSetLogLevel,
  type DeviceSetOptions,
  type DeviceSetStatus,
} from '../deviceset/index.js';
import { DriverClosedError, DriverNotInitializedError, LayerInUseError, LayerNotMountedError } from './errors.js';
import { Locker } from './locker.js';
import { RefCounter, procMountChecker, type MountChecker } from './refcount.js';

/** Everything {@link Driver.init} accepts: the DeviceSet's init, plus the Driver's own two. */
export interface DriverInit extends DeviceSetInit {
  /**
   * Docker's `doInit` (default true): create the set on first use (pool files, base device).
   * false opens an existing, complete set only: nothing is created under `home` (no loop files,
   * no base device), and a `dm.basesize` is not applied (Docker skips setupBaseImage then).
   */
  readonly doInit?: boolean;
  /** Whether something is mounted at a path (default: /proc/self/mountinfo). Tests pass a fake's. */
  readonly isMounted?: MountChecker;
}

/** Options of {@link Driver.create}: Docker's CreateOpts.StorageOpt, as `size` or the map itself. */
export interface CreateOptions {
  /** The layer's size (bytes or a size string such as 20G); default: its parent's. */
  readonly size?: bigint | number | string;
  /** Docker's storage options map: only `size` (any case), as `--storage-opt size=`. */
  readonly storageOpt?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** Options of {@link Driver.createReadWrite}: as create, plus the mount label Docker passes (unused by devicemapper). */
export interface CreateReadWriteOptions extends CreateOptions {
  readonly mountLabel?: string;
}

/** Options of {@link Driver.get}. */
export interface GetOptions {
  /** SELinux mount label (`context="…"`). */
  readonly mountLabel?: string;
  readonly signal?: AbortSignal;
}

/** Docker's GetMetadata map. */
export interface DriverMetadata {
  readonly DeviceId: string;
  readonly DeviceSize: string;
  readonly DeviceName: string;
}

/** One line of {@link Driver.status}: `[key, value]`, as `docker info` prints them. */
export type DriverStatusPair = readonly [key: string, value: string];

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;

/**
 * Docker's `units.HumanSize` (github.com/docker/go-units size.go): decimal units, four
 * significant digits, no space ("65.54kB", "10.74GB", "0B"), as `docker info` prints sizes.
 */
export function dockerHumanSize(bytes: bigint | number): string {
  let size = Number(bytes);
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  // Go's %.4g: four significant digits, trailing zeros dropped (size < 1000 here: no exponent).
  return `${String(Number(size.toPrecision(4)))}${DECIMAL_UNITS[i]}`;
}

/**
 * Docker's Driver.Status pairs (v20.10 order) from a DeviceSet status. The optional lines follow
 * Docker's rules: `Data file`/`Metadata file` (the block devices) and the `… loop file` lines only
 * when set; `Library Version` (libdevmapper's) never, as there is no libdevmapper here (Docker
 * leaves it out too when it cannot ask the library).
 */
export function statusPairs(s: DeviceSetStatus): DriverStatusPair[] {
  const out: DriverStatusPair[] = [
    ['Pool Name', s.poolName],
    ['Pool Blocksize', dockerHumanSize(s.sectorSize)],
    ['Base Device Size', dockerHumanSize(s.baseDeviceSize)],
    ['Backing Filesystem', s.baseDeviceFS ?? ''],
    ['Udev Sync Supported', String(s.udevSyncSupported)],
  ];
  // Docker sets its dataDevice/metadataDevice only when it builds the pool itself (deviceset.go
  // initDevmapper): an external dm.thinpooldev pool has no such lines, though our status carries
  // that pool's table devices (`major:minor`) for `ds status`.
  if (s.poolOwned && s.dataFile) out.push(['Data file', s.dataFile]);
  if (s.poolOwned && s.metadataFile) out.push(['Metadata file', s.metadataFile]);
  if (s.dataLoopback) out.push(['Data loop file', s.dataLoopback]);
  if (s.metadataLoopback) out.push(['Metadata loop file', s.metadataLoopback]);
  out.push(
    ['Data Space Used', dockerHumanSize(s.data.used)],
    ['Data Space Total', dockerHumanSize(s.data.total)],
    ['Data Space Available', dockerHumanSize(s.data.available)],
    ['Metadata Space Used', dockerHumanSize(s.metadata.used)],
    ['Metadata Space Total', dockerHumanSize(s.metadata.total)],
    ['Metadata Space Available', dockerHumanSize(s.metadata.available)],
    ['Thin Pool Minimum Free Space', dockerHumanSize(s.minFreeSpace)],
    ['Deferred Removal Enabled', String(s.deferredRemoveEnabled)],
    ['Deferred Deletion Enabled', String(s.deferredDeleteEnabled)],
    ['Deferred Deleted Device Count', String(s.deferredDeletedDeviceCount)],
  );
  return out;
}

// ------------------------------------------------------------------------------ arguments

type Problems = ValidationProblem[];

function idProblems(id: unknown, path: string, p: Problems, base: 'allowed' | 'refused'): void {
  const problem = hashProblem(id);
  if (problem !== undefined) p.push({ path, message: problem, value: id });
  else if (id === '' && base === 'refused') p.push({ path, message: "'' is the base device, not a layer", value: id });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** An optional options object: plain, of `known` keys only; `signal` an AbortSignal. */
function optionsProblems(v: unknown, path: string, known: readonly string[], p: Problems): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isPlainObject(v)) {
    p.push({ path, message: 'expected a plain options object', value: v });
    return {};
  }
  for (const k of Object.keys(v)) if (!known.includes(k)) p.push({ path: `${path}/${k}`, message: `unknown option (known: ${known.join(', ')})`, value: v[k] });
  const signal = v['signal'];
  if (signal !== undefined && !(signal instanceof AbortSignal)) p.push({ path: `${path}/signal`, message: 'expected an AbortSignal', value: signal });
  return v;
}

function labelProblems(v: unknown, path: string, p: Problems): void {
  if (v === undefined) return;
  if (typeof v !== 'string') p.push({ path, message: 'expected a string', value: v });
  else if (/["\0]/.test(v)) p.push({ path, message: 'a mount label cannot contain a double quote or NUL', value: v });
}

/** The size of a create: `size`, or Docker's `storageOpt` map (only `size`, any case). */
function createSize(o: Record<string, unknown>, p: Problems): bigint | number | string | undefined {
  let size = o['size'] as bigint | number | string | undefined;
  const storage = o['storageOpt'];
  if (storage !== undefined) {
    if (!isPlainObject(storage)) {
      p.push({ path: '/options/storageOpt', message: 'expected a plain object of strings', value: storage });
    } else {
      for (const [k, v] of Object.entries(storage)) {
        const at = `/options/storageOpt/${k}`;
        // Docker's parseStorageOpt: `size` only, parsed with units.RAMInBytes (binary units).
        if (k.toLowerCase() !== 'size') p.push({ path: at, message: 'unknown storage option: devicemapper knows only size', value: v });
        else if (typeof v !== 'string') p.push({ path: at, message: 'expected a size string such as 20G', value: v });
        else if (size !== undefined) p.push({ path: at, message: 'size is given twice (options.size and storageOpt.size)', value: v });
        else size = v;
      }
    }
  }
  if (size === undefined) return undefined;
  let bytes: bigint | string;
  if (typeof size === 'bigint') bytes = size;
  else if (typeof size === 'number') bytes = Number.isSafeInteger(size) ? BigInt(size) : 'not a safe integer; pass a bigint or a size string';
  else if (typeof size === 'string') bytes = parseSize(size);
  else bytes = 'must be bytes (bigint or safe integer) or a size string such as 20G';
  if (typeof bytes === 'string') p.push({ path: '/options/size', message: bytes, value: size });
  else if (bytes <= 0n || bytes % 512n !== 0n || bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    p.push({ path: '/options/size', message: 'must be a positive multiple of 512 bytes below 2^53', value: size });
  }
  return size;
}

function done(what: string, p: Problems): void {
  if (p.length > 0) throw new InvalidArgumentError(what, p);
}

function checkAbort(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) throw new OperationAbortedError(operation, { cause: signal.reason });
}

/**
 * For `doInit: false` (Docker's `NewDeviceSet(…, false, …)`): refuses a home whose DeviceSet is
 * not complete: the deviceset record, an initialized base record and, for a loopback pool, both
 * loop files (Docker: "loopback data file not found"). Reads only; changes nothing.
 * @throws DriverNotInitializedError listing everything missing.
 */
export function assertInitialized(home: string, options: readonly string[] | DeviceSetOptions | undefined): void {
  const o = resolveDeviceSetOptions(options ?? {});
  const missing: string[] = [];
  const exists = (rel: string): boolean => fs.existsSync(join(home, rel));
  if (!exists(join('metadata', DEVICESET_FILE))) missing.push(`metadata/${DEVICESET_FILE}`);
  if (!exists(join('metadata', BASE_FILE))) missing.push(`metadata/${BASE_FILE}`);
  else {
    let base: { initialized?: unknown; deleted?: unknown; state?: unknown } | undefined;
    try {
      base = JSON.parse(readFileNoFollow(join(home, 'metadata', BASE_FILE)).toString('utf8')) as typeof base;
    } catch {
      base = undefined;
    }
    if (base?.initialized !== true || base.deleted !== false || base.state !== 'ready') missing.push(`metadata/${BASE_FILE} (an initialized, ready base device)`);
  }
  if (o.thinPoolDevice === null && o.dataDevice === null) {
    if (!exists(join('devicemapper', 'data'))) missing.push('devicemapper/data');
    if (!exists(join('devicemapper', 'metadata'))) missing.push('devicemapper/metadata');
  }
  if (missing.length > 0) throw new DriverNotInitializedError(home, missing);
}

/** The options without dm.basesize (doInit false never touches the base, as Docker). */
function withoutBaseSize(options: readonly string[] | DeviceSetOptions | undefined): readonly string[] | DeviceSetOptions | undefined {
  if (options === undefined) return undefined;
  if (Array.isArray(options)) return (options as readonly string[]).filter((s) => !/^\s*dm\.basesize\s*=/i.test(s));
  const { baseSize: _ignored, ...rest } = options as DeviceSetOptions;
  return rest;
}

// --------------------------------------------------------------------------------- driver

/**
 * Docker's devicemapper graph driver over a {@link DeviceSet}. Create with {@link Driver.init};
 * end with {@link Driver.cleanup}.
 */
export class Driver {
  /** The DeviceSet's root (resolved): Docker's `home`. Mount points are `home/mnt/<id>`. */
  readonly home: string;
  readonly deviceSet: DeviceSet;
  readonly #ctr: RefCounter;
  readonly #isMounted: MountChecker;
  readonly #locker = new Locker();
  readonly #sys: Syscalls;
  readonly #log: (level: DeviceSetLogLevel, message: string) => void;
  /** Layers this process mounted through the DeviceSet (it then knows the mount; others do not). */
  readonly #mountedHere = new Set<string>();
  #closed = false;

  private constructor(deviceSet: DeviceSet, init: DriverInit) {
    this.deviceSet = deviceSet;
    this.home = deviceSet.root;
    this.#isMounted = init.isMounted ?? procMountChecker;
    this.#ctr = new RefCounter(this.#isMounted);
    this.#sys = init.syscalls ?? realSyscalls();
    this.#log = init.log ?? ((level, message) => (level === 'warn' || level === 'error' ? console.error(`devmapper ${level}: ${message}`) : undefined));
  }

  /**
   * Docker's `Init(home, options)`: `NewDeviceSet(home, doInit, options)` (here
   * {@link DeviceSet.init}, which runs initDevmapper and setupBaseImage), then the Driver.
   * With `doInit: false` the set must already be complete ({@link assertInitialized}) and
   * `dm.basesize` is not applied.
   * @throws InvalidArgumentError (before anything is touched), DriverNotInitializedError
   *   (doInit false), and everything DeviceSet.init throws.
   */
  static async init(home: string, init: DriverInit = {}): Promise<Driver> {
    const p: Problems = [];
    if (typeof home !== 'string' || !home.startsWith('/')) p.push({ path: '/home', message: 'must be an absolute path', value: home });
    if (!isPlainObject(init)) p.push({ path: '/init', message: 'expected a plain options object', value: init });
    else {
      if (init.doInit !== undefined && typeof init.doInit !== 'boolean') p.push({ path: '/init/doInit', message: 'expected a boolean', value: init.doInit });
      if (init.isMounted !== undefined && typeof init.isMounted !== 'function') p.push({ path: '/init/isMounted', message: 'expected a function (path) => boolean', value: init.isMounted });
    }
    done('Driver.init arguments', p);
    const { doInit = true, isMounted: _checker, ...dsInit } = init;
    let options = dsInit.options;
    if (!doInit) {
      resolveDeviceSetOptions(options ?? {}); // bad options are InvalidArgumentError, before the check
      if (!fs.existsSync(home)) throw new DriverNotInitializedError(home, ['.']);
      assertInitialized(fs.realpathSync(home), options);
      options = withoutBaseSize(options);
    }
    const deviceSet = await DeviceSet.init(home, options === undefined ? dsInit : { ...dsInit, options });
    return new Driver(deviceSet, init);
  }

  /** Docker's String(). */
  toString(): string {
    return 'devicemapper';
  }

  /** `home/mnt/<id>`: where {@link get} mounts the layer. */
  mountPoint(id: string): string {
    return join(this.home, 'mnt', id);
  }

  #checkOpen(): void {
    if (this.#closed) throw new DriverClosedError();
  }

  /**
   * Docker's Create → AddDevice: layer `id` as a thin snapshot of `parent` ('' = the base
   * device). `size` (or `storageOpt.size`) grows it above the parent's size; smaller is refused.
   * @throws InvalidArgumentError, and DeviceSet.addDevice's errors (UnknownDeviceError for the
   *   parent, DeviceAlreadyExistsError, DeviceSizeError, PoolFreeSpaceError, …).
   */
  async create(id: string, parent: string, options: CreateOptions = {}): Promise<void> {
    return this.#create('create', id, parent, options, ['size', 'storageOpt', 'signal']);
  }

  /** Docker's CreateReadWrite: a container's layer; the same as {@link create} for devicemapper. */
  async createReadWrite(id: string, parent: string, options: CreateReadWriteOptions = {}): Promise<void> {
    return this.#create('createReadWrite', id, parent, options, ['size', 'storageOpt', 'mountLabel', 'signal']);
  }

  async #create(verb: string, id: string, parent: string, options: CreateOptions, known: readonly string[]): Promise<void> {
    const p: Problems = [];
    idProblems(id, '/id', p, 'refused');
    idProblems(parent, '/parent', p, 'allowed');
    const o = optionsProblems(options, '/options', known, p);
    if (known.includes('mountLabel')) labelProblems(o['mountLabel'], '/options/mountLabel', p);
    const size = createSize(o, p);
    done(`Driver.${verb} arguments`, p);
    this.#checkOpen();
    const signal = o['signal'] as AbortSignal | undefined;
    checkAbort(signal, `Driver.${verb}`);
    await this.deviceSet.addDevice(id, parent, { ...(size !== undefined ? { size } : {}), ...(signal ? { signal } : {}) });
  }

  /**
   * Docker's Get: mounts layer `id` at `home/mnt/<id>` on its first reference (creating `mnt/`
   * and the mount point 0755, then `rootfs/` 0755 and an `id` file holding the id, 0600, inside
   * the layer when missing) and returns `home/mnt/<id>/rootfs`. Later calls only count.
   * @throws InvalidArgumentError, UnknownDeviceError, DeviceMarkedDeletedError, MountFailedError,
   *   UnsafePathError (`mnt/` or the mount point a link or not ours), OperationAbortedError.
   */
  async get(id: string, options: GetOptions = {}): Promise<string> {
    const p: Problems = [];
    idProblems(id, '/id', p, 'refused');
    const o = optionsProblems(options, '/options', ['mountLabel', 'signal'], p);
    labelProblems(o['mountLabel'], '/options/mountLabel', p);
    done('Driver.get arguments', p);
    this.#checkOpen();
    const signal = o['signal'] as AbortSignal | undefined;
    const label = o['mountLabel'] as string | undefined;
    checkAbort(signal, 'Driver.get');
    return this.#locker.run(id, async () => {
      this.#checkOpen();
      checkAbort(signal, 'Driver.get');
      if (!this.deviceSet.hasDevice(id)) throw new UnknownDeviceError(id);
      const mp = this.mountPoint(id);
      const rootfs = join(mp, 'rootfs');
      if (this.#ctr.increment(mp) > 1) return rootfs;
      try {
        ensureOwnedDir(join(this.home, 'mnt'), 0o755);
        ensureOwnedDir(mp, 0o755);
        await this.deviceSet.mountDevice(id, mp, { ...(label !== undefined && label !== '' ? { label } : {}), ...(signal ? { signal } : {}) });
        this.#mountedHere.add(id);
        try {
          fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
          try {
            // O_EXCL: an existing `id` (or a link planted there) is left alone, never followed.
            fs.writeFileSync(join(mp, 'id'), id, { mode: 0o600, flag: 'wx' });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          }
        } catch (err) {
          await this.#unmount(id, mp).catch((undoErr: unknown) => this.#log('warn', `unmounting ${id} after a failed get: ${String(undoErr)}`));
          throw err;
        }
      } catch (err) {
        this.#ctr.decrement(mp);
        throw err;
      }
      return rootfs;
    });
  }

  /**
   * Docker's Put: drops a reference; the last one unmounts (MNT_DETACH), deactivates the device
   * and removes the mount point (Docker's fix for mounts leaked into other mount namespaces:
   * rmdir of a mount point detaches those copies on Linux ≥ 3.18, fs/namei.c vfs_rmdir →
   * detach_mounts). A mount left by another process is unmounted the same way.
   * @throws InvalidArgumentError, UnknownDeviceError, LayerNotMountedError (no reference: nothing
   *   changed), umount2 errors.
   */
  async put(id: string): Promise<void> {
    const p: Problems = [];
    idProblems(id, '/id', p, 'refused');
    done('Driver.put arguments', p);
    this.#checkOpen();
    return this.#locker.run(id, async () => {
      this.#checkOpen();
      if (!this.deviceSet.hasDevice(id)) throw new UnknownDeviceError(id);
      const mp = this.mountPoint(id);
      if (this.#ctr.count(mp) === 0) throw new LayerNotMountedError(id, mp);
      if (this.#ctr.decrement(mp) > 0) return;
      await this.#unmount(id, mp);
    });
  }

  /** Unmounts `id` from `mp`, deactivates it and removes the mount point (an error there is only logged, as Docker). */
  async #unmount(id: string, mp: string): Promise<void> {
    if (this.#mountedHere.has(id)) {
      await this.deviceSet.unmountDevice(id, mp);
      this.#mountedHere.delete(id);
    } else {
      // Mounted by another process: this DeviceSet has no record of the mount, the kernel has.
      await this.#sys.umount2Async(mp, MNT_DETACH);
      await this.deviceSet.deactivateDevice(id);
    }
    this.#rmdirMountPoint(mp);
  }

  #rmdirMountPoint(mp: string): void {
    try {
      fs.rmdirSync(mp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.#log('debug', `mount point ${mp} stays: ${code ?? String(err)}`);
    }
  }

  /**
   * Docker's Remove: deletes layer `id` (a missing id is no error, as Docker) and removes its
   * mount point. The delete is Docker's `DeleteDevice(id, false)`: with deferred deletion on, a
   * busy device is marked deleted and deleted later.
   * @throws InvalidArgumentError, LayerInUseError (still referenced or mounted: nothing changed),
   *   DeviceSet.deleteDevice's errors.
   */
  async remove(id: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const p: Problems = [];
    idProblems(id, '/id', p, 'refused');
    const o = optionsProblems(options, '/options', ['signal'], p);
    done('Driver.remove arguments', p);
    this.#checkOpen();
    const signal = o['signal'] as AbortSignal | undefined;
    checkAbort(signal, 'Driver.remove');
    return this.#locker.run(id, async () => {
      this.#checkOpen();
      if (!this.deviceSet.hasDevice(id)) return;
      const mp = this.mountPoint(id);
      const refs = this.#ctr.count(mp);
      if (refs > 0) throw new LayerInUseError(id, refs, mp);
      await this.deviceSet.deleteDevice(id, { sync: false, ...(signal ? { signal } : {}) });
      this.#rmdirMountPoint(mp);
    });
  }

  /** Docker's Exists → HasDevice: true for every recorded id, deferred-deleted ones too ('' is the base). */
  exists(id: string): boolean {
    if (typeof id !== 'string') throw new InvalidArgumentError('Driver.exists arguments', [{ path: '/id', message: 'expected a string', value: id }]);
    this.#checkOpen();
    return this.deviceSet.hasDevice(id);
  }

  /**
   * How many references `id` has: this process's gets, or 1 for a mount another process left at
   * `home/mnt/<id>` (the mount table). Changes nothing.
   */
  references(id: string): number {
    const p: Problems = [];
    idProblems(id, '/id', p, 'refused');
    done('Driver.references arguments', p);
    return this.#ctr.count(this.mountPoint(id));
  }

  /** Docker's Status: `[key, value]` pairs as `docker info` prints them (see {@link statusPairs}). */
  async status(): Promise<DriverStatusPair[]> {
    this.#checkOpen();
    return statusPairs(await this.deviceSet.status());
  }

  /** Docker's GetMetadata: DeviceId, DeviceSize (bytes) and DeviceName (the dm name) of `id` ('' = base). */
  getMetadata(id: string): DriverMetadata {
    if (typeof id !== 'string') throw new InvalidArgumentError('Driver.getMetadata arguments', [{ path: '/id', message: 'expected a string', value: id }]);
    this.#checkOpen();
    const d = this.deviceSet.deviceInfo(id);
    return { DeviceId: String(d.deviceId), DeviceSize: String(d.size), DeviceName: d.dmName };
  }

  /**
   * Docker's Cleanup: unmounts every layer still mounted under `home/mnt` (this process's and
   * those other processes left, MNT_DETACH as Docker's RecursiveUnmount), removes their mount
   * points, then DeviceSet.shutdown (deactivates, removes the pool it owns, releases the lock).
   * Idempotent; every verb afterwards throws DriverClosedError.
   */
  async cleanup(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of this.deviceSet.list()) {
      const mp = this.mountPoint(id);
      if (this.#mountedHere.has(id)) continue; // DeviceSet.shutdown unmounts its own
      if (!this.#isMounted(mp)) continue;
      try {
        await this.#sys.umount2Async(mp, MNT_DETACH);
      } catch (err) {
        this.#log('warn', `unmounting ${mp}: ${String(err)}`);
      }
    }
    await this.deviceSet.shutdown();
    for (const id of this.deviceSet.list()) if (fs.existsSync(this.mountPoint(id))) this.#rmdirMountPoint(this.mountPoint(id));
    this.#mountedHere.clear();
    this.#ctr.clear();
  }
}
