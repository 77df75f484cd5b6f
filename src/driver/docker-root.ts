// SPDX-License-Identifier: MIT
/**
 * Reading a root written by Docker's devicemapper graph driver (moby v20.10
 * daemon/graphdriver/devmapper/deviceset.go), read-only: nothing here writes, creates, renames or
 * deletes anything, and no symbolic link is followed below the root.
 *
 * # Layout (`/var/lib/docker/devicemapper`, Docker's `home` = the DeviceSet root)
 *
 * - `metadata/<hash>`: one JSON record per device, `{"device_id":N,"size":N,"transaction_id":N,
 *   "initialized":B,"deleted":B}` (deviceset.go `devInfo`; the hash is the file name, `base` is
 *   the base device, hash ""). Skipped as Docker skips them (deviceFileWalkFunction): names
 *   starting with `.` (its `.tmp` files), `*.migrated`, `deviceset-metadata`, `transaction-metadata`.
 * - `metadata/deviceset-metadata`: `{"next_device_id":N,"BaseDeviceUUID":"…","BaseDeviceFilesystem":"…"}`.
 * - `metadata/transaction-metadata`: `{"open_transaction_id":N,"device_hash":"…","device_id":N}`.
 * - `devicemapper/data`, `devicemapper/metadata`: the loop-lvm files, or neither with
 *   `dm.thinpooldev` (then the pool is external and must be live).
 * - kernel names: `docker-<major>:<minor>-<inode>` of stat(root) (deviceset.go initDevmapper,
 *   with its own major()/minor()), `<prefix>-pool`, `<prefix>-base`, `<prefix>-<hash>`.
 *
 * Every record is validated against Docker's schema (TypeBox); every problem is collected and
 * thrown together as a {@link DockerRootInvalidError}.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { errnoCode, type ValidationProblem } from '../errors.js';
import { dockerNamePrefix, openNoFollow } from '../deviceset/index.js';
import { DM_NAME_MAX_BYTES } from '../dm/index.js';
import { THIN_SUPERBLOCK_MAGIC, classifyMetadataHead } from '../thin/index.js';
import { DockerRootInvalidError } from './errors.js';

/** Thin ids are 24 bits (drivers/md/dm-thin-metadata.h THIN_MAX_CONCURRENT_LOCKS aside: MAX_DEV_ID). */
export const DOCKER_MAX_DEVICE_ID = 0xffffff;
/** Docker's record of the base device. */
export const DOCKER_BASE_FILE = 'base';
export const DOCKER_DEVICESET_FILE = 'deviceset-metadata';
export const DOCKER_TRANSACTION_FILE = 'transaction-metadata';
/** Records larger than this are refused unread (Docker's are ~100 bytes). */
const MAX_RECORD_BYTES = 64 * 1024;
/** struct thin_disk_superblock (drivers/md/dm-thin-metadata.c): __le64 trans_id at byte 48. */
const SB_TRANS_ID_OFFSET = 48;

const SafeU64 = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const ThinId = Type.Integer({ minimum: 0, maximum: DOCKER_MAX_DEVICE_ID });

/** deviceset.go `devInfo` as json.Marshal writes it. Unknown fields are allowed (Go ignores them). */
export const DockerDeviceJson = Type.Object({
  device_id: ThinId,
  size: SafeU64,
  transaction_id: SafeU64,
  initialized: Type.Boolean(),
  deleted: Type.Boolean(),
});
/** deviceset.go `deviceSetMetaData`. */
export const DockerDeviceSetJson = Type.Object({
  next_device_id: ThinId,
  BaseDeviceUUID: Type.String(),
  BaseDeviceFilesystem: Type.Union([Type.Literal(''), Type.Literal('ext4'), Type.Literal('xfs')]),
});
/** deviceset.go `transaction`. */
export const DockerTransactionJson = Type.Object({
  open_transaction_id: SafeU64,
  device_hash: Type.String(),
  device_id: ThinId,
});

const checkDevice = TypeCompiler.Compile(DockerDeviceJson);
const checkDeviceSet = TypeCompiler.Compile(DockerDeviceSetJson);
const checkTransaction = TypeCompiler.Compile(DockerTransactionJson);

/** One device record of a Docker root. */
export interface DockerDevice {
  /** Docker's hash: the file name; '' for the base device (file `base`). */
  readonly hash: string;
  /** The id as the CLI takes it: the hash, or `base`. */
  readonly id: string;
  readonly deviceId: number;
  /** Virtual size in bytes. */
  readonly size: number;
  readonly transactionId: number;
  readonly initialized: boolean;
  /** Marked for deferred deletion. */
  readonly deleted: boolean;
  /** Docker's kernel name of the device: `<prefix>-<hash>` or `<prefix>-base`. */
  readonly dmName: string;
}

