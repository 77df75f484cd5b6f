// SPDX-License-Identifier: MIT
// The DeviceSet's persisted records (one JSON file each) and their crash-safe store.
/**
 * # On-disk layout (`<root>/metadata/`, mode 0700)
 *
 * | File | Record |
 * |---|---|
 * | `base` | {@link DeviceRecord} of the base device (hash '') |
 * | `<hash>` | {@link DeviceRecord} of every other device (a valid hash, see hash.ts) |
 * | `deviceset-metadata` | {@link DeviceSetRecord} |
 * | `transaction-metadata` | {@link TransactionRecord}: present only while an operation is in flight |
 * | `.tmp-*` | temp files of interrupted writes: deleted by {@link MetadataStore.loadAll} |
 *
 * Every write is atomic and durable: write a temp file in the same directory, fsync it, close
 * it, rename it over the target, fsync the directory (Docker never fsynced the directory, so a
 * crash could lose a rename). A reader therefore sees the old record or the new one, never a
 * mix. Removals unlink and then fsync the directory.
 *
 * Numbers are JSON numbers: sizes are bytes up to 2^53−1 (8 PiB), transaction ids up to 2^53−1.
 *
 * **Unknown fields** are accepted on load and dropped (schemaClean, as TypeBox's `Value.Clean`), so a newer
 * devmapper may add optional fields without breaking an older one. A change an older reader must
 * not ignore bumps {@link METADATA_FORMAT_VERSION}; a deviceset record with a newer version is
 * refused with {@link MetadataCorruptError}.
 *
 * **Links** are never followed (safe-path.ts): the directory must be a real one owned by the
 * effective uid without group/other write, records are read with O_NOFOLLOW and must be regular
 * files, temp files are created O_CREAT|O_EXCL|O_NOFOLLOW; otherwise {@link UnsafePathError}.
 *
 * **Names starting with '.'** other than our `.tmp-` files are left alone (NFS silly-renames,
 * editor droppings); any other file that is not a valid record name is an error.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Static, TSchema } from '@sinclair/typebox';
import { InvalidArgumentError, errnoCode, type ValidationProblem } from '../errors.js';
import { MetadataCorruptError, UnsafePathError } from './errors.js';
import { hashProblem } from './hash.js';
import { ensureOwnedDir, openNoFollow, readFileNoFollow } from './safe-path.js';
import { schemaClean, schemaErrors } from './schema-runtime.js';
import {
  checkDeviceRecord,
  checkDeviceSetRecord,
  checkTransactionRecord,
  DeviceRecord,
  DeviceSetRecord,
  TransactionRecord,
} from './schemas.generated.js';

/** Thin device ids are 24-bit. */
export const MAX_DEVICE_ID = 0xffffff;
/** Version of the on-disk format this code writes and reads. */
export const METADATA_FORMAT_VERSION = 1;

export const DEVICESET_FILE = 'deviceset-metadata';
export const TRANSACTION_FILE = 'transaction-metadata';
export const BASE_FILE = 'base';
const TMP_PREFIX = '.tmp-';

export {
  DeviceRecord,
  DeviceSetRecord,
  DeviceState,
  TransactionOp,
  TransactionRecord,
} from './schemas.generated.js';

/** Everything in the metadata directory. */
export interface LoadedMetadata {
  /** Device records by hash ('' is the base device). */
  readonly devices: Map<string, DeviceRecord>;
  readonly deviceSet: DeviceSetRecord | undefined;
  readonly transaction: TransactionRecord | undefined;
  /** Temp files from interrupted writes that were deleted. */
  readonly removedTempFiles: readonly string[];
}

/**
 * The file-system operations the store uses: the seam for crash tests. A test wrapper can count
 * the mutating calls (mkdirSync, openSync for writing, writeSync, fsyncSync, closeSync,
 * renameSync, unlinkSync) and throw at step N to stop the store dead there.
 */
