// SPDX-License-Identifier: MIT
// `devmapper dm ...`: one command per DM_* ioctl, dmsetup-like, over DmControl. The command table
// (names, options, help) is specs/dm.ts; this module is loaded when a command runs.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { DeviceNotFoundError, errorTarget, formatTargetLine, parseDevNum, parseTable, type DeviceInfo, type DeviceRef, type TargetLine } from '../../dm/index.js';
import type { Handler, Parsed } from '../args.js';
import type { CliDm, Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { libraryVersion } from '../version.js';
import { parseU64Arg, parseUintArg, table, toJson } from '../output.js';
import type { DmDepsJson, DmInfoJson, DmListJson, DmRemoveAllJson, DmTableJson, DmTargetsJson, DmVersionJson, DmWaitJson } from '../schemas.js';

/** The device a command acts on: DEVICE, --uuid or --dev (exactly one). */
export function deviceRefOf(p: Parsed, command: string): DeviceRef {
  const name = p.args['DEVICE'] as string | undefined;
  const uuid = p.options['uuid'] as string | undefined;
  const dev = p.options['dev'] as string | undefined;
  const given = [name, uuid, dev].filter((x) => x !== undefined).length;
  if (given !== 1) throw new UsageError(given === 0 ? 'missing DEVICE (or --uuid / --dev)' : 'give only one of DEVICE, --uuid, --dev', command);
  if (uuid !== undefined) return { uuid };
  if (dev !== undefined) return { dev: parseDevNum(dev) };
  return { name: name! };
}

/** DeviceInfo → the stable JSON shape. */
export function infoJson(i: DeviceInfo): DmInfoJson {
  return {
    name: i.name,
    uuid: i.uuid ?? null,
    major: i.dev.major,
    minor: i.dev.minor,
    suspended: i.suspended,
    readOnly: i.readOnly,
    activeTable: i.activeTable,
    inactiveTable: i.inactiveTable,
    deferredRemove: i.deferredRemove,
    internalSuspend: i.internalSuspend,
    openCount: i.openCount,
    eventNr: i.eventNr,
    targetCount: i.targetCount,
  };
}

function infoText(i: DeviceInfo): string {
  const state = i.suspended ? 'SUSPENDED' : 'ACTIVE';
  const tables = [i.activeTable ? 'LIVE' : null, i.inactiveTable ? 'INACTIVE' : null].filter(Boolean).join(' & ') || 'None';
  return [
    `Name:              ${i.name}`,
    `State:             ${state}${i.readOnly ? ' (READ-ONLY)' : ''}${i.deferredRemove ? ' (DEFERRED REMOVE)' : ''}`,
    `Tables present:    ${tables}`,
    `Open count:        ${i.openCount}`,
    `Event number:      ${i.eventNr}`,
    `Major, minor:      ${i.dev.major}, ${i.dev.minor}`,
    `Number of targets: ${i.targetCount}`,
    `UUID:              ${i.uuid ?? ''}`,
  ].join('\n') + '\n';
}

function tableJson(lines: readonly TargetLine[]): DmTableJson {
  return lines.map((t) => ({ start: t.start as unknown as number, length: t.length as unknown as number, type: t.type, params: t.params }));
}

function printLines(ctx: Ctx, p: Parsed, lines: readonly TargetLine[]): void {
  if (p.options['json']) ctx.stdout(toJson(tableJson(lines)));
  else ctx.stdout(lines.map((l) => formatTargetLine(l) + '\n').join(''));
}

/** The table of `dm create` / `dm load`: --table (repeatable, may hold newlines) and/or --table-file. */
export function tableOf(ctx: Ctx, p: Parsed, command: string): TargetLine[] | undefined {
  const texts = [...((p.options['table'] as string[] | undefined) ?? [])];
  const file = p.options['table-file'] as string | undefined;
  if (file !== undefined) texts.push(readFileSync(file === '-' ? 0 : file, 'utf8'));
  if (texts.length === 0) return undefined;
  const lines = parseTable(texts.join('\n'));
  if (lines.length === 0) throw new UsageError('the table is empty', command);
  void ctx;
  return lines;
}

/** The live table, or null when the device is gone (removed since the list). */
async function tableOrNull(ctx: Ctx, dev: DeviceInfo['dev']): Promise<TargetLine[] | null> {
  try {
    return await ctx.deps.dm().tableStatus({ dev }, { mode: 'table' });
  } catch (e) {
    if (e instanceof DeviceNotFoundError) return null;
    throw e;
  }
}

/** The live table's deps, or null when the device is gone. */
async function depsOrNull(ctx: Ctx, dev: DeviceInfo['dev']): Promise<DeviceInfo['dev'][] | null> {
  try {
    return await ctx.deps.dm().tableDeps({ dev });
  } catch (e) {
    if (e instanceof DeviceNotFoundError) return null;
    throw e;
  }
}

/** The info, or null when the device is gone. */
async function infoOrNull(ctx: Ctx, dev: DeviceInfo['dev'], inactive: boolean): Promise<DeviceInfo | null> {
  try {
    return await ctx.deps.dm().deviceInfo({ dev }, { inactive });
  } catch (e) {
    if (e instanceof DeviceNotFoundError) return null;
    throw e;
  }
}

/**
 * `dmsetup remove --force`'s first step (dmsetup.c `_error_device`): load an error table as long
 * as the live one and resume it, so queued and later I/O fails instead of hanging; when the
 * resume fails the loaded table is cleared again. A device with no live table is left as is.
 */
async function errorDevice(dm: CliDm, ref: DeviceRef): Promise<void> {
  const lines = await dm.tableStatus(ref, { mode: 'table' });
  const size = lines.reduce((n, t) => n + t.length, 0n);
  if (size === 0n) return;
  await dm.tableLoad(ref, [errorTarget(0n, size)]);
  try {
    await dm.deviceResume(ref);
  } catch (e) {
    await dm.tableClear(ref).catch(() => undefined);
    throw e;
  }
}

export const handlers = {
  async version(ctx, p) {
    // As dmsetup does, the library version is printed even when the driver cannot be asked (no
    // dm-mod, not root): `driver` is then null and the error follows on stderr (its exit code).
    let driver: string | null = null;
    let failure: { err: unknown } | undefined;
    try {
      driver = (await ctx.deps.dm().version()).join('.');
    } catch (err) {
      failure = { err };
    }
    const out: DmVersionJson = { library: libraryVersion(), driver, kernel: release() };
    if (p.options['json']) ctx.stdout(toJson(out));
    else ctx.stdout(`Library version:   ${out.library}\n${driver === null ? '' : `Driver version:    ${driver}\n`}Kernel:            ${out.kernel}\n`);
    if (failure) throw failure.err;
  },
  async ls(ctx, p) {
    const np = p.options['name-prefix'] as string | undefined;
    const up = p.options['uuid-prefix'] as string | undefined;
    const target = p.options['target'] as string | undefined;
    const tree = p.options['tree'] === true;
    if (tree && p.options['json']) throw new UsageError("--tree has no --json form: 'dm ls --json' and 'dm deps DEVICE --json' give the same graph", 'dm ls');
    const dm = ctx.deps.dm();
    let list = await dm.listDevices({ ...(np ? { namePrefix: np } : {}), ...(up ? { uuidPrefix: up } : {}) });
    if (target !== undefined) {
      // dmsetup ls --target: devices whose live table has a target of that type. A device
      // removed meanwhile (ENXIO) is left out.
      const keep = await Promise.all(list.map(async (d) => (await tableOrNull(ctx, d.dev))?.some((t) => t.type === target) === true));
      list = list.filter((_d, i) => keep[i]);
    }
    if (tree) {
      const { depsTree, utf8Locale } = await import('./dm-report.js');
      const nodes = await Promise.all(list.map(async (d) => ({ name: d.name, dev: d.dev, deps: (await depsOrNull(ctx, d.dev)) ?? [] })));
      return ctx.stdout(nodes.length === 0 ? 'No devices found\n' : depsTree(nodes, utf8Locale(ctx.env)));
    }
    const out: DmListJson = list
      .map((d) => ({ name: d.name, major: d.dev.major, minor: d.dev.minor, uuid: d.uuid ?? null, eventNr: d.eventNr ?? null }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (p.options['json']) return ctx.stdout(toJson(out));
    if (out.length === 0) return ctx.stdout('No devices found\n');
    ctx.stdout(table(['NAME', 'MAJ:MIN', 'EVENT', 'UUID'], out.map((d) => [d.name, `${d.major}:${d.minor}`, d.eventNr === null ? '-' : String(d.eventNr), d.uuid ?? ''])));
  },
  async info(ctx, p) {
    const columns = p.options['columns'] === true;
    const fieldsText = p.options['output'] as string | undefined;
    const noheadings = p.options['noheadings'] === true;
    // As dmsetup: --noheadings also makes the output unaligned, ':'-separated unless --separator says otherwise.
    const separator = (p.options['separator'] as string | undefined) ?? (noheadings ? ':' : undefined);
    if (!columns && (fieldsText !== undefined || separator !== undefined || noheadings)) throw new UsageError('-o, --noheadings and --separator go with -c (--columns)', 'dm info');
    if (columns && p.options['json']) throw new UsageError('-c is a text view; --json prints every field already', 'dm info');
    // The column report is loaded by the commands that print one only (dm ls stays lean).
    const report = columns ? await import('./dm-report.js') : undefined;
    const fields = report ? report.parseInfoFields(fieldsText ?? report.INFO_FIELDS_DEFAULT, 'dm info') : [];
    const inactive = p.options['inactive'] === true;
    const dm = ctx.deps.dm();
    const anyRef = p.args['DEVICE'] !== undefined || p.options['uuid'] !== undefined || p.options['dev'] !== undefined;
    if (columns && !anyRef) {
      // dmsetup info -c without a device: every device, by name.
      const list = (await dm.listDevices()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const infos = (await Promise.all(list.map(async (d) => infoOrNull(ctx, d.dev, inactive)))).filter((i): i is DeviceInfo => i !== null);
      return ctx.stdout(report!.infoColumns(infos, fields, { noheadings, ...(separator !== undefined ? { separator } : {}) }));
    }
    const info = await dm.deviceInfo(deviceRefOf(p, 'dm info'), { inactive });
    if (report) return ctx.stdout(report.infoColumns([info], fields, { noheadings, ...(separator !== undefined ? { separator } : {}) }));
    ctx.stdout(p.options['json'] ? toJson(infoJson(info)) : infoText(info));
  },
  async clear(ctx, p) {
    await ctx.deps.dm().tableClear(deviceRefOf(p, 'dm clear'));
  },
  async deps(ctx, p) {
    const deps = await ctx.deps.dm().tableDeps(deviceRefOf(p, 'dm deps'), { inactive: p.options['inactive'] === true });
    const out: DmDepsJson = deps.map((d) => ({ major: d.major, minor: d.minor }));
    // dmsetup deps: `N dependencies\t: (MAJ, MIN) ...`
    if (p.options['json']) ctx.stdout(toJson(out));
    else ctx.stdout(`${out.length} dependencies\t:${out.map((d) => ` (${d.major}, ${d.minor})`).join('')}\n`);
  },
  async mknodes(ctx, p) {
    const name = p.args['NAME'] as string | undefined;
    const done = await ctx.deps.dm().mknodes(name);
    if (!ctx.quiet) for (const d of done) if (d.action === 'created' || d.action === 'replaced') ctx.stderr(`devmapper: ${d.action} node for ${d.name}\n`);
  },
  async remove_all(ctx, p) {
    const dm = ctx.deps.dm();
    const names = (await dm.listDevices()).map((d) => d.name).sort();
    if (p.options['yes'] !== true) {
      // The house rule: never touch what is not provably ours. DM_REMOVE_ALL takes every device
      // of the host, so it is only a listing until the user confirms.
      ctx.stderr(names.length === 0 ? 'devmapper: no device-mapper devices\n' : `devmapper: would remove ${names.length} device(s), every one on this host:\n${names.map((n) => `  ${n}\n`).join('')}`);
      throw new UsageError('dm remove_all removes every device-mapper device of the host, not only devmapper\'s: re-run with --yes to do it', 'dm remove_all');
    }
    await dm.removeAll({ deferred: p.options['deferred'] === true });
    const left = new Set((await dm.listDevices()).map((d) => d.name));
    const out: DmRemoveAllJson = { removed: names.filter((n) => !left.has(n)), remaining: [...left].sort() };
    if (p.options['json']) return ctx.stdout(toJson(out));
    ctx.stdout(out.removed.map((n) => `removed ${n}\n`).join('') + out.remaining.map((n) => `still present ${n}\n`).join(''));
  },
  async table(ctx, p) {
    const lines = await ctx.deps.dm().tableStatus(deviceRefOf(p, 'dm table'), { mode: 'table', inactive: p.options['inactive'] === true });
    printLines(ctx, p, lines);
  },
  async status(ctx, p) {
    const lines = await ctx.deps.dm().tableStatus(deviceRefOf(p, 'dm status'), {
      mode: 'status',
      inactive: p.options['inactive'] === true,
      noflush: p.options['noflush'] === true,
    });
    printLines(ctx, p, lines);
  },
  async create(ctx, p) {
    const name = p.args['NAME'] as string;
    const lines = tableOf(ctx, p, 'dm create');
    const uuid = p.options['uuid'] as string | undefined;
    if (lines === undefined && !p.options['notable']) throw new UsageError('missing --table (or --table-file, or --notable)', 'dm create');
    if (lines !== undefined && p.options['notable']) throw new UsageError('--notable contradicts --table', 'dm create');
    const dm = ctx.deps.dm();
    if (lines === undefined) await dm.deviceCreate(name, uuid !== undefined ? { uuid } : {});
    else await dm.createDevice(name, lines, { ...(uuid !== undefined ? { uuid } : {}), readOnly: p.options['read-only'] === true });
  },
  async load(ctx, p) {
    const lines = tableOf(ctx, p, 'dm load');
    if (lines === undefined) throw new UsageError('missing --table (or --table-file)', 'dm load');
    await ctx.deps.dm().tableLoad(deviceRefOf(p, 'dm load'), lines, { readOnly: p.options['read-only'] === true });
  },
  async suspend(ctx, p) {
    await ctx.deps.dm().deviceSuspend(deviceRefOf(p, 'dm suspend'), { noflush: p.options['noflush'] === true, skipLockfs: p.options['nolockfs'] === true });
  },
  async resume(ctx, p) {
    await ctx.deps.dm().deviceResume(deviceRefOf(p, 'dm resume'));
  },
  async remove(ctx, p) {
    const ref = deviceRefOf(p, 'dm remove');
    const dm = ctx.deps.dm();
    if (p.options['force'] === true) await errorDevice(dm, ref);
    const r = await dm.deviceRemove(ref, { deferred: p.options['deferred'] === true });
    if (r.deferred && !ctx.quiet) ctx.stderr('devmapper: device is busy; removal deferred until its last close\n');
  },
  async rename(ctx, p) {
    const to = p.args['NEW_NAME'] as string | undefined;
    const uuid = p.options['set-uuid'] as string | undefined;
    if ((to === undefined) === (uuid === undefined)) throw new UsageError('give NEW_NAME or --set-uuid (one of them)', 'dm rename');
    await ctx.deps.dm().deviceRename(p.args['DEVICE'] as string, uuid !== undefined ? { uuid } : { name: to! });
  },
  async message(ctx, p) {
    const sector = parseU64Arg(p.args['SECTOR'] as string, 'SECTOR', 'dm message');
    const reply = await ctx.deps.dm().targetMessage(p.args['DEVICE'] as string, sector, (p.args['MESSAGE'] as string[]).join(' '));
    if (p.options['json']) ctx.stdout(toJson({ reply }));
    else if (reply !== null && reply !== '') ctx.stdout(reply.endsWith('\n') ? reply : `${reply}\n`);
  },
  async targets(ctx, p) {
    const list = await ctx.deps.dm().listVersions();
    const out: DmTargetsJson = list.map((t) => ({ name: t.name, version: t.version.join('.') })).sort((a, b) => (a.name < b.name ? -1 : 1));
    if (p.options['json']) ctx.stdout(toJson(out));
    else ctx.stdout(table(['TARGET', 'VERSION'], out.map((t) => [t.name, t.version])));
  },
  async wait(ctx, p) {
    const dm = ctx.deps.dm();
    const name = p.args['DEVICE'] as string;
    const given = p.args['EVENT_NR'] as string | undefined;
    const nr = given !== undefined ? parseUintArg(given, 'EVENT_NR', 'dm wait', 0xffffffff) : (await dm.deviceInfo(name)).eventNr;
    const r = await dm.deviceWait(name, nr);
    const out: DmWaitJson = { info: infoJson(r.info), targets: tableJson(r.targets) };
    if (p.options['json']) ctx.stdout(toJson(out));
    else ctx.stdout(`${r.info.name}: event ${r.info.eventNr}\n`);
  },
} satisfies Record<string, Handler<Ctx>>;
