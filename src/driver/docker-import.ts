// SPDX-License-Identifier: MIT
/**
 * Importing a root written by Docker's devicemapper graph driver (moby v20.10
 * daemon/graphdriver/devmapper/deviceset.go) into a DeviceSet root, in place: same pool, same thin
 * ids, same data, same loop files. Only `metadata/` changes, and Docker's is kept byte for byte.
 *
 * # Steps ({@link importDockerRoot})
 *
 * 1. **Validate, write nothing.** {@link readDockerRoot} (every record against Docker's schema),
 *    plus: every hash must be a valid DeviceSet hash; a loop-lvm root needs a thin superblock (its
 *    data block size becomes dm.blocksize); the options that reproduce the pool must resolve; the
 *    root must not be locked by a DeviceSet (`devmapper.lock` probed with flock, not taken); the
 *    pool must not be live with openers (a running dockerd, or `docker mount`'s layers) nor be
 *    `docker mount`'s read-only pool. Every problem is listed in one
 *    {@link DockerImportRefusedError}; nothing is created on refusal.
 * 2. Take the root lock (`devmapper.lock`, the DeviceSet's own).
 * 3. Remove a stray `metadata.importing/` of an earlier import that died before its renames.
 * 4. Write our records into a new `metadata.importing/` (each file written, fsynced, closed),
 *    then the marker `.docker-import.json` (this import's report, naming
 *    `metadata.docker-<stamp>`), then fsync the directory.
 * 5. Rename `metadata/` → `metadata.docker-<stamp>`, fsync the root; rename
 *    `metadata.importing/` → `metadata/`, fsync the root. Release the lock.
 *
 * # Crash states (a kill -9 at any point)
 *
 * - Before rename 1: Docker's root is untouched (`metadata/`, `devicemapper/` byte for byte); a
 *   stray `metadata.importing/` (and our `devmapper.lock`) may exist. Docker ignores both; the next
 *   import removes the stray directory.
 * - Between the renames: no `metadata/`; `metadata.docker-<stamp>` and a complete
 *   `metadata.importing/` whose marker names it. The next import, DeviceSet.init (and so every
 *   `ds` command and Driver.init) finish it with rename 2 (src/deviceset/docker-names.ts);
 *   {@link restoreDockerRoot} undoes it instead.
 * - After rename 2: complete. An import run again answers `already-imported` with the first
 *   report (so that the CLI can write `cli-options.json` if it died before that).
 *
 * # Names
 *
 * The set keeps Docker's kernel names `docker-MAJ:MIN-INO-<hash>` and pool `docker-MAJ:MIN-INO-pool`:
 * the deviceset record carries `namePrefix`, which DeviceSet.init uses. No live device is renamed
 * (DM_DEV_RENAME), so there is no window in which a device has neither name, a pool left live by
 * a crashed dockerd is adopted as it is, and a restored root finds its pool under Docker's name.
 *
 * # Docker's open transaction
 *
 * `transaction-metadata` with `open_transaction_id` above the pool's transaction id is a create
 * that never committed. Docker's processPendingTransaction rolls it back: `delete <device_id>`
 * (ENODATA tolerated) and the record removed. The import leaves that device's record out and
 * writes the transaction as our own open transaction (`op: create`, same id, thin id and hash).
 * The first DeviceSet.init then rolls it back with the same pool message, through its recovery
 * (reconcile.ts `rollback-uncommitted-create`; ENODATA is ThinIdNotFoundError there, tolerated).
 * Doing it there rather than here keeps the import free of kernel changes, so that a crash
 * before rename 1 leaves Docker's root byte for byte as it was.
 *
 * # Deleted devices
 *
 * Docker's `deleted: true` records (deferred deletion: the thin device still exists) become
 * `deleted: true, state: 'deleting'`: the DeviceSet's deferred-deletion pass deletes them
 * (`cleanupDeleted`), and until then their thin ids stay reserved.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { InvalidArgumentError, errnoCode, type ValidationProblem } from '../errors.js';
import { LOCK_EX, LOCK_NB, O_CLOEXEC, realSyscalls, type Syscalls } from '../ioctl/index.js';
import {
  BASE_FILE,
  DEVICESET_FILE,
  DOCKER_ORIGINALS_PREFIX,
  DeviceRecord,
  DeviceSetRecord,
  IMPORT_MARKER_FILE,
  IMPORT_STAGING_DIR,
  LOCK_FILE,
  METADATA_FORMAT_VERSION,
  MAX_DEVICE_ID,
  OperationAbortedError,
  RootLock,
  TRANSACTION_FILE,
  TransactionRecord,
  finishInterruptedImport,
  formatDmOptions,
  hashProblem,
  importMarkerTarget,
  parseLockPid,
  readFileNoFollow,
  resolveDeviceSetOptions,
  type DeviceSetOptions,
} from '../deviceset/index.js';
import { DOCKER_RO_UUID_PREFIX, type DockerKernelDeps } from './docker-mount.js';
import { dockerPrefixFor, readDockerRoot, type DockerRoot } from './docker-root.js';
import { DockerImportRefusedError, DockerRootInvalidError } from './errors.js';

/** Every step of an import and of a restore, in order; a crash hook is called before each. */
export const DOCKER_IMPORT_STEPS = [
  'import:before-lock',
  'import:before-remove-stray',
  'import:before-stage',
  'import:before-marker',
  'import:before-rename-docker',
  'import:before-rename-ours',
  'import:before-unlock',
  'restore:before-rename-ours',
  'restore:before-rename-docker',
  'restore:before-remove-staging',
] as const;
export type DockerImportStep = (typeof DOCKER_IMPORT_STEPS)[number];

