// SPDX-License-Identifier: MIT
// `devmapper ds ...`: a Docker-style DeviceSet, one process per command. Every command re-opens
// the DeviceSet from disk (DeviceSet.init adopts the live pool) and exits WITHOUT shutdown, so
// the pool, active devices and mounts stay in the kernel between commands. Mount state is
// re-derived from the kernel's mount table (/proc/self/mountinfo) on every run: the mount table,
// not a refcount, says whether a device is mounted.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { DM_OPTION_KEYS, DeviceInUseError, resolveDeviceSetOptions, type DeviceSetStatus } from '../../index.js';
import type { CommandSpec, GroupSpec, Parsed } from '../args.js';
import type { CliDeviceSet, Ctx, MountEntry } from '../context.js';
import { UsageError } from '../errors.js';
import { humanSize, parseSizeArg, table, toJson } from '../output.js';
import type { DsListJson, DsStatusJson } from '../schemas.js';

/** The CLI's own file under the root: the options given to `ds init`. */
export const CLI_OPTIONS_FILE = 'cli-options.json';

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

/** Reads the options saved by `ds init` ([] when none). */
export function readSavedOptions(root: string): string[] {
  const file = join(root, CLI_OPTIONS_FILE);
  if (!existsSync(file)) return [];
  const data = JSON.parse(readFileSync(file, 'utf8')) as { options?: unknown };
  if (!Array.isArray(data.options) || !data.options.every((o) => typeof o === 'string')) {
    throw new UsageError(`${file} is not a devmapper options file (delete it and run 'ds init' again)`);
  }
  return data.options as string[];
}

