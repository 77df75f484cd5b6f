// SPDX-License-Identifier: MIT
// DeviceSet options: Docker's `dm.*` storage options and their typed (camelCase) form. Pure.
/**
 * # DeviceSet options
 *
 * Two input forms resolve to one {@link ResolvedDeviceSetOptions}:
 * - Docker's `--storage-opt` strings, `dm.key=value` ({@link parseDmOptions}); keys are
 *   case-insensitive (Docker lower-cases them), values are not.
 * - The typed object {@link DeviceSetOptions} (camelCase keys; sizes as bigint, number or a size
 *   string).
 *
 * Every problem is collected and thrown at once as an `InvalidArgumentError` whose `problems`
 * name the key and the bad value. Nothing is ever half-applied and no key is silently ignored:
 * keys whose mechanism this library does not offer are refused with the reason and the
 * alternative.
 *
 * | Key | Property | Value | Default | Supported |
 * |---|---|---|---|---|
 * | `dm.basesize` | baseSize | size, multiple of 512, ≥ 16M (≥ 300M for xfs), ≤ 2^53 − 512 | 10G | yes |
 * | `dm.loopdatasize` | loopDataSize | size, multiple of 512, ≥ dm.blocksize, ≤ 2^53 − 512 | 100G | yes (loopback only) |
 * | `dm.loopmetadatasize` | loopMetadataSize | size, multiple of 4K, 2M – 33292800 sectors | 2G | yes (loopback only) |
 * | `dm.fs` | fs | `ext4` or `xfs` | **ext4** (Docker preferred xfs when available) | yes |
 * | `dm.mkfsarg` | mkfsArgs | string, repeatable (appended) | none | yes |
 * | `dm.mountopt` | mountOptions | string, repeatable (comma-joined) | none | yes |
 * | `dm.datadev` | dataDevice | absolute path; needs dm.metadatadev | unset | yes |
 * | `dm.metadatadev` | metadataDevice | absolute path; needs dm.datadev | unset | yes |
 * | `dm.thinpooldev` | thinPoolDevice | dm name or `/dev/mapper/<name>` | unset | yes |
 * | `dm.blocksize` | blockSize | size, 64K – 1G, multiple of 64K | 64K | yes |
 * | `dm.blkdiscard` | blkDiscard | bool | true, false with datadev/thinpooldev | yes |
 * | `dm.use_deferred_removal` | useDeferredRemoval | bool | auto (on if the kernel's DM is ≥ 4.27) | yes |
 * | `dm.use_deferred_deletion` | useDeferredDeletion | bool; needs deferred removal | auto (same rule) | yes |
 * | `dm.min_free_space` | minFreeSpacePercent | `N%`, 0–99 | 10% | yes |
 * | `dm.xfs_nospace_max_retries` | xfsNoSpaceMaxRetries | unsigned int ≤ 2^31−1; needs dm.fs=xfs | unset (kernel: retry forever) | yes |
 * | `dm.override_udev_sync_check` | — | — | — | **refused**: no libdm udev cookies to override |
 * | `dm.libdm_log_level` | — | — | — | **refused**: there is no libdm |
 * | `dm.directlvm_device` | — | — | — | **refused**: needs the LVM tools |
 * | `dm.directlvm_device_force` | — | — | — | **refused**: needs the LVM tools |
 * | `dm.thinp_percent` | — | — | — | **refused**: needs the LVM tools |
 * | `dm.thinp_metapercent` | — | — | — | **refused**: needs the LVM tools |
 * | `dm.thinp_autoextend_threshold` | — | — | — | **refused**: needs the LVM tools |
 * | `dm.thinp_autoextend_percent` | — | — | — | **refused**: needs the LVM tools |
 *
 * ## Size values
 * Docker parses sizes with go-units `RAMInBytes`; so do we, exactly except where noted:
 * - `<digits>[.<digits>][ ][k|m|g|t|p][i][b]`, case-insensitive, binary multiples
 *   (`10G` = `10g` = `10GiB` = `10 gb` = 10737418240). A plain number is bytes (`512`, `512b`).
 * - Decimals are accepted (`1.5G` = 1610612736) **when the result is a whole number of bytes**;
 *   Docker silently truncated (`0.1k` → 102), we refuse.
 * - Refused: negative values, `i` without a unit, empty strings, anything ≥ 2^63 bytes
 *   (Docker's int64), and texts over 100 characters ({@link MAX_SIZE_TEXT_LENGTH}).
 * - dm.basesize and dm.loopdatasize are at most 2^53 − 512 bytes ({@link MAX_SIZE}: the records
 *   store sizes as JSON safe integers).
 *
 * ## Departures from Docker (each one makes a mistake loud instead of silent)
 * - A non-repeatable key given twice is refused (Docker: last one wins).
 * - `dm.datadev` and `dm.metadatadev` must be given together (Docker allowed pairing a raw device
 *   with a loop file).
 * - Options that would be unused are refused: loop sizes with `dm.datadev` or `dm.thinpooldev`,
 *   `dm.blocksize` with `dm.thinpooldev`, `dm.xfs_nospace_max_retries` without `dm.fs=xfs`.
 * - Empty values are refused (Docker treated `dm.thinpooldev=` as unset, `dm.mkfsarg=` as an
 *   empty mkfs argument).
 * - `dm.blocksize` is validated here (Docker left it to the kernel).
 */
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import { THIN_METADATA_MAX_BYTES } from '../thin/index.js';
import { schemaErrors } from './schema-runtime.js';
import { checkDeviceSetOptions, DeviceSetOptions } from './schemas.generated.js';