/** deviceset-metadata. */
export interface DockerDeviceSetMeta {
  readonly nextDeviceId: number;
  readonly baseDeviceUuid: string;
  readonly baseDeviceFilesystem: '' | 'ext4' | 'xfs';
}

/** transaction-metadata. */
export interface DockerTransaction {
  readonly openTransactionId: number;
  readonly deviceHash: string;
  readonly deviceId: number;
}

/** What the metadata file's superblock says (loop-lvm roots; read from the file, not the kernel). */
export type DockerPoolSuperblock =
  | { readonly kind: 'blank' }
  | { readonly kind: 'thin'; readonly dataBlockSize: number; readonly transactionId: number };

/** A Docker root as read from disk. */
export interface DockerRoot {
  /** The root's real path (the given path resolved once, as Docker resolves its daemon root). */
  readonly root: string;
  /** `docker-<major>:<minor>-<inode>`. */
  readonly prefix: string;
  /** `<prefix>-pool`, or the external pool's name when one was given (dm.thinpooldev). */
  readonly poolName: string;
  readonly externalPool: boolean;
  /** `devicemapper/data` and `devicemapper/metadata`, or null when the root has no loop files. */
  readonly dataFile: string | null;
  readonly metadataFile: string | null;
  /** The metadata file's superblock (null without loop files). */
  readonly superblock: DockerPoolSuperblock | null;
  readonly deviceSet: DockerDeviceSetMeta | null;
  readonly transaction: DockerTransaction | null;
  /** Every record, base first, then by hash. */
  readonly devices: readonly DockerDevice[];
  /** Files of metadata/ skipped as Docker skips them. */
  readonly skipped: readonly string[];
}

/** Options of {@link readDockerRoot}. */
export interface ReadDockerRootOptions {
  /** dm.thinpooldev: the external pool's dm name (a `/dev/mapper/` prefix is stripped, as Docker does). */
  readonly thinPoolDev?: string;
}

/**
 * deviceset.go major()/minor(): Docker's own split of st_dev, which is what its names carry
 * (`(dev >> 8) & 0xfff` and `(dev & 0xff) | ((dev >> 12) & 0xfff00)`).
 */
export function dockerPrefixFor(st: { readonly dev: bigint; readonly ino: bigint }): string {
  return dockerNamePrefix(st); // src/deviceset/docker-names.ts: an imported set derives it the same way
}

/** deviceset.go getDeviceName(): `<prefix>-base` for hash '', else `<prefix>-<hash>`. */
export function dockerDmName(prefix: string, hash: string): string {
  return `${prefix}-${hash === '' ? 'base' : hash}`;
}

/** Reads a regular file without following a link; null when it does not exist. */
function readNoFollow(path: string, problems: ValidationProblem[]): string | null {
  let fd: number;
  try {
    fd = openNoFollow(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK, undefined, 'file');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    problems.push({ path, message: err instanceof Error ? err.message : String(err) });
    return null;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size > MAX_RECORD_BYTES) {
      problems.push({ path, message: `is ${size} bytes; a Docker record is at most ${MAX_RECORD_BYTES}` });
      return null;
    }
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** JSON.parse + schema check; every schema error becomes a problem. */
function parseRecord<T>(path: string, text: string, check: { Check(v: unknown): boolean; Errors(v: unknown): Iterable<{ path: string; message: string; value: unknown }> }, problems: ValidationProblem[]): T | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    problems.push({ path, message: `is not JSON: ${err instanceof Error ? err.message : String(err)}` });
    return null;
  }
  if (check.Check(value)) return value as T;
  for (const e of check.Errors(value)) problems.push({ path: `${path}#${e.path}`, message: e.message, value: e.value });
  return null;
}

/**
 * What sits at `path` (lstat: never through a link): `'ok'` when it is of the wanted kind,
 * `'absent'`, or `'bad'` with the problem recorded (a link, another kind, an lstat error).
 */
function entryState(path: string, want: 'directory' | 'regular file', problems: ValidationProblem[]): 'ok' | 'absent' | 'bad' {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'absent';
    problems.push({ path, message: err instanceof Error ? err.message : String(err) });
    return 'bad';
  }
  if (st.isSymbolicLink()) {
    problems.push({ path, message: 'is a symbolic link (links are not followed)' });
    return 'bad';
  }
  if (want === 'directory' ? !st.isDirectory() : !st.isFile()) {
    problems.push({ path, message: `is not a ${want}` });
    return 'bad';
  }
  return 'ok';
}

/** A directory of the root: present, absent, or a problem recorded. */
function dirState(path: string, problems: ValidationProblem[]): 'dir' | 'absent' | 'bad' {
  const s = entryState(path, 'directory', problems);
  return s === 'ok' ? 'dir' : s;
}

