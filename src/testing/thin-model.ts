// SPDX-License-Identifier: MIT
// The fake kernel's dm-thin pool: metadata (transaction id, thin ids, block mappings with shared
// data blocks after snapshots, held metadata root), pool messages with the errnos of
// drivers/md/dm-thin.c / dm-thin-metadata.c, data-block allocation down to out_of_data_space,
// and the INFO/TABLE status lines in the kernel's exact format. Persistence is the caller's.
import { kerr, FakeIoError } from './errors.js';

/** `MAX_DEV_ID` of dm-thin: thin ids are 24-bit. */
export const THIN_MAX_DEV_ID = (1 << 24) - 1;
/** Metadata block size (4 KiB). */
export const THIN_METADATA_BLOCK_BYTES = 4096;
/** Largest usable metadata device, in 4 KiB blocks (255 × (16384 − 64)). */
export const THIN_METADATA_MAX_BLOCKS = 4_161_600;

/** The pool's committed or working metadata. */
export interface ThinMetadata {
  transactionId: bigint;
  /** Held metadata root (reserve_metadata_snap), or null. */
  heldRoot: bigint | null;
  dataBlockSize: number;
  /** Data blocks recorded (0 until the first resume sets it from the table length). */
  dataBlocks: number;
  metadataBlocks: number;
  needsCheck: boolean;
  /** Thin id → (virtual block → data block). */
  devices: Map<number, Map<number, number>>;
}

/** Requested pool features (pool table line), in the kernel's emit order. */
export interface PoolFeatures {
  skipBlockZeroing: boolean;
  ignoreDiscard: boolean;
  noDiscardPassdown: boolean;
  readOnly: boolean;
  errorIfNoSpace: boolean;
}

/** Pool mode; 'fail' prints `Fail`, 'ro' also stands for out-of-metadata-space. */
export type FakePoolMode = 'rw' | 'out_of_data_space' | 'ro' | 'fail';

export function emptyMetadata(dataBlockSize: number, metadataBlocks: number): ThinMetadata {
  return { transactionId: 0n, heldRoot: null, dataBlockSize, dataBlocks: 0, metadataBlocks, needsCheck: false, devices: new Map() };
}

export function cloneMetadata(m: ThinMetadata): ThinMetadata {
  return { ...m, devices: new Map([...m.devices].map(([id, map]) => [id, new Map(map)])) };
}

const MAGIC = 'DEVMAPPER-FAKE-THIN-METADATA v2\n'; // 32 bytes: fills the space before the real magic
/** Where dm-thin-metadata.c's superblock has its magic (u64 LE 27022010) and data_block_size (u32 LE). */
const SB_MAGIC_OFFSET = 32;
const SB_MAGIC = 27022010n;
const SB_DATA_BLOCK_SIZE_OFFSET = 336;

/**
 * Serialises metadata for the metadata device (the fake writes it at offset 0 of the device's
 * backing storage, so zeroing the first 4 KiB "unformats" the pool exactly like on a real kernel).
 * Block 0 looks like a thin superblock to a reader of the device head (the real magic and data
 * block size at their offsets, as classifyMetadataHead checks them); the state itself is JSON from
 * block 1 on, NUL-terminated.
 */
export function serializeMetadata(m: ThinMetadata): Buffer {
  const json = JSON.stringify({
    transactionId: m.transactionId.toString(),
    heldRoot: m.heldRoot === null ? null : m.heldRoot.toString(),
    dataBlockSize: m.dataBlockSize,
    dataBlocks: m.dataBlocks,
    metadataBlocks: m.metadataBlocks,
    needsCheck: m.needsCheck,
    devices: [...m.devices].map(([id, map]) => [id, [...map]]),
  });
  const sb = Buffer.alloc(THIN_METADATA_BLOCK_BYTES);
  sb.write(MAGIC, 0, 'utf8');
  sb.writeBigUInt64LE(SB_MAGIC, SB_MAGIC_OFFSET);
  sb.writeUInt32LE(m.dataBlockSize >>> 0, SB_DATA_BLOCK_SIZE_OFFSET);
  return Buffer.concat([sb, Buffer.from(json, 'utf8'), Buffer.alloc(1)]);
}

