// SPDX-License-Identifier: MIT
// The snapshot family (Documentation/admin-guide/device-mapper/snapshot.rst, drivers/md/dm-snap.c,
// drivers/md/dm-exception-store.c, drivers/md/dm-snap-persistent.c, dm-snap-transient.c):
//
// - `snapshot-origin <origin>`: the origin device as the rest of the system sees it; every write
//   through it first copies the chunk's old data into the COW device of each snapshot of that
//   origin (copy-on-write).
// - `snapshot <origin> <COW device> <P|PO|N> <chunk size> [<#features> <features>...]`: the frozen
//   view. Reads of chunks not yet copied come from the origin, the others from the COW device;
//   writes to the snapshot itself go to the COW device.
// - `snapshot-merge` (same arguments as `snapshot`): replaces the origin's table; copies the COW
//   device's chunks back onto the origin, so the origin becomes the snapshot.
//
// None of the three has messages (no `.message` in their target_type).
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, words } from './args.js';

export const SNAPSHOT_ORIGIN_TARGET = 'snapshot-origin';
export const SNAPSHOT_TARGET = 'snapshot';
export const SNAPSHOT_MERGE_TARGET = 'snapshot-merge';

/**
 * Largest chunk size the kernel takes, in sectors: `dm_exception_store_set_chunk_size` refuses a
 * chunk above `INT_MAX >> SECTOR_SHIFT` ("Chunk size is too high") and one that is not a power of
 * two, so 2^21 sectors (1 GiB).
 */
export const SNAPSHOT_MAX_CHUNK_SECTORS = 1 << 21;

// ---- snapshot-origin ----

/** Parameters of a snapshot-origin target. */
export interface SnapshotOriginParams {
  readonly device: DevNum;
}

/** Every problem with snapshot-origin params. */
export function snapshotOriginParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a snapshot-origin params object', value: p }];
  return devNumProblems((p as { device?: unknown }).device, `${path}/device`);
}

/**
 * Encodes snapshot-origin params as the kernel reports them back in table mode: `origin_status`
 * STATUSTYPE_TABLE prints `"%s"` of the device's name (`major:minor`).
 * @example formatSnapshotOriginParams({device: {major: 7, minor: 0}}) // → '7:0'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatSnapshotOriginParams(p: SnapshotOriginParams): string {
  const found = snapshotOriginParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('snapshot-origin params', found);
  return formatDevNum(p.device);
}

/**
 * Parses snapshot-origin params `<major:minor>` (`origin_ctr`: exactly one argument).
 * @throws InvalidArgumentError
 */
export function parseSnapshotOriginParams(params: string): SnapshotOriginParams {
  const w = words(params);
  if (w.length !== 1)
    throw new InvalidArgumentError('snapshot-origin params', [{ path: '', message: "must be '<major:minor>'", value: params }]);
  return { device: parseDevNum(w[0]!) };
}

/** A complete snapshot-origin target line. @throws InvalidArgumentError */
export function snapshotOriginTarget(start: bigint, length: bigint, p: SnapshotOriginParams): TargetLine {
  return { start, length, type: SNAPSHOT_ORIGIN_TARGET, params: formatSnapshotOriginParams(p) };
}

/** snapshot-origin's INFO status: always empty (`origin_status` STATUSTYPE_INFO: `result[0] = '\0'`). */
export type SnapshotOriginStatus = Record<string, never>;

/**
 * Parses snapshot-origin's INFO status line, which is always empty.
 * @throws KernelOutputError when there is any text.
 */
export function parseSnapshotOriginStatus(line: string): SnapshotOriginStatus {
  if (words(line).length > 0) throw new KernelOutputError(`snapshot-origin status: expected an empty line, got ${JSON.stringify(line)}`, line);
  return {};
}

// ---- snapshot and snapshot-merge ----