/**
 * The file-system calls an import and a restore make under the root: the seam for crash tests
 * (a wrapper that throws from step N on stops the import dead there, as a kill -9 would).
 */
export interface DockerImportFs {
  mkdirSync(path: string, mode: number): void;
  openSync(path: string, flags: number, mode?: number): number;
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  rmdirSync(path: string): void;
}

/** node:fs behind {@link DockerImportFs}. */
export const nodeDockerImportFs: DockerImportFs = {
  mkdirSync: (path, mode) => nodeFs.mkdirSync(path, { mode }),
  openSync: (path, flags, mode) => nodeFs.openSync(path, flags, mode),
  writeSync: (fd, data, offset, length) => nodeFs.writeSync(fd, data, offset, length),
  fsyncSync: (fd) => nodeFs.fsyncSync(fd),
  closeSync: (fd) => nodeFs.closeSync(fd),
  renameSync: (from, to) => nodeFs.renameSync(from, to),
  unlinkSync: (path) => nodeFs.unlinkSync(path),
  rmdirSync: (path) => nodeFs.rmdirSync(path),
};

/** Options of {@link importDockerRoot}. */
export interface DockerImportOptions {
  /** dm.thinpooldev of the root, when Docker ran with an external pool. */
  readonly thinPoolDev?: string;
  /** Honoured between steps up to rename 1 (the staging directory is then removed). */
  readonly signal?: AbortSignal;
  readonly log?: (level: 'info' | 'warn', message: string) => void;
  /** flock/open/close of the root lock (default: the real ones). */
  readonly syscalls?: Syscalls;
  /** Test seams. */
  readonly fs?: DockerImportFs;
  readonly crashPoint?: (step: DockerImportStep) => void;
  readonly now?: () => Date;
}

/** One imported device. */
export interface DockerImportedDevice {
  readonly id: string;
  readonly hash: string;
  readonly deviceId: number;
  readonly size: number;
  readonly state: 'ready' | 'deleting';
}

/** Docker's open transaction, as the import carried it. */
export interface DockerImportedTransaction {
  readonly openTransactionId: number;
  readonly deviceHash: string;
  readonly deviceId: number;
  readonly poolTransactionId: number;
  /** Whether Docker had a record for the device (left out of ours either way). */
  readonly recordLeftOut: boolean;
  readonly note: string;
}