/** 'unformatted' when block 0 is all zero, else the parsed metadata, else 'garbage'. */
export function parseMetadata(block: Buffer): ThinMetadata | 'unformatted' | 'garbage' {
  if (block.subarray(0, THIN_METADATA_BLOCK_BYTES).every((b) => b === 0)) return 'unformatted';
  if (block.length <= THIN_METADATA_BLOCK_BYTES || block.toString('utf8', 0, MAGIC.length) !== MAGIC) return 'garbage';
  const end = block.indexOf(0, THIN_METADATA_BLOCK_BYTES);
  const text = block.toString('utf8', THIN_METADATA_BLOCK_BYTES, end < 0 ? block.length : end);
  try {
    const o = JSON.parse(text) as {
      transactionId: string;
      heldRoot: string | null;
      dataBlockSize: number;
      dataBlocks: number;
      metadataBlocks: number;
      needsCheck: boolean;
      devices: [number, [number, number][]][];
    };
    return {
      transactionId: BigInt(o.transactionId),
      heldRoot: o.heldRoot === null ? null : BigInt(o.heldRoot),
      dataBlockSize: o.dataBlockSize,
      dataBlocks: o.dataBlocks,
      metadataBlocks: o.metadataBlocks,
      needsCheck: o.needsCheck,
      devices: new Map(o.devices.map(([id, pairs]) => [id, new Map(pairs)])),
    };
  } catch {
    return 'garbage';
  }
}

function parseU64Arg(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v < 1n << 64n ? v : undefined;
}

/** `read_dev_id`: decimal ≤ MAX_DEV_ID, else EINVAL. */
function devIdArg(s: string | undefined): number {
  const v = parseU64Arg(s);
  if (v === undefined || v > BigInt(THIN_MAX_DEV_ID)) throw kerr('EINVAL', `bad thin id ${s}`);
  return Number(v);
}

function argCount(argv: readonly string[], n: number): void {
  if (argv.length !== n) throw kerr('EINVAL', `message with ${argv.length} arguments instead of ${n}`);
}

/** dm-thin's emit_flags(): `<count> <feature>… ` in the kernel's order, trailing space included. */
export function poolFeatureText(f: PoolFeatures): string {
  const names = [
    f.skipBlockZeroing ? 'skip_block_zeroing' : '',
    f.ignoreDiscard ? 'ignore_discard' : '',
    f.noDiscardPassdown ? 'no_discard_passdown' : '',
    f.readOnly ? 'read_only' : '',
    f.errorIfNoSpace ? 'error_if_no_space' : '',
  ].filter(Boolean);
  return `${names.length} ${names.map((n) => `${n} `).join('')}`;
}

/**
 * One pool object (`struct pool`), shared by every table of the pool device. Holds working
 * metadata; `commit()` hands the committed copy to the persistence callback.
 */
export class ThinPoolModel {
  meta: ThinMetadata;
  mode: FakePoolMode = 'rw';
  /** pool->suspended: true from creation until the first resume, and while suspended. */
  suspended = true;
  lowWaterBlocks = 0n;
  features: PoolFeatures;
  lowWaterTriggered = false;
  /** The metadata space map's threshold state (free blocks were `<=` the threshold at the last check). */
  metadataLowTriggered = false;
  /** Thin ids held open by thin targets (id → count). */
  readonly openThins = new Map<number, number>();
  #heldCounter = 0n;

  constructor(
    meta: ThinMetadata,
    features: PoolFeatures,
    private readonly persist: (m: ThinMetadata) => void,
    private readonly onEvent: () => void,
  ) {
    this.meta = meta;
    this.features = features;
  }

  commit(): void {
    if (this.mode === 'fail' || this.mode === 'ro') return;
    this.persist(cloneMetadata(this.meta));
    this.checkMetadataThreshold();
  }

  /**
   * dm-space-map-metadata.c check_threshold(), the threshold dm-thin registers with
   * calc_metadata_threshold(): when free metadata blocks fall to `<=` the threshold and it had
   * not triggered for the previous value, metadata_low_callback() raises dm_table_event(). Edge-
   * triggered: it re-arms once free blocks are above the threshold again. (The kernel checks on
   * every metadata allocation; the fake checks at commit, where its usage estimate changes.)
   */
  checkMetadataThreshold(): void {
    const below = this.meta.metadataBlocks - this.usedMetadataBlocks() <= this.metadataLowWater();
    const fire = below && !this.metadataLowTriggered;
    this.metadataLowTriggered = below;
    if (fire) this.onEvent();
  }

