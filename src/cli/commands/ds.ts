// SPDX-License-Identifier: MIT
// `devmapper ds ...`: a Docker-style DeviceSet, one process per command. Every command re-opens
// the DeviceSet from disk (DeviceSet.init adopts the live pool) and exits WITHOUT shutdown, so
// the pool, active devices and mounts stay in the kernel between commands. Mount state is
// re-derived from the kernel's mount table (/proc/self/mountinfo) on every run: the mount table,
// not a refcount, says whether a device is mounted. The command table (names, options, help) is
// specs/ds.ts; this module is loaded when a command runs.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import {
  DM_OPTION_KEYS,
  DeviceInUseError,
  DeviceSetLockedError,
  RootLock,
  resolveDeviceSetOptions,
  type DeviceSetLogLevel,
  type DeviceSetStatus,
} from '../../deviceset/index.js';
import type { Handler, Parsed } from '../args.js';
import type { CliDeviceSet, Ctx, MountEntry } from '../context.js';
import { UsageError } from '../errors.js';
import { CLI_OPTIONS_FILE, nodeOptionsFs, readSavedOptions, removeOptions, saveOptions } from '../options-file.js';
import { humanSize, table, toJson } from '../output.js';
import { parseSizeArg } from '../size-args.js';
import { progressLines, withChannelProgress } from '../progress.js';
import type { DsListJson, DsStatusJson } from '../schemas.js';

export { CLI_OPTIONS_FILE };

/**
 * `dm.*` keys that change what is on disk or in the kernel for good: the pool (which one, its
 * block size, the size of its loop files: Docker grows them, never shrinks them), the base
 * device (its size: grown, never shrunk; its filesystem and mkfs arguments, used whenever the
 * base is (re)made). `ds init` saves them; on any other `ds` command `--opt` refuses them, since
 * "for this run only" cannot be kept: a larger dm.basesize grows the base record and every later
 * run with the saved, smaller value would then fail (EDEVICESIZE).
 */
export const PERSISTENT_DM_KEYS: readonly string[] = Object.freeze([
  'dm.thinpooldev',
  'dm.basesize',
  'dm.loopdatasize',
  'dm.loopmetadatasize',
  'dm.fs',
  'dm.mkfsarg',
  'dm.datadev',
  'dm.metadatadev',
  'dm.blocksize',
]);

/**
 * `dm.*` keys that only steer what this process does (mount options, discards, deferred
 * removal/deletion, the free-space check, the xfs ENOSPC retries written after each mount):
 * `--opt` on a later `ds` command applies them to that run and saves nothing.
 */
export const RUN_ONLY_DM_KEYS: readonly string[] = Object.freeze([
  'dm.mountopt',
  'dm.blkdiscard',
  'dm.use_deferred_removal',
  'dm.use_deferred_deletion',
  'dm.min_free_space',
  'dm.xfs_nospace_max_retries',
  'dm.autoextend_threshold',
  'dm.autoextend_percent',
  'dm.autoextend_max',
]);
// The other keys of DM_OPTION_KEYS are refused by the DeviceSet itself (supported: false).

/**
 * Error codes of a `DeviceSet.init` that refused before it changed anything the options steer:
 * after one of these, `ds init` puts the previous options file back (see {@link openForInit}).
 * EDEVICESETLOCKED: another process has the root. EINVALIDARG: bad options. EDEVICESIZE: a base
 * shrink. ETHINPOOLOWNERSHIP: a pool that is not ours (only loop files may have grown, which a
 * smaller dm.loopdatasize leaves alone).
 */
const REFUSED_BEFORE_CHANGE: ReadonlySet<string> = new Set(['EDEVICESETLOCKED', 'EINVALIDARG', 'EDEVICESIZE', 'ETHINPOOLOWNERSHIP']);