/** What an import did (also kept in `metadata/.docker-import.json`). */
export interface DockerImportReport {
  readonly root: string;
  readonly prefix: string;
  readonly poolName: string;
  /** The directory Docker's `metadata/` was renamed to (relative to the root). */
  readonly dockerMetadata: string;
  readonly importedAt: string;
  /** The `dm.*` options that open the set (`ds` keeps them in cli-options.json). */
  readonly options: readonly string[];
  readonly devices: readonly DockerImportedDevice[];
  /** Ids (hash or `base`) of Docker's deferred-deleted devices, left to the deletion pass. */
  readonly pendingDeletion: readonly string[];
  readonly openTransaction: DockerImportedTransaction | null;
}

/** {@link importDockerRoot}'s answer. */
export interface DockerImportResult extends DockerImportReport {
  /**
   * `imported`: done now; `finished`: an import stopped between its renames was completed;
   * `already-imported`: nothing to do (the report is the first import's).
   */
  readonly outcome: 'imported' | 'finished' | 'already-imported';
  /** A stray `metadata.importing/` of an interrupted import was removed first. */
  readonly removedStaging: boolean;
}

const MARKER_FORMAT = 1;
const checkDevice = TypeCompiler.Compile(DeviceRecord);
const checkDeviceSet = TypeCompiler.Compile(DeviceSetRecord);
const checkTransaction = TypeCompiler.Compile(TransactionRecord);
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = nodeFs.constants;

const stampOf = (d: Date): string => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