/** The loop file's state: present (regular), absent, or a problem recorded. */
function fileState(path: string, problems: ValidationProblem[]): 'file' | 'absent' | 'bad' {
  const s = entryState(path, 'regular file', problems);
  return s === 'ok' ? 'file' : s;
}

/** The first 4 KiB of the metadata file, classified; the transaction id of a thin superblock. */
function readSuperblock(path: string, problems: ValidationProblem[]): DockerPoolSuperblock | null {
  let fd: number;
  try {
    fd = openNoFollow(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK, undefined, 'file');
  } catch (err) {
    problems.push({ path, message: err instanceof Error ? err.message : String(err) });
    return null;
  }
  try {
    const head = Buffer.alloc(4096);
    fs.readSync(fd, head, 0, head.length, 0); // a short file leaves the rest zero
    const h = classifyMetadataHead(head);
    if (h.kind === 'blank') return { kind: 'blank' };
    if (h.kind === 'thin') {
      const txid = head.readBigUInt64LE(SB_TRANS_ID_OFFSET);
      if (txid > BigInt(Number.MAX_SAFE_INTEGER)) {
        problems.push({ path, message: `thin superblock transaction id ${txid} is beyond 2^53` });
        return null;
      }
      return { kind: 'thin', dataBlockSize: h.dataBlockSize, transactionId: Number(txid) };
    }
    problems.push({ path, message: `holds no thin-pool superblock (magic ${THIN_SUPERBLOCK_MAGIC} at byte 32) and is not blank` });
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads and validates a Docker devicemapper root (read-only; see the module comment).
 * @throws DockerRootInvalidError listing every problem found.
 */
export function readDockerRoot(rootPath: string, options: ReadDockerRootOptions = {}): DockerRoot {
  const problems: ValidationProblem[] = [];
  let root: string;
  try {
    root = fs.realpathSync.native(rootPath);
  } catch (err) {
    throw new DockerRootInvalidError(rootPath, [{ path: rootPath, message: err instanceof Error ? err.message : String(err) }], { cause: err });
  }
  const st = fs.statSync(root, { bigint: true });
  if (!st.isDirectory()) throw new DockerRootInvalidError(rootPath, [{ path: root, message: 'is not a directory' }]);
  const prefix = dockerPrefixFor(st);
  const external = options.thinPoolDev !== undefined && options.thinPoolDev !== '';
  const poolName = external ? options.thinPoolDev!.replace(/^\/dev\/mapper\//, '') : `${prefix}-pool`;
  if (external && (poolName === '' || poolName.includes('/') || Buffer.byteLength(poolName) > DM_NAME_MAX_BYTES)) {
    problems.push({ path: 'dm.thinpooldev', message: 'is not a dm device name', value: options.thinPoolDev });
  }

  // Loop files: both or neither (dm.thinpooldev / dm.datadev roots have none).
  const loopDir = join(root, 'devicemapper');
  let dataFile: string | null = null;
  let metadataFile: string | null = null;
  let superblock: DockerPoolSuperblock | null = null;
  if (dirState(loopDir, problems) === 'dir') {
    const d = fileState(join(loopDir, 'data'), problems);
    const m = fileState(join(loopDir, 'metadata'), problems);
    if (d === 'file' && m === 'file') {
      dataFile = join(loopDir, 'data');
      metadataFile = join(loopDir, 'metadata');
      superblock = readSuperblock(metadataFile, problems);
    } else if (d === 'file' || m === 'file') {
      problems.push({ path: loopDir, message: `has ${d === 'file' ? 'data' : 'metadata'} but no ${d === 'file' ? 'metadata' : 'data'} file` });
    }
    if (fileState(join(loopDir, 'json'), []) === 'file') {
      problems.push({ path: join(loopDir, 'json'), message: "is Docker's pre-2014 metadata file, not migrated yet (start dockerd once to migrate it)" });
    }
  }
  if (!external && dataFile === null && !problems.some((p) => p.path.startsWith(loopDir))) {
    problems.push({ path: loopDir, message: 'has no data and metadata loop files: for a root made with dm.thinpooldev, name the pool' });
  }
  if (external && dataFile !== null) {
    problems.push({ path: loopDir, message: `has loop files, but an external pool (${poolName}) was named` });
  }

  const metaDir = join(root, 'metadata');
  const devices: DockerDevice[] = [];
  const skipped: string[] = [];
  let deviceSet: DockerDeviceSetMeta | null = null;
  let transaction: DockerTransaction | null = null;
  const state = dirState(metaDir, problems);
  if (state === 'absent') problems.push({ path: metaDir, message: 'does not exist' });
  if (state === 'dir') {
    for (const e of fs.readdirSync(metaDir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(metaDir, e.name);
      // deviceFileWalkFunction(): the names Docker does not load.
      if (e.name.startsWith('.') || e.name.endsWith('.migrated')) {
        skipped.push(e.name);
        continue;
      }
      if (e.isDirectory()) {
        problems.push({ path, message: 'is a directory; metadata/ holds only record files' });
        continue;
      }
      const text = readNoFollow(path, problems);
      if (text === null) continue;
      if (e.name === DOCKER_DEVICESET_FILE) {
        const v = parseRecord<{ next_device_id: number; BaseDeviceUUID: string; BaseDeviceFilesystem: '' | 'ext4' | 'xfs' }>(path, text, checkDeviceSet, problems);
        if (v) deviceSet = { nextDeviceId: v.next_device_id, baseDeviceUuid: v.BaseDeviceUUID, baseDeviceFilesystem: v.BaseDeviceFilesystem };
        continue;
      }
      if (e.name === DOCKER_TRANSACTION_FILE) {
        const v = parseRecord<{ open_transaction_id: number; device_hash: string; device_id: number }>(path, text, checkTransaction, problems);
        if (v) transaction = { openTransactionId: v.open_transaction_id, deviceHash: v.device_hash, deviceId: v.device_id };
        continue;
      }
      const hash = e.name === DOCKER_BASE_FILE ? '' : e.name;
      const dmName = dockerDmName(prefix, hash);
      if (Buffer.byteLength(dmName) > DM_NAME_MAX_BYTES) {
        problems.push({ path, message: `its kernel name ${dmName} is longer than ${DM_NAME_MAX_BYTES} bytes` });
        continue;
      }
      const v = parseRecord<{ device_id: number; size: number; transaction_id: number; initialized: boolean; deleted: boolean }>(path, text, checkDevice, problems);
      if (!v) continue;
      devices.push({
        hash,
        id: hash === '' ? DOCKER_BASE_FILE : hash,
        deviceId: v.device_id,
        size: v.size,
        transactionId: v.transaction_id,
        initialized: v.initialized,
        deleted: v.deleted,
        dmName,
      });
    }
  }
  devices.sort((a, b) => (a.hash === '' ? -1 : b.hash === '' ? 1 : a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  const byId = new Map<number, string>();
  for (const d of devices) {
    const other = byId.get(d.deviceId);
    if (other !== undefined) {
      problems.push({ path: join(metaDir, d.hash === '' ? DOCKER_BASE_FILE : d.hash), message: `has thin id ${d.deviceId}, as has ${other}` });
    } else byId.set(d.deviceId, d.hash === '' ? DOCKER_BASE_FILE : d.hash);
    if (d.size === 0 || d.size % 512 !== 0) {
      problems.push({ path: join(metaDir, d.id), message: `size ${d.size} is not a positive multiple of 512` });
    }
  }
  if (problems.length > 0) throw new DockerRootInvalidError(rootPath, problems);
  return { root, prefix, poolName, externalPool: external, dataFile, metadataFile, superblock, deviceSet, transaction, devices, skipped };
}

/** Docker's open transaction as {@link openTransactionOf} reports it. */
export interface DockerOpenTransaction extends DockerTransaction {
  /** The pool's transaction id it was compared with. */
  readonly poolTransactionId: number;
  /** Where that id came from: the live pool's status, or the metadata file's superblock. */
  readonly poolTransactionFrom: 'pool-status' | 'superblock';
  /** Always false: read-only mode never rolls back (it would delete a thin id and a record). */
  readonly rolledBack: false;
  /** What Docker does with it at its next start, and that nothing was done here. */
  readonly note: string;
}

/**
 * Docker's open transaction, when its id is above the pool's (deviceset.go
 * processPendingTransaction(): Docker then rolls it back, deleting thin `device_id` from the pool
 * and `metadata/<device_hash>`). Read-only mode reports it and leaves it; undefined when there is
 * none (no file, or an id at or below the pool's: committed, nothing to do).
 */
export function openTransactionOf(root: DockerRoot, poolTransactionId: number, from: 'pool-status' | 'superblock'): DockerOpenTransaction | undefined {
  const t = root.transaction;
  if (t === null || t.openTransactionId <= poolTransactionId) return undefined;
  return {
    ...t,
    poolTransactionId,
    poolTransactionFrom: from,
    rolledBack: false,
    note:
      `Docker's transaction ${t.openTransactionId} is open (the pool's is ${poolTransactionId}): dockerd rolls it back at its next start ` +
      `(deletes thin id ${t.deviceId} and metadata/${t.deviceHash === '' ? DOCKER_BASE_FILE : t.deviceHash}); read-only mode did not roll it back`,
  };
}