/** Filesystems the base device can carry. */
export type BaseFilesystem = 'ext4' | 'xfs';

/** One `dm.*` key's documentation, for the CLI and the README. */
export interface DmOptionDoc {
  /** `dm.basesize` etc., lower case. */
  readonly key: string;
  /** The typed-form property, or null for refused keys. */
  readonly property: keyof ResolvedDeviceSetOptions | null;
  /** Value syntax. */
  readonly type: 'size' | 'bool' | 'percent' | 'uint' | 'string' | 'fs' | 'path' | 'dm-name';
  /** True when the key may be given more than once (values accumulate). */
  readonly repeatable: boolean;
  /** Our default, as text. */
  readonly default: string;
  /** Docker's default, as text. */
  readonly dockerDefault: string;
  /** False for keys we refuse. */
  readonly supported: boolean;
  /** What the option does (supported) or why it is refused and what to use instead. */
  readonly description: string;
}

const LVM_REFUSAL =
  'direct-lvm setup runs the LVM tools (pvcreate, vgcreate, lvcreate, lvconvert, lvchange) and devmapper only talks ioctl; ' +
  'build the thin pool with LVM yourself and pass it as dm.thinpooldev (or use dm.datadev/dm.metadatadev, or loopback files)';

/**
 * Every `dm.*` key Docker ever accepted (23), in Docker's documentation order, with our
 * behaviour. Machine-readable: the CLI's help and the README table come from here.
 */
