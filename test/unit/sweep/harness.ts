// SPDX-License-Identifier: MIT
// Shared harness of the crash-point sweep and the fault-injection runs (GitHub issue 10): a
// DeviceSet over FakeKernel and a real temp root, a MetadataFs that counts its write steps and
// can stop the process dead at step N, FsTools that "format" through fake.mkfs, and the
// invariants a re-inited DeviceSet must satisfy after whatever happened before.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DmControl } from '../../../src/dm/index.js';
import { LoopControl, ensureSparseFile } from '../../../src/loop/index.js';
import { ThinPool } from '../../../src/thin/index.js';
import { FAKE_FILESYSTEM_UUID, FakeKernel, SimulatedCrash, fakeBlockDevices, fakeFsTools } from '../../../src/testing/index.js';
import { DeviceSet } from '../../../src/deviceset/device-set.js';
import type { DeviceSetInit } from '../../../src/deviceset/types.js';
import { MetadataStore, nodeMetadataFs, type MetadataFile, type MetadataFs } from '../../../src/deviceset/metadata.js';
import { DeviceSetLockedError } from '../../../src/deviceset/errors.js';
import { RootLock } from '../../../src/deviceset/root-lock.js';
import type { FsTools } from '../../../src/deviceset/fs-tools.js';
import { dmNameFor } from '../../../src/deviceset/hash.js';

/** Tiny sizes: 16M base, 64K blocks, 64M sparse data file, 2M metadata. */
export const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.blocksize=64K', 'dm.min_free_space=0%'];
/** The fake /dev (so that real temp files may live on the /dev/shm tmpfs, where fsync is free). */
export const DEV_DIR = '/fakedev';
export const FAKE_UUID = FAKE_FILESYSTEM_UUID;

/**
 * MetadataFs that counts every call that changes or syncs the directory (mkdir, open, write,
 * fsync, close, rename, unlink) and, once armed, stops dead at step N: that call and every later
 * one throw SimulatedCrash. It also refuses to work once the fake kernel crashed (a dead process
 * writes no files).
 */
export class CountingMetadataFs implements MetadataFs {
  steps = 0;
  stopAt: number | undefined;
  dead = false;
  constructor(readonly fake: FakeKernel) {}
  #step(what: string): void {
    if (this.dead || this.fake.crashed) {
      this.dead = true;
      throw new SimulatedCrash(-1, 'before', `metadata ${what} after death`);
    }
    const i = this.steps++;
    if (this.stopAt !== undefined && i >= this.stopAt) {
      this.dead = true;
      this.fake.crashAfter(0); // the process is dead: no syscall after this either
      throw new SimulatedCrash(i, 'before', `metadata write step ${i} (${what})`);
    }
  }
  async mkdir(path: string, options: { recursive: true; mode: number }): Promise<void> {
    this.#step('mkdir');
    await nodeMetadataFs.mkdir(path, options);
  }
  readonly readdir = nodeMetadataFs.readdir;
  readonly readFile = nodeMetadataFs.readFile;
  async open(path: string, flags: number, mode?: number): Promise<MetadataFile> {
    this.#step('open');
    const file = await nodeMetadataFs.open(path, flags, mode);
    return {
      write: async (data, offset, length) => {
        this.#step('write');
        return file.write(data, offset, length);
      },
      sync: async () => {
        this.#step('fsync');
        await file.sync();
      },
      close: async () => {
        // The file is closed either way (a dead process's fds are closed by the kernel).
        try {
          this.#step('close');
        } finally {
          await file.close();
        }
      },
    };
  }
  async rename(from: string, to: string): Promise<void> {
    this.#step('rename');
    await nodeMetadataFs.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    this.#step('unlink');
    await nodeMetadataFs.unlink(path);
  }
}

