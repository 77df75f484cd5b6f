// SPDX-License-Identifier: MIT
/**
 * Mounting a layer of a Docker devicemapper root read-only, without converting anything.
 *
 * # What is activated, and under which names
 *
 * Everything keeps Docker's kernel names (docker-root.ts): the pool is `<prefix>-pool` (or the
 * dm.thinpooldev pool), the layer `<prefix>-<hash>`. That is what makes a second pool over the
 * same metadata impossible: a dockerd started later finds the pool by that name and adopts it
 * (deviceset.go initDevmapper: thinPoolExists → loadThinPoolLoopBackInfo) instead of attaching the
 * files again, and a pool a crashed dockerd left live is adopted here the same way.
 *
 * - The pool, when it is not live, is created over loop devices attached to `devicemapper/data`
 *   and `devicemapper/metadata` (autoclear, no link followed) with Docker's table
 *   (`<data sectors> thin-pool <meta> <data> <block size from the superblock> 32768`) plus the
 *   `read_only` feature: dm-thin then opens the metadata read-only and never commits
 *   (drivers/md/dm-thin.c pool_ctr(): "read_only" → PM_READ_ONLY; metadata opened without
 *   write mode). If loop devices are already bound to those files while no pool of that name
 *   exists, something else holds them: refused ({@link DockerPoolConflictError}).
 * - The layer is activated with a read-only table (DM_READONLY_FLAG), so the filesystem cannot
 *   replay its journal: an ext4 that needs recovery refuses a read-only device
 *   (fs/ext4/super.c ext4_load_journal(): "write access unavailable, cannot proceed") instead of
 *   writing. A layer device already live (a crashed dockerd's) is used as it is, and then mounted
 *   with `noload` (ext4) / `norecovery` (xfs), so that no journal is replayed onto it either.
 * - Ownership is kept in the kernel, not in files: what this module creates carries a dm uuid
 *   starting `devmapper-docker-ro-` (Docker sets none). Unmount removes the layer device only if
 *   it has that uuid and is mounted nowhere else, and the pool only if it has that uuid and no
 *   opener; the loop devices then detach themselves (autoclear). A failed mount undoes the same
 *   way, in reverse order, before it rejects.
 */
import * as fs from 'node:fs';
import { isAbsolute } from 'node:path';
import { type DeviceInfo, type DeviceListEntry, type DmControl, mapperPath } from '../dm/index.js';
import { InvalidArgumentError, errnoCode } from '../errors.js';
import { MS_RDONLY, realSyscalls, type Syscalls } from '../ioctl/index.js';
import type { LoopControl } from '../loop/index.js';
import { ThinDevice, ThinPool, type BlockDevices } from '../thin/index.js';
import { probeDeviceFilesystem } from '../deviceset/index.js';
import { DockerLayerNotFoundError, DockerLayerNotMountedError, DockerPoolConflictError } from './errors.js';
import { openTransactionOf, readDockerRoot, type DockerDevice, type DockerOpenTransaction, type DockerRoot } from './docker-root.js';

/** dm uuid prefix of every device this module creates (Docker's devices carry no uuid). */
export const DOCKER_RO_UUID_PREFIX = 'devmapper-docker-ro-';
/** deviceset.go createPool(): the low-water mark Docker hard-codes, in data blocks. */
export const DOCKER_LOW_WATER_MARK = 32768;

/** One line of the kernel's mount table (proc(5) mountinfo: field 3 and the mount point). */
export interface DockerMountEntry {
  readonly major: number;
  readonly minor: number;
  readonly path: string;
}

/** What the Docker-root tools talk to the kernel through. */
export interface DockerKernelDeps {
  readonly dm: Pick<DmControl, 'deviceCreate' | 'tableLoad' | 'deviceResume' | 'deviceSuspend' | 'deviceRemove' | 'deviceInfo' | 'tableStatus' | 'targetMessage' | 'listDevices'>;
  readonly loops: Pick<LoopControl, 'attach' | 'findByBackingFile'>;
  /** mount(2)/umount2(2). Default: the real ones. */
  readonly syscalls?: Pick<Syscalls, 'mountAsync' | 'umount2Async'>;
  /** Block-device primitives for the pool (sizes). Default: the real ones. */
  readonly blockDevices?: BlockDevices;
  /** Filesystem probe by magic number. Default: reads the device's first 4 KiB. */
  readonly probe?: (device: string) => Promise<'ext4' | 'xfs' | null>;
  /** The kernel's mount table. Default: /proc/self/mountinfo. */
  readonly mounts?: () => readonly DockerMountEntry[];
  /** Where the dm nodes live. Default '/dev'. */
  readonly devDir?: string;
}