function isDir(path: string): boolean {
  try {
    return nodeFs.lstatSync(path).isDirectory();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** The report kept in a marker file, or undefined. */
function readMarker(dir: string): DockerImportReport | undefined {
  try {
    const v = JSON.parse(readFileNoFollow(join(dir, IMPORT_MARKER_FILE)).toString('utf8')) as { formatVersion?: unknown; report?: DockerImportReport };
    return v.formatVersion === MARKER_FORMAT && v.report !== undefined ? v.report : undefined;
  } catch {
    return undefined;
  }
}

/** Who holds `<root>/devmapper.lock`, probed without creating or writing it: null = free. */
function lockHolder(root: string, sys: Syscalls): { pid: number | null } | null {
  const path = join(root, LOCK_FILE);
  let fd: number;
  try {
    fd = sys.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    return { pid: null };
  }
  try {
    // flock(2): EWOULDBLOCK when another open file description holds the lock (fs/locks.c).
    sys.flock(fd, LOCK_EX | LOCK_NB);
    return null;
  } catch {
    let pid: number | null = null;
    try {
      pid = parseLockPid(nodeFs.readFileSync(path, 'utf8'));
    } catch {
      /* information only */
    }
    return { pid };
  } finally {
    try {
      sys.close(fd); // drops our probe's lock, if it got it
    } catch {
      /* the fd is gone either way */
    }
  }
}

interface Plan {
  readonly docker: DockerRoot;
  readonly files: ReadonlyArray<readonly [string, unknown]>;
  readonly report: Omit<DockerImportReport, 'dockerMetadata' | 'importedAt'>;
}

/** Everything the import will write, and every problem found on the way (reads only). */
async function plan(rootPath: string, deps: DockerKernelDeps, o: DockerImportOptions, createdAt: string, problems: ValidationProblem[]): Promise<Plan | undefined> {
  let docker: DockerRoot | undefined;
  try {
    docker = readDockerRoot(rootPath, o.thinPoolDev === undefined ? {} : { thinPoolDev: o.thinPoolDev });
  } catch (err) {
    if (!(err instanceof DockerRootInvalidError)) throw err;
    problems.push(...err.problems);
  }
  const root = docker?.root ?? rootPath;
  const lock = lockHolder(root, o.syscalls ?? realSyscalls());
  if (lock !== null) problems.push({ path: join(root, LOCK_FILE), message: `is held${lock.pid === null ? '' : ` by pid ${lock.pid}`}: a DeviceSet has this root open` });

  // Names the DeviceSet cannot take as hashes, whatever else is wrong with the records.
  const metaDir = join(root, 'metadata');
  let names: string[] = [];
  try {
    names = nodeFs.readdirSync(metaDir).sort();
  } catch {
    /* readDockerRoot reported it */
  }
  for (const name of names) {
    // deviceFileWalkFunction() skips these; the two others are not device records.
    if (name.startsWith('.') || name.endsWith('.migrated') || name === BASE_FILE || name === DEVICESET_FILE || name === TRANSACTION_FILE) continue;
    const hp = hashProblem(name);
    if (hp !== undefined) problems.push({ path: join(metaDir, name), message: `cannot be a DeviceSet record: ${hp}` });
  }

  // The pool: never under a running dockerd, never docker mount's read-only pool.
  let poolName: string | undefined = docker?.poolName;
  if (poolName === undefined && o.thinPoolDev === undefined) {
    try {
      poolName = `${dockerPrefixFor(nodeFs.statSync(root, { bigint: true }))}-pool`;
    } catch {
      /* readDockerRoot reported it */
    }
  }
  if (poolName !== undefined) {
    try {
      const info = await deps.dm.deviceInfo(poolName);
      if (info.uuid?.startsWith(DOCKER_RO_UUID_PREFIX)) {
        problems.push({ path: poolName, message: "is the read-only pool of 'devmapper docker mount': unmount its layers first" });
      } else if (info.openCount > 0) {
        problems.push({ path: poolName, message: `is live with ${info.openCount} opener(s): stop dockerd (or release its devices) first` });
      }
    } catch (err) {
      if (errnoCode(err) !== 'EDEVICENOTFOUND' && errnoCode(err) !== 'ENXIO') throw err;
    }
  }
  if (docker === undefined) return undefined;

  let blockSize: number | undefined;
  if (!docker.externalPool) {
    if (docker.superblock?.kind === 'thin') blockSize = docker.superblock.dataBlockSize * 512;
    else if (docker.superblock?.kind === 'blank') problems.push({ path: docker.metadataFile ?? 'devicemapper/metadata', message: 'is blank: the pool was never created, there is nothing to import' });
  }
  const poolTx = docker.superblock?.kind === 'thin' ? docker.superblock.transactionId : undefined;
  const t = docker.transaction;
  const open = t !== null && poolTx !== undefined && t.openTransactionId > poolTx ? t : null;
  if (open !== null && hashProblem(open.deviceHash) !== undefined) {
    problems.push({ path: join(metaDir, 'transaction-metadata'), message: `device_hash: ${hashProblem(open.deviceHash)}` });
  }

  const base = docker.devices.find((d) => d.hash === '');
  const ds = docker.deviceSet;
  const fsType = ds?.baseDeviceFilesystem === 'xfs' ? 'xfs' : 'ext4';
  const input: DeviceSetOptions = {
    fs: fsType,
    ...(base !== undefined ? { baseSize: BigInt(base.size) } : {}),
    ...(docker.externalPool
      ? { thinPoolDevice: docker.poolName }
      : {
          loopDataSize: BigInt(docker.dataFile ? nodeFs.statSync(docker.dataFile).size : 0),
          loopMetadataSize: BigInt(docker.metadataFile ? nodeFs.statSync(docker.metadataFile).size : 0),
          ...(blockSize !== undefined ? { blockSize: BigInt(blockSize) } : {}),
        }),
  };
  let options: string[] = [];
  try {
    options = formatDmOptions(resolveDeviceSetOptions(input));
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    for (const p of err.problems) problems.push({ path: `options${p.path}`, message: `the options that reproduce this pool are refused: ${p.message}`, value: p.value });
  }

  const files: Array<readonly [string, unknown]> = [];
  const devices: DockerImportedDevice[] = [];
  const pendingDeletion: string[] = [];
  let maxId = 0;
  for (const d of docker.devices) {
    maxId = Math.max(maxId, d.deviceId);
    if (open !== null && d.hash === open.deviceHash) continue; // rolled back at the first open
    const rec: DeviceRecord = {
      hash: d.hash,
      deviceId: d.deviceId,
      size: d.size,
      transactionId: d.transactionId,
      initialized: d.initialized,
      deleted: d.deleted,
      state: d.deleted ? 'deleting' : 'ready',
      createdAt,
      ...(d.hash === '' && ds !== null && ds.baseDeviceFilesystem !== '' ? { filesystem: ds.baseDeviceFilesystem } : {}),
      ...(d.hash === '' && ds !== null && ds.baseDeviceUuid !== '' ? { filesystemUuid: ds.baseDeviceUuid } : {}),
    };
    if (!checkDevice.Check(rec)) {
      for (const e of checkDevice.Errors(rec)) problems.push({ path: `${join(metaDir, d.id)}#${e.path}`, message: e.message, value: e.value });
      continue;
    }
    files.push([d.hash === '' ? BASE_FILE : d.hash, rec]);
    devices.push({ id: d.id, hash: d.hash, deviceId: d.deviceId, size: d.size, state: rec.state as 'ready' | 'deleting' });
    if (d.deleted) pendingDeletion.push(d.id);
  }
  const deviceSet: DeviceSetRecord = {
    formatVersion: METADATA_FORMAT_VERSION,
    nextDeviceId: Math.min(Math.max(ds?.nextDeviceId ?? 0, maxId + 1), MAX_DEVICE_ID),
    ...(ds !== null && ds.baseDeviceFilesystem !== '' ? { baseFilesystem: ds.baseDeviceFilesystem } : {}),
    ...(ds !== null && ds.baseDeviceUuid !== '' ? { baseFilesystemUuid: ds.baseDeviceUuid } : {}),
    options,
    namePrefix: docker.prefix,
  };
  if (!checkDeviceSet.Check(deviceSet)) for (const e of checkDeviceSet.Errors(deviceSet)) problems.push({ path: `deviceset record#${e.path}`, message: e.message, value: e.value });
  files.push([DEVICESET_FILE, deviceSet]);
  let openTransaction: DockerImportedTransaction | null = null;
  if (open !== null) {
    const tx: TransactionRecord = { openTransactionId: open.openTransactionId, deviceHash: open.deviceHash, deviceId: open.deviceId, op: 'create' };
    if (!checkTransaction.Check(tx)) for (const e of checkTransaction.Errors(tx)) problems.push({ path: `transaction record#${e.path}`, message: e.message, value: e.value });
    files.push([TRANSACTION_FILE, tx]);
    const id = open.deviceHash === '' ? BASE_FILE : open.deviceHash;
    openTransaction = {
      openTransactionId: open.openTransactionId,
      deviceHash: open.deviceHash,
      deviceId: open.deviceId,
      poolTransactionId: poolTx ?? 0,
      recordLeftOut: docker.devices.some((d) => d.hash === open.deviceHash),
      note:
        `Docker's transaction ${open.openTransactionId} was open (the pool's is ${poolTx}): it is rolled back as Docker's processPendingTransaction would ` +
        `(pool message "delete ${open.deviceId}", ENODATA tolerated) by the first open of the set; ${id}'s record was left out`,
    };
  }
  return {
    docker,
    files,
    report: { root: docker.root, prefix: docker.prefix, poolName: docker.poolName, options, devices, pendingDeletion, openTransaction },
  };
}

/** Writes one file: created exclusively, written, fsynced, closed. */
function writeFile(f: DockerImportFs, path: string, text: string): void {
  const data = Buffer.from(text, 'utf8');
  const fd = f.openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    for (let off = 0; off < data.length; ) off += f.writeSync(fd, data, off, data.length - off);
    f.fsyncSync(fd);
  } finally {
    f.closeSync(fd);
  }
}

function fsyncDir(f: DockerImportFs, dir: string): void {
  const fd = f.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    f.fsyncSync(fd);
  } finally {
    f.closeSync(fd);
  }
}

