// SPDX-License-Identifier: MIT
// `devmapper loop ...`: attach / detach / list / find loop devices over LoopControl. The command
// table (names, options, help) is specs/loop.ts; this module is loaded when a command runs.
import { LoopNotBoundError, ensureSparseFile, resolveAttachOptions, type LoopDeviceSpec, type LoopListEntry } from '../../loop/index.js';
import type { Handler } from '../args.js';
import type { Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { humanSize, parseUintArg, table, toJson } from '../output.js';
import type { LoopAttachJson, LoopFindJson, LoopListJson } from '../schemas.js';

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
  for (const e of loop.list()) {
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
    const out = ctx.deps.loop().list({ all: p.options['all'] === true }).map(loopEntryJson).sort((a, b) => a.index - b.index);
    if (p.options['json']) return ctx.stdout(toJson(out));
    ctx.stdout(
      table(
        ['DEVICE', 'SIZE', 'RO', 'DIO', 'AUTOCLEAR', 'BACKING FILE'],
        out.map((l) => [l.path, humanSize(l.sizeBytes), l.readOnly ? '1' : '0', l.directIo ? '1' : '0', l.autoclear ? '1' : '0', l.backingFile === null ? '' : `${l.backingFile}${l.backingFileDeleted ? ' (deleted)' : ''}`]),
      ),
    );
  },
  async find(ctx, p) {
    const out: LoopFindJson = ctx.deps
      .loop()
      .findByBackingFile(p.args['FILE'] as string)
      .map((m) => ({ path: m.path, index: m.index, major: m.major, minor: m.minor, backingFile: m.backingFile, matchedBy: m.matchedBy }));
    if (p.options['json']) ctx.stdout(toJson(out));
    else ctx.stdout(out.map((m) => `${m.path}\n`).join(''));
  },
} satisfies Record<string, Handler<Ctx>>;
