// SPDX-License-Identifier: MIT
// `devmapper loop ...`: attach / detach / list / find loop devices over LoopControl. The command
// table (names, options, help) is specs/loop.ts; this module is loaded when a command runs.
import { LoopNotBoundError, ensureSparseFile, resolveAttachOptions, type LoopDeviceSpec, type LoopListEntry } from '../../loop/index.js';
import type { Handler } from '../args.js';
import type { Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { humanSize, parseUintArg, table, toJson } from '../output.js';
import type { LoopAttachJson, LoopFindJson, LoopListJson } from '../schemas.js';
import { LOOP_COLUMNS, LOOP_COLUMNS_DEFAULT, type LoopColumn } from '../specs/constants.js';

/** DEVICE as the loop commands take it: N or loopN (an index: LoopControl's devDir), or a path. */
function loopSpecOf(d: string): LoopDeviceSpec {
  const index = /^(?:loop)?(\d+)$/.exec(d);
  return index ? Number(index[1]) : d;
}

/**
 * `loop detach --all` (losetup -D): LOOP_CLR_FD on every bound loop device sysfs lists. A device
 * unbound meanwhile is skipped; another failure does not stop the rest: the later ones are warned
 * about and the first is thrown at the end (its exit code).
 */
async function detachAll(ctx: Ctx): Promise<void> {
  const loop = ctx.deps.loop();
  let first: { err: unknown } | undefined;
  for (const e of await loop.list()) {
    try {
      const r = await loop.detach(e.path);
      if (r === 'deferred' && !ctx.quiet) ctx.stderr(`devmapper: ${e.path} is still open; the kernel detaches it on last close\n`);
    } catch (err) {
      if (err instanceof LoopNotBoundError) continue;
      if (first === undefined) first = { err };
      else ctx.stderr(`devmapper: warn: ${e.path}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  if (first !== undefined) throw first.err;
}

/** Parses `-O COLUMNS` (losetup's names, case-insensitive). */
export function parseLoopColumns(text: string, command: string): LoopColumn[] {
  return text.split(',').map((raw) => {
    const c = LOOP_COLUMNS.find((x) => x === raw.trim().toUpperCase());
    if (c === undefined) throw new UsageError(`-O: unknown column '${raw}'; the columns are ${LOOP_COLUMNS.join(', ')}`, command);
    return c;
  });
}

/** Columns losetup (libsmartcols) aligns to the right: the numbers and flags. */
const RIGHT: ReadonlySet<LoopColumn> = new Set(['AUTOCLEAR', 'OFFSET', 'PARTSCAN', 'RO', 'SIZELIMIT', 'DIO', 'LOG-SEC']);

function loopColumnValue(l: LoopListJson[number], c: LoopColumn): string {
  const flag = (b: boolean): string => (b ? '1' : '0');
  switch (c) {
    case 'NAME':
      return l.path;
    case 'AUTOCLEAR':
      return flag(l.autoclear);
    case 'BACK-FILE':
      return l.backingFile === null ? '' : `${l.backingFile}${l.backingFileDeleted ? ' (deleted)' : ''}`;
    case 'MAJ:MIN':
      return `${l.major}:${l.minor}`;
    case 'OFFSET':
      return String(l.offset);
    case 'PARTSCAN':
      return flag(l.partscan);
    case 'RO':
      return flag(l.readOnly);
    case 'SIZELIMIT':
      return String(l.sizeLimit);
    case 'DIO':
      return flag(l.directIo);
    case 'LOG-SEC':
      return l.logicalBlockSize === null ? '' : String(l.logicalBlockSize);
  }
}

/** `losetup --list -O COLUMNS [--noheadings]`: one space between columns, the last one unpadded. */
export function loopColumns(entries: LoopListJson, columns: readonly LoopColumn[], noheadings: boolean): string {
  const rows = entries.map((l) => columns.map((c) => loopColumnValue(l, c)));
  const all = noheadings ? rows : [[...columns], ...rows];
  const widths = columns.map((_c, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all
    .map((r) => r.map((v, i) => (RIGHT.has(columns[i]!) ? v.padStart(widths[i]!) : i === r.length - 1 ? v : v.padEnd(widths[i]!))).join(' ') + '\n')
    .join('');
}

/** LoopListEntry → the stable JSON shape. */
export function loopEntryJson(l: LoopListEntry): LoopListJson[number] {
  const b = l.binding;
  return {
    path: l.path,
    index: l.index,
    major: l.major,
    minor: l.minor,
    bound: l.bound,
    backingFile: b?.backingFile ?? null,
    backingFileDeleted: b?.backingFileDeleted ?? false,
    offset: (b?.offset ?? 0n) as unknown as number,
    sizeLimit: (b?.sizeLimit ?? 0n) as unknown as number,
    sizeBytes: (l.sizeSectors * 512n) as unknown as number,
    readOnly: l.readOnly,
    autoclear: b?.autoclear ?? false,
    partscan: b?.partscan ?? false,
    directIo: b?.directIo ?? false,
    logicalBlockSize: l.logicalBlockSize ?? null,
  };
}

export const handlers = {
  async attach(ctx, p) {
    const file = p.args['FILE'] as string;
    const size = p.options['size'] as string | undefined;
    const offset = p.options['offset'] as string | undefined;
    const limit = p.options['size-limit'] as string | undefined;
    const bs = p.options['block-size'] as string | undefined;
    // The size syntax lives in the DeviceSet layer (TypeBox): loaded by the commands that take a size only.
    const { parseSizeArg } = await import('../size-args.js');
    const options = {
      readOnly: p.options['read-only'] === true,
      directIo: p.options['direct-io'] === true,
      partscan: p.options['partscan'] === true,
      autoclear: false,
      hold: false,
      ...(offset !== undefined ? { offset: parseSizeArg(offset, '--offset', 'loop attach') } : {}),
      ...(limit !== undefined ? { sizeLimit: parseSizeArg(limit, '--size-limit', 'loop attach') } : {}),
      ...(bs !== undefined ? { blockSize: parseUintArg(bs, '--block-size', 'loop attach', 65536) } : {}),
    };
    resolveAttachOptions(options); // refuse bad options before the file is created or grown
    if (size !== undefined) {
      const bytes = parseSizeArg(size, '--size', 'loop attach');
      ctx.progress(`creating sparse file ${file} (${humanSize(bytes)})`);
      await ensureSparseFile(file, bytes);
    }
    const a = await ctx.deps.loop().attach(file, options);
    const out: LoopAttachJson = {
      path: a.path,
      index: a.index,
      major: a.major,
      minor: a.minor,
      backingFile: a.backingFile,
      readOnly: a.status.readOnly,
      autoclear: a.status.autoclear,
      directIo: a.status.directIo,
      method: a.method,
    };
    ctx.stdout(p.options['json'] ? toJson(out) : `${a.path}\n`);
  },
  async detach(ctx, p) {
    const d = p.args['DEVICE'] as string | undefined;
    const all = p.options['all'] === true;
    if (all && d !== undefined) throw new UsageError('give DEVICE or --all, not both', 'loop detach');
    if (d === undefined) {
      if (!all) throw new UsageError('missing DEVICE (or --all)', 'loop detach');
      return detachAll(ctx);
    }
    const r = await ctx.deps.loop().detach(loopSpecOf(d));
    if (r === 'deferred' && !ctx.quiet) ctx.stderr(`devmapper: ${d} is still open; the kernel detaches it on last close\n`);
  },
  async 'set-capacity'(ctx, p) {
    await ctx.deps.loop().setCapacity(loopSpecOf(p.args['DEVICE'] as string));
  },
  async ls(ctx, p) {
    const columnsText = p.options['output'] as string | undefined;
    const noheadings = p.options['noheadings'] === true;
    if (p.options['json'] && (columnsText !== undefined || noheadings)) throw new UsageError('-O and --noheadings are text views; --json prints every column already', 'loop ls');
    const columns = columnsText !== undefined ? parseLoopColumns(columnsText, 'loop ls') : noheadings ? parseLoopColumns(LOOP_COLUMNS_DEFAULT, 'loop ls') : undefined;
    const out = (await ctx.deps.loop().list({ all: p.options['all'] === true })).map(loopEntryJson).sort((a, b) => a.index - b.index);
    if (p.options['json']) return ctx.stdout(toJson(out));
    if (columns !== undefined) return ctx.stdout(loopColumns(out, columns, noheadings));
    ctx.stdout(
      table(
        ['DEVICE', 'SIZE', 'RO', 'DIO', 'AUTOCLEAR', 'BACKING FILE'],
        out.map((l) => [l.path, humanSize(l.sizeBytes), l.readOnly ? '1' : '0', l.directIo ? '1' : '0', l.autoclear ? '1' : '0', l.backingFile === null ? '' : `${l.backingFile}${l.backingFileDeleted ? ' (deleted)' : ''}`]),
      ),
    );
  },
  async find(ctx, p) {
    const out: LoopFindJson = (await ctx.deps.loop().findByBackingFile(p.args['FILE'] as string)).map((m) => ({ path: m.path, index: m.index, major: m.major, minor: m.minor, backingFile: m.backingFile, matchedBy: m.matchedBy }));
    if (p.options['json']) ctx.stdout(toJson(out));
    else ctx.stdout(out.map((m) => `${m.path}\n`).join(''));
  },
} satisfies Record<string, Handler<Ctx>>;
