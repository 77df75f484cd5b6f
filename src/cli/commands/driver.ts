// SPDX-License-Identifier: MIT
// `devmapper driver ...`: the seed's graph driver (Driver over a DeviceSet), one process per
// command. `driver init` creates the set (Docker's Init, doInit true) and saves its options in
// HOME/cli-options.json, the file `ds` uses too; every other command opens it with doInit false
// (nothing is created) and exits without cleanup, so mounts and active devices stay in the kernel
// between commands. Reference counts across commands come from the kernel's mount table: a
// layer mounted at HOME/mnt/ID counts as one reference in the next process (docs/driver.md).
// The command table (names, options, help) is specs/driver.ts; this module is loaded when a
// command runs.
import { isAbsolute, resolve } from 'node:path';
import { resolveDeviceSetOptions, type DeviceSetLogLevel } from '../../deviceset/index.js';
import type { DriverStatusPair } from '../../driver/index.js';
import type { Handler, Parsed } from '../args.js';
import type { CliDriver, Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { CLI_OPTIONS_FILE, nodeOptionsFs, readSavedOptions, saveOptions } from '../options-file.js';
import { toJson } from '../output.js';
import { parseSizeArg } from '../size-args.js';
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

export const handlers = {
  async init(ctx, p) {
    await open(ctx, p);
  },
  async create(ctx, p) {
    const size = sizeOpt(p, ctx);
    const d = await open(ctx, p);
    await d.create(idArg(p), (p.options['parent'] as string | undefined) ?? '', { ...(size !== undefined ? { size } : {}), signal: ctx.signal });
  },
  async 'create-rw'(ctx, p) {
    const size = sizeOpt(p, ctx);
    const label = p.options['mount-label'] as string | undefined;
    const d = await open(ctx, p);
    await d.createReadWrite(idArg(p), (p.options['parent'] as string | undefined) ?? '', {
      ...(size !== undefined ? { size } : {}),
      ...(label !== undefined ? { mountLabel: label } : {}),
      signal: ctx.signal,
    });
  },
  async get(ctx, p) {
    const label = p.options['mount-label'] as string | undefined;
    const d = await open(ctx, p);
    ctx.stdout(`${await d.get(idArg(p), { ...(label !== undefined ? { mountLabel: label } : {}), signal: ctx.signal })}\n`);
  },
  async put(ctx, p) {
    const d = await open(ctx, p);
    await d.put(idArg(p));
  },
  async remove(ctx, p) {
    const d = await open(ctx, p);
    await d.remove(idArg(p), { signal: ctx.signal });
  },
  async exists(ctx, p) {
    const d = await open(ctx, p);
    const out: DriverExistsJson = { id: idArg(p), exists: d.exists(idArg(p)) };
    ctx.stdout(p.options['json'] ? toJson(out) : `${out.exists}\n`);
  },
  async status(ctx, p) {
    const d = await open(ctx, p);
    const pairs = await d.status();
    ctx.stdout(p.options['json'] ? toJson(driverStatusJson(pairs)) : statusText(pairs));
  },
  async metadata(ctx, p) {
    const d = await open(ctx, p);
    const m = d.getMetadata(idArg(p));
    const out: DriverMetadataJson = { DeviceId: m.DeviceId, DeviceSize: m.DeviceSize, DeviceName: m.DeviceName };
    ctx.stdout(p.options['json'] ? toJson(out) : `DeviceId: ${out.DeviceId}\nDeviceSize: ${out.DeviceSize}\nDeviceName: ${out.DeviceName}\n`);
  },
  async cleanup(ctx, p) {
    const d = await open(ctx, p);
    await d.cleanup();
  },
} satisfies Record<string, Handler<Ctx>>;
