// SPDX-License-Identifier: MIT
// Readers of /sys/block/loopN (drivers/block/loop.c `loop_attribute_group`, block/genhd.c).
// The sysfs root is a parameter so unit tests can point these at a fake tree in a temp dir.
// Each reader is written once (twin.ts): the default reads with fs/promises, the *Sync twin with
// readFileSync/readdirSync, for callers that are synchronous by design.
import { promises as fsp, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { KernelOutputError, errnoCode } from '../errors.js';
import { all, io, runAsync, runSync, type Twin } from './twin.js';

/** Default sysfs mount point. */
export const DEFAULT_SYSFS_ROOT = '/sys';

/** The kernel appends this to `loop/backing_file` when the backing file was unlinked (d_path). */
const DELETED_SUFFIX = ' (deleted)';

/** What sysfs says about one loop device. Binding fields are present only while it is bound. */
export interface LoopSysfsInfo {
  /** Kernel name, e.g. `loop3`. */
  readonly name: string;
  /** N of loopN. */
  readonly index: number;
  /** From `dev` (`7:N`). */
  readonly major: number;
  readonly minor: number;
  /** `size`: device size in 512-byte sectors (0 while unbound). */
  readonly sizeSectors: bigint;
  /** `ro` = 1. */
  readonly readOnly: boolean;
  /** `queue/logical_block_size` (undefined when the attribute could not be read). */
  readonly logicalBlockSize: number | undefined;
  /** True when `loop/backing_file` exists: the device has a backing file bound. */
  readonly bound: boolean;
  /** The binding, from the `loop/` attribute directory; undefined when unbound. */
  readonly binding: LoopSysfsBinding | undefined;
}

/** The `loop/` attribute directory of a bound device. */
export interface LoopSysfsBinding {
  /** `loop/backing_file` without the trailing " (deleted)". The kernel's path (no 63-byte limit). */
  readonly backingFile: string;
  /** The backing file has been unlinked (the kernel appended " (deleted)"). */
  readonly backingFileDeleted: boolean;
  /** `loop/offset`, bytes. */
  readonly offset: bigint;
  /** `loop/sizelimit`, bytes, 0 = to the end of the file. */
  readonly sizeLimit: bigint;
  readonly autoclear: boolean;
  readonly partscan: boolean;
  /** `loop/dio`; false on kernels that lack the attribute. */
  readonly directIo: boolean;
}

/** Parses `/^loop(\d+)$/`, else undefined. Partitions (`loop0p1`) and `loop-control` are not devices. */
export function parseLoopName(name: string): number | undefined {
  const m = /^loop(\d+)$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Errnos of an attribute that is not there (any more): the device or its binding went away. */
function isAbsent(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO';
}

/** Reads one sysfs attribute, trimmed of its newline; undefined when it does not exist. */
function* readAttr(path: string): Twin<string | undefined> {
  try {
    const raw = yield* io({ sync: () => readFileSync(path, 'utf8'), async: () => fsp.readFile(path, 'utf8') });
    return raw.replace(/\n$/, '');
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

function parseUint(raw: string, what: string): bigint {
  const t = raw.trim();
  if (!/^\d+$/.test(t)) throw new KernelOutputError(`sysfs ${what}: expected an unsigned integer, got '${t}'`, raw);
  return BigInt(t);
}

function parseBool(raw: string, what: string): boolean {
  const t = raw.trim();
  if (t === '1') return true;
  if (t === '0') return false;
  throw new KernelOutputError(`sysfs ${what}: expected 0 or 1, got '${t}'`, raw);
}

/** Parses a `dev` attribute (`7:3`). */
export function parseDevAttr(raw: string): { major: number; minor: number } {
  const m = /^\s*(\d+):(\d+)\s*$/.exec(raw);
  if (!m) throw new KernelOutputError(`sysfs dev: expected 'major:minor', got '${raw.trim()}'`, raw);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** Splits a `loop/backing_file` value into path and the deleted marker. */
export function parseBackingFile(raw: string): { backingFile: string; deleted: boolean } {
  if (raw.endsWith(DELETED_SUFFIX)) return { backingFile: raw.slice(0, -DELETED_SUFFIX.length), deleted: true };
  return { backingFile: raw, deleted: false };
}

/** The attributes read after `dev`, in {@link readLoopTwin}'s order (block/genhd.c, drivers/block/loop.c). */
const LOOP_ATTRS = ['size', 'ro', 'queue/logical_block_size', 'loop/backing_file', 'loop/offset', 'loop/sizelimit', 'loop/autoclear', 'loop/partscan', 'loop/dio'] as const;

/** {@link readLoopSysfs} written once: `dev` first (absent: no device), then the rest together. */
function* readLoopTwin(index: number, sysfsRoot: string): Twin<LoopSysfsInfo | undefined> {
  const name = `loop${index}`;
  const dir = join(sysfsRoot, 'block', name);
  const devRaw = yield* readAttr(join(dir, 'dev'));
  if (devRaw === undefined) return undefined;
  const { major, minor } = parseDevAttr(devRaw);
  const [sizeRaw, roRaw, lbsRaw, backingRaw, offset, sizeLimit, autoclear, partscan, dio] = yield* all(LOOP_ATTRS.map((a) => readAttr(join(dir, ...a.split('/')))));
  const binding = parseBinding(backingRaw, offset, sizeLimit, autoclear, partscan, dio);
  return {
    name,
    index,
    major,
    minor,
    sizeSectors: sizeRaw === undefined ? 0n : parseUint(sizeRaw, `${name}/size`),
    readOnly: roRaw === undefined ? false : parseBool(roRaw, `${name}/ro`),
    logicalBlockSize: lbsRaw === undefined ? undefined : Number(parseUint(lbsRaw, `${name}/queue/logical_block_size`)),
    bound: binding !== undefined,
    binding,
  };
}

/**
 * Reads /sys/block/loopN. Resolves to undefined when the device does not exist (or vanished while
 * being read: loop devices can be removed at any time). A device that is detached mid-read is
 * reported as unbound. The attributes are read with fs/promises, concurrently.
 */
export function readLoopSysfs(index: number, sysfsRoot: string = DEFAULT_SYSFS_ROOT): Promise<LoopSysfsInfo | undefined> {
  return runAsync(readLoopTwin(index, sysfsRoot));
}

/** {@link readLoopSysfs} on the calling thread (readFileSync), for callers that are synchronous by design. */
export function readLoopSysfsSync(index: number, sysfsRoot: string = DEFAULT_SYSFS_ROOT): LoopSysfsInfo | undefined {
  return runSync(readLoopTwin(index, sysfsRoot));
}

/**
 * Whether loopN has a backing file bound, from one stat(2) of `loop/backing_file` instead of the
 * five to ten attribute reads of {@link readLoopSysfs} (~190 µs natively, most of a detach): the
 * `loop/` attribute group exists exactly while the device is bound (drivers/block/loop.c:
 * loop_configure() → loop_sysfs_init() creates it, __loop_clr_fd() → loop_sysfs_exit() removes
 * it). A missing device (no /sys/block/loopN) is not bound.
 */
export function isLoopBound(index: number, sysfsRoot: string = DEFAULT_SYSFS_ROOT): boolean {
  // Concatenated, not path.join: join's normalising scan was ~2 µs of a ~40 µs native detach, and
  // stat(2) reads a doubled or trailing '/' of sysfsRoot the same way.
  return statSync(`${sysfsRoot}/block/loop${index}/loop/backing_file`, { throwIfNoEntry: false }) !== undefined;
}

/** The `loop/` attribute directory's values (undefined = absent), parsed; undefined when unbound. */
function parseBinding(
  backingRaw: string | undefined,
  offset: string | undefined,
  sizeLimit: string | undefined,
  autoclear: string | undefined,
  partscan: string | undefined,
  dio: string | undefined,
): LoopSysfsBinding | undefined {
  if (backingRaw === undefined) return undefined;
  // The attributes disappear together when the device is detached; a missing one mid-read means
  // the binding went away under us.
  if (offset === undefined || sizeLimit === undefined || autoclear === undefined || partscan === undefined) {
    return undefined;
  }
  const { backingFile, deleted } = parseBackingFile(backingRaw);
  return {
    backingFile,
    backingFileDeleted: deleted,
    offset: parseUint(offset, 'loop/offset'),
    sizeLimit: parseUint(sizeLimit, 'loop/sizelimit'),
    autoclear: parseBool(autoclear, 'loop/autoclear'),
    partscan: parseBool(partscan, 'loop/partscan'),
    directIo: dio === undefined ? false : parseBool(dio, 'loop/dio'),
  };
}

/**
 * The loop device whose number is `major:minor`, without a scan of the others: the kernel name from
 * the /sys/dev/block/MAJ:MIN link (drivers/base/core.c, device_create_sys_dev_entry: it ends in the
 * device's kernel name), then that one device's attributes ({@link readLoopTwin}). Undefined when
 * no block device has the number, when it is not a whole loop device (a partition `loopNpM`,
 * another driver) or when it vanished meanwhile.
 */
export function* loopByNumberTwin(major: number, minor: number, sysfsRoot: string): Twin<LoopSysfsInfo | undefined> {
  const link = join(sysfsRoot, 'dev', 'block', `${major}:${minor}`);
  let target: string;
  try {
    target = yield* io({ sync: () => readlinkSync(link), async: () => fsp.readlink(link) });
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
  const index = parseLoopName(basename(target));
  if (index === undefined) return undefined;
  const info = yield* readLoopTwin(index, sysfsRoot);
  // Two reads: the `dev` attribute must still carry the number asked for.
  return info !== undefined && info.major === major && info.minor === minor ? info : undefined;
}

/** {@link listLoopIndexes} written once. */
function* indexesTwin(sysfsRoot: string): Twin<number[]> {
  const dir = join(sysfsRoot, 'block');
  let names: string[];
  try {
    names = yield* io({ sync: () => readdirSync(dir), async: () => fsp.readdir(dir) });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: number[] = [];
  for (const n of names) {
    const i = parseLoopName(n);
    if (i !== undefined) out.push(i);
  }
  return out.sort((a, b) => a - b);
}

/** {@link listLoops} written once: the indexes, then every device's attributes together. */
export function* loopsTwin(sysfsRoot: string): Twin<LoopSysfsInfo[]> {
  const indexes = yield* indexesTwin(sysfsRoot);
  const infos = yield* all(indexes.map((i) => readLoopTwin(i, sysfsRoot)));
  return infos.filter((i): i is LoopSysfsInfo => i !== undefined);
}

/** A bound device: its binding is there. */
export type BoundLoopSysfsInfo = LoopSysfsInfo & { binding: LoopSysfsBinding };

function isBound(l: LoopSysfsInfo): l is BoundLoopSysfsInfo {
  return l.binding !== undefined;
}

/**
 * Indexes of every loop device the kernel has, from the entries of /sys/block, sorted. Never
 * probes /dev/loopN until the first gap (Docker's bug: a gap in the numbering hides the devices
 * after it).
 */
export function listLoopIndexes(sysfsRoot: string = DEFAULT_SYSFS_ROOT): Promise<number[]> {
  return runAsync(indexesTwin(sysfsRoot));
}

/** {@link listLoopIndexes} on the calling thread (readdirSync). */
export function listLoopIndexesSync(sysfsRoot: string = DEFAULT_SYSFS_ROOT): number[] {
  return runSync(indexesTwin(sysfsRoot));
}

/** Every loop device with its sysfs state, bound or not, sorted by index. */
export function listLoops(sysfsRoot: string = DEFAULT_SYSFS_ROOT): Promise<LoopSysfsInfo[]> {
  return runAsync(loopsTwin(sysfsRoot));
}

/** {@link listLoops} on the calling thread. */
export function listLoopsSync(sysfsRoot: string = DEFAULT_SYSFS_ROOT): LoopSysfsInfo[] {
  return runSync(loopsTwin(sysfsRoot));
}

/** {@link listBoundLoops} written once. */
export function* boundLoopsTwin(sysfsRoot: string): Twin<BoundLoopSysfsInfo[]> {
  return (yield* loopsTwin(sysfsRoot)).filter(isBound);
}

/** The loop devices that currently have a backing file bound, sorted by index. */
export function listBoundLoops(sysfsRoot: string = DEFAULT_SYSFS_ROOT): Promise<BoundLoopSysfsInfo[]> {
  return runAsync(boundLoopsTwin(sysfsRoot));
}

/** {@link listBoundLoops} on the calling thread. */
export function listBoundLoopsSync(sysfsRoot: string = DEFAULT_SYSFS_ROOT): BoundLoopSysfsInfo[] {
  return runSync(boundLoopsTwin(sysfsRoot));
}
