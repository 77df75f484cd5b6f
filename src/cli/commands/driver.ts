// SPDX-License-Identifier: MIT
// `devmapper driver ...`: the seed's graph driver (Driver over a DeviceSet), one process per
// command. `driver init` creates the set (Docker's Init, doInit true) and saves its options in
// HOME/cli-options.json, the file `ds` uses too; every other command opens it with doInit false
// (nothing is created) and exits without cleanup, so mounts and active devices stay in the kernel
// between commands. Reference counts across commands come from the kernel's mount table: a
// layer mounted at HOME/mnt/ID counts as one reference in the next process (docs/driver.md).
import { isAbsolute, resolve } from 'node:path';
import { resolveDeviceSetOptions, type DeviceSetLogLevel, type DriverStatusPair } from '../../index.js';
import type { CommandSpec, GroupSpec, Parsed } from '../args.js';
import type { CliDriver, Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { CLI_OPTIONS_FILE, nodeOptionsFs, readSavedOptions, saveOptions } from '../options-file.js';
import { parseSizeArg, toJson } from '../output.js';
import type { DriverExistsJson, DriverMetadataJson, DriverStatusJson } from '../schemas.js';
import { mergeOptions } from './ds.js';

function homeOf(p: Parsed, ctx: Ctx): string {
  const h = p.options['home'] as string | undefined;
  if (h === undefined || h === '') throw new UsageError('--home DIR is required', ctx.command);
  return isAbsolute(h) ? h : resolve(ctx.cwd, h);
}

/** Opens the driver at --home: `driver init` with doInit true (saving the options), the rest with doInit false. */
async function open(ctx: Ctx, p: Parsed): Promise<CliDriver> {
  const home = homeOf(p, ctx);
  const init = ctx.command === 'driver init';
  const fs = ctx.deps.optionsFs ?? nodeOptionsFs;
  const saved = readSavedOptions(home, fs);
  if (saved === undefined && !init) {
    throw new UsageError(`${home} has no driver made by 'devmapper driver init' (no ${CLI_OPTIONS_FILE})`, ctx.command);
  }
  const options = init ? mergeOptions(saved ?? [], (p.options['opt'] as string[] | undefined) ?? []) : (saved ?? []);
  resolveDeviceSetOptions(options); // every problem listed before anything is touched
  ctx.signal.throwIfAborted();
  if (!ctx.deps.openDriver) throw new UsageError('this build of the CLI cannot open a driver', ctx.command);
  if (init) saveOptions(home, options, fs);
  const log = (level: DeviceSetLogLevel, message: string): void => {
    if (level === 'warn' || level === 'error') ctx.stderr(`devmapper: ${level}: ${message}\n`);
    else if (level === 'info') ctx.progress(message);
  };
  ctx.progress(init ? 'creating the pool and the base image' : 'opening the driver');
  const d = await ctx.deps.openDriver(home, options, log, ctx.signal, init);
  ctx.signal.throwIfAborted();
  return d;
}

const idArg = (p: Parsed): string => p.args['ID'] as string;

function sizeOpt(p: Parsed, ctx: Ctx): bigint | undefined {
  const size = p.options['size'] as string | undefined;
  return size === undefined ? undefined : parseSizeArg(size, '--size', ctx.command);
}

/** Status pairs → JSON (Docker's [key, value] list). */
export function driverStatusJson(pairs: readonly DriverStatusPair[]): DriverStatusJson {
  return pairs.map(([k, v]) => [k, v] as [string, string]);
}

/** `docker info`'s layout: one ` Key: value` line per pair. */
function statusText(pairs: readonly DriverStatusPair[]): string {
  return pairs.map(([k, v]) => `${k}: ${v}\n`).join('');
}

const HOME = { type: 'string', value: 'DIR', description: "The driver's home: a DeviceSet root, mount points under DIR/mnt (required)." } as const;
const PARENT = { type: 'string', value: 'PARENT_ID', description: 'The parent layer (default: the base device).' } as const;
const SIZE = { type: 'string', value: 'SIZE', description: "The layer's size, as Docker's --storage-opt size= (never below the parent's)." } as const;
const LABEL = { type: 'string', value: 'LABEL', description: 'SELinux mount label (context="LABEL").' } as const;

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'init',
    summary: "Docker's Init: create (or open) the driver's DeviceSet, pool and base image; saves the options.",
    options: {
      home: HOME,
      opt: { type: 'string', multiple: true, value: 'dm.KEY=VALUE', description: "A DeviceSet option, laid over the saved ones and saved (as 'ds init')." },
    },
    examples: ['devmapper driver init --home /var/lib/dmdriver --opt dm.loopdatasize=1G --opt dm.basesize=64M'],
    async run(ctx, p) {
      await open(ctx, p);
    },
  },
  {
    name: 'create',
    summary: "Docker's Create: layer ID as a snapshot of --parent (default: the base image).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME, parent: PARENT, size: SIZE },
    async run(ctx, p) {
      const size = sizeOpt(p, ctx);
      const d = await open(ctx, p);
      await d.create(idArg(p), (p.options['parent'] as string | undefined) ?? '', { ...(size !== undefined ? { size } : {}), signal: ctx.signal });
    },
  },
  {
    name: 'create-rw',
    summary: "Docker's CreateReadWrite: a container's layer ID on --parent.",
    positionals: [{ name: 'ID' }],
    options: { home: HOME, parent: PARENT, size: SIZE, 'mount-label': LABEL },
    async run(ctx, p) {
      const size = sizeOpt(p, ctx);
      const label = p.options['mount-label'] as string | undefined;
      const d = await open(ctx, p);
      await d.createReadWrite(idArg(p), (p.options['parent'] as string | undefined) ?? '', {
        ...(size !== undefined ? { size } : {}),
        ...(label !== undefined ? { mountLabel: label } : {}),
        signal: ctx.signal,
      });
    },
  },
  {
    name: 'get',
    summary: "Docker's Get: mount layer ID at HOME/mnt/ID (or count a reference) and print HOME/mnt/ID/rootfs.",
    positionals: [{ name: 'ID' }],
    options: { home: HOME, 'mount-label': LABEL },
    details: 'The mount outlives this process and counts as one reference for the next command (the mount table).',
    async run(ctx, p) {
      const label = p.options['mount-label'] as string | undefined;
      const d = await open(ctx, p);
      ctx.stdout(`${await d.get(idArg(p), { ...(label !== undefined ? { mountLabel: label } : {}), signal: ctx.signal })}\n`);
    },
  },
  {
    name: 'put',
    summary: "Docker's Put: drop a reference to layer ID; the last one unmounts it and removes HOME/mnt/ID.",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    async run(ctx, p) {
      const d = await open(ctx, p);
      await d.put(idArg(p));
    },
  },
  {
    name: 'remove',
    summary: "Docker's Remove: delete layer ID (a missing ID is no error; a mounted one is refused).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    async run(ctx, p) {
      const d = await open(ctx, p);
      await d.remove(idArg(p), { signal: ctx.signal });
    },
  },
  {
    name: 'exists',
    summary: "Docker's Exists: whether layer ID has a record (prints true or false).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    json: true,
    async run(ctx, p) {
      const d = await open(ctx, p);
      const out: DriverExistsJson = { id: idArg(p), exists: d.exists(idArg(p)) };
      ctx.stdout(p.options['json'] ? toJson(out) : `${out.exists}\n`);
    },
  },
  {
    name: 'status',
    summary: "Docker's Status: the lines 'docker info' prints under Storage Driver: devicemapper.",
    options: { home: HOME },
    json: true,
    async run(ctx, p) {
      const d = await open(ctx, p);
      const pairs = await d.status();
      ctx.stdout(p.options['json'] ? toJson(driverStatusJson(pairs)) : statusText(pairs));
    },
  },
  {
    name: 'metadata',
    summary: "Docker's GetMetadata: DeviceId, DeviceSize and DeviceName of layer ID ('' = the base).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    json: true,
    async run(ctx, p) {
      const d = await open(ctx, p);
      const m = d.getMetadata(idArg(p));
      const out: DriverMetadataJson = { DeviceId: m.DeviceId, DeviceSize: m.DeviceSize, DeviceName: m.DeviceName };
      ctx.stdout(p.options['json'] ? toJson(out) : `DeviceId: ${out.DeviceId}\nDeviceSize: ${out.DeviceSize}\nDeviceName: ${out.DeviceName}\n`);
    },
  },
  {
    name: 'cleanup',
    summary: "Docker's Cleanup: unmount every layer under HOME/mnt, deactivate, remove the pool (metadata stays).",
    options: { home: HOME },
    async run(ctx, p) {
      const d = await open(ctx, p);
      await d.cleanup();
    },
  },
];

export const driverGroup: GroupSpec<Ctx> = {
  name: 'driver',
  summary: "The seed's graph driver (Docker's devicemapper Driver): layers created, mounted, counted, removed.",
  details:
    "Each command is its own process over HOME (a DeviceSet root): 'driver init' creates it, the others open it\n" +
    "as it is (Docker's doInit false). A layer 'get' mounts stays mounted after the command; the next command\n" +
    "counts that mount as one reference, so one 'put' releases it. See docs/driver.md.",
  commands,
};