export const DM_OPTION_KEYS: readonly DmOptionDoc[] = [
  {
    key: 'dm.thinpooldev', property: 'thinPoolDevice', type: 'dm-name', repeatable: false,
    default: 'unset (loopback files)', dockerDefault: 'unset (loop-lvm)', supported: true,
    description:
      'Use an existing, externally managed thin pool (a dm name; a /dev/mapper/ prefix is stripped). Excludes dm.datadev, dm.metadatadev, dm.loopdatasize, dm.loopmetadatasize and dm.blocksize.',
  },
  {
    key: 'dm.directlvm_device', property: null, type: 'path', repeatable: false,
    default: '-', dockerDefault: 'unset', supported: false, description: `Refused: ${LVM_REFUSAL}.`,
  },
  {
    key: 'dm.directlvm_device_force', property: null, type: 'bool', repeatable: false,
    default: '-', dockerDefault: 'false', supported: false, description: `Refused: ${LVM_REFUSAL}.`,
  },
  {
    key: 'dm.thinp_percent', property: null, type: 'percent', repeatable: false,
    default: '-', dockerDefault: '95', supported: false, description: `Refused: ${LVM_REFUSAL}.`,
  },
  {
    key: 'dm.thinp_metapercent', property: null, type: 'percent', repeatable: false,
    default: '-', dockerDefault: '1', supported: false, description: `Refused: ${LVM_REFUSAL}.`,
  },
  {
    key: 'dm.thinp_autoextend_threshold', property: null, type: 'percent', repeatable: false,
    default: '-', dockerDefault: '80', supported: false,
    description: `Refused: LVM autoextend profiles need the LVM tools; ${LVM_REFUSAL}.`,
  },
  {
    key: 'dm.thinp_autoextend_percent', property: null, type: 'percent', repeatable: false,
    default: '-', dockerDefault: '20', supported: false,
    description: `Refused: LVM autoextend profiles need the LVM tools; ${LVM_REFUSAL}.`,
  },
  {
    key: 'dm.basesize', property: 'baseSize', type: 'size', repeatable: false,
    default: '10G', dockerDefault: '10G', supported: true,
    description:
      'Virtual size of the base thin device: the largest filesystem of every image and container. Multiple of 512, at least 16M (300M for xfs, which xfsprogs requires), at most 2^53 − 512 bytes (just under 8P). Can grow on restart, never shrink.',
  },
  {
    key: 'dm.loopdatasize', property: 'loopDataSize', type: 'size', repeatable: false,
    default: '100G', dockerDefault: '100G', supported: true,
    description: 'Size of the sparse loopback data file. Multiple of 512, at least dm.blocksize, at most 2^53 − 512 bytes (just under 8P). Loopback mode only.',
  },
  {
    key: 'dm.loopmetadatasize', property: 'loopMetadataSize', type: 'size', repeatable: false,
    default: '2G', dockerDefault: '2G', supported: true,
    description:
      'Size of the sparse loopback metadata file. Multiple of 4K, at least 2M, at most 33292800 sectors (the kernel uses no more thin metadata). Loopback mode only.',
  },
  {
    key: 'dm.fs', property: 'fs', type: 'fs', repeatable: false,
    default: 'ext4', dockerDefault: 'xfs if mkfs.xfs and the kernel support it, else ext4', supported: true,
    description: 'Filesystem made on the base device: ext4 or xfs. Our default is always ext4 (no probing).',
  },
  {
    key: 'dm.mkfsarg', property: 'mkfsArgs', type: 'string', repeatable: true,
    default: 'none', dockerDefault: 'none', supported: true,
    description: 'One extra mkfs argument; repeat the key for several (appended in order).',
  },
  {
    key: 'dm.mountopt', property: 'mountOptions', type: 'string', repeatable: true,
    default: 'none', dockerDefault: 'none', supported: true,
    description: 'Extra mount options for every device; repeated keys are joined with commas. nouuid is always added for xfs.',
  },
  {
    key: 'dm.datadev', property: 'dataDevice', type: 'path', repeatable: false,
    default: 'unset', dockerDefault: 'unset', supported: true,
    description: 'Block device (absolute path) for the data of a pool devmapper creates. Needs dm.metadatadev.',
  },
  {
    key: 'dm.metadatadev', property: 'metadataDevice', type: 'path', repeatable: false,
    default: 'unset', dockerDefault: 'unset', supported: true,
    description: 'Block device (absolute path) for the metadata of a pool devmapper creates; a new pool needs its first 4K zeroed. Needs dm.datadev.',
  },
  {
    key: 'dm.blocksize', property: 'blockSize', type: 'size', repeatable: false,
    default: '64K', dockerDefault: '64K', supported: true,
    description: 'Thin-pool data block size, fixed when the pool is created: 64K to 1G, a multiple of 64K.',
  },
  {
    key: 'dm.blkdiscard', property: 'blkDiscard', type: 'bool', repeatable: false,
    default: 'true; false when dm.datadev or dm.thinpooldev is set', dockerDefault: 'same', supported: true,
    description: 'Discard a thin device (when nothing holds it open) before deleting it, so loop files become sparse again.',
  },
  {
    key: 'dm.override_udev_sync_check', property: null, type: 'bool', repeatable: false,
    default: '-', dockerDefault: 'false', supported: false,
    description:
      'Refused: it overrode libdm\'s udev-cookie sync check, and devmapper has no libdm and uses no SysV cookies; how device nodes appear is decided by the dm layer. Remove the option.',
  },
  {
    key: 'dm.use_deferred_removal', property: 'useDeferredRemoval', type: 'bool', repeatable: false,
    default: 'auto: on if the kernel DM interface is ≥ 4.27.0', dockerDefault: 'on if kernel ≥ 4.27.0 and libdm support it', supported: true,
    description: 'Deactivate busy devices with the deferred-remove flag. true on a kernel without support is an error at startup.',
  },
  {
    key: 'dm.use_deferred_deletion', property: 'useDeferredDeletion', type: 'bool', repeatable: false,
    default: 'auto: same rule as deferred removal', dockerDefault: 'same rule', supported: true,
    description: 'When the pool refuses to delete a busy device, mark it deleted and retry in the background. Needs deferred removal.',
  },
  {
    key: 'dm.min_free_space', property: 'minFreeSpacePercent', type: 'percent', repeatable: false,
    default: '10%', dockerDefault: '10%', supported: true,
    description: 'Refuse new snapshots unless N% of data and N% of metadata blocks are free: N% with 0 ≤ N ≤ 99; 0% disables the check.',
  },
  {
    key: 'dm.xfs_nospace_max_retries', property: 'xfsNoSpaceMaxRetries', type: 'uint', repeatable: false,
    default: 'unset (kernel default: retry forever)', dockerDefault: 'unset', supported: true,
    description: 'Written to /sys/fs/xfs/<dev>/error/metadata/ENOSPC/max_retries after each mount; 0 to 2147483647 (the kernel stores an int). Needs dm.fs=xfs.',
  },
  {
    key: 'dm.libdm_log_level', property: null, type: 'uint', repeatable: false,
    default: '-', dockerDefault: '2', supported: false,
    description:
      'Refused: it filtered libdm\'s log, and devmapper has no libdm; kernel failures come back as typed errors carrying the errno. Remove the option.',
  },
];