/** Options of {@link mountDockerLayer} and friends. */
export interface DockerLayerOptions {
  /** dm.thinpooldev of the root, when it was made with an external pool. */
  readonly thinPoolDev?: string;
  /** Stops between steps; what was activated is released before the rejection. */
  readonly signal?: AbortSignal;
  /** Extra mount data (e.g. `noload`), appended to this module's own. */
  readonly mountOptions?: string;
}

/** What {@link mountDockerLayer} did. */
export interface DockerMountResult {
  readonly root: string;
  readonly id: string;
  readonly deviceId: number;
  readonly dmName: string;
  readonly device: string;
  readonly target: string;
  readonly filesystem: 'ext4' | 'xfs';
  /** The mount data string (flags: MS_RDONLY). */
  readonly mountData: string;
  readonly poolName: string;
  /** What this call activated (and unmount releases): the pool, the layer device. */
  readonly activated: { readonly pool: boolean; readonly device: boolean };
  readonly openTransaction: DockerOpenTransaction | undefined;
}

/** What {@link unmountDockerLayer} did. */
export interface DockerUnmountResult {
  readonly target: string;
  readonly removedDevice: boolean;
  readonly removedPool: boolean;
}

/** The kernel state of one device of a Docker root, for `docker ls`. */
export interface DockerDeviceState extends DockerDevice {
  /** The layer's dm device is live. */
  readonly active: boolean;
  /** Where it is mounted (per the kernel's mount table). */
  readonly mountedAt: readonly string[];
  /** The device of Docker's open transaction (Docker deletes it at its next start). */
  readonly uncommitted: boolean;
}

/** `docker ls`: the root, its devices and what of it is live. */
export interface DockerRootReport {
  readonly root: string;
  readonly prefix: string;
  readonly poolName: string;
  readonly poolLive: boolean;
  /** The pool's transaction id: from the live pool, else the metadata superblock, else null. */
  readonly poolTransactionId: number | null;
  readonly dataFile: string | null;
  readonly metadataFile: string | null;
  readonly baseDeviceUuid: string | null;
  readonly baseDeviceFilesystem: string | null;
  readonly nextDeviceId: number | null;
  readonly openTransaction: DockerOpenTransaction | undefined;
  readonly devices: readonly DockerDeviceState[];
}

const isNotFound = (err: unknown): boolean => errnoCode(err) === 'EDEVICENOTFOUND' || errnoCode(err) === 'ENXIO';