/**
 * The exception store (`dm_exception_store_create`: the first letter, case-insensitive, picks the
 * type):
 * - `'persistent'` (`P`): the exceptions are kept on the COW device (a header chunk, then
 *   metadata areas between the data chunks) and survive a reload or reboot; required for merging.
 * - `'persistent-overflow'` (`PO`): persistent, and a snapshot that fills up by writes *to the
 *   snapshot* reports `Overflow` and refuses further writes to itself instead of being invalidated
 *   (`persistent_ctr` option `O`, snapshot target ≥ 1.15).
 * - `'transient'` (`N`): exceptions only in memory; lost when the table goes away.
 */
export type SnapshotStore = 'persistent' | 'persistent-overflow' | 'transient';

/** Parameters of a snapshot or snapshot-merge target. */
export interface SnapshotParams {
  /** The origin's backing device (not the snapshot-origin dm device). */
  readonly origin: DevNum;
  /** The COW device; must differ from the origin ("COW device cannot be the same as origin device"). */
  readonly cow: DevNum;
  readonly store: SnapshotStore;
  /**
   * Chunk size in 512-byte sectors: a power of two, at most {@link SNAPSHOT_MAX_CHUNK_SECTORS},
   * and (checked only by the kernel) a multiple of both devices' logical block size. The kernel's
   * `0` (persistent only: use the chunk size in the COW header, or 32 for a new one) is not
   * accepted here, because the table read back then shows the chunk size in use, not `0`. The
   * chunk size recorded in an existing persistent COW header overrides the table's
   * (`read_header`: "chunk size %u in device metadata overrides table chunk size").
   */
  readonly chunkSize: number;
  /** `discard_zeroes_cow`: a discard to the snapshot zeroes the chunk in the COW device. true or absent. */
  readonly discardZeroesCow?: true;
  /** `discard_passdown_origin`: discards also go to the origin (requires `discardZeroesCow`). true or absent. */
  readonly discardPassdownOrigin?: true;
}

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/**
 * Every problem with snapshot params, as `snapshot_ctr`, `dm_exception_store_create` and
 * `parse_snapshot_features` check them (device sizes and block sizes aside).
 */
export function snapshotParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a snapshot params object', value: p }];
  const v = p as Partial<Record<keyof SnapshotParams, unknown>>;
  const origin = devNumProblems(v.origin, `${path}/origin`);
  const cow = devNumProblems(v.cow, `${path}/cow`);
  const out = [...origin, ...cow];
  if (origin.length === 0 && cow.length === 0) {
    const o = v.origin as DevNum;
    const c = v.cow as DevNum;
    if (o.major === c.major && o.minor === c.minor) out.push({ path: `${path}/cow`, message: 'must differ from origin (the kernel refuses it)', value: c });
  }
  if (v.store !== 'persistent' && v.store !== 'persistent-overflow' && v.store !== 'transient')
    out.push({ path: `${path}/store`, message: "must be 'persistent', 'persistent-overflow' or 'transient'", value: v.store });
  const cs = v.chunkSize;
  if (typeof cs !== 'number' || !Number.isInteger(cs) || !isPow2(cs) || cs > SNAPSHOT_MAX_CHUNK_SECTORS)
    out.push({ path: `${path}/chunkSize`, message: `must be a power of two in 1..${SNAPSHOT_MAX_CHUNK_SECTORS} (sectors)`, value: cs });
  if (v.discardZeroesCow !== undefined && v.discardZeroesCow !== true)
    out.push({ path: `${path}/discardZeroesCow`, message: 'must be true or absent', value: v.discardZeroesCow });
  if (v.discardPassdownOrigin !== undefined && v.discardPassdownOrigin !== true)
    out.push({ path: `${path}/discardPassdownOrigin`, message: 'must be true or absent', value: v.discardPassdownOrigin });
  else if (v.discardPassdownOrigin === true && v.discardZeroesCow !== true)
    out.push({ path: `${path}/discardPassdownOrigin`, message: 'requires discardZeroesCow (the kernel refuses it alone)', value: true });
  return out;
}