/** The `--root` directory, made absolute. */
function rootOf(p: Parsed, ctx: Ctx): string {
  const r = p.options['root'] as string | undefined;
  if (r === undefined || r === '') throw new UsageError('--root DIR is required', ctx.command);
  return isAbsolute(r) ? r : resolve(ctx.cwd, r);
}

/** The key of a `dm.key=value` string, lower-cased ('' when malformed). */
function keyOf(opt: string): string {
  const i = opt.indexOf('=');
  return i < 0 ? '' : opt.slice(0, i).trim().toLowerCase();
}

/** Saved options with `given` laid over them: a key given now replaces every saved value of it. */
export function mergeOptions(saved: readonly string[], given: readonly string[]): string[] {
  const keys = new Set(given.map(keyOf));
  return [...saved.filter((o) => !keys.has(keyOf(o))), ...given];
}

/** Refuses `--opt` keys that change persistent state, on a command other than `ds init`. */
function refusePersistent(given: readonly string[], command: string): void {
  const bad = [...new Set(given.map(keyOf).filter((k) => PERSISTENT_DM_KEYS.includes(k)))];
  if (bad.length === 0) return;
  throw new UsageError(
    `${bad.join(', ')} ${bad.length === 1 ? 'changes' : 'change'} the DeviceSet for good and cannot be given for one run: ` +
      `re-run 'devmapper ds init --root DIR' with the new value (it applies and saves it); ` +
      `only ${RUN_ONLY_DM_KEYS.join(', ')} may be given to '${command}'`,
    command,
  );
}

const sameList = (a: readonly string[] | undefined, b: readonly string[]): boolean => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Refuses `ds init` early when a live process holds the root's lock, before the options file is
 * touched (DeviceSet.init would refuse it too, but only after the file was rewritten).
 */
function refuseIfLocked(root: string): void {
  if (!existsSync(root)) return;
  try {
    // The root lock is flock(2): taking and dropping it is the only true test of a live owner.
    RootLock.acquire(root).release();
  } catch (err) {
    if (err instanceof DeviceSetLockedError) throw err;
    // Anything else (a planted link, a foreign owner): DeviceSet.init refuses it with the reason.
  }
}

/** Opens the DeviceSet at --root with the saved options, overridden by --opt. */
async function open(ctx: Ctx, p: Parsed, what = 'opening the DeviceSet'): Promise<{ ds: CliDeviceSet; root: string; options: string[] }> {
  const root = rootOf(p, ctx);
  const given = (p.options['opt'] as string[] | undefined) ?? [];
  const init = ctx.command === 'ds init';
  if (!init) refusePersistent(given, ctx.command);
  const fs = ctx.deps.optionsFs ?? nodeOptionsFs;
  const saved = readSavedOptions(root, fs);
  if (saved === undefined && !init) {
    throw new UsageError(`${root} has no DeviceSet made by 'devmapper ds init' (no ${CLI_OPTIONS_FILE})`, ctx.command);
  }
  const options = mergeOptions(saved ?? [], given);
  resolveDeviceSetOptions(options); // every problem listed before anything is touched
  ctx.signal.throwIfAborted();
  const log = (level: DeviceSetLogLevel, message: string): void => {
    if (level === 'warn' || level === 'error') ctx.stderr(`devmapper: ${level}: ${message}\n`);
    else if (level === 'info') ctx.progress(message);
  };
  if (!init) {
    ctx.progress(what);
    const ds = await ctx.deps.openDeviceSet(root, options, log, ctx.signal);
    ctx.signal.throwIfAborted();
    return { ds, root, options };
  }
  // `ds init` saves the options BEFORE DeviceSet.init, as the intent: a crash anywhere after this
  // leaves a file that says what the pool and base were (or are being) made with, so later
  // commands open the set with those values instead of failing or growing it to the defaults.
  refuseIfLocked(root);
  const wrote = !sameList(saved, options);
  if (wrote) saveOptions(root, options, fs);
  ctx.progress(what);
  try {
    const ds = await ctx.deps.openDeviceSet(root, options, log, ctx.signal);
    return { ds, root, options };
  } catch (err) {
    // A refusal before anything changed: put the previous file back, unless someone else has
    // rewritten it meanwhile. Any other failure may have applied part of the new values (a grown
    // base record), so the new file stays: the next command or `ds init` finishes the job.
    const code = (err as { code?: unknown } | null)?.code;
    if (wrote && typeof code === 'string' && REFUSED_BEFORE_CHANGE.has(code)) {
      try {
        if (sameList(readSavedOptions(root, fs), options)) {
          if (saved === undefined) removeOptions(root, fs);
          else saveOptions(root, saved, fs);
        }
      } catch (restoreErr) {
        ctx.stderr(`devmapper: warn: could not restore the previous ${CLI_OPTIONS_FILE}: ${String(restoreErr)}\n`);
      }
    }
    throw err;
  }
}

