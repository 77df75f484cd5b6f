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
import { ensureOwnedDirAsync, openNoFollowAsync, readFileNoFollowAsync } from './safe-path.js';
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
 * An open file of the store: the part of fs/promises' FileHandle it uses (a FileHandle is one).
 */
export interface MetadataFile {
  write(data: Uint8Array, offset: number, length: number): Promise<{ readonly bytesWritten: number }>;
  /** fsync(2). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file-system operations the store uses, all asynchronous: the seam for crash tests. A test
 * wrapper can count the mutating calls (mkdir, open for writing, write, sync, close, rename,
 * unlink) and throw at step N to stop the store dead there. The store makes them one at a time,
 * in a fixed order, so the N-th call is the same in every run.
 */
export interface MetadataFs {
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<string>;
  open(path: string, flags: number, mode?: number): Promise<MetadataFile>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

/**
 * The real node:fs/promises behind {@link MetadataFs} (every call on libuv's thread pool, none on
 * the event loop), refusing what a link or another user could have planted (safe-path.ts): the
 * directory must be a real one owned by us without group/other write; records are read and
 * files opened with O_NOFOLLOW (UnsafePathError otherwise).
 */
export const nodeMetadataFs: MetadataFs = {
  mkdir: async (path, options) => void (await ensureOwnedDirAsync(path, options.mode, { recursive: options.recursive })),
  readdir: (path) => nodeFs.promises.readdir(path),
  readFile: async (path) => (await readFileNoFollowAsync(path)).toString('utf8'),
  open: (path, flags, mode) => openNoFollowAsync(path, flags, mode),
  rename: (from, to) => nodeFs.promises.rename(from, to),
  unlink: (path) => nodeFs.promises.unlink(path),
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

/** Records read at once by loadAll (each holds an fd while it is read). */
const READ_CONCURRENCY = 16;

/** `fn` over `items`, at most `limit` at a time; the outcomes in item order. */
async function settleLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const out: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i]!) };
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The metadata file name of a device: 'base' for the base device (''), the hash otherwise. */
export function deviceFileName(hash: string): string {
  const p = hashProblem(hash);
  if (p) throw new InvalidArgumentError('device hash', [{ path: '/hash', message: p, value: hash }]);
  return hash === '' ? BASE_FILE : hash;
}

/**
 * Crash-safe store of the DeviceSet's records in `<root>/metadata/`, asynchronous: every file call
 * goes through {@link MetadataFs} (fs/promises by default), so an fsync on a slow disk waits on
 * libuv's thread pool, not on the event loop.
 *
 * **Order.** Each write is a short sequence (temp write, fsync, close, rename, directory fsync)
 * whose steps run one after the other. Writes and removals of one record name are queued in call
 * order: a write starts after the previous one of that name settled, so two writes land on disk
 * in the order they were called, whatever the callers' locks (the deviceset record is written
 * from init, the journal's commit, autoextend and shutdown). Writes of different names may run
 * side by side; {@link syncDir} waits for every one called before it.
 */
export class MetadataStore {
  /** `<root>/metadata`. */
  readonly dir: string;
  readonly #fs: MetadataFs;
  #dirReady: Promise<void> | undefined;
  #tmpCounter = 0;
  /** The last queued write or removal of each record name (settled ones are dropped). */
  readonly #tails = new Map<string, Promise<void>>();

  constructor(root: string, fs: MetadataFs = nodeMetadataFs) {
    this.dir = join(root, 'metadata');
    this.#fs = fs;
  }

