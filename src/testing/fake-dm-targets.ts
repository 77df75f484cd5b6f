// SPDX-License-Identifier: MIT
// The FakeKernel's dm targets: constructors, table and status lines and messages of linear, zero,
// error (drivers/md/dm-linear.c, dm-zero.c, dm-target.c), thin-pool and thin (drivers/md/dm-thin.c,
// with the pool itself modelled in thin-model.ts), and dm_get_device (drivers/md/dm-table.c).
import { statSync } from 'node:fs';
import { makedev, minor as devMinor, S_IFBLK, S_IFMT, type StatResult } from '../ioctl/index.js';
import { FakeIoError, kerr } from './errors.js';
import {
  emptyMetadata,
  parseMetadata,
  type PoolFeatures,
  poolFeatureText,
  THIN_MAX_DEV_ID,
  THIN_METADATA_BLOCK_BYTES,
  THIN_METADATA_MAX_BLOCKS,
  type ThinMetadata,
  ThinPoolModel,
} from './thin-model.js';
import type { FakeTableLine } from './fake-types.js';
import {
  type DmDev,
  type FakeState,
  type FakeTable,
  type FakeTarget,
  fmtDev,
  type PoolEntry,
  realStat,
  type TargetKind,
  type DmTargetsPort,
} from './fake-state.js';

/** Target types the fake constructs, with the versions it reports (those of Linux 6.1). */
export const TARGET_TYPES: readonly { name: string; version: [number, number, number] }[] = [
  { name: 'thin-pool', version: [1, 23, 0] },
  { name: 'thin', version: [1, 23, 0] },
  { name: 'zero', version: [1, 2, 0] },
  { name: 'error', version: [1, 6, 0] },
  { name: 'linear', version: [1, 4, 0] },
];

/** dm_split_args: whitespace-separated words, `\` escapes the next character. */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

export const isUint = (s: string | undefined): s is string => s !== undefined && /^\d+$/.test(s);

/** Target constructors, status/table text and messages (drivers/md/dm-thin.c, dm-linear.c, dm-table.c). */
export class DmTargets implements DmTargetsPort {
  readonly #s: FakeState;

  constructor(s: FakeState) {
    this.#s = s;
  }

  /** The STATUSTYPE_TABLE line of a target (its constructor arguments, devices as maj:min). */
  tableText(x: FakeTarget): string {
    const i = x.impl;
    switch (i.kind) {
      case 'linear':
        return `${fmtDev(i.dev)} ${i.offset}`;
      case 'zero':
      case 'error':
        return '';
      case 'thin-pool':
        return `${fmtDev(i.metaDev)} ${fmtDev(i.dataDev)} ${i.blockSize} ${i.lowWater} ${poolFeatureText(i.features)}`;
      case 'thin':
        return `${fmtDev(i.poolDev)} ${i.id}${i.origin !== null ? ` ${fmtDev(i.origin)}` : ''}`;
    }
  }

  /** The STATUSTYPE_INFO line: pool_status / thin_status (dm-thin.c), empty for the rest. */
  statusText(md: DmDev, x: FakeTarget, noflush: boolean): string {
    const i = x.impl;
    if (i.kind === 'thin-pool') {
      const e = this.#s.pools.get(md.minor);
      if (!e) return 'Error';
      if (!noflush && !md.suspended) e.model.commit();
      return e.model.infoStatus();
    }
    if (i.kind === 'thin') {
      const pmd = this.#s.dmByMinor.get(devMinor(i.poolDev));
      const e = pmd ? this.#s.pools.get(pmd.minor) : undefined;
      return e ? e.model.thinStatus(i.id) : 'Fail';
    }
    return '';
  }