  /** Refcount of every data block in use. */
  refcounts(): Map<number, number> {
    const rc = new Map<number, number>();
    for (const map of this.meta.devices.values()) for (const d of map.values()) rc.set(d, (rc.get(d) ?? 0) + 1);
    return rc;
  }

  usedDataBlocks(): number {
    return this.refcounts().size;
  }

  #metadataReserve(): number {
    return Math.min(4096, Math.floor(this.meta.metadataBlocks / 10));
  }

  /** Approximation of metadata blocks in use (btrees are not modelled): reserve + roots + per-device cost. */
  usedMetadataBlocks(): number {
    let mappings = 0;
    for (const m of this.meta.devices.values()) mappings += m.size;
    const used = this.#metadataReserve() + 6 + this.meta.devices.size + Math.ceil(mappings / 126) + (this.meta.heldRoot === null ? 0 : 1);
    return Math.min(used, this.meta.metadataBlocks);
  }

  /** `calc_metadata_threshold`: min(1024 blocks, metadata blocks / 4). */
  metadataLowWater(): number {
    return Math.min(1024, Math.floor(this.meta.metadataBlocks / 4));
  }

  /** pool_status STATUSTYPE_INFO, byte for byte (with its trailing space). */
  infoStatus(): string {
    if (this.mode === 'fail') return 'Fail';
    const m = this.meta;
    const held = m.heldRoot === null ? '-' : m.heldRoot.toString();
    const mode = this.mode === 'out_of_data_space' ? 'out_of_data_space' : this.mode === 'ro' ? 'ro' : 'rw';
    const discard = this.features.ignoreDiscard ? 'ignore_discard' : this.features.noDiscardPassdown ? 'no_discard_passdown' : 'discard_passdown';
    const policy = this.features.errorIfNoSpace ? 'error_if_no_space' : 'queue_if_no_space';
    return (
      `${m.transactionId} ${this.usedMetadataBlocks()}/${m.metadataBlocks} ${this.usedDataBlocks()}/${m.dataBlocks} ` +
      `${held} ${mode} ${discard} ${policy} ${m.needsCheck ? 'needs_check' : '-'} ${this.metadataLowWater()} `
    );
  }

  /** pool_ctr/emit_flags: `<count> <feature>… ` in the kernel's order, trailing space included. */
  featureText(): string {
    return poolFeatureText(this.features);
  }

  /** pool_message: the six messages, their argument checks and errnos; commits on success. */
  message(argv: readonly string[]): void {
    if (this.mode === 'ro' || this.mode === 'fail') throw kerr('EOPNOTSUPP', 'pool is read-only or failed');
    const cmd = (argv[0] ?? '').toLowerCase();
    const m = this.meta;
    switch (cmd) {
      case 'create_thin': {
        argCount(argv, 2);
        const id = devIdArg(argv[1]);
        if (m.devices.has(id)) throw kerr('EEXIST', `thin id ${id} exists`);
        m.devices.set(id, new Map());
        break;
      }
      case 'create_snap': {
        argCount(argv, 3);
        const id = devIdArg(argv[1]);
        const origin = devIdArg(argv[2]);
        if (m.devices.has(id)) throw kerr('EEXIST', `thin id ${id} exists`);
        const src = m.devices.get(origin);
        if (!src) throw kerr('ENODATA', `origin ${origin} not found`);
        m.devices.set(id, new Map(src));
        break;
      }
      case 'delete': {
        argCount(argv, 2);
        const id = devIdArg(argv[1]);
        if ((this.openThins.get(id) ?? 0) > 0) throw kerr('EBUSY', `thin id ${id} is open`);
        if (!m.devices.delete(id)) throw kerr('ENODATA', `thin id ${id} not found`);
        break;
      }
      case 'set_transaction_id': {
        argCount(argv, 3);
        const cur = parseU64Arg(argv[1]);
        const next = parseU64Arg(argv[2]);
        if (cur === undefined || next === undefined) throw kerr('EINVAL', 'unrecognised transaction id');
        if (cur !== m.transactionId) throw kerr('EINVAL', `mismatched transaction id ${cur} != ${m.transactionId}`);
        m.transactionId = next;
        break;
      }
      case 'reserve_metadata_snap': {
        argCount(argv, 1);
        this.commit();
        if (m.heldRoot !== null) throw kerr('EBUSY', 'metadata snapshot already held');
        // A block number somewhere past the superblock, distinct per reservation.
        m.heldRoot = 16n + (this.#heldCounter++ % 1000n);
        break;
      }
      case 'release_metadata_snap': {
        argCount(argv, 1);
        if (m.heldRoot === null) throw kerr('EINVAL', 'no metadata snapshot held');
        m.heldRoot = null;
        break;
      }
      default:
        throw kerr('EINVAL', `unrecognised thin pool message ${argv[0]}`);
    }
    this.commit();
  }

  /** pool_preresume + pool_resume: size the data device from the table, clear low-water, event. */
  resume(tableSectors: bigint, metadataBlocks: number): void {
    const blocks = Number(tableSectors / BigInt(this.meta.dataBlockSize));
    if (blocks < this.meta.dataBlocks) throw kerr('EINVAL', `pool target (${blocks} blocks) too small: expected ${this.meta.dataBlocks}`);
    if (metadataBlocks < this.meta.metadataBlocks) throw kerr('EINVAL', 'metadata device shrank');
    const grew = blocks > this.meta.dataBlocks;
    this.meta.dataBlocks = blocks;
    this.meta.metadataBlocks = metadataBlocks;
    if (grew && this.mode === 'out_of_data_space' && this.usedDataBlocks() < blocks) this.mode = 'rw';
    this.suspended = false;
    this.lowWaterTriggered = false;
    this.commit();
    this.onEvent();
  }

  #setMode(mode: FakePoolMode): void {
    if (this.mode === mode) return;
    this.mode = mode;
    this.onEvent();
  }

  #alloc(rc: Map<number, number>): number {
    const free = this.meta.dataBlocks - rc.size;
    if (BigInt(free) <= this.lowWaterBlocks && !this.lowWaterTriggered) {
      this.lowWaterTriggered = true;
      this.onEvent();
    }
    if (free <= 0) {
      this.#setMode('out_of_data_space');
      throw new FakeIoError(
        'ENOSPC',
        'thin pool is out of data space',
        !this.features.errorIfNoSpace,
      );
    }
    for (let b = 0; b < this.meta.dataBlocks; b++) if (!rc.has(b)) return b;
    throw new Error('unreachable: free count and refcounts disagree');
  }

  /**
   * Writes `count` data-block-sized blocks of thin `id` starting at virtual block `first`:
   * unmapped blocks get a fresh data block, blocks shared with a snapshot are broken (CoW),
   * exclusively owned ones are overwritten in place.
   * @throws FakeIoError ENOSPC when the pool runs out of data space (after mapping what fit)
   */
  write(id: number, first: number, count: number): void {
    if (this.mode === 'fail') throw new FakeIoError('EIO', 'pool failed');
    if (this.mode === 'ro') throw new FakeIoError('EIO', 'pool is read-only');
    const map = this.meta.devices.get(id);
    if (!map) throw new FakeIoError('EIO', `thin id ${id} vanished`);
    const rc = this.refcounts();
    for (let v = first; v < first + count; v++) {
      const cur = map.get(v);
      if (cur !== undefined && (rc.get(cur) ?? 0) === 1) continue;
      if (this.mode === 'out_of_data_space' && !(this.meta.dataBlocks - rc.size > 0)) {
        throw new FakeIoError('ENOSPC', 'thin pool is out of data space', !this.features.errorIfNoSpace);
      }
      const d = this.#alloc(rc);
      if (cur !== undefined) rc.set(cur, (rc.get(cur) ?? 1) - 1);
      rc.set(d, 1);
      map.set(v, d);
    }
  }

  /** Discard: unmaps the whole blocks in [first, first+count). */
  discard(id: number, first: number, count: number): void {
    const map = this.meta.devices.get(id);
    if (!map) return;
    for (let v = first; v < first + count; v++) map.delete(v);
  }

  /** thin_status INFO: `<mapped sectors> <highest sector|->`. */
  thinStatus(id: number): string {
    if (this.mode === 'fail') return 'Fail';
    const map = this.meta.devices.get(id);
    if (!map) return 'Error';
    const bs = BigInt(this.meta.dataBlockSize);
    const mapped = BigInt(map.size) * bs;
    if (map.size === 0) return `${mapped} -`;
    const highest = Math.max(...map.keys());
    return `${mapped} ${(BigInt(highest) + 1n) * bs - 1n}`;
  }
}