const DOC_BY_KEY = new Map(DM_OPTION_KEYS.map((d) => [d.key, d]));

export { DeviceSetOptions } from './schemas.generated.js';

/** Fully defaulted and validated options. Sizes are bytes. Unset devices are null. */
export interface ResolvedDeviceSetOptions {
  baseSize: bigint;
  loopDataSize: bigint;
  loopMetadataSize: bigint;
  fs: BaseFilesystem;
  mkfsArgs: string[];
  /** Comma-joined; '' for none. */
  mountOptions: string;
  dataDevice: string | null;
  metadataDevice: string | null;
  /** A dm name (any /dev/mapper/ prefix stripped). */
  thinPoolDevice: string | null;
  blockSize: bigint;
  blkDiscard: boolean;
  /** 'auto': the DeviceSet enables it when the kernel's DM interface is ≥ 4.27.0. */
  useDeferredRemoval: boolean | 'auto';
  /** 'auto': enabled when deferred removal ends up enabled. */
  useDeferredDeletion: boolean | 'auto';
  minFreeSpacePercent: number;
  /** null: leave the kernel default (retry forever). */
  xfsNoSpaceMaxRetries: number | null;
}

const KiB = 1024n;
const MiB = KiB * 1024n;
const GiB = MiB * 1024n;
const TiB = GiB * 1024n;
const PiB = TiB * 1024n;
const UNIT: Record<string, bigint> = { '': 1n, k: KiB, m: MiB, g: GiB, t: TiB, p: PiB };
const SIZE_LIMIT = 1n << 63n;

/** Smallest base device: room for an ext4 filesystem with a journal. */
export const MIN_BASE_SIZE = 16n * MiB;
/** Smallest xfs filesystem xfsprogs ≥ 5.19 will make. */
export const MIN_XFS_BASE_SIZE = 300n * MiB;
export const MIN_BLOCK_SIZE = 64n * KiB;
export const MAX_BLOCK_SIZE = GiB;
export const MIN_LOOP_METADATA_SIZE = 2n * MiB;
/** The most thin metadata the kernel uses (src/thin THIN_METADATA_MAX_BYTES, 33292800 sectors); a larger file would be wasted. */
export const MAX_LOOP_METADATA_SIZE = THIN_METADATA_MAX_BYTES;
export const MAX_XFS_RETRIES = 2 ** 31 - 1;
/**
 * Largest dm.basesize and dm.loopdatasize: 2^53 − 512 bytes (just under 8P), the largest multiple
 * of 512 that is a JS safe integer. The binding limit is ours, not the kernel's or the
 * filesystems': device records store sizes as JSON numbers ≤ 2^53 − 1 (metadata.ts, SafeCount),
 * and Node's ftruncate takes a safe integer for the loop file (src/loop sparse.ts). The others are
 * all larger: a thin device's length is a u64 sector count (dm-thin.c thin_ctr takes the target
 * length, sector_t); ext4 with the 64bit feature (on in mke2fs.conf's ext4 defaults since
 * e2fsprogs 1.43) reaches 2^48 blocks (extents hold 48-bit block numbers: 1 EiB with 4K blocks);
 * xfs reaches 8 EiB. ext4 without 64bit (an explicit dm.mkfsarg=-O ^64bit) stops at 16T and
 * mkfs.ext4 says so itself.
 */
export const MAX_SIZE = (1n << 53n) - 512n;
/**
 * Longest size text parseSize looks at. The longest meaningful one is about 75 characters: 19
 * whole digits (2^63), '.', up to 50 fraction digits (1/2^50 = 1/1P has 50 decimals), ' PiB'. The cap
 * keeps a pathological string (200 000 fraction digits) from costing BigInt arithmetic.
 */
export const MAX_SIZE_TEXT_LENGTH = 100;

/** Docker's defaults, except the filesystem (ext4 rather than "xfs when available"). */
export const DEFAULT_DEVICESET_OPTIONS: Readonly<ResolvedDeviceSetOptions> = Object.freeze({
  baseSize: 10n * GiB,
  loopDataSize: 100n * GiB,
  loopMetadataSize: 2n * GiB,
  fs: 'ext4',
  mkfsArgs: [],
  mountOptions: '',
  dataDevice: null,
  metadataDevice: null,
  thinPoolDevice: null,
  blockSize: 64n * KiB,
  blkDiscard: true,
  useDeferredRemoval: 'auto',
  useDeferredDeletion: 'auto',
  minFreeSpacePercent: 10,
  xfsNoSpaceMaxRetries: null,
});

const SIZE_RE = /^(\d+)(?:\.(\d+))? ?(?:([kmgtp])(i?))?(b?)$/i;

/**
 * Parse a size as go-units `RAMInBytes` does (binary units: `10G` = 10 GiB), but exactly: the
 * result must be a whole number of bytes below 2^63.
 * @returns the byte count, or a string saying what is wrong.
 */