/** Removes our staging directory: its regular files, then itself (a subdirectory is refused by rmdir). */
function removeStaging(f: DockerImportFs, root: string): boolean {
  const dir = join(root, IMPORT_STAGING_DIR);
  if (!isDir(dir)) return false;
  for (const name of nodeFs.readdirSync(dir)) f.unlinkSync(join(dir, name));
  f.rmdirSync(dir);
  fsyncDir(f, root);
  return true;
}

/**
 * Imports the Docker root `root` in place into a DeviceSet root (see the file comment for the
 * steps, the crash states and the open transaction). Afterwards `DeviceSet.init(root, { options:
 * report.options })` (or `Driver.init`) opens it with Docker's thin ids and names.
 * @throws DockerImportRefusedError listing every problem (nothing written); DeviceSetLockedError
 *   when a DeviceSet took the root between the check and the lock; OperationAbortedError.
 */
export async function importDockerRoot(rootPath: string, deps: DockerKernelDeps, o: DockerImportOptions = {}): Promise<DockerImportResult> {
  const f = o.fs ?? nodeDockerImportFs;
  const crash = o.crashPoint ?? (() => {});
  const log = o.log ?? (() => {});
  const now = (o.now ?? (() => new Date()))();
  if (o.signal?.aborted) throw new OperationAbortedError('importDockerRoot', { cause: o.signal.reason });
  let root: string;
  try {
    root = nodeFs.realpathSync.native(rootPath);
  } catch (err) {
    throw new DockerImportRefusedError(rootPath, [{ path: rootPath, message: err instanceof Error ? err.message : String(err) }], { cause: err });
  }
  const meta = join(root, 'metadata');

  // Already imported, or stopped between the renames.
  const done = readMarker(meta);
  if (done !== undefined) return { ...done, outcome: 'already-imported', removedStaging: false };
  const staging = join(root, IMPORT_STAGING_DIR);
  if (!nodeFs.existsSync(meta) && isDir(staging)) {
    const target = importMarkerTarget(staging);
    const report = readMarker(staging);
    if (target !== undefined && report !== undefined && isDir(join(root, target))) {
      crash('import:before-lock');
      const lock = RootLock.acquire(root, o.syscalls ?? realSyscalls());
      try {
        finishInterruptedImport(root);
      } finally {
        lock.release();
      }
      log('info', `finished the import of ${root} that stopped between its two renames`);
      return { ...report, outcome: 'finished', removedStaging: false };
    }
  }

  const problems: ValidationProblem[] = [];
  const p = await plan(root, deps, o, now.toISOString(), problems);
  if (problems.length > 0 || p === undefined) throw new DockerImportRefusedError(root, problems);
  const dockerMetadata = `${DOCKER_ORIGINALS_PREFIX}${stampOf(now)}`;
  if (nodeFs.existsSync(join(root, dockerMetadata))) {
    throw new DockerImportRefusedError(root, [{ path: join(root, dockerMetadata), message: 'exists already: import again in a second' }]);
  }
  const report: DockerImportReport = { ...p.report, dockerMetadata, importedAt: now.toISOString() };

  crash('import:before-lock');
  const lock = RootLock.acquire(root, o.syscalls ?? realSyscalls());
  let renamed = false;
  try {
    crash('import:before-remove-stray');
    const removedStaging = removeStaging(f, root);
    if (removedStaging) log('info', `removed ${IMPORT_STAGING_DIR}/ of an import that stopped before its renames`);
    if (o.signal?.aborted) throw new OperationAbortedError('importDockerRoot', { cause: o.signal.reason });
    crash('import:before-stage');
    f.mkdirSync(staging, 0o700);
    for (const [name, record] of p.files) writeFile(f, join(staging, name), `${JSON.stringify(record, null, 2)}\n`);
    crash('import:before-marker');
    writeFile(f, join(staging, IMPORT_MARKER_FILE), `${JSON.stringify({ formatVersion: MARKER_FORMAT, dockerMetadata, report }, null, 2)}\n`);
    fsyncDir(f, staging);
    if (o.signal?.aborted) throw new OperationAbortedError('importDockerRoot', { cause: o.signal.reason });
    // The commit: rename 1 makes the import a matter of finishing (docker-names.ts).
    crash('import:before-rename-docker');
    f.renameSync(meta, join(root, dockerMetadata));
    renamed = true;
    fsyncDir(f, root);
    crash('import:before-rename-ours');
    f.renameSync(staging, meta);
    fsyncDir(f, root);
    crash('import:before-unlock');
    log('info', `imported ${root}: ${report.devices.length} devices; Docker's records kept in ${dockerMetadata}`);
    return { ...report, outcome: 'imported', removedStaging };
  } catch (err) {
    // Before rename 1 nothing of Docker's changed: drop our half-written staging directory
    // (best effort; the next import removes it otherwise). After it, the import finishes later.
    if (!renamed) {
      try {
        removeStaging(f, root);
      } catch {
        /* left for the next import */
      }
    }
    throw err;
  } finally {
    lock.release();
  }
}