export interface MetadataFs {
  mkdirSync(path: string, options: { recursive: true; mode: number }): void;
  readdirSync(path: string): string[];
  readFileSync(path: string): string;
  openSync(path: string, flags: number, mode?: number): number;
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
}

/**
 * The real node:fs behind {@link MetadataFs}, refusing what a link or another user could have
 * planted (safe-path.ts): the directory must be a real one owned by us without group/other
 * write; records are read and files opened with O_NOFOLLOW (UnsafePathError otherwise).
 */
export const nodeMetadataFs: MetadataFs = {
  mkdirSync: (path, options) => void ensureOwnedDir(path, options.mode, { recursive: options.recursive }),
  readdirSync: (path) => nodeFs.readdirSync(path),
  readFileSync: (path) => readFileNoFollow(path).toString('utf8'),
  openSync: (path, flags, mode) => openNoFollow(path, flags, mode),
  writeSync: (fd, data, offset, length) => nodeFs.writeSync(fd, data, offset, length),
  fsyncSync: (fd) => nodeFs.fsyncSync(fd),
  closeSync: (fd) => nodeFs.closeSync(fd),
  renameSync: (from, to) => nodeFs.renameSync(from, to),
  unlinkSync: (path) => nodeFs.unlinkSync(path),
};

// libuv opens every fd with O_CLOEXEC.
const { O_WRONLY, O_CREAT, O_EXCL, O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = nodeFs.constants;

// The validators are TypeBox's compiled checks, generated at build time (schemas.generated.ts):
// a process that reads records loads no TypeBox module. Errors() walks the schema dynamically
// (TypeBox loaded on demand) and cost more than the rest of a journalled addDevice in the guest;
// only a record that fails pays for the list.
const checks = {
  device: { check: checkDeviceRecord, schema: DeviceRecord },
  deviceSet: { check: checkDeviceSetRecord, schema: DeviceSetRecord },
  transaction: { check: checkTransactionRecord, schema: TransactionRecord },
};

function schemaProblems(c: { check: (v: unknown) => boolean; schema: TSchema }, value: unknown): ValidationProblem[] {
  if (c.check(value)) return [];
  return schemaErrors(c.schema, value);
}

function deviceProblems(value: unknown): ValidationProblem[] {
  const problems = schemaProblems(checks.device, value);
  if (problems.length > 0) return problems;
  const r = value as DeviceRecord;
  const hp = hashProblem(r.hash);
  if (hp) problems.push({ path: '/hash', message: hp, value: r.hash });
  if (r.size % 512 !== 0) problems.push({ path: '/size', message: 'size must be a multiple of 512 bytes', value: r.size });
  if (r.deleted && r.state !== 'deleting') {
    problems.push({ path: '/state', message: 'a device marked deleted must be in state "deleting"', value: r.state });
  }
  return problems;
}

function deviceSetProblems(value: unknown): ValidationProblem[] {
  const problems = schemaProblems(checks.deviceSet, value);
  if (problems.length > 0) return problems;
  const r = value as DeviceSetRecord;
  if (r.formatVersion > METADATA_FORMAT_VERSION) {
    problems.push({
      path: '/formatVersion',
      message: `written by a newer devmapper (format ${r.formatVersion}; this one reads up to ${METADATA_FORMAT_VERSION})`,
      value: r.formatVersion,
    });
  }
  return problems;
}

function transactionProblems(value: unknown): ValidationProblem[] {
  const problems = schemaProblems(checks.transaction, value);
  if (problems.length > 0) return problems;
  const r = value as TransactionRecord;
  const hp = hashProblem(r.deviceHash);
  if (hp) problems.push({ path: '/deviceHash', message: hp, value: r.deviceHash });
  if (r.op === 'snapshot' && r.originDeviceId === undefined) {
    problems.push({ path: '/originDeviceId', message: 'a snapshot transaction needs originDeviceId' });
  }
  if (r.op !== 'snapshot' && r.originDeviceId !== undefined) {
    problems.push({ path: '/originDeviceId', message: `a ${r.op} transaction has no origin`, value: r.originDeviceId });
  }
  return problems;
}

/** The metadata file name of a device: 'base' for the base device (''), the hash otherwise. */
export function deviceFileName(hash: string): string {
  const p = hashProblem(hash);
  if (p) throw new InvalidArgumentError('device hash', [{ path: '/hash', message: p, value: hash }]);
  return hash === '' ? BASE_FILE : hash;
}

/**
 * Crash-safe store of the DeviceSet's records in `<root>/metadata/`. Synchronous on purpose:
 * each write is a short, ordered sequence of syscalls that must not interleave with another.
 * Callers serialise access (the DeviceSet holds its lock around every call).
 */
export class MetadataStore {
  /** `<root>/metadata`. */
  readonly dir: string;
  readonly #fs: MetadataFs;
  #dirReady = false;
  #tmpCounter = 0;

  constructor(root: string, fs: MetadataFs = nodeMetadataFs) {
    this.dir = join(root, 'metadata');
    this.#fs = fs;
  }

  /**
   * Read every record, after deleting temp files left by interrupted writes.
   * @throws MetadataCorruptError naming the first bad file (in name order) and its problems.
   * @throws UnsafePathError the directory or a record is a symbolic link, a record is not a
   *   regular file, or the directory is not ours or group/other writable (nodeMetadataFs).
   */
  loadAll(): LoadedMetadata {
    this.#ensureDir();
    const devices = new Map<string, DeviceRecord>();
    let deviceSet: DeviceSetRecord | undefined;
    let transaction: TransactionRecord | undefined;
    const removedTempFiles: string[] = [];
    const names = this.#fs.readdirSync(this.dir).sort();
    for (const name of names) {
      const file = join(this.dir, name);
      if (name.startsWith(TMP_PREFIX)) {
        this.#unlinkIfExists(file);
        removedTempFiles.push(name);
        continue;
      }
      if (name.startsWith('.')) continue;
      if (name === DEVICESET_FILE) {
        deviceSet = this.#read(file, DeviceSetRecord, deviceSetProblems);
      } else if (name === TRANSACTION_FILE) {
        transaction = this.#read(file, TransactionRecord, transactionProblems);
      } else {
        const expected = name === BASE_FILE ? '' : name;
        if (name !== BASE_FILE && hashProblem(name) !== undefined) {
          throw new MetadataCorruptError(file, [{ path: '', message: `unexpected file in the metadata directory: ${hashProblem(name)}` }]);
        }
        const record = this.#read(file, DeviceRecord, deviceProblems);
        if (record.hash !== expected) {
          throw new MetadataCorruptError(file, [
            { path: '/hash', message: `record is for hash "${record.hash}" but the file is for "${expected}"`, value: record.hash },
          ]);
        }
        devices.set(record.hash, record);
      }
    }
    if (removedTempFiles.length > 0) this.#fsyncDir();
    return { devices, deviceSet, transaction, removedTempFiles };
  }

  /**
   * Atomically write a device's record. With `durable: false` the directory is not fsynced: the
   * record's data is (before the rename), so after a crash the name holds the old record or the
   * new one, complete, but the old one may come back. Only for a write whose loss recovery
   * tolerates (journal.ts: the `ready` record after a create's commit).
   * @throws InvalidArgumentError for an invalid record (nothing written).
   */
  saveDevice(record: DeviceRecord, opts: { readonly durable?: boolean } = {}): void {
    this.#validate('device record', record, deviceProblems);
    this.#writeAtomic(deviceFileName(record.hash), record, opts.durable ?? true);
  }

  /**
   * Remove a device's record (no error if it is already gone). With `durable: false` the
   * directory is not fsynced: after a crash the record may come back (journal.ts: the record of a
   * committed delete, which recovery drops again).
   */
  removeDevice(hash: string, opts: { readonly durable?: boolean } = {}): void {
    this.#ensureDir();
    this.#unlinkIfExists(join(this.dir, deviceFileName(hash)));
    if (opts.durable ?? true) this.#fsyncDir();
  }

  /**
   * fsync the metadata directory: makes every rename and unlink before it durable. The journal's
   * group commit renames several intents with `durable: false` and then calls this once.
   */
  syncDir(): void {
    this.#ensureDir();
    this.#fsyncDir();
  }

  /** Atomically write the deviceset record. */
  saveDeviceSet(record: DeviceSetRecord): void {
    this.#validate('deviceset record', record, deviceSetProblems);
    this.#writeAtomic(DEVICESET_FILE, record);
  }

  /** Atomically write the open transaction (the journal entry). */
  saveTransaction(record: TransactionRecord): void {
    this.#validate('transaction record', record, transactionProblems);
    this.#writeAtomic(TRANSACTION_FILE, record);
  }

  /**
   * Remove the transaction record: nothing is in flight any more. Since issue 21 the journal
   * writes none (the device record carries the intent); recovery still clears one left by an
   * older devmapper. No directory fsync when there was nothing to remove.
   */
  clearTransaction(): void {
    this.#ensureDir();
    if (this.#unlinkIfExists(join(this.dir, TRANSACTION_FILE))) this.#fsyncDir();
  }

  #validate(what: string, record: unknown, problemsOf: (v: unknown) => ValidationProblem[]): void {
    const problems = problemsOf(record);
    if (problems.length > 0) throw new InvalidArgumentError(what, problems);
  }

  #read<T extends TSchema>(file: string, schema: T, problemsOf: (v: unknown) => ValidationProblem[]): Static<T> {
    let value: unknown;
    let text: string;
    try {
      text = this.#fs.readFileSync(file);
    } catch (err) {
      // A link or a non-file where a record should be: not corrupt data, a planted path.
      if (err instanceof UnsafePathError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new MetadataCorruptError(file, [{ path: '', message: `unreadable: ${message}` }], { cause: err });
    }
    try {
      value = JSON.parse(text);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new MetadataCorruptError(file, [{ path: '', message: `not valid JSON: ${message}` }], { cause: err });
    }
    const problems = problemsOf(value);
    if (problems.length > 0) throw new MetadataCorruptError(file, problems);
    return schemaClean(schema, value) as Static<T>;
  }

  #ensureDir(): void {
    if (this.#dirReady) return;
    this.#fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.#dirReady = true;
  }

  #writeAtomic(name: string, record: unknown, durable = true): void {
    this.#ensureDir();
    const data = Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
    const tmp = join(this.dir, `${TMP_PREFIX}${name}-${process.pid}-${++this.#tmpCounter}-${randomBytes(4).toString('hex')}`);
    const fd = this.#fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    let renamed = false;
    try {
      try {
        for (let off = 0; off < data.length; ) off += this.#fs.writeSync(fd, data, off, data.length - off);
        this.#fs.fsyncSync(fd);
      } finally {
        this.#fs.closeSync(fd);
      }
      this.#fs.renameSync(tmp, join(this.dir, name));
      renamed = true;
    } finally {
      if (!renamed) {
        try {
          this.#fs.unlinkSync(tmp);
        } catch {
          // Best effort: loadAll deletes leftover temp files.
        }
      }
    }
    if (durable) this.#fsyncDir();
  }

  #fsyncDir(): void {
    const fd = this.#fs.openSync(this.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      this.#fs.fsyncSync(fd);
    } finally {
      this.#fs.closeSync(fd);
    }
  }

  /** True when `file` was there and is now unlinked. */
  #unlinkIfExists(file: string): boolean {
    try {
      this.#fs.unlinkSync(file);
      return true;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      return false;
    }
  }
}