export function parseSize(text: string): bigint | string {
  if (typeof text !== 'string') return 'not a size: expected a string';
  if (text.length > MAX_SIZE_TEXT_LENGTH) return `too long: a size is at most ${MAX_SIZE_TEXT_LENGTH} characters`;
  const m = SIZE_RE.exec(text);
  if (!m) {
    return 'not a size: expected a non-negative number with an optional binary unit k, m, g, t or p (e.g. 10G, 512k, 1.5G, 4096)';
  }
  const whole = m[1] ?? '0';
  const frac = m[2] ?? '';
  const unit = UNIT[(m[3] ?? '').toLowerCase()] ?? 1n;
  const scale = 10n ** BigInt(frac.length);
  const numerator = (BigInt(whole) * scale + BigInt(frac === '' ? '0' : frac)) * unit;
  if (numerator % scale !== 0n) return 'not a whole number of bytes';
  const bytes = numerator / scale;
  if (bytes >= SIZE_LIMIT) return 'too large: sizes must be below 2^63 bytes';
  return bytes;
}

/** A size in the largest binary unit that divides it exactly: 10737418240n → '10G', 1000n → '1000'. */
export function formatSize(bytes: bigint): string {
  for (const [suffix, unit] of [['P', PiB], ['T', TiB], ['G', GiB], ['M', MiB], ['K', KiB]] as const) {
    if (bytes !== 0n && bytes % unit === 0n) return `${bytes / unit}${suffix}`;
  }
  return `${bytes}`;
}

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool. */
export function parseBool(text: string): boolean | undefined {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  return undefined;
}

type Field = keyof ResolvedDeviceSetOptions;

/** Values gathered from either form, before range checks, cross-field rules and defaults. */
interface Collected {
  values: Partial<ResolvedDeviceSetOptions>;
  /** Where each explicitly given field came from, for problem reports. */
  origin: Map<Field, { path: string; label: string; value: unknown }>;
  problems: ValidationProblem[];
}

function problem(c: Collected, field: Field, message: string): void {
  const o = c.origin.get(field);
  if (!o) throw new Error(`internal: no origin for ${field}`);
  c.problems.push({ path: o.path, message: `${o.label}: ${message}`, value: o.value });
}

function dmNameProblem(name: string): string | undefined {
  if (name === '') return 'empty pool name';
  if (name.includes('/')) return 'a dm name cannot contain "/" (give the name, or /dev/mapper/<name>)';
  if (name === '.' || name === '..') return 'a dm name cannot be "." or ".."';
  if (Buffer.byteLength(name) > 127) return 'a dm name is at most 127 bytes';
  if (name.includes('\0')) return 'a dm name cannot contain NUL';
  return undefined;
}

function devicePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'expected an absolute device path';
  if (path.includes('\0')) return 'a path cannot contain NUL';
  return undefined;
}

/**
 * Parse Docker `dm.key=value` strings into fully defaulted, validated options. Keys are matched
 * case-insensitively; `dm.mkfsarg` and `dm.mountopt` accumulate; every other key may appear once.
 * Same as {@link resolveDeviceSetOptions} with an array.
 * @throws InvalidArgumentError listing every problem; each problem's path is `/<index>` of the
 * offending string and its message starts with `key=value`.
 */
export function parseDmOptions(strings: readonly string[]): ResolvedDeviceSetOptions {
  return finish(collectStrings(strings));
}