/** One test world: a fake kernel and a temp root, reused across "process lifetimes". */
export class World {
  readonly fake = new FakeKernel({ sysfs: true, devDir: DEV_DIR });
  readonly tmp = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'dm-sweep-'));
  readonly root = join(this.tmp, 'root');
  mfs = new CountingMetadataFs(this.fake);
  #dms: DmControl[] = [];
  logs: string[] = [];
  /** Options of every init in this world (an op may change them: see SweptOp.options). */
  options: readonly string[] = OPTIONS;
  /** An external pool (dm.thinpooldev) made by the setup, which the DeviceSet must not own. */
  external: string | null = null;
  /** Thin ids another user of the external pool made: they must survive every crash. */
  foreign: number[] = [];

  /** FsTools: mkfs puts the mark through the fake; uuid is constant; grow does nothing. Dead after a crash. */
  tools(): FsTools {
    return fakeFsTools(this.fake);
  }

  /** Init options of a new "process": its own DmControl, LoopControl and metadata fs. */
  initOptions(extra: Partial<DeviceSetInit> = {}): DeviceSetInit {
    const dm = new DmControl({ devDir: DEV_DIR, syscalls: this.fake, sleep: async () => {}, udevRecheckMs: 0 });
    this.#dms.push(dm);
    this.mfs = extra.metadataFs instanceof CountingMetadataFs ? extra.metadataFs : new CountingMetadataFs(this.fake);
    const loops = new LoopControl({ devDir: DEV_DIR, syscalls: this.fake, sysfsRoot: this.fake.sysfsRoot ?? '/nonexistent', sleep: async () => {} });
    return {
      options: this.options,
      dm,
      loops,
      blockDevices: fakeBlockDevices(this.fake, loops),
      syscalls: this.fake,
      tools: this.tools(),
      metadataFs: this.mfs,
      crashPoint: () => {},
      deferredDeleteIntervalMs: 0,
      log: (level, message) => void this.logs.push(`${level}: ${message}`),
      ...extra,
    };
  }

  init(extra: Partial<DeviceSetInit> = {}): Promise<DeviceSet> {
    return DeviceSet.init(this.root, this.initOptions(extra));
  }

  /**
   * The process died: the kernel closes its fds (autoclear, deferred removes; and the root lock's
   * fd, which the DeviceSet opened through the fake: that drops its flock), or the machine
   * rebooted. The lock file keeps the dead owner's pid, which decides nothing.
   */
  die(reboot = false): void {
    if (reboot) this.fake.reboot();
    else this.fake.revive();
    this.mfs.dead = true;
  }

  dispose(): void {
    for (const dm of this.#dms) {
      try {
        dm.close();
      } catch {
        /* fd of a dead process */
      }
    }
    this.fake.dispose();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** True when `err` is (or was caused by) the simulated death. */
export function isCrash(err: unknown): boolean {
  for (let e: unknown = err, d = 0; e && d < 16; d++) {
    if (e instanceof SimulatedCrash) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Data marks written before an operation: dm-independent, by record hash. */
export type DataMarks = Map<string, number>;

/** Mapped block counts per thin id in the set's pool. */
export function poolThins(w: World, set: DeviceSet): Map<number, number> {
  const p = w.fake.pool(set.poolName);
  if (!p) throw new Error(`pool ${set.poolName} is not active`);
  return new Map(p.thins);
}

/**
 * The invariants a freshly inited set must satisfy (see issue 10). Returns problems (empty =
 * good). `marks`: hash → mapped blocks written before; a surviving record must still map them.
 */
export async function checkInvariants(w: World, set: DeviceSet, marks: DataMarks, gone: ReadonlySet<string> = new Set()): Promise<string[]> {
  const problems: string[] = [];
  const loaded = await new MetadataStore(w.root).loadAll();
  const pool = w.fake.pool(set.poolName);
  if (!pool) return [`pool ${set.poolName} not active after init`];
  if (loaded.transaction) problems.push(`open transaction left: ${JSON.stringify(loaded.transaction)}`);
  // The journal counts on the pool's transaction id only when the DeviceSet owns the pool; an
  // external pool's id is its manager's and must stay where it was (0: the ownership check).
  let journalTxid = pool.transactionId;
  if (w.external !== null) {
    if (pool.transactionId !== 0n) problems.push(`external pool transaction id moved to ${pool.transactionId}`);
    journalTxid = BigInt(loaded.deviceSet?.transactionId ?? -1);
    if (journalTxid < 0n) problems.push('no journal transaction id in the deviceset record of an external pool');
  }
  const recIds = new Map<number, string>();
  for (const r of loaded.devices.values()) {
    if (r.state === 'faulty') problems.push(`record ${r.hash || 'base'} is faulty: ${r.lastError ?? ''}`);
    if (r.state === 'creating') problems.push(`record ${r.hash || 'base'} still creating`);
    if (r.state === 'deleting' && !r.deleted) problems.push(`record ${r.hash || 'base'} deleting but not deferred`);
    if (recIds.has(r.deviceId)) problems.push(`thin id ${r.deviceId} claimed twice`);
    recIds.set(r.deviceId, r.hash);
    if (BigInt(r.transactionId) > journalTxid) problems.push(`record ${r.hash || 'base'} txid ${r.transactionId} > journal ${journalTxid}`);
  }
  // Ids an external pool's other users made, and ids recovery could not prove ours (quarantined),
  // are not ours to account for; the foreign ones must all still be there.
  const quarantined = new Set((loaded.deviceSet?.quarantinedIds ?? []).map((q) => q.deviceId));
  for (const id of w.foreign) if (!pool.thins.has(id)) problems.push(`foreign thin ${id} was deleted`);
  for (const id of quarantined) if (recIds.has(id)) problems.push(`quarantined thin ${id} is claimed by record ${recIds.get(id) || 'base'}`);
  const poolIds = [...pool.thins.keys()].filter((id) => !w.foreign.includes(id) && !quarantined.has(id)).sort((a, b) => a - b);
  const ids = [...recIds.keys()].sort((a, b) => a - b);
  if (poolIds.join(',') !== ids.join(',')) problems.push(`pool thin ids [${poolIds}] ≠ record ids [${ids}]`);
  const base = loaded.devices.get('');
  if (!base || base.state !== 'ready' || !base.initialized) problems.push('base record missing or not ready/initialized');
  // verifyBase copies the uuid into whichever of the two records a crash left without it.
  if (loaded.deviceSet?.baseFilesystemUuid !== FAKE_UUID) problems.push(`the deviceset record's base uuid is ${loaded.deviceSet?.baseFilesystemUuid}`);
  if (base?.filesystemUuid !== FAKE_UUID) problems.push(`the base record's uuid is ${base?.filesystemUuid}`);
  for (const [hash, blocks] of marks) {
    if (gone.has(hash)) continue;
    const r = loaded.devices.get(hash);
    if (!r) {
      problems.push(`record ${hash || 'base'} with data vanished`);
      continue;
    }
    const mapped = pool.thins.get(r.deviceId) ?? -1;
    if (mapped !== blocks) problems.push(`${hash || 'base'} (thin ${r.deviceId}) maps ${mapped} blocks, had ${blocks}`);
  }
  // Leaks: the pool, its two loops, and devices of known records only.
  const known = new Set([set.poolName, ...[...loaded.devices.keys()].map((h) => dmNameFor(set.prefix, h))]);
  for (const d of w.fake.devices()) if (!known.has(d.name)) problems.push(`leaked dm device ${d.name}`);
  const bound = w.fake.loops().filter((l) => l.bound);
  if (bound.length !== 2) problems.push(`${bound.length} bound loops, expected 2`);
  return problems;
}

/** True when nobody holds `<root>/devmapper.lock` (a new acquire through the real kernel succeeds). */
export function lockIsFree(root: string): boolean {
  try {
    RootLock.acquire(root).release();
    return true;
  } catch (err) {
    if (err instanceof DeviceSetLockedError) return false;
    throw err;
  }
}

/** After the final shutdown: no dm device, no loop, no lock (an external pool and its loops stay). */
export function checkClean(w: World): string[] {
  const problems: string[] = [];
  for (const d of w.fake.devices()) if (d.name !== w.external) problems.push(`dm device ${d.name} left after shutdown`);
  if (w.external !== null && !w.fake.device(w.external)) problems.push(`the external pool ${w.external} was removed`);
  const externalLoops = w.external !== null ? 2 : 0;
  const bound = w.fake.loops().filter((l) => l.bound);
  if (bound.length !== externalLoops) for (const l of bound) problems.push(`loop${l.index} (${l.backingFile}) left bound after shutdown`);
  if (!lockIsFree(w.root)) problems.push('root lock still held after shutdown');
  return problems;
}

/** Activates `hash`, writes `count` blocks from `first`, deactivates; returns the new mapped count. */
export async function writeData(w: World, set: DeviceSet, hash: string, first: number, count: number, keepActive = false): Promise<number> {
  await set.activateDevice(hash);
  const name = set.deviceInfo(hash).dmName;
  w.fake.writeThin(name, first, count);
  if (!keepActive) await set.deactivateDevice(hash);
  return poolThins(w, set).get(set.deviceInfo(hash).deviceId) ?? 0;
}

/** One swept operation: a setup in the "process" that will die, then the operation itself. */
export interface SweptOp {
  readonly name: string;
  /** Runs before the operation; returns the live set (null for init) and the data marks. */
  setup(w: World): Promise<{ set: DeviceSet | null; marks: DataMarks }>;
  /** The operation; for init it returns the new set. */
  run(w: World, set: DeviceSet | null): Promise<DeviceSet | void>;
  /** Hashes the operation may legitimately make vanish (their data marks are not checked). */
  readonly gone: ReadonlySet<string>;
  /** The op starts a new process (an init): it gets its own metadata fs, as 'init' does. */
  readonly startsProcess?: boolean;
  /** Options of the op and of the recovering init (default: those of the setup). */
  readonly options?: readonly string[];
  /** Extra invariants after the recovering init. */
  readonly check?: (w: World, set: DeviceSet) => string[] | Promise<string[]>;
}

/**
 * An external pool (what LVM would manage) over two fake loop devices, for dm.thinpooldev:
 * transaction id 0 and no thin ids, as Docker's ownership check requires on first use.
 */
async function externalPool(w: World, metadata: 'new' | 'reuse' = 'new'): Promise<string> {
  const loops = new LoopControl({ devDir: DEV_DIR, syscalls: w.fake, sysfsRoot: w.fake.sysfsRoot ?? '/nonexistent', sleep: async () => {} });
  const dm = new DmControl({ devDir: DEV_DIR, syscalls: w.fake, sleep: async () => {}, udevRecheckMs: 0 });
  const files = ['ext-data', 'ext-meta'].map((f) => join(w.tmp, f));
  await ensureSparseFile(files[0]!, 64n << 20n);
  await ensureSparseFile(files[1]!, 2n << 20n);
  const data = await loops.attach(files[0]!, { autoclear: false });
  const meta = await loops.attach(files[1]!, { autoclear: false });
  const name = 'external-thinpool';
  await ThinPool.create(dm, { name, dataDev: data.path, metadataDev: meta.path, dataBlockSize: 128, lowWaterMark: 0, metadata, blockDevices: fakeBlockDevices(w.fake, loops) });
  data.close();
  meta.close();
  dm.close();
  w.external = name;
  w.options = EXTERNAL_OPTIONS;
  return name;
}

/** After a reboot the external pool's manager (LVM at boot) activates it again over the same files. */
export async function bootExternalPool(w: World): Promise<void> {
  if (w.external !== null && !w.fake.device(w.external)) await externalPool(w, 'reuse');
}

/** dm.thinpooldev instead of loop files (the data/metadata/blocksize keys are refused with it). */
const EXTERNAL_OPTIONS = ['dm.thinpooldev=external-thinpool', 'dm.basesize=16M', 'dm.min_free_space=0%'];
/** OPTIONS with a larger dm.basesize: the next init grows the base filesystem. */
const GROWN_BASE_OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=32M', 'dm.blocksize=64K', 'dm.min_free_space=0%'];

/** No grow left in flight, no grow mount left, and `hash` (when it exists) at `bytes`. */
function grownTo(hash: string, bytes: bigint) {
  return async (w: World, set: DeviceSet): Promise<string[]> => {
    const problems: string[] = [];
    for (const r of (await new MetadataStore(w.root).loadAll()).devices.values()) if (r.growTo !== undefined) problems.push(`${r.hash || 'base'} still has a grow in flight`);
    if (w.fake.mounts().length > 0) problems.push(`mounts left: ${w.fake.mounts().map((m) => m.target).join(', ')}`);
    if (set.hasDevice(hash) && set.deviceInfo(hash).size !== bytes) problems.push(`${hash || 'base'} is ${set.deviceInfo(hash).size} bytes, want ${bytes}`);
    return problems;
  };
}

/** OPTIONS with both loop files larger: a restart must grow the pool a dead process left live. */
const GROWN_OPTIONS = ['dm.loopdatasize=96M', 'dm.loopmetadatasize=3M', 'dm.basesize=16M', 'dm.blocksize=64K', 'dm.min_free_space=0%'];

async function standard(w: World, activeA = false): Promise<{ set: DeviceSet; marks: DataMarks }> {
  const set = await w.init();
  const marks: DataMarks = new Map();
  await set.addDevice('a', '');
  marks.set('a', await writeData(w, set, 'a', 0, 3));
  await set.addDevice('b', 'a');
  marks.set('b', await writeData(w, set, 'b', 5, 2, activeA));
  marks.set('a', poolThins(w, set).get(set.deviceInfo('a').deviceId) ?? 0);
  return { set, marks };
}

export const OPS: readonly SweptOp[] = [
  {
    name: 'init',
    setup: async () => ({ set: null, marks: new Map() }),
    run: (w) => w.init(),
    gone: new Set(),
  },
  {
    name: 'addDevice',
    setup: (w) => standard(w),
    run: async (_w, set) => void (await set!.addDevice('c', 'b')),
    gone: new Set(),
  },
  {
    name: 'deleteDevice',
    setup: (w) => standard(w),
    run: async (_w, set) => void (await set!.deleteDevice('a')),
    gone: new Set(['a']),
  },
  {
    // A group commit (journal.ts): three snapshots of one parent share one intent directory fsync and one commit.
    name: 'addDevice ×3 concurrently (one batch)',
    setup: (w) => standard(w),
    run: async (_w, set) => void (await Promise.all(['c0', 'c1', 'c2'].map((h) => set!.addDevice(h, 'b')))),
    gone: new Set(),
  },
  {
    name: 'deleteDevice ×2 concurrently (one batch)',
    setup: (w) => standard(w),
    run: async (_w, set) => void (await Promise.all(['a', 'b'].map((h) => set!.deleteDevice(h)))),
    gone: new Set(['a', 'b']),
  },
  {
    name: 'addDevice and deleteDevice concurrently',
    setup: (w) => standard(w),
    run: async (_w, set) => void (await Promise.all([set!.addDevice('c', 'a'), set!.deleteDevice('b')])),
    gone: new Set(['b']),
  },
  {
    name: 'resizePool',
    setup: (w) => standard(w),
    run: async (_w, set) => set!.resizePool('96M'),
    gone: new Set(),
  },
  {
    name: 'shutdown',
    setup: (w) => standard(w, true),
    run: async (_w, set) => set!.shutdown(),
    gone: new Set(),
  },
  {
    // A process died with the pool live; the next one starts with larger dm.loop*size options.
    name: 'init growing a live pool',
    setup: async (w) => {
      const { marks } = await standard(w);
      w.die();
      w.options = GROWN_OPTIONS;
      return { set: null, marks };
    },
    run: (w) => w.init(),
    gone: new Set(),
    startsProcess: true,
    check: (w, set) => {
      const pool = w.fake.pool(set.poolName);
      const want = (96 << 20) / (64 << 10);
      const problems: string[] = [];
      if (pool?.dataBlocks !== want) problems.push(`pool has ${pool?.dataBlocks} data blocks, want ${want}`);
      if (pool?.metadataBlocks !== (3 << 20) / 4096) problems.push(`pool has ${pool?.metadataBlocks} metadata blocks, want ${(3 << 20) / 4096}`);
      return problems;
    },
  },
  {
    // A process died; the next one starts with a larger dm.basesize and grows the base filesystem.
    name: 'init growing the base',
    setup: async (w) => {
      const { marks } = await standard(w);
      w.die();
      w.options = GROWN_BASE_OPTIONS;
      return { set: null, marks };
    },
    run: (w) => w.init(),
    gone: new Set(),
    startsProcess: true,
    check: grownTo('', 32n << 20n),
  },
  {
    name: 'addDevice with a larger size (filesystem grow)',
    setup: (w) => standard(w),
    run: async (_w, set) => void (await set!.addDevice('c', 'b', { size: '32M' })),
    gone: new Set(),
    check: grownTo('c', 32n << 20n),
  },
  {
    // Another user of the external pool made thin 4, the id the DeviceSet would pick next.
    name: 'addDevice on an external pool holding a foreign thin id',
    setup: async (w) => {
      const name = await externalPool(w);
      const out = await standard(w);
      const dm = new DmControl({ devDir: DEV_DIR, syscalls: w.fake, sleep: async () => {}, udevRecheckMs: 0 });
      await (await ThinPool.open(dm, name)).createThin(4);
      dm.close();
      w.foreign = [4];
      return out;
    },
    run: async (_w, set) => void (await set!.addDevice('c', 'b')),
    gone: new Set(),
  },
  {
    name: 'addDevice on an external pool',
    setup: async (w) => {
      await externalPool(w);
      return standard(w);
    },
    run: async (_w, set) => void (await set!.addDevice('c', 'b')),
    gone: new Set(),
  },
  {
    name: 'deleteDevice on an external pool',
    setup: async (w) => {
      await externalPool(w);
      return standard(w);
    },
    run: async (_w, set) => void (await set!.deleteDevice('a')),
    gone: new Set(['a']),
  },
];

/** Runs setup + op cleanly once; returns the op's syscall and metadata-step counts. */
export async function measure(op: SweptOp): Promise<{ calls: number; steps: number }> {
  const w = new World();
  try {
    const { set } = await op.setup(w);
    const c0 = w.fake.callCount;
    const fresh = op.name === 'init' || op.startsProcess === true;
    if (op.startsProcess) w.mfs = new CountingMetadataFs(w.fake);
    const m0 = fresh ? 0 : w.mfs.steps;
    const out = await (op.startsProcess ? w.init({ metadataFs: w.mfs }) : op.run(w, set));
    const calls = w.fake.callCount - c0;
    const steps = fresh ? w.mfs.steps : w.mfs.steps - m0;
    const s = out instanceof DeviceSet ? out : set;
    if (s && op.name !== 'shutdown') await s.shutdown();
    return { calls, steps };
  } finally {
    w.dispose();
  }
}

/**
 * What to do to the live set before the op: arm a crash at syscall N, a stop at metadata step N,
 * or a fault. Returns the problems found after recovery (empty = fine) and what the op did.
 */
export async function runOnce(
  op: SweptOp,
  arm: (w: World) => void,
  opts: { reboot?: boolean; expectCrash: boolean },
): Promise<{ problems: string[]; outcome: 'crash' | 'ok' | 'typed-error'; error?: unknown }> {
  const w = new World();
  const problems: string[] = [];
  let outcome: 'crash' | 'ok' | 'typed-error' = 'ok';
  let error: unknown;
  try {
    const { set, marks } = await op.setup(w);
    const startsProcess = op.name === 'init' || op.startsProcess === true;
    if (startsProcess) w.mfs = new CountingMetadataFs(w.fake);
    arm(w);
    const mfsForInit = w.mfs;
    try {
      const out = startsProcess ? await w.init({ metadataFs: mfsForInit }) : await op.run(w, set);
      if (w.fake.crashed || w.mfs.dead) outcome = 'crash';
      void out;
    } catch (err) {
      error = err;
      if (isCrash(err) || (opts.expectCrash && (w.fake.crashed || w.mfs.dead))) outcome = 'crash';
      else if (err instanceof Error && (err as { code?: unknown }).code !== undefined && isDevmapperError(err)) outcome = 'typed-error';
      else {
        problems.push(`untyped error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
        outcome = 'typed-error';
      }
      if (opts.expectCrash && outcome !== 'crash') problems.push(`expected a crash, got ${String(err)}`);
    }
    if (opts.expectCrash && outcome === 'ok') problems.push('the armed crash never fired');
    // The process dies (or a crash-free run is abandoned), then a new one inits the same root.
    w.die(opts.reboot === true);
    await bootExternalPool(w);
    let set2: DeviceSet;
    try {
      set2 = await w.init();
    } catch (err) {
      problems.push(`re-init failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      return { problems, outcome, error };
    }
    // Uncommitted pool changes die with a reboot; data writes were committed, so marks hold.
    problems.push(...(await checkInvariants(w, set2, marks, op.gone)));
    if (op.check) problems.push(...(await op.check(w, set2)));
    await set2.shutdown();
    problems.push(...checkClean(w));
    return { problems, outcome, error };
  } catch (err) {
    problems.push(`harness: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { problems, outcome, error };
  } finally {
    w.dispose();
  }
}

import { DevmapperError } from '../../../src/errors.js';
function isDevmapperError(err: unknown): boolean {
  return err instanceof DevmapperError && typeof (err as { code?: unknown }).code === 'string';
}