/** Where the device `id` of `ds` is mounted, per the kernel's mount table. */
async function mountsOf(ctx: Ctx, ds: CliDeviceSet, id: string): Promise<MountEntry[]> {
  const info = ds.deviceInfo(id);
  const dev = await ctx.deps.dm().deviceInfo(info.dmName).catch(() => undefined);
  if (dev === undefined) return [];
  return ctx.deps.mounts().filter((m) => m.major === dev.dev.major && m.minor === dev.dev.minor);
}

function idArg(p: Parsed): string {
  return p.args['ID'] as string;
}

function pathArg(p: Parsed, ctx: Ctx): string {
  const path = p.args['PATH'] as string;
  return isAbsolute(path) ? path : resolve(ctx.cwd, path);
}

/** DeviceSetStatus → the stable JSON shape. */
export function statusJson(s: DeviceSetStatus): DsStatusJson {
  const n = (v: bigint): number => v as unknown as number;
  const space = (u: DeviceSetStatus['data']) => ({ used: n(u.used), total: n(u.total), available: n(u.available) });
  return {
    poolName: s.poolName,
    dataFile: s.dataFile,
    dataLoopback: s.dataLoopback,
    metadataFile: s.metadataFile,
    metadataLoopback: s.metadataLoopback,
    data: space(s.data),
    metadata: space(s.metadata),
    dataBlockSize: n(s.sectorSize),
    udevSyncSupported: s.udevSyncSupported,
    deferredRemoveEnabled: s.deferredRemoveEnabled,
    deferredDeleteEnabled: s.deferredDeleteEnabled,
    deferredDeletedDeviceCount: s.deferredDeletedDeviceCount,
    baseDeviceSize: n(s.baseDeviceSize),
    baseDeviceFS: s.baseDeviceFS,
    minFreeSpace: n(s.minFreeSpace),
    transactionId: n(s.transactionId),
    mode: s.mode,
    needsCheck: s.needsCheck,
    poolOwned: s.poolOwned,
    quarantinedThinIds: s.quarantinedThinIds.map((q) => ({ deviceId: q.deviceId, reason: q.reason, since: q.since })),
    autoextend: autoextendJson(s.autoextend),
  };
}

function autoextendJson(a: DeviceSetStatus['autoextend']): NonNullable<DsStatusJson['autoextend']> {
  const n = (v: bigint): number => v as unknown as number;
  const last = a.lastExtension;
  return {
    enabled: a.enabled,
    threshold: a.threshold,
    percent: a.percent,
    max: a.max === null ? null : n(a.max),
    lowWaterMark: a.lowWaterMark === null ? null : n(a.lowWaterMark),
    state: a.state,
    message: a.message,
    lastExtension: last === null ? null : { at: last.at, what: last.what, from: n(last.from), to: n(last.to), trigger: last.trigger },
    extensions: a.extensions,
  };
}