const STORE_TEXT: Record<SnapshotStore, string> = { persistent: 'P', 'persistent-overflow': 'PO', transient: 'N' };

/**
 * Encodes snapshot (and snapshot-merge) params exactly as the kernel reports them back in table
 * mode: `snapshot_status` STATUSTYPE_TABLE prints `"%s %s"` of the origin and COW device names,
 * then the store's own status (`persistent_status`: `" %s %llu"` of `PO` or `P` and the chunk
 * size; `transient_status`: `" N %llu"`), then, only when a feature is on, `" %u"` of their count
 * and ` discard_zeroes_cow`, ` discard_passdown_origin` in that order. No trailing blank.
 * @example formatSnapshotParams({origin: {major: 7, minor: 0}, cow: {major: 7, minor: 1}, store: 'persistent', chunkSize: 16})
 *   // → '7:0 7:1 P 16'
 * @throws InvalidArgumentError listing every problem.
 */
export function formatSnapshotParams(p: SnapshotParams): string {
  const found = snapshotParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('snapshot params', found);
  const features: string[] = [];
  if (p.discardZeroesCow === true) features.push('discard_zeroes_cow');
  if (p.discardPassdownOrigin === true) features.push('discard_passdown_origin');
  const head = `${formatDevNum(p.origin)} ${formatDevNum(p.cow)} ${STORE_TEXT[p.store]} ${p.chunkSize}`;
  return features.length === 0 ? head : `${head} ${features.length} ${features.join(' ')}`;
}

/**
 * Parses snapshot (or snapshot-merge) params: the kernel's table form, or any line `snapshot_ctr`
 * accepts: the store word is read as the kernel does (first letter `P`/`N` in any case; after a
 * `P` only a second letter `O`/`o` may follow and the rest is ignored, after `N` everything is
 * ignored), feature names are case-insensitive (`strcasecmp`) and may repeat.
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseSnapshotParams(params: string): SnapshotParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('snapshot params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length < 4) throw bad("must be '<origin major:minor> <cow major:minor> <P|PO|N> <chunk size> [<#features> <features>...]'");
  const st = w[2]!;
  let store: SnapshotStore;
  const first = st[0]!.toUpperCase();
  if (first === 'N') store = 'transient';
  else if (first === 'P') {
    if (st.length === 1) store = 'persistent';
    else if (st[1]!.toUpperCase() === 'O') store = 'persistent-overflow';
    else throw bad('unsupported persistent store option (only O)', st);
  } else throw bad('exception store type must be P, PO or N', st);
  const chunk = decimalNumber(w[3], 0xffffffff);
  if (chunk === undefined) throw bad('chunk size must be a decimal in 0..4294967295', w[3]);
  let zeroes = false;
  let passdown = false;
  if (w.length > 4) {
    // parse_snapshot_features: dm_read_arg_group with a count in 0..2.
    const count = decimalNumber(w[4], 2);
    if (count === undefined) throw bad('feature count must be a decimal in 0..2', w[4]);
    const rest = w.slice(5);
    if (rest.length !== count) throw bad(`declares ${count} feature(s) but has ${rest.length}`);
    for (const f of rest) {
      const name = f.toLowerCase();
      if (name === 'discard_zeroes_cow') zeroes = true;
      else if (name === 'discard_passdown_origin') passdown = true;
      else throw bad('unknown snapshot feature (known: discard_zeroes_cow, discard_passdown_origin)', f);
    }
  }
  const p: SnapshotParams = {
    origin: parseDevNum(w[0]!),
    cow: parseDevNum(w[1]!),
    store,
    chunkSize: chunk,
    ...(zeroes ? { discardZeroesCow: true as const } : {}),
    ...(passdown ? { discardPassdownOrigin: true as const } : {}),
  };
  const found = snapshotParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('snapshot params', found);
  return p;
}

/** A complete snapshot target line. @throws InvalidArgumentError */
export function snapshotTarget(start: bigint, length: bigint, p: SnapshotParams): TargetLine {
  return { start, length, type: SNAPSHOT_TARGET, params: formatSnapshotParams(p) };
}