function collectStrings(strings: readonly string[]): Collected {
  const c: Collected = { values: {}, origin: new Map(), problems: [] };
  if (!Array.isArray(strings)) {
    c.problems.push({ path: '', message: 'expected an array of "dm.key=value" strings', value: strings });
    return c;
  }
  const seen = new Map<string, number>();
  strings.forEach((raw, index) => {
    const path = `/${index}`;
    if (typeof raw !== 'string') {
      c.problems.push({ path, message: 'expected a "dm.key=value" string', value: raw });
      return;
    }
    const eq = raw.indexOf('=');
    if (eq < 0) {
      c.problems.push({ path, message: `"${raw}": expected dm.key=value`, value: raw });
      return;
    }
    const key = raw.slice(0, eq).trim().toLowerCase();
    const text = raw.slice(eq + 1);
    const doc = DOC_BY_KEY.get(key);
    const label = `${key}=${text}`;
    if (!doc) {
      c.problems.push({ path, message: `${label}: unknown option ${key}`, value: raw });
      return;
    }
    if (!doc.supported || doc.property === null) {
      c.problems.push({ path, message: `${label}: not supported. ${doc.description}`, value: raw });
      return;
    }
    const field = doc.property;
    const first = seen.get(key);
    if (first !== undefined && !doc.repeatable) {
      c.problems.push({ path, message: `${label}: ${key} given twice (first as ${String(strings[first]).trim()}); it is not repeatable`, value: raw });
      return;
    }
    seen.set(key, first ?? index);
    if (!c.origin.has(field)) c.origin.set(field, { path, label, value: raw });
    const bad = (message: string): void => {
      c.problems.push({ path, message: `${label}: ${message}`, value: raw });
    };
    if (text === '') return bad('empty value');
    const v = c.values;
    switch (doc.type) {
      case 'size': {
        const size = parseSize(text);
        if (typeof size === 'string') return bad(size);
        (v as Record<string, unknown>)[field] = size;
        return;
      }
      case 'bool': {
        const b = parseBool(text);
        if (b === undefined) return bad('not a boolean: expected one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False');
        (v as Record<string, unknown>)[field] = b;
        return;
      }
      case 'percent': {
        if (!text.endsWith('%')) return bad('requires a % suffix (e.g. 10%)');
        const digits = text.slice(0, -1);
        if (!/^\d+$/.test(digits)) return bad('not a whole percentage');
        const n = Number(digits);
        if (n > 99) return bad('must be between 0% and 99%');
        v.minFreeSpacePercent = n;
        return;
      }
      case 'uint': {
        if (!/^\d+$/.test(text)) return bad('not an unsigned integer');
        const n = Number(text);
        if (n > MAX_XFS_RETRIES) return bad(`must be at most ${MAX_XFS_RETRIES}`);
        v.xfsNoSpaceMaxRetries = n;
        return;
      }
      case 'fs':
        if (text !== 'ext4' && text !== 'xfs') return bad('unsupported filesystem: expected ext4 or xfs');
        v.fs = text;
        return;
      case 'string':
        if (field === 'mkfsArgs') (v.mkfsArgs ??= []).push(text);
        else v.mountOptions = v.mountOptions ? `${v.mountOptions},${text}` : text;
        return;
      case 'path': {
        const p = devicePathProblem(text);
        if (p) return bad(p);
        (v as Record<string, unknown>)[field] = text;
        return;
      }
      case 'dm-name': {
        const name = text.startsWith('/dev/mapper/') ? text.slice('/dev/mapper/'.length) : text;
        const p = dmNameProblem(name);
        if (p) return bad(p);
        v.thinPoolDevice = name;
        return;
      }
    }
  });
  return c;
}

function collectObject(input: unknown): Collected {
  const c: Collected = { values: {}, origin: new Map(), problems: [] };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    c.problems.push({ path: '', message: 'expected an options object or an array of dm.key=value strings', value: input });
    return c;
  }
  const obj = input as Record<string, unknown>;
  if (!checkDeviceSetOptions(obj)) {
    const seenPaths = new Set<string>();
    for (const e of schemaErrors(DeviceSetOptions, obj)) {
      const top = e.path.split('/')[1] ?? '';
      if (seenPaths.has(top)) continue;
      seenPaths.add(top);
      let message = e.message;
      if (message === 'Unexpected property') {
        message = `unknown option property "${top}"`;
      } else if (message === 'Expected union value') {
        message = top === 'useDeferredRemoval' || top === 'useDeferredDeletion'
          ? 'expected true, false or "auto"'
          : 'expected a size: bytes as a bigint or safe integer, or a string like "10G"';
      }
      c.problems.push({ path: `/${top}`, message: `${top}: ${message}`, value: obj[top] });
    }
  }
  const v = c.values as Record<string, unknown>;
  for (const doc of DM_OPTION_KEYS) {
    const field = doc.property;
    if (field === null) continue;
    const raw = obj[field];
    if (raw === undefined) continue;
    const path = `/${field}`;
    if (c.problems.some((p) => p.path === path)) continue;
    c.origin.set(field, { path, label: `${field}=${describe(raw)}`, value: raw });
    const bad = (message: string): void => {
      c.problems.push({ path, message: `${field}=${describe(raw)}: ${message}`, value: raw });
    };
    switch (doc.type) {
      case 'size': {
        if (typeof raw === 'string') {
          const size = parseSize(raw);
          if (typeof size === 'string') bad(size);
          else v[field] = size;
        } else if (typeof raw === 'number' && !Number.isSafeInteger(raw)) {
          bad('not a safe integer; pass a bigint');
        } else {
          const size = BigInt(raw as number | bigint);
          if (size < 0n) bad('a size cannot be negative');
          else if (size >= SIZE_LIMIT) bad('too large: sizes must be below 2^63 bytes');
          else v[field] = size;
        }
        break;
      }
      case 'percent': {
        const n = raw as number;
        if (n < 0 || n > 99) bad('must be between 0 and 99');
        else v[field] = n;
        break;
      }
      case 'uint': {
        const n = raw as number;
        if (n < 0 || n > MAX_XFS_RETRIES) bad(`must be between 0 and ${MAX_XFS_RETRIES}`);
        else v[field] = n;
        break;
      }
      case 'string':
        if (field === 'mkfsArgs') {
          const args = raw as string[];
          const empty = args.findIndex((a) => a === '');
          if (empty >= 0) bad(`mkfsArgs[${empty}] is empty`);
          else v[field] = [...args];
        } else {
          if (raw === '') bad('empty value');
          else v[field] = raw;
        }
        break;
      case 'path': {
        const p = devicePathProblem(raw as string);
        if (p) bad(p);
        else v[field] = raw;
        break;
      }
      case 'dm-name': {
        const text = raw as string;
        const name = text.startsWith('/dev/mapper/') ? text.slice('/dev/mapper/'.length) : text;
        const p = dmNameProblem(name);
        if (p) bad(p);
        else v[field] = name;
        break;
      }
      default:
        v[field] = raw;
    }
  }
  return c;
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function throwIfProblems(c: Collected): void {
  const index = (p: ValidationProblem): number => (/^\/\d+$/.test(p.path) ? Number(p.path.slice(1)) : -1);
  if (c.problems.every((p) => index(p) >= 0)) c.problems.sort((a, b) => index(a) - index(b));
  if (c.problems.length > 0) throw new InvalidArgumentError('devmapper DeviceSet options', c.problems);
}