  /** pool_message (dm-thin.c); the fs marks follow create_snap and vanish with delete. */
  poolMessage(e: PoolEntry, argv: string[]): void {
    const before = new Set(e.model.meta.devices.keys());
    e.model.message(argv);
    const cmd = argv[0]!.toLowerCase();
    const key = this.#s.block.storageKey(e.metaDev);
    if (cmd === 'create_snap') {
      const mark = this.#s.fsMarks.get(`thin:${key}:${argv[2]}`);
      if (mark) this.#s.fsMarks.set(`thin:${key}:${argv[1]}`, mark);
    }
    if (cmd === 'delete' || cmd === 'create_thin') {
      for (const id of [...before, ...e.model.meta.devices.keys()]) {
        if (!e.model.meta.devices.has(id) || !before.has(id)) this.#s.fsMarks.delete(`thin:${key}:${id}`);
      }
    }
  }

  /** dm_get_device: `maj:min` or a path to a block node; the device must exist. */
  getDevice(arg: string | undefined, table: FakeTable, self: DmDev): bigint {
    if (arg === undefined) throw kerr('EINVAL', 'device argument missing');
    let dev: bigint;
    const m = /^(\d+):(\d+)$/.exec(arg);
    if (m) {
      const ma = Number(m[1]);
      const mi = Number(m[2]);
      if (ma > 0xfff || mi > 0xfffff) throw kerr('EOVERFLOW');
      dev = makedev(ma, mi);
    } else {
      let st: StatResult;
      if (this.#s.devfs.owns(arg)) st = this.#s.devfs.stat(arg);
      else st = realStat(() => statSync(arg, { bigint: true }));
      if ((st.mode & S_IFMT) !== S_IFBLK) throw kerr('ENOTBLK', arg);
      dev = st.rdev;
    }
    if (dev === self.dev) throw kerr('EINVAL', 'table refers to its own device');
    const md = this.#s.block.mdOf(dev);
    if (!this.#s.block.loopOf(dev) && !(md && md.diskAdded)) throw kerr('ENXIO', `no device ${fmtDev(dev)}`);
    if (!table.devices.includes(dev)) table.devices.unshift(dev);
    return dev;
  }

  /** The target type's constructor (linear_ctr, zero_ctr, pool_ctr, thin_ctr …). */
  construct(md: DmDev, type: string, params: string, length: bigint, table: FakeTable): TargetKind {
    const argv = splitArgs(params);
    switch (type) {
      case 'linear': {
        if (argv.length !== 2) throw kerr('EINVAL', 'invalid argument count');
        const dev = this.getDevice(argv[0], table, md);
        if (!isUint(argv[1])) throw kerr('EINVAL', 'invalid device sector');
        return { kind: 'linear', dev, offset: BigInt(argv[1]) };
      }
      case 'zero':
        if (argv.length !== 0) throw kerr('EINVAL', 'no arguments required');
        return { kind: 'zero' };
      case 'error':
        return { kind: 'error' };
      case 'thin-pool':
        return this.poolCtr(md, argv, length, table);
      case 'thin':
        return this.thinCtr(md, argv, table);
      default:
        throw kerr('EINVAL', `unknown target type ${type}`);
    }
  }

  /** pool_ctr (dm-thin.c): feature args, the devices, block size, low water; opens the pool. */
  poolCtr(md: DmDev, argv: string[], length: bigint, table: FakeTable): TargetKind {
    if (argv.length < 4) throw kerr('EINVAL', 'invalid argument count');
    const features: PoolFeatures = { skipBlockZeroing: false, ignoreDiscard: false, noDiscardPassdown: false, readOnly: false, errorIfNoSpace: false };
    if (argv.length > 4) {
      const n = argv[4];
      if (!isUint(n) || Number(n) > 4 || Number(n) !== argv.length - 5) throw kerr('EINVAL', 'invalid number of pool feature arguments');
      for (const f of argv.slice(5)) {
        switch (f.toLowerCase()) {
          case 'skip_block_zeroing':
            features.skipBlockZeroing = true;
            break;
          case 'ignore_discard':
            features.ignoreDiscard = true;
            break;
          case 'no_discard_passdown':
            features.noDiscardPassdown = true;
            break;
          case 'read_only':
            features.readOnly = true;
            break;
          case 'error_if_no_space':
            features.errorIfNoSpace = true;
            break;
          default:
            throw kerr('EINVAL', `unrecognised pool feature ${f}`);
        }
      }
    }
    if (argv[0] === argv[1]) throw kerr('EINVAL', 'metadata and data devices must differ');
    const metaDev = this.getDevice(argv[0], table, md);
    const dataDev = this.getDevice(argv[1], table, md);
    const bs = argv[2];
    if (!isUint(bs) || Number(bs) < 128 || Number(bs) > 2_097_152 || Number(bs) % 128 !== 0) throw kerr('EINVAL', 'invalid block size');
    if (!isUint(argv[3])) throw kerr('EINVAL', 'invalid low water mark');
    const blockSize = Number(bs);
    const lowWater = BigInt(argv[3]);
    for (const [minor, e] of this.#s.pools) {
      if (minor === md.minor) continue;
      if (e.metaDev === metaDev) throw kerr('EBUSY', 'metadata device already in use by a pool');
      if (e.dataDev === dataDev) throw kerr('EBUSY', 'data device already in use by a pool');
    }
    const existing = this.#s.pools.get(md.minor);
    if (existing) {
      if (existing.metaDev !== metaDev) throw kerr('EINVAL', 'different pool cannot replace a pool');
      if (existing.model.meta.dataBlockSize !== blockSize) throw kerr('EINVAL', 'changing the data block size is not supported');
    } else {
      const meta = this.openPoolMetadata(metaDev, blockSize, features.readOnly);
      const model = new ThinPoolModel(meta, features, (m) => this.#s.block.persistMetadata(metaDev, m), () => {
        const owner = this.#s.dmByMinor.get(md.minor);
        if (owner) this.#s.dmIoctl.mdEvent(owner);
      });
      model.lowWaterBlocks = lowWater;
      // drivers/md/dm-thin.c: the `read_only` feature sets pf.mode = PM_READ_ONLY, which
      // bind_control_target() applies: status says `ro` and commit() never writes the metadata.
      if (features.readOnly) model.mode = 'ro';
      this.#s.pools.set(md.minor, { model, md, metaDev, dataDev });
      void length;
    }
    return { kind: 'thin-pool', metaDev, dataDev, blockSize, lowWater, features };
  }

  /** dm_pool_metadata_open: reads the superblock, formats an all-zero device. */
  openPoolMetadata(metaDev: bigint, blockSize: number, readOnly: boolean): ThinMetadata {
    const block = this.#s.block.readStorage(metaDev, 1 << 20);
    const parsed = parseMetadata(block);
    if (parsed === 'garbage') throw kerr('EILSEQ', 'superblock validation failed');
    if (parsed === 'unformatted') {
      if (readOnly) throw kerr('EPERM', 'cannot format metadata in read_only mode');
      const meta = emptyMetadata(blockSize, this.metadataBlocksOf(metaDev));
      this.#s.block.persistMetadata(metaDev, meta);
      return meta;
    }
    if (parsed.dataBlockSize !== blockSize) throw kerr('EINVAL', 'changing the data block size is not supported');
    return parsed;
  }

  /** Metadata device size in 4 KiB blocks, capped as dm-thin-metadata.c does. */
  metadataBlocksOf(dev: bigint): number {
    return Math.min(THIN_METADATA_MAX_BLOCKS, Number(this.#s.block.sizeBytes(dev) / BigInt(THIN_METADATA_BLOCK_BYTES)));
  }

  /** thin_ctr (dm-thin.c): the pool device, the thin id, an optional external origin. */
  thinCtr(md: DmDev, argv: string[], table: FakeTable): TargetKind {
    if (argv.length !== 2 && argv.length !== 3) throw kerr('EINVAL', 'invalid argument count');
    const origin = argv.length === 3 ? this.getDevice(argv[2], table, md) : null;
    const poolDev = this.getDevice(argv[0], table, md);
    const pmd = this.#s.block.mdOf(poolDev);
    if (!pmd) throw kerr('EINVAL', "couldn't get pool mapped device");
    const idArg = argv[1];
    if (!isUint(idArg) || BigInt(idArg) > BigInt(THIN_MAX_DEV_ID)) throw kerr('EINVAL', 'invalid device id');
    const id = Number(idArg);
    const e = this.#s.pools.get(pmd.minor);
    if (!e) throw kerr('EINVAL', "couldn't find pool object");
    if (e.model.mode === 'fail') throw kerr('EINVAL', 'pool in fail mode');
    if (!e.model.meta.devices.has(id)) throw kerr('ENODATA', `thin id ${id} not in pool`);
    if (e.model.suspended) throw kerr('EINVAL', 'unable to activate thin device while pool is suspended');
    e.model.openThins.set(id, (e.model.openThins.get(id) ?? 0) + 1);
    return { kind: 'thin', poolDev, id, origin };
  }

  /** The destructors: thin_dtr releases its thin id. */
  releaseTargets(targets: readonly FakeTarget[]): void {
    for (const t of targets) {
      if (t.impl.kind !== 'thin') continue;
      const pmd = this.#s.dmByMinor.get(devMinor(t.impl.poolDev));
      const e = pmd ? this.#s.pools.get(pmd.minor) : undefined;
      if (!e) continue;
      const n = (e.model.openThins.get(t.impl.id) ?? 1) - 1;
      if (n > 0) e.model.openThins.set(t.impl.id, n);
      else e.model.openThins.delete(t.impl.id);
    }
  }

  /** Destroys a table that is no longer live or staged: thin ids released, pool freed when unused. */
  releaseTable(md: DmDev, t: FakeTable, settle = true): void {
    this.releaseTargets(t.targets);
    this.dropPoolIfUnused(md);
    if (settle) this.#s.block.settle();
  }

  /** Pool destruction (__pool_dec): the last table using it gone, it commits and goes. */
  dropPoolIfUnused(md: DmDev): void {
    const e = this.#s.pools.get(md.minor);
    if (!e || e.md !== md) return;
    const uses = (t: FakeTable | null): boolean => !!t?.targets.some((x) => x.impl.kind === 'thin-pool');
    if (this.#s.dm.get(md.name) === md && (uses(md.live) || uses(md.inactive))) return;
    e.model.commit();
    this.#s.pools.delete(md.minor);
  }

  /** Inspection rows of a table (FakeKernel.devices). */
  lines(t: FakeTable, table: boolean): FakeTableLine[] {
    return t.targets.map((x) => ({ start: x.start, length: x.length, type: x.type, params: table ? this.tableText(x) : '' }));
  }

  /** The pool entry of the thin-pool device `name` (for the inspection API). */
  poolByName(name: string): PoolEntry {
    const md = this.#s.dm.get(name);
    const e = md ? this.#s.pools.get(md.minor) : undefined;
    if (!e) throw new Error(`no thin pool device named ${name}`);
    return e;
  }

  /** The pool, thin id and dm device of the active thin device `name` (writeThin, discardThin). */
  thinByName(name: string): { entry: PoolEntry; id: number; md: DmDev } {
    const md = this.#s.dm.get(name);
    const t = md?.live?.targets[0]?.impl;
    if (!md || !t || t.kind !== 'thin') throw new Error(`${name} is not an active thin device`);
    if (md.suspended) throw new Error(`${name} is suspended: the write would block`);
    const pmd = this.#s.dmByMinor.get(devMinor(t.poolDev));
    const entry = pmd ? this.#s.pools.get(pmd.minor) : undefined;
    if (!entry) throw new FakeIoError('EIO', 'pool gone');
    return { entry, id: t.id, md };
  }
}