async function infoOrUndefined(dm: DockerKernelDeps['dm'], name: string): Promise<DeviceInfo | undefined> {
  try {
    return await dm.deviceInfo(name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** /proc/self/mountinfo: field 3 MAJ:MIN, field 5 the mount point (octal escapes decoded). */
export function readMountInfo(): DockerMountEntry[] {
  const out: DockerMountEntry[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const m = /^(\d+):(\d+)$/.exec(f[2] ?? '');
    if (!m || f[4] === undefined) continue;
    out.push({ major: Number(m[1]), minor: Number(m[2]), path: f[4].replace(/\\([0-7]{3})/g, (_s, o: string) => String.fromCharCode(parseInt(o, 8))) });
  }
  return out;
}

const uuidOf = (root: DockerRoot, what: string): string => `${DOCKER_RO_UUID_PREFIX}${root.prefix}-${what}`;

/** The record of `id` (`base` or a hash), or the typed refusal. */
function layerOf(root: DockerRoot, id: string, open: DockerOpenTransaction | undefined): DockerDevice {
  const d = root.devices.find((x) => x.id === id);
  if (d === undefined) throw new DockerLayerNotFoundError(root.root, id, 'unknown');
  if (d.deleted) throw new DockerLayerNotFoundError(root.root, id, 'deleted');
  if (d.hash === '' && !d.initialized) throw new DockerLayerNotFoundError(root.root, id, 'uninitialized');
  if (open !== undefined && open.deviceHash === d.hash) throw new DockerLayerNotFoundError(root.root, id, 'uncommitted');
  return d;
}

/**
 * The live pool of `root`, checked to run over this root's loop files (never another pool that
 * happens to have the name); undefined when no pool of that name is live.
 */
async function livePool(root: DockerRoot, deps: DockerKernelDeps): Promise<ThinPool | undefined> {
  const info = await infoOrUndefined(deps.dm, root.poolName);
  if (info === undefined) return undefined;
  let pool: ThinPool;
  try {
    pool = await ThinPool.open(deps.dm, root.poolName, deps.blockDevices ? { blockDevices: deps.blockDevices } : {});
  } catch (err) {
    throw new DockerPoolConflictError(root.root, `the live device ${root.poolName} is not a thin pool`, { cause: err });
  }
  if (root.metadataFile !== null && root.dataFile !== null) {
    for (const [file, dev] of [
      [root.metadataFile, pool.params.metadataDev],
      [root.dataFile, pool.params.dataDev],
    ] as const) {
      const bound = (await deps.loops.findByBackingFile(file)).map((l) => `${l.major}:${l.minor}`);
      if (!bound.includes(dev)) {
        throw new DockerPoolConflictError(root.root, `the live pool ${root.poolName} runs over ${dev}, which is not a loop device of ${file} (${bound.join(', ') || 'none bound'})`);
      }
    }
  }
  return pool;
}

/** The pool's transaction id and where it came from (live status, else the superblock). */
async function poolTransaction(root: DockerRoot, pool: ThinPool | undefined): Promise<{ id: number; from: 'pool-status' | 'superblock' } | undefined> {
  if (pool !== undefined) {
    const s = await pool.status({ noflush: true });
    if (s.kind === 'working') return { id: Number(s.transactionId), from: 'pool-status' };
    return undefined;
  }
  if (root.superblock?.kind === 'thin') return { id: root.superblock.transactionId, from: 'superblock' };
  return undefined;
}

/**
 * Reads the root and what of it is live (`devmapper docker ls`). Changes nothing.
 * @throws DockerRootInvalidError, DockerPoolConflictError
 */
export async function inspectDockerRoot(rootPath: string, deps: DockerKernelDeps, options: Pick<DockerLayerOptions, 'thinPoolDev'> = {}): Promise<DockerRootReport> {
  const root = readDockerRoot(rootPath, options.thinPoolDev === undefined ? {} : { thinPoolDev: options.thinPoolDev });
  const pool = await livePool(root, deps);
  const tx = await poolTransaction(root, pool);
  const open = tx === undefined ? undefined : openTransactionOf(root, tx.id, tx.from);
  const live = new Map<string, DeviceListEntry>();
  for (const d of await deps.dm.listDevices({ namePrefix: `${root.prefix}-` })) live.set(d.name, d);
  const mounts = (deps.mounts ?? readMountInfo)();
  return {
    root: root.root,
    prefix: root.prefix,
    poolName: root.poolName,
    poolLive: pool !== undefined,
    poolTransactionId: tx?.id ?? null,
    dataFile: root.dataFile,
    metadataFile: root.metadataFile,
    baseDeviceUuid: root.deviceSet?.baseDeviceUuid ?? null,
    baseDeviceFilesystem: root.deviceSet?.baseDeviceFilesystem ?? null,
    nextDeviceId: root.deviceSet?.nextDeviceId ?? null,
    openTransaction: open,
    devices: root.devices.map((d) => {
      const l = live.get(d.dmName);
      return {
        ...d,
        active: l !== undefined,
        mountedAt: l === undefined ? [] : mounts.filter((m) => m.major === l.dev.major && m.minor === l.dev.minor).map((m) => m.path),
        uncommitted: open !== undefined && open.deviceHash === d.hash,
      };
    }),
  };
}

/** The mount point: an absolute path to a real directory (lstat: a link is refused). */
function checkTarget(target: string): void {
  const problems = [];
  if (typeof target !== 'string' || !isAbsolute(target)) problems.push({ path: '/target', message: 'must be an absolute path', value: target });
  else {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(target);
    } catch {
      st = undefined;
    }
    if (st === undefined) problems.push({ path: '/target', message: 'does not exist', value: target });
    else if (st.isSymbolicLink()) problems.push({ path: '/target', message: 'is a symbolic link (links are not followed)', value: target });
    else if (!st.isDirectory()) problems.push({ path: '/target', message: 'is not a directory', value: target });
  }
  if (problems.length > 0) throw new InvalidArgumentError('mount point', problems);
}

/**
 * Mounts layer `id` (`base` or a device hash) of the Docker root read-only at `target`, as
 * described in the module comment. On any failure (abort included) it releases what it
 * activated, in reverse order, and rejects with the first error.
 * @throws DockerRootInvalidError, DockerLayerNotFoundError, DockerPoolConflictError,
 *   InvalidArgumentError (target), MountFailed-like kernel errors (IoctlError), the signal's reason.
 */
export async function mountDockerLayer(rootPath: string, id: string, target: string, deps: DockerKernelDeps, options: DockerLayerOptions = {}): Promise<DockerMountResult> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const root = readDockerRoot(rootPath, options.thinPoolDev === undefined ? {} : { thinPoolDev: options.thinPoolDev });
  checkTarget(target);
  const sys = deps.syscalls ?? realSyscalls();
  const devDir = deps.devDir ?? '/dev';
  const undo: (() => Promise<void>)[] = [];
  let createdPool = false;
  let createdDevice = false;
  try {
    let pool = await livePool(root, deps);
    // Before anything is activated: the layer must be usable (the open transaction needs the
    // pool's id: the live pool's, or the superblock's when it is not live).
    const tx = await poolTransaction(root, pool);
    const open = tx === undefined ? undefined : openTransactionOf(root, tx.id, tx.from);
    const layer = layerOf(root, id, open);
    signal?.throwIfAborted();

    if (pool === undefined) {
      if (root.externalPool || root.dataFile === null || root.metadataFile === null) {
        throw new DockerPoolConflictError(root.root, `the external pool ${root.poolName} is not live (Docker never creates it; activate it first)`);
      }
      for (const file of [root.dataFile, root.metadataFile]) {
        const bound = await deps.loops.findByBackingFile(file);
        if (bound.length > 0) {
          throw new DockerPoolConflictError(
            root.root,
            `${file} is already bound to ${bound.map((l) => l.path).join(', ')} while no pool ${root.poolName} is live: something else uses the files`,
          );
        }
      }
      if (root.superblock?.kind !== 'thin') {
        throw new DockerPoolConflictError(root.root, `${root.metadataFile} holds no thin-pool metadata yet: the pool was never created`);
      }
      const data = await deps.loops.attach(root.dataFile, { autoclear: true, noFollow: true });
      undo.push(async () => data.close());
      const meta = await deps.loops.attach(root.metadataFile, { autoclear: true, noFollow: true });
      undo.push(async () => meta.close());
      signal?.throwIfAborted();
      // ThinPool.create ('reuse') reads the superblock again through the loop device: a thin
      // superblock with this block size, or it refuses.
      pool = await ThinPool.create(deps.dm, {
        name: root.poolName,
        uuid: uuidOf(root, 'pool'),
        metadataDev: meta.devNumber,
        dataDev: data.devNumber,
        dataBlockSize: root.superblock.dataBlockSize,
        lowWaterMark: DOCKER_LOW_WATER_MARK,
        features: { skipBlockZeroing: true, readOnly: true },
        metadata: 'reuse',
        ...(deps.blockDevices ? { blockDevices: deps.blockDevices } : {}),
      });
      createdPool = true;
      const created = pool;
      undo.push(async () => {
        await deps.dm.deviceRemove(created.name);
      });
      // The pool table holds both loop devices now: autoclear detaches them when it goes.
      data.close();
      meta.close();
      signal?.throwIfAborted();
    }

    const device = mapperPath(devDir, layer.dmName);
    const existing = await infoOrUndefined(deps.dm, layer.dmName);
    let recovery = '';
    if (existing !== undefined) {
      const thin = await ThinDevice.open(pool, layer.dmName);
      if (thin.id !== layer.deviceId) {
        throw new DockerPoolConflictError(root.root, `the live device ${layer.dmName} maps thin id ${thin.id}, but metadata/${layer.id} says ${layer.deviceId}`);
      }
      if (!existing.readOnly) recovery = 'noload';
    } else {
      await ThinDevice.of(pool, layer.deviceId).activate(layer.dmName, BigInt(layer.size) / 512n, { readOnly: true, uuid: uuidOf(root, String(layer.deviceId)) });
      createdDevice = true;
      undo.push(async () => {
        await deps.dm.deviceRemove(layer.dmName);
      });
    }
    signal?.throwIfAborted();

    const filesystem = await (deps.probe ?? (async (d: string) => probeDeviceFilesystem(d)))(device);
    if (filesystem === null) {
      throw new InvalidArgumentError('Docker layer', [{ path: '/id', message: `${device} holds neither ext4 nor xfs (by magic number)`, value: id }]);
    }
    const words: string[] = [];
    if (filesystem === 'xfs') words.push('nouuid'); // deviceset.go MountDevice: every snapshot shares the base's xfs uuid
    if (recovery !== '') words.push(filesystem === 'xfs' ? 'norecovery' : 'noload');
    if (options.mountOptions) words.push(...options.mountOptions.split(',').filter((w) => w !== ''));
    const mountData = words.join(',');
    signal?.throwIfAborted();
    await sys.mountAsync(device, target, filesystem, MS_RDONLY, mountData === '' ? null : mountData);
    return {
      root: root.root,
      id: layer.id,
      deviceId: layer.deviceId,
      dmName: layer.dmName,
      device,
      target,
      filesystem,
      mountData,
      poolName: root.poolName,
      activated: { pool: createdPool, device: createdDevice },
      openTransaction: open,
    };
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // keep the first error; a survivor shows in `dmsetup ls` / `docker ls`
      }
    }
    throw err;
  }
}