/** Saves the options atomically (temp file + rename). */
export function saveOptions(root: string, options: readonly string[]): void {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const file = join(root, CLI_OPTIONS_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify({ formatVersion: 1, options }, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Opens the DeviceSet at --root with the saved options, overridden by --opt. */
async function open(ctx: Ctx, p: Parsed, what = 'opening the DeviceSet'): Promise<{ ds: CliDeviceSet; root: string; options: string[] }> {
  const root = rootOf(p, ctx);
  const given = (p.options['opt'] as string[] | undefined) ?? [];
  if (!existsSync(join(root, CLI_OPTIONS_FILE)) && ctx.command !== 'ds init') {
    throw new UsageError(`${root} has no DeviceSet made by 'devmapper ds init' (no ${CLI_OPTIONS_FILE})`, ctx.command);
  }
  const options = mergeOptions(readSavedOptions(root), given);
  resolveDeviceSetOptions(options); // every problem listed before anything is touched
  ctx.progress(what);
  const ds = await ctx.deps.openDeviceSet(root, options, (level, message) => {
    if (level === 'warn' || level === 'error') ctx.stderr(`devmapper: ${level}: ${message}\n`);
    else if (level === 'info') ctx.progress(message);
  });
  return { ds, root, options };
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
  ].join('\n') + '\n';
}

const ROOT = { type: 'string', value: 'DIR', description: 'The DeviceSet root directory (required).' } as const;
const OPT = {
  type: 'string',
  multiple: true,
  value: 'dm.KEY=VALUE',
  description: 'A DeviceSet option (overrides the value saved by ds init, for this run).',
} as const;
const COMMON = { root: ROOT, opt: OPT } as const;

function optionTable(): string {
  return DM_OPTION_KEYS.filter((k) => k.supported)
    .map((k) => `  ${k.key.padEnd(26)} default ${k.default}`)
    .join('\n');
}

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'init',
    summary: 'Create (or open) a DeviceSet: pool, base image (mkfs); saves the options under the root.',
    options: COMMON,
    details:
      'Later commands need only --root: the options are saved in DIR/cli-options.json. Running init again on\n' +
      'an existing root opens it and saves the merged options. Supported options (see docs/cli.md):\n' +
      optionTable(),
    examples: ['devmapper ds init --root /var/lib/dmset --opt dm.loopdatasize=512M --opt dm.basesize=64M'],
    async run(ctx, p) {
      const root = rootOf(p, ctx);
      const { options } = await open(ctx, p, 'creating the pool and the base image (sparse files, mkfs)');
      saveOptions(root, options);
    },
  },
  {
    name: 'create',
    summary: 'Create device ID as a snapshot of --parent (default: the base image).',
    positionals: [{ name: 'ID' }],
    options: {
      ...COMMON,
      parent: { type: 'string', value: 'PARENT_ID', description: 'Snapshot this device instead of the base image.' },
      size: { type: 'string', value: 'SIZE', description: "Grow the new device's filesystem to SIZE (never below the parent's)." },
    },
    async run(ctx, p) {
      const size = p.options['size'] as string | undefined;
      const bytes = size === undefined ? undefined : parseSizeArg(size, '--size', 'ds create');
      const { ds } = await open(ctx, p);
      ctx.progress(`creating ${idArg(p)}`);
      await ds.addDevice(idArg(p), (p.options['parent'] as string | undefined) ?? '', bytes === undefined ? {} : { size: bytes });
    },
  },
  {
    name: 'remove',
    summary: 'Delete device ID (refused while it is mounted; discards its blocks first).',
    positionals: [{ name: 'ID' }],
    options: COMMON,
    async run(ctx, p) {
      const { ds } = await open(ctx, p);
      const id = idArg(p);
      if (ds.hasDevice(id)) {
        const m = await mountsOf(ctx, ds, id);
        if (m.length > 0) throw new DeviceInUseError(id, `mounted at ${m.map((x) => x.path).join(', ')}`);
      }
      ctx.progress(`discarding and deleting ${id}`);
      await ds.deleteDevice(id, { sync: true });
    },
  },
  {
    name: 'mount',
    summary: 'Activate device ID and mount it at PATH (a no-op when already mounted there).',
    positionals: [{ name: 'ID' }, { name: 'PATH' }],
    options: { ...COMMON, options: { type: 'string', value: 'O', description: 'Extra mount options, comma-separated.' } },
    details: 'The mount outlives this process. A device is mounted in one place only; mounting it elsewhere is refused (exit 4).',
    async run(ctx, p) {
      const { ds } = await open(ctx, p);
      const id = idArg(p);
      const path = pathArg(p, ctx);
      if (ds.hasDevice(id)) {
        const m = await mountsOf(ctx, ds, id);
        if (m.some((x) => x.path === path)) return;
        if (m.length > 0) throw new DeviceInUseError(id, `mounted at ${m.map((x) => x.path).join(', ')}`);
      }
      const extra = p.options['options'] as string | undefined;
      await ds.mountDevice(id, path, extra === undefined ? {} : { options: extra });
    },
  },
  {
    name: 'unmount',
    summary: 'Unmount device ID from PATH and deactivate it.',
    positionals: [{ name: 'ID' }, { name: 'PATH' }],
    options: COMMON,
    async run(ctx, p) {
      const { ds } = await open(ctx, p);
      const id = idArg(p);
      const path = pathArg(p, ctx);
      ds.deviceInfo(id); // UnknownDeviceError (exit 3) first
      const m = await mountsOf(ctx, ds, id);
      if (!m.some((x) => x.path === path)) {
        throw new UsageError(m.length > 0 ? `device '${id}' is mounted at ${m.map((x) => x.path).join(', ')}, not ${path}` : `device '${id}' is not mounted`, 'ds unmount');
      }
      await ctx.deps.umount(path);
      await ds.deactivateDevice(id);
    },
  },
  {
    name: 'list',
    summary: 'List the devices (the base image has id "").',
    options: COMMON,
    json: true,
    async run(ctx, p) {
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
  },
  {
    name: 'status',
    summary: 'Pool and space usage (Docker\'s "docker info" storage section).',
    options: COMMON,
    json: true,
    async run(ctx, p) {
      const { ds } = await open(ctx, p);
      const s = statusJson(await ds.status());
      ctx.stdout(p.options['json'] ? toJson(s) : statusText(s));
    },
  },
  {
    name: 'resize',
    summary: 'Grow the loopback data file (and the pool) to SIZE.',
    positionals: [{ name: 'SIZE' }],
    options: COMMON,
    async run(ctx, p) {
      const bytes = parseSizeArg(p.args['SIZE'] as string, 'SIZE', 'ds resize');
      const { ds } = await open(ctx, p);
      await ds.resizePool(bytes);
    },
  },
  {
    name: 'shutdown',
    summary: "Unmount the set's devices, deactivate them and remove the pool (metadata stays).",
    options: COMMON,
    async run(ctx, p) {
      const { ds } = await open(ctx, p);
      for (const id of ['', ...ds.list()]) {
        for (const m of await mountsOf(ctx, ds, id)) {
          ctx.progress(`unmounting ${m.path}`);
          await ctx.deps.umount(m.path);
        }
      }
      ctx.progress('deactivating devices and removing the pool');
      await ds.shutdown();
    },
  },
];

export const dsGroup: GroupSpec<Ctx> = {
  name: 'ds',
  summary: 'A Docker-style DeviceSet: thin pool, base image, snapshots, mounts.',
  details:
    'Each command is its own process: it re-opens the DeviceSet at --root, does one thing and exits,\n' +
    "leaving the pool, active devices and mounts in the kernel. 'ds shutdown' tears them down.",
  commands,
};
