// SPDX-License-Identifier: MIT
// `devmapper loop ...`: attach / detach / list / find loop devices over LoopControl.
import { ensureSparseFile, resolveAttachOptions, type LoopListEntry } from '../../index.js';
import type { CommandSpec, GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';
import { humanSize, parseSizeArg, parseUintArg, table, toJson } from '../output.js';
import type { LoopAttachJson, LoopFindJson, LoopListJson } from '../schemas.js';

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

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'attach',
    summary: 'Bind FILE to a free loop device and print the device path.',
    positionals: [{ name: 'FILE' }],
    json: true,
    options: {
      'read-only': { type: 'boolean', short: 'r', description: 'Bind read-only.' },
      'direct-io': { type: 'boolean', description: 'Direct I/O to the backing file (best effort; --json says if it took).' },
      size: { type: 'string', value: 'SIZE', description: 'First create FILE sparse, or grow it, to SIZE (e.g. 512M).' },
      offset: { type: 'string', value: 'BYTES', description: 'Start of the device inside FILE (multiple of 512).' },
      'size-limit': { type: 'string', value: 'BYTES', description: 'Device size limit (multiple of 512; default: to the end).' },
      'block-size': { type: 'string', value: 'N', description: 'Logical block size: 512, 1024, 2048 or 4096.' },
      partscan: { type: 'boolean', description: 'Let the kernel scan for partitions.' },
    },
    details:
      'The binding outlives this process: the CLI attaches with autoclear OFF (with autoclear the kernel would\n' +
      "detach the device as soon as this short-lived process closes its fd). Detach it with 'devmapper loop detach'.",
    examples: ['devmapper loop attach --size 256M /var/tmp/data.img', 'devmapper loop attach --read-only --json image.raw'],
    async run(ctx, p) {
      const file = p.args['FILE'] as string;
      const size = p.options['size'] as string | undefined;
      const offset = p.options['offset'] as string | undefined;
      const limit = p.options['size-limit'] as string | undefined;
      const bs = p.options['block-size'] as string | undefined;
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
  },
  {
    name: 'detach',
    summary: 'Unbind a loop device (DEVICE: /dev/loopN, loopN or N).',
    positionals: [{ name: 'DEVICE' }],
    async run(ctx, p) {
      const d = p.args['DEVICE'] as string;
      const spec = /^\d+$/.test(d) ? Number(d) : /^loop\d+$/.test(d) ? `/dev/${d}` : d;
      const r = await ctx.deps.loop().detach(spec);
      if (r === 'deferred' && !ctx.quiet) ctx.stderr(`devmapper: ${d} is still open; the kernel detaches it on last close\n`);
    },
  },
  {
    name: 'ls',
    summary: 'List bound loop devices (--all: unbound ones too).',
    json: true,
    options: { all: { type: 'boolean', short: 'a', description: 'Include unbound devices.' } },
    async run(ctx, p) {
      const out = ctx.deps.loop().list({ all: p.options['all'] === true }).map(loopEntryJson).sort((a, b) => a.index - b.index);
      if (p.options['json']) return ctx.stdout(toJson(out));
      ctx.stdout(
        table(
          ['DEVICE', 'SIZE', 'RO', 'DIO', 'AUTOCLEAR', 'BACKING FILE'],
          out.map((l) => [l.path, humanSize(l.sizeBytes), l.readOnly ? '1' : '0', l.directIo ? '1' : '0', l.autoclear ? '1' : '0', l.backingFile === null ? '' : `${l.backingFile}${l.backingFileDeleted ? ' (deleted)' : ''}`]),
        ),
      );
    },
  },
  {
    name: 'find',
    summary: 'The loop devices bound to FILE (matched by inode, like losetup -j).',
    positionals: [{ name: 'FILE' }],
    json: true,
    async run(ctx, p) {
      const out: LoopFindJson = ctx.deps
        .loop()
        .findByBackingFile(p.args['FILE'] as string)
        .map((m) => ({ path: m.path, index: m.index, major: m.major, minor: m.minor, backingFile: m.backingFile, matchedBy: m.matchedBy }));
      if (p.options['json']) ctx.stdout(toJson(out));
      else ctx.stdout(out.map((m) => `${m.path}\n`).join(''));
    },
  },
];

export const loopGroup: GroupSpec<Ctx> = {
  name: 'loop',
  summary: 'Loop devices (like losetup). Bindings made by the CLI persist until detached.',
  commands,
};