/** {@link restoreDockerRoot}'s answer. */
export interface DockerRestoreResult {
  readonly root: string;
  /** The directory Docker's records came back from. */
  readonly dockerMetadata: string;
  /** Where our records went (relative to the root), or null when they were never in use (a staging dir removed). */
  readonly ourMetadata: string | null;
}

/** Options of {@link restoreDockerRoot}. */
export interface DockerRestoreOptions {
  readonly syscalls?: Syscalls;
  readonly fs?: DockerImportFs;
  readonly crashPoint?: (step: DockerImportStep) => void;
  readonly now?: () => Date;
}

/**
 * Undoes an import: Docker's `metadata/` comes back byte for byte, ours is kept aside as
 * `metadata.devmapper-<stamp>` (its thin ids may have grown meanwhile; nothing is deleted). Runs
 * under the root lock, so never while a DeviceSet has the root open. Also finishes a restore and
 * undoes an import that a crash stopped between their renames. Our `devmapper.lock` (and the CLI's
 * `cli-options.json`) stay in the root; Docker ignores them.
 * @throws DockerImportRefusedError the root is not an imported one; DeviceSetLockedError.
 */
export function restoreDockerRoot(rootPath: string, o: DockerRestoreOptions = {}): DockerRestoreResult {
  const f = o.fs ?? nodeDockerImportFs;
  const crash = o.crashPoint ?? (() => {});
  const now = (o.now ?? (() => new Date()))();
  let root: string;
  try {
    root = nodeFs.realpathSync.native(rootPath);
  } catch (err) {
    throw new DockerImportRefusedError(rootPath, [{ path: rootPath, message: err instanceof Error ? err.message : String(err) }], { cause: err });
  }
  const meta = join(root, 'metadata');
  const staging = join(root, IMPORT_STAGING_DIR);
  const lock = RootLock.acquire(root, o.syscalls ?? realSyscalls());
  try {
    const ours = readMarker(meta);
    if (ours !== undefined) {
      const docker = ours.dockerMetadata;
      if (!isDir(join(root, docker))) throw new DockerImportRefusedError(root, [{ path: join(root, docker), message: "is missing: Docker's records are not there to restore" }]);
      const aside = `metadata.devmapper-${stampOf(now)}`;
      crash('restore:before-rename-ours');
      f.renameSync(meta, join(root, aside));
      fsyncDir(f, root);
      crash('restore:before-rename-docker');
      f.renameSync(join(root, docker), meta);
      fsyncDir(f, root);
      return { root, dockerMetadata: docker, ourMetadata: aside };
    }
    if (!nodeFs.existsSync(meta)) {
      // Stopped between an import's renames (a staging dir names the originals), or between a
      // restore's (only the originals are left).
      const target = isDir(staging) ? importMarkerTarget(staging) : undefined;
      const originals = nodeFs.readdirSync(root).filter((n) => n.startsWith(DOCKER_ORIGINALS_PREFIX) && isDir(join(root, n)));
      const docker = target !== undefined && originals.includes(target) ? target : originals.length === 1 ? originals[0] : undefined;
      if (docker === undefined) {
        throw new DockerImportRefusedError(root, [{ path: meta, message: `is missing and ${originals.length === 0 ? 'no' : 'more than one'} ${DOCKER_ORIGINALS_PREFIX}* directory exists: restore by hand` }]);
      }
      crash('restore:before-rename-docker');
      f.renameSync(join(root, docker), meta);
      fsyncDir(f, root);
      crash('restore:before-remove-staging');
      const removed = target === docker && removeStaging(f, root);
      if (removed) fsyncDir(f, root);
      // A restore stopped between its renames had moved ours aside already: name it.
      const aside = removed ? [] : nodeFs.readdirSync(root).filter((n) => n.startsWith('metadata.devmapper-')).sort();
      return { root, dockerMetadata: docker, ourMetadata: aside.at(-1) ?? null };
    }
    throw new DockerImportRefusedError(root, [{ path: meta, message: `holds no imported DeviceSet (no ${IMPORT_MARKER_FILE}): nothing to restore` }]);
  } finally {
    lock.release();
  }
}