/**
 * Unmounts layer `id` from `target` and releases what {@link mountDockerLayer} activated (by the
 * dm uuid it set): the layer device unless it is mounted elsewhere, then the pool unless anything
 * still holds it. Devices Docker activated are left alone.
 * @throws DockerLayerNotMountedError when the layer is not mounted at `target`.
 */
export async function unmountDockerLayer(rootPath: string, id: string, target: string, deps: DockerKernelDeps, options: Pick<DockerLayerOptions, 'thinPoolDev' | 'signal'> = {}): Promise<DockerUnmountResult> {
  options.signal?.throwIfAborted();
  const root = readDockerRoot(rootPath, options.thinPoolDev === undefined ? {} : { thinPoolDev: options.thinPoolDev });
  const layer = root.devices.find((d) => d.id === id);
  if (layer === undefined) throw new DockerLayerNotFoundError(root.root, id, 'unknown');
  const info = await infoOrUndefined(deps.dm, layer.dmName);
  const mounts = deps.mounts ?? readMountInfo;
  const at = (dev: DeviceInfo): DockerMountEntry[] => mounts().filter((m) => m.major === dev.dev.major && m.minor === dev.dev.minor);
  if (info === undefined || !at(info).some((m) => m.path === target)) throw new DockerLayerNotMountedError(id, target);
  await (deps.syscalls ?? realSyscalls()).umount2Async(target, 0);
  let removedDevice = false;
  let removedPool = false;
  if (info.uuid === uuidOf(root, String(layer.deviceId)) && at(info).length === 0) {
    await deps.dm.deviceRemove(layer.dmName);
    removedDevice = true;
  }
  const pool = await infoOrUndefined(deps.dm, root.poolName);
  if (pool !== undefined && pool.uuid === uuidOf(root, 'pool') && pool.openCount === 0) {
    await deps.dm.deviceRemove(root.poolName);
    removedPool = true;
  }
  return { target, removedDevice, removedPool };
}