/** Range checks, cross-field rules and defaults, shared by both forms. */
function finish(c: Collected): ResolvedDeviceSetOptions {
  const given = (f: Field): boolean => c.origin.has(f) && c.values[f] !== undefined;
  const r: ResolvedDeviceSetOptions = { ...DEFAULT_DEVICESET_OPTIONS, mkfsArgs: [], ...c.values };
  const fsGiven = given('fs');

  const tooLarge = `must be at most ${MAX_SIZE} bytes (2^53 − 512, just under 8P): device records store sizes as JSON safe integers`;
  if (given('baseSize')) {
    if (r.baseSize % 512n !== 0n) problem(c, 'baseSize', 'must be a multiple of 512 bytes');
    if (r.baseSize > MAX_SIZE) problem(c, 'baseSize', tooLarge);
    if (r.baseSize < MIN_BASE_SIZE) problem(c, 'baseSize', `must be at least ${formatSize(MIN_BASE_SIZE)}`);
    else if (r.fs === 'xfs' && r.baseSize < MIN_XFS_BASE_SIZE) {
      problem(c, 'baseSize', `must be at least ${formatSize(MIN_XFS_BASE_SIZE)} for xfs (mkfs.xfs refuses smaller filesystems)`);
    }
  } else if (fsGiven && r.fs === 'xfs' && r.baseSize < MIN_XFS_BASE_SIZE) {
    problem(c, 'fs', `xfs needs a base size of at least ${formatSize(MIN_XFS_BASE_SIZE)}`);
  }
  const blockOk = r.blockSize >= MIN_BLOCK_SIZE && r.blockSize <= MAX_BLOCK_SIZE && r.blockSize % MIN_BLOCK_SIZE === 0n;
  if (given('blockSize') && !blockOk) {
    problem(c, 'blockSize', 'the thin-pool block size must be between 64K and 1G and a multiple of 64K');
  }
  if (given('loopDataSize')) {
    if (r.loopDataSize % 512n !== 0n) problem(c, 'loopDataSize', 'must be a multiple of 512 bytes');
    if (r.loopDataSize > MAX_SIZE) problem(c, 'loopDataSize', tooLarge);
    if (blockOk && r.loopDataSize < r.blockSize) {
      problem(c, 'loopDataSize', `must be at least the pool block size (${formatSize(r.blockSize)})`);
    }
  }
  if (given('loopMetadataSize')) {
    if (r.loopMetadataSize % 4096n !== 0n) problem(c, 'loopMetadataSize', 'must be a multiple of 4K (the thin metadata block size)');
    if (r.loopMetadataSize < MIN_LOOP_METADATA_SIZE) problem(c, 'loopMetadataSize', `must be at least ${formatSize(MIN_LOOP_METADATA_SIZE)}`);
    if (r.loopMetadataSize > MAX_LOOP_METADATA_SIZE) {
      problem(c, 'loopMetadataSize', `must be at most ${MAX_LOOP_METADATA_SIZE} bytes: the kernel never uses thin metadata beyond 33292800 sectors`);
    }
  }
  if (given('xfsNoSpaceMaxRetries') && r.fs !== 'xfs') {
    problem(c, 'xfsNoSpaceMaxRetries', 'only applies to xfs; set dm.fs=xfs (fs: "xfs") or drop it');
  }
  if (given('dataDevice') !== given('metadataDevice')) {
    const f: Field = given('dataDevice') ? 'dataDevice' : 'metadataDevice';
    problem(c, f, 'dm.datadev and dm.metadatadev must be given together');
  }
  if (given('dataDevice') && given('metadataDevice') && r.dataDevice === r.metadataDevice) {
    problem(c, 'metadataDevice', 'the data and metadata devices must differ');
  }
  if (given('thinPoolDevice')) {
    for (const f of ['dataDevice', 'metadataDevice', 'loopDataSize', 'loopMetadataSize', 'blockSize'] as const) {
      if (given(f)) problem(c, f, 'cannot be used with dm.thinpooldev: the pool already exists and devmapper does not create it');
    }
  } else if (given('dataDevice') || given('metadataDevice')) {
    for (const f of ['loopDataSize', 'loopMetadataSize'] as const) {
      if (given(f)) problem(c, f, 'only applies to loopback files, not with dm.datadev/dm.metadatadev');
    }
  }
  if (r.useDeferredDeletion === true && r.useDeferredRemoval === false) {
    problem(c, 'useDeferredDeletion', 'deferred deletion needs deferred removal; do not set dm.use_deferred_removal=false');
  }
  if (!given('blkDiscard')) r.blkDiscard = r.dataDevice === null && r.thinPoolDevice === null;
  throwIfProblems(c);
  return r;
}