/**
 * A complete snapshot-merge target line: load it in place of the origin's snapshot-origin table
 * (and remove the snapshot device first). The store must be persistent: the transient store has
 * no `prepare_merge` ("Snapshot exception store does not support snapshot-merge").
 * @throws InvalidArgumentError
 */
export function snapshotMergeTarget(start: bigint, length: bigint, p: SnapshotParams): TargetLine {
  const params = formatSnapshotParams(p);
  if (p.store === 'transient')
    throw new InvalidArgumentError('snapshot-merge params', [{ path: '/store', message: 'must be persistent (a transient store cannot merge)', value: p.store }]);
  return { start, length, type: SNAPSHOT_MERGE_TARGET, params };
}

/**
 * INFO status of a snapshot or snapshot-merge target (`snapshot_status` STATUSTYPE_INFO):
 * - `Invalid`: the snapshot was invalidated (the COW device filled up, or an I/O error);
 * - `Merge failed`: a snapshot-merge stopped on an error;
 * - `Overflow`: a `PO` snapshot filled up by writes to itself (it stays readable);
 * - otherwise the store's usage `"%llu/%llu %llu"`: sectors allocated on the COW device (data and
 *   metadata chunks), the COW device's size, and the sectors of metadata among the allocated
 *   (`persistent_usage`: header plus metadata areas; `transient_usage`: 0);
 * - `Unknown` for a store without usage (none in the tree).
 */
export type SnapshotStatus =
  | { readonly state: 'active'; readonly allocatedSectors: bigint; readonly totalSectors: bigint; readonly metadataSectors: bigint }
  | { readonly state: 'invalid' | 'merge-failed' | 'overflow' | 'unknown' };

/**
 * Parses a snapshot or snapshot-merge INFO status line.
 * @throws KernelOutputError naming what does not fit.
 */
export function parseSnapshotStatus(line: string): SnapshotStatus {
  const w = words(line);
  const text = w.join(' ');
  if (text === 'Invalid') return { state: 'invalid' };
  if (text === 'Merge failed') return { state: 'merge-failed' };
  if (text === 'Overflow') return { state: 'overflow' };
  if (text === 'Unknown') return { state: 'unknown' };
  if (w.length !== 2)
    throw new KernelOutputError(`snapshot status: expected '<allocated>/<total> <metadata>', Invalid, Merge failed, Overflow or Unknown, got ${JSON.stringify(line)}`, line);
  const m = /^(\d{1,20})\/(\d{1,20})$/.exec(w[0]!);
  const allocated = decimalBigint(m?.[1]);
  const total = decimalBigint(m?.[2]);
  if (allocated === undefined || total === undefined)
    throw new KernelOutputError(`snapshot status field 1: got ${JSON.stringify(w[0])}, expected '<allocated>/<total>' of unsigned 64-bit decimals`, line);
  const metadata = decimalBigint(w[1]);
  if (metadata === undefined)
    throw new KernelOutputError(`snapshot status field 2 (metadata sectors): got ${JSON.stringify(w[1])}, expected an unsigned 64-bit decimal`, line);
  return { state: 'active', allocatedSectors: allocated, totalSectors: total, metadataSectors: metadata };
}

/**
 * True when a snapshot-merge has copied every chunk back: the allocated sectors are down to the
 * metadata sectors (snapshot.rst, "How to determine when a merging is complete"). False for a
 * status that is not `active` (a failed merge never completes).
 */
export function isSnapshotMergeComplete(status: SnapshotStatus): boolean {
  return status.state === 'active' && status.allocatedSectors === status.metadataSectors;
}