function statusText(s: DsStatusJson): string {
  const u = (x: DsStatusJson['data']): string => `${humanSize(x.used)} used, ${humanSize(x.total)} total, ${humanSize(x.available)} available`;
  return [
    `Pool Name:                 ${s.poolName}`,
    `Pool Blocksize:            ${humanSize(s.dataBlockSize)}`,
    `Base Device Size:          ${humanSize(s.baseDeviceSize)}`,
    `Backing Filesystem:        ${s.baseDeviceFS ?? '-'}`,
    `Data file:                 ${s.dataLoopback ?? '-'} (${s.dataFile ?? '-'})`,
    `Metadata file:             ${s.metadataLoopback ?? '-'} (${s.metadataFile ?? '-'})`,
    `Data Space:                ${u(s.data)}`,
    `Metadata Space:            ${u(s.metadata)}`,
    `Min Free Space:            ${humanSize(s.minFreeSpace)}`,
    `Transaction Id:            ${s.transactionId}`,
    `Pool Mode:                 ${s.mode}${s.needsCheck ? ' (NEEDS CHECK)' : ''}`,
    `Udev Sync Supported:       ${s.udevSyncSupported}`,
    `Deferred Removal Enabled:  ${s.deferredRemoveEnabled}`,
    `Deferred Deletion Enabled: ${s.deferredDeleteEnabled}`,
    `Deferred Deleted Devices:  ${s.deferredDeletedDeviceCount}`,
    ...s.quarantinedThinIds.map((q) => `Quarantined Thin Id:       ${q.deviceId} (since ${q.since}: ${q.reason})`),
    ...autoextendText(s.autoextend),
  ].join('\n') + '\n';
}

function autoextendText(a: DsStatusJson['autoextend']): string[] {
  if (a === undefined || !a.enabled) return ['Autoextend:                off'];
  const last = a.lastExtension;
  return [
    `Autoextend:                at ${a.threshold}% used, grow by ${a.percent}%, max ${a.max === null ? '-' : humanSize(a.max)}, low water mark ${a.lowWaterMark ?? '-'} blocks`,
    `Autoextend State:          ${a.state}${a.message === null ? '' : ` (${a.message})`}`,
    `Autoextend Last:           ${last === null ? '-' : `${last.at} ${last.what} ${humanSize(last.from)} -> ${humanSize(last.to)} (${last.trigger})`}`,
  ];
}

/** The supported `dm.*` keys and their defaults, for `ds init --help` (specs/ds.ts). */
export function optionTable(): string {
  return DM_OPTION_KEYS.filter((k) => k.supported)
    .map((k) => `  ${k.key.padEnd(26)} default ${k.default}`)
    .join('\n');
}