  /**
   * Read every record, after deleting temp files left by interrupted writes (one at a time, in
   * name order; the records are then read side by side).
   * @throws MetadataCorruptError naming the first bad file (in name order) and its problems.
   * @throws UnsafePathError the directory or a record is a symbolic link, a record is not a
   *   regular file, or the directory is not ours or group/other writable (nodeMetadataFs).
   */
  async loadAll(): Promise<LoadedMetadata> {
    await this.#ensureDir();
    const devices = new Map<string, DeviceRecord>();
    let deviceSet: DeviceSetRecord | undefined;
    let transaction: TransactionRecord | undefined;
    const removedTempFiles: string[] = [];
    const names = (await this.#fs.readdir(this.dir)).sort();
    const records: string[] = [];
    for (const name of names) {
      if (name.startsWith(TMP_PREFIX)) {
        await this.#unlinkIfExists(join(this.dir, name));
        removedTempFiles.push(name);
      } else if (!name.startsWith('.')) records.push(name);
    }
    const read = await settleLimited(records, READ_CONCURRENCY, (name) => this.#readRecord(name));
    // The first failure in name order, as a sequential read would have thrown.
    for (const r of read) if (r.status === 'rejected') throw r.reason;
    for (const r of read) {
      if (r.status !== 'fulfilled') continue;
      const v = r.value;
      if (v.kind === 'deviceSet') deviceSet = v.record;
      else if (v.kind === 'transaction') transaction = v.record;
      else devices.set(v.record.hash, v.record);
    }
    if (removedTempFiles.length > 0) await this.#fsyncDir();
    return { devices, deviceSet, transaction, removedTempFiles };
  }

  async #readRecord(
    name: string,
  ): Promise<{ kind: 'deviceSet'; record: DeviceSetRecord } | { kind: 'transaction'; record: TransactionRecord } | { kind: 'device'; record: DeviceRecord }> {
    const file = join(this.dir, name);
    if (name === DEVICESET_FILE) return { kind: 'deviceSet', record: await this.#read(file, DeviceSetRecord, deviceSetProblems) };
    if (name === TRANSACTION_FILE) return { kind: 'transaction', record: await this.#read(file, TransactionRecord, transactionProblems) };
    const expected = name === BASE_FILE ? '' : name;
    if (name !== BASE_FILE && hashProblem(name) !== undefined) {
      throw new MetadataCorruptError(file, [{ path: '', message: `unexpected file in the metadata directory: ${hashProblem(name)}` }]);
    }
    const record = await this.#read(file, DeviceRecord, deviceProblems);
    if (record.hash !== expected) {
      throw new MetadataCorruptError(file, [
        { path: '/hash', message: `record is for hash "${record.hash}" but the file is for "${expected}"`, value: record.hash },
      ]);
    }
    return { kind: 'device', record };
  }

  /**
   * Atomically write a device's record. With `durable: false` the directory is not fsynced: the
   * record's data is (before the rename), so after a crash the name holds the old record or the
   * new one, complete, but the old one may come back. Only for a write whose loss recovery
   * tolerates (journal.ts: the `ready` record after a create's commit).
   * @throws InvalidArgumentError for an invalid record (nothing written).
   */
  async saveDevice(record: DeviceRecord, opts: { readonly durable?: boolean } = {}): Promise<void> {
    this.#validate('device record', record, deviceProblems);
    const name = deviceFileName(record.hash);
    await this.#serial(name, () => this.#writeAtomic(name, record, opts.durable ?? true));
  }

  /**
   * Remove a device's record (no error if it is already gone). With `durable: false` the
   * directory is not fsynced: after a crash the record may come back (journal.ts: the record of a
   * committed delete, which recovery drops again).
   */
  async removeDevice(hash: string, opts: { readonly durable?: boolean } = {}): Promise<void> {
    const name = deviceFileName(hash);
    await this.#serial(name, async () => {
      await this.#ensureDir();
      await this.#unlinkIfExists(join(this.dir, name));
      if (opts.durable ?? true) await this.#fsyncDir();
    });
  }

  /**
   * fsync the metadata directory: makes every rename and unlink called before it durable (it
   * waits for the writes still queued). The journal's group commit renames several intents with
   * `durable: false` and then calls this once.
   */
  async syncDir(): Promise<void> {
    const pending = [...this.#tails.values()];
    await Promise.all(pending);
    await this.#ensureDir();
    await this.#fsyncDir();
  }

  /** Atomically write the deviceset record. */
  async saveDeviceSet(record: DeviceSetRecord): Promise<void> {
    this.#validate('deviceset record', record, deviceSetProblems);
    await this.#serial(DEVICESET_FILE, () => this.#writeAtomic(DEVICESET_FILE, record));
  }

  /** Atomically write the open transaction (the journal entry). */
  async saveTransaction(record: TransactionRecord): Promise<void> {
    this.#validate('transaction record', record, transactionProblems);
    await this.#serial(TRANSACTION_FILE, () => this.#writeAtomic(TRANSACTION_FILE, record));
  }

  /**
   * Remove the transaction record: nothing is in flight any more. Since issue 21 the journal
   * writes none (the device record carries the intent); recovery still clears one left by an
   * older devmapper. No directory fsync when there was nothing to remove.
   */
  async clearTransaction(): Promise<void> {
    await this.#serial(TRANSACTION_FILE, async () => {
      await this.#ensureDir();
      if (await this.#unlinkIfExists(join(this.dir, TRANSACTION_FILE))) await this.#fsyncDir();
    });
  }

  /**
   * Runs `fn` once every write or removal of `name` called before has settled (failed ones too),
   * and returns its outcome. The queue entry is taken synchronously, at the call: call order is
   * landing order.
   */
  #serial(name: string, fn: () => Promise<void>): Promise<void> {
    const run = (this.#tails.get(name) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#tails.set(name, tail);
    void tail.then(() => {
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    });
    return run;
  }

  #validate(what: string, record: unknown, problemsOf: (v: unknown) => ValidationProblem[]): void {
    const problems = problemsOf(record);
    if (problems.length > 0) throw new InvalidArgumentError(what, problems);
  }

  async #read<T extends TSchema>(file: string, schema: T, problemsOf: (v: unknown) => ValidationProblem[]): Promise<Static<T>> {
    let value: unknown;
    let text: string;
    try {
      text = await this.#fs.readFile(file);
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

  /** mkdir once per store (a failed one is tried again by the next call). */
  #ensureDir(): Promise<void> {
    this.#dirReady ??= this.#fs.mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      this.#dirReady = undefined;
      throw err;
    });
    return this.#dirReady;
  }

  async #writeAtomic(name: string, record: unknown, durable = true): Promise<void> {
    await this.#ensureDir();
    const data = Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
    const tmp = join(this.dir, `${TMP_PREFIX}${name}-${process.pid}-${++this.#tmpCounter}-${randomBytes(4).toString('hex')}`);
    const file = await this.#fs.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    let renamed = false;
    try {
      try {
        for (let off = 0; off < data.length; ) off += (await file.write(data, off, data.length - off)).bytesWritten;
        await file.sync();
      } finally {
        await file.close();
      }
      await this.#fs.rename(tmp, join(this.dir, name));
      renamed = true;
    } finally {
      if (!renamed) {
        try {
          await this.#fs.unlink(tmp);
        } catch {
          // Best effort: loadAll deletes leftover temp files.
        }
      }
    }
    if (durable) await this.#fsyncDir();
  }

  async #fsyncDir(): Promise<void> {
    const dir = await this.#fs.open(this.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** True when `file` was there and is now unlinked. */
  async #unlinkIfExists(file: string): Promise<boolean> {
    try {
      await this.#fs.unlink(file);
      return true;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      return false;
    }
  }
}