/**
 * Resolve either input form to fully defaulted, validated options.
 * @param input `dm.key=value` strings, or the typed {@link DeviceSetOptions} object.
 * @throws InvalidArgumentError listing every problem found, each naming the key and the value.
 */
export function resolveDeviceSetOptions(input: readonly string[] | DeviceSetOptions = {}): ResolvedDeviceSetOptions {
  return resolveDeviceSetOptionsReport(input).options;
}

/** What {@link resolveDeviceSetOptionsReport} returns. */
export interface DeviceSetOptionsReport {
  /** The options, as {@link resolveDeviceSetOptions} returns them. */
  readonly options: ResolvedDeviceSetOptions;
  /**
   * The options the input set (by `dm.` key or property), whatever their value; the rest are
   * defaults. A DeviceSet that reopens a root tells "the caller asked for this base size" from
   * "this is the default" by it.
   */
  readonly given: ReadonlySet<keyof ResolvedDeviceSetOptions>;
}

/**
 * {@link resolveDeviceSetOptions}, and which options the input gave: one parse for both (no
 * caller re-reads the raw strings).
 * @throws InvalidArgumentError as resolveDeviceSetOptions.
 */
export function resolveDeviceSetOptionsReport(input: readonly string[] | DeviceSetOptions = {}): DeviceSetOptionsReport {
  const c = Array.isArray(input) ? collectStrings(input as readonly string[]) : collectObject(input);
  const options = finish(c);
  const given = new Set<keyof ResolvedDeviceSetOptions>();
  for (const [field] of c.origin) if (c.values[field] !== undefined) given.add(field);
  return { options, given };
}

/**
 * The `dm.key=value` strings that reproduce `options` through {@link resolveDeviceSetOptions}:
 * every meaningful value is written explicitly (sizes in the largest exact binary unit), so the
 * result does not depend on defaults changing later. 'auto' and unset values are omitted.
 */
export function formatDmOptions(options: ResolvedDeviceSetOptions): string[] {
  const out: string[] = [`dm.fs=${options.fs}`, `dm.basesize=${formatSize(options.baseSize)}`];
  if (options.thinPoolDevice !== null) {
    out.push(`dm.thinpooldev=${options.thinPoolDevice}`);
  } else {
    if (options.dataDevice !== null && options.metadataDevice !== null) {
      out.push(`dm.datadev=${options.dataDevice}`, `dm.metadatadev=${options.metadataDevice}`);
    } else {
      out.push(`dm.loopdatasize=${formatSize(options.loopDataSize)}`, `dm.loopmetadatasize=${formatSize(options.loopMetadataSize)}`);
    }
    out.push(`dm.blocksize=${formatSize(options.blockSize)}`);
  }
  out.push(`dm.blkdiscard=${options.blkDiscard}`);
  for (const arg of options.mkfsArgs) out.push(`dm.mkfsarg=${arg}`);
  if (options.mountOptions !== '') out.push(`dm.mountopt=${options.mountOptions}`);
  if (options.useDeferredRemoval !== 'auto') out.push(`dm.use_deferred_removal=${options.useDeferredRemoval}`);
  if (options.useDeferredDeletion !== 'auto') out.push(`dm.use_deferred_deletion=${options.useDeferredDeletion}`);
  out.push(`dm.min_free_space=${options.minFreeSpacePercent}%`);
  if (options.xfsNoSpaceMaxRetries !== null) out.push(`dm.xfs_nospace_max_retries=${options.xfsNoSpaceMaxRetries}`);
  return out;
}