export const handlers = {
  async init(ctx, p) {
    await withChannelProgress(ctx, p.options['json'] === true, () => open(ctx, p, 'creating the pool and the base image (sparse files, mkfs)'));
  },
  async create(ctx, p) {
    const size = p.options['size'] as string | undefined;
    const bytes = size === undefined ? undefined : parseSizeArg(size, '--size', 'ds create');
    const { ds } = await open(ctx, p);
    ctx.progress(`creating ${idArg(p)}`);
    await ds.addDevice(idArg(p), (p.options['parent'] as string | undefined) ?? '', bytes === undefined ? { signal: ctx.signal } : { size: bytes, signal: ctx.signal });
  },
  async remove(ctx, p) {
    const { ds } = await open(ctx, p);
    const id = idArg(p);
    if (ds.hasDevice(id)) {
      const m = await mountsOf(ctx, ds, id);
      if (m.length > 0) throw new DeviceInUseError(id, `mounted at ${m.map((x) => x.path).join(', ')}`);
    }
    ctx.signal.throwIfAborted();
    ctx.progress(`discarding and deleting ${id}`);
    await ds.deleteDevice(id, { sync: true, signal: ctx.signal });
  },
  async mount(ctx, p) {
    const { ds } = await open(ctx, p);
    const id = idArg(p);
    const path = pathArg(p, ctx);
    if (ds.hasDevice(id)) {
      const m = await mountsOf(ctx, ds, id);
      if (m.some((x) => x.path === path)) return;
      if (m.length > 0) throw new DeviceInUseError(id, `mounted at ${m.map((x) => x.path).join(', ')}`);
    }
    const extra = p.options['options'] as string | undefined;
    ctx.signal.throwIfAborted();
    await ds.mountDevice(id, path, extra === undefined ? { signal: ctx.signal } : { options: extra, signal: ctx.signal });
  },
  async unmount(ctx, p) {
    const { ds } = await open(ctx, p);
    const id = idArg(p);
    const path = pathArg(p, ctx);
    ds.deviceInfo(id); // UnknownDeviceError (exit 3) first
    const m = await mountsOf(ctx, ds, id);
    if (!m.some((x) => x.path === path)) {
      throw new UsageError(m.length > 0 ? `device '${id}' is mounted at ${m.map((x) => x.path).join(', ')}, not ${path}` : `device '${id}' is not mounted`, 'ds unmount');
    }
    ctx.signal.throwIfAborted();
    await ctx.deps.umount(path);
    ctx.signal.throwIfAborted();
    await ds.deactivateDevice(id);
  },
  async list(ctx, p) {
    const { ds } = await open(ctx, p);
    const mounts = ctx.deps.mounts();
    const out: DsListJson = [];
    for (const id of ['', ...ds.list()]) {
      const d = ds.deviceInfo(id);
      const dev = await ctx.deps.dm().deviceInfo(d.dmName).catch(() => undefined);
      const mount = dev ? mounts.find((m) => m.major === dev.dev.major && m.minor === dev.dev.minor) : undefined;
      out.push({
        id: d.hash,
        deviceId: d.deviceId,
        size: d.size as unknown as number,
        transactionId: d.transactionId,
        // The base image is recreated at init unless it was initialized; others never are (Docker).
        initialized: d.hash === '' && d.state === 'ready',
        deleted: d.deleted,
        state: d.state,
        dmName: d.dmName,
        active: dev !== undefined,
        mountPoint: mount?.path ?? null,
      });
    }
    if (p.options['json']) return ctx.stdout(toJson(out));
    ctx.stdout(
      table(
        ['ID', 'DEVICE ID', 'SIZE', 'TXID', 'STATE', 'ACTIVE', 'MOUNTED AT'],
        out.map((d) => [d.id === '' ? '(base)' : d.id, String(d.deviceId), humanSize(d.size), String(d.transactionId), d.deleted ? 'deleted' : d.state, d.active ? 'yes' : 'no', d.mountPoint ?? '']),
      ),
    );
  },
  async status(ctx, p) {
    const { ds } = await open(ctx, p);
    const s = statusJson(await ds.status());
    ctx.stdout(p.options['json'] ? toJson(s) : statusText(s));
  },
  async resize(ctx, p) {
    const bytes = parseSizeArg(p.args['SIZE'] as string, 'SIZE', 'ds resize');
    const { ds } = await open(ctx, p);
    const onProgress = progressLines(ctx, p.options['json'] === true);
    await ds.resizePool(bytes, onProgress ? { signal: ctx.signal, onProgress } : { signal: ctx.signal });
  },
  async shutdown(ctx, p) {
    const { ds } = await open(ctx, p);
    for (const id of ['', ...ds.list()]) {
      for (const m of await mountsOf(ctx, ds, id)) {
        ctx.signal.throwIfAborted();
        ctx.progress(`unmounting ${m.path}`);
        await ctx.deps.umount(m.path);
      }
    }
    ctx.signal.throwIfAborted();
    ctx.progress('deactivating devices and removing the pool');
    await ds.shutdown();
  },
} satisfies Record<string, Handler<Ctx>>;
