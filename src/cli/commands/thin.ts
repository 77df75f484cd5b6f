// SPDX-License-Identifier: MIT
// `devmapper pool ...` and `devmapper thin ...`: thin pools and thin devices over ThinPool / ThinDevice.
import { ThinDevice, ThinPool, type ThinPoolFeatures } from '../../index.js';
import type { CommandSpec, GroupSpec, Parsed } from '../args.js';
import type { Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { parseSectorsArg, parseSizeArg, parseU64Arg, parseUintArg, table, toJson } from '../output.js';
import type { PoolStatusJson, ThinStatusJson } from '../schemas.js';

/** `--feature` words (the kernel's spelling) → ThinPoolFeatures keys. */
export const POOL_FEATURES: Readonly<Record<string, keyof ThinPoolFeatures>> = {
  skip_block_zeroing: 'skipBlockZeroing',
  ignore_discard: 'ignoreDiscard',
  no_discard_passdown: 'noDiscardPassdown',
  read_only: 'readOnly',
  error_if_no_space: 'errorIfNoSpace',
};

/** `--block-size`: a plain number is sectors (128 = 64 KiB); with a unit it is bytes (64K). */
export function parseBlockSize(text: string, command: string): number {
  if (/^\d+$/.test(text)) return parseUintArg(text, '--block-size', command, 2097152);
  const bytes = parseSizeArg(text, '--block-size', command);
  if (bytes % 512n !== 0n) throw new UsageError(`--block-size: '${text}' is not a whole number of 512-byte sectors`, command);
  return Number(bytes / 512n);
}

function idArg(p: Parsed, key: string, command: string): number {
  return parseUintArg(p.args[key] as string, key, command, 0xffffff);
}

async function openPool(ctx: Ctx, p: Parsed): Promise<ThinPool> {
  return ThinPool.open(ctx.deps.dm(), p.args['POOL'] as string);
}

/** The JSON shape of a pool's status. */
export async function poolStatusJson(pool: ThinPool): Promise<PoolStatusJson> {
  const s = await pool.status();
  const w = s.kind === 'working' ? s : undefined;
  const n = (v: bigint | null | undefined): number | null => (v === undefined || v === null ? null : (v as unknown as number));
  return {
    name: pool.name,
    kind: s.kind,
    dataBlockSize: pool.dataBlockSize,
    lengthSectors: pool.lengthSectors as unknown as number,
    metadataDev: pool.params.metadataDev,
    dataDev: pool.params.dataDev,
    transactionId: n(w?.transactionId),
    usedMetadataBlocks: n(w?.usedMetadataBlocks),
    totalMetadataBlocks: n(w?.totalMetadataBlocks),
    usedDataBlocks: n(w?.usedDataBlocks),
    totalDataBlocks: n(w?.totalDataBlocks),
    heldMetadataRoot: n(w?.heldMetadataRoot),
    mode: w?.mode ?? null,
    discardPassdown: w?.discardPassdown ?? null,
    noSpacePolicy: w?.noSpacePolicy ?? null,
    needsCheck: w?.needsCheck ?? null,
  };
}

const POOL_POS = [{ name: 'POOL' }] as const;

const poolCommands: CommandSpec<Ctx>[] = [
  {
    name: 'create',
    summary: 'Create and activate a thin pool on two block devices.',
    positionals: [{ name: 'NAME' }],
    options: {
      metadata: { type: 'string', value: 'DEV', description: 'Metadata device: a path or MAJ:MIN (never a file; attach a loop first).' },
      data: { type: 'string', value: 'DEV', description: 'Data device: a path or MAJ:MIN.' },
      'block-size': { type: 'string', value: 'N', description: 'Data block size: sectors (default 128 = 64 KiB), or bytes with a unit (64K).' },
      'low-water': { type: 'string', value: 'BLOCKS', description: 'Free data blocks below which the kernel raises an event (default 0).' },
      feature: { type: 'string', multiple: true, value: 'F', description: `Pool feature: ${Object.keys(POOL_FEATURES).join(', ')}.` },
      'zero-metadata': { type: 'boolean', description: 'Zero the first 4 KiB of the metadata device first (a new pool).' },
      'reuse-metadata': { type: 'boolean', description: 'The metadata device already holds this pool (re-activation).' },
      length: { type: 'string', value: 'SIZE', description: 'Pool length (default: the whole data device in whole blocks).' },
      uuid: { type: 'string', value: 'UUID', description: "The pool device's dm uuid." },
    },
    details: 'A new pool needs a blank metadata device: pass --zero-metadata to clear an old one. Nothing prompts.',
    examples: ['devmapper pool create pool --metadata /dev/loop0 --data /dev/loop1 --zero-metadata'],
    async run(ctx, p) {
      const cmd = 'pool create';
      const metadataDev = p.options['metadata'] as string | undefined;
      const dataDev = p.options['data'] as string | undefined;
      if (metadataDev === undefined || dataDev === undefined) throw new UsageError('--metadata and --data are required', cmd);
      if (p.options['zero-metadata'] && p.options['reuse-metadata']) throw new UsageError('--zero-metadata contradicts --reuse-metadata', cmd);
      const features: Record<string, boolean> = {};
      for (const f of (p.options['feature'] as string[] | undefined) ?? []) {
        const key = POOL_FEATURES[f];
        if (key === undefined) throw new UsageError(`--feature: unknown feature '${f}' (known: ${Object.keys(POOL_FEATURES).join(', ')})`, cmd);
        features[key] = true;
      }
      const bs = p.options['block-size'] as string | undefined;
      const lw = p.options['low-water'] as string | undefined;
      const len = p.options['length'] as string | undefined;
      const uuid = p.options['uuid'] as string | undefined;
      if (p.options['zero-metadata']) ctx.progress(`zeroing the metadata superblock of ${metadataDev}`);
      await ThinPool.create(ctx.deps.dm(), {
        name: p.args['NAME'] as string,
        metadataDev,
        dataDev,
        dataBlockSize: bs === undefined ? 128 : parseBlockSize(bs, cmd),
        lowWaterMark: lw === undefined ? 0n : parseU64Arg(lw, '--low-water', cmd),
        features,
        metadata: p.options['reuse-metadata'] ? 'reuse' : 'new',
        zeroMetadata: p.options['zero-metadata'] === true,
        ...(len !== undefined ? { lengthSectors: parseSectorsArg(len, '--length', cmd) } : {}),
        ...(uuid !== undefined ? { uuid } : {}),
      });
    },
  },
  {
    name: 'status',
    summary: "A pool's parsed status: transaction id, data and metadata usage, mode.",
    positionals: POOL_POS,
    json: true,
    async run(ctx, p) {
      const s = await poolStatusJson(await openPool(ctx, p));
      if (p.options['json']) return ctx.stdout(toJson(s));
      if (s.kind !== 'working') return ctx.stdout(`${s.name}: ${s.kind === 'fail' ? 'FAILED' : 'ERROR (metadata query failed)'}\n`);
      const pct = (u: number | null, t: number | null): string => (u === null || t === null || Number(t) === 0 ? '-' : `${((Number(u) * 100) / Number(t)).toFixed(1)}%`);
      ctx.stdout(
        table(
          ['POOL', 'TXID', 'DATA USED', 'META USED', 'MODE', 'BLOCK', 'NEEDS CHECK'],
          [[
            s.name,
            String(s.transactionId),
            `${s.usedDataBlocks}/${s.totalDataBlocks} (${pct(s.usedDataBlocks, s.totalDataBlocks)})`,
            `${s.usedMetadataBlocks}/${s.totalMetadataBlocks} (${pct(s.usedMetadataBlocks, s.totalMetadataBlocks)})`,
            String(s.mode),
            `${s.dataBlockSize}s`,
            s.needsCheck ? 'yes' : 'no',
          ]],
        ),
      );
    },
  },
  {
    name: 'message',
    summary: 'Send a raw pool message (create_thin, create_snap, delete, set_transaction_id, ...).',
    positionals: [{ name: 'POOL' }, { name: 'MESSAGE', variadic: true }],
    details: 'The kernel errno decides the exit code: EEXIST (id in use) → 4, ENODATA (no such id) → 3, others → 5.',
    examples: ['devmapper pool message pool set_transaction_id 0 1', 'devmapper pool message pool reserve_metadata_snap'],
    async run(ctx, p) {
      const reply = await ctx.deps.dm().targetMessage(p.args['POOL'] as string, 0n, (p.args['MESSAGE'] as string[]).join(' '));
      if (reply) ctx.stdout(reply.endsWith('\n') ? reply : `${reply}\n`);
    },
  },
  {
    name: 'resize',
    summary: 'Grow the pool to the data device size (or --length), e.g. after growing its loop file.',
    positionals: POOL_POS,
    options: { length: { type: 'string', value: 'SIZE', description: 'New pool length (whole data blocks).' } },
    async run(ctx, p) {
      const len = p.options['length'] as string | undefined;
      await (await openPool(ctx, p)).resize(len !== undefined ? { dataLengthSectors: parseSectorsArg(len, '--length', 'pool resize') } : {});
    },
  },
  {
    name: 'remove',
    summary: 'Remove the pool device (refused while thin devices are active). Metadata stays on disk.',
    positionals: POOL_POS,
    async run(ctx, p) {
      await (await openPool(ctx, p)).remove();
    },
  },
];

const thinCommands: CommandSpec<Ctx>[] = [
  {
    name: 'create',
    summary: 'Create an empty thin device ID in POOL (create_thin).',
    positionals: [{ name: 'POOL' }, { name: 'ID' }],
    async run(ctx, p) {
      await (await openPool(ctx, p)).createThin(idArg(p, 'ID', 'thin create'));
    },
  },
  {
    name: 'snap',
    summary: 'Snapshot thin ORIGIN_ID as new thin ID (create_snap).',
    positionals: [{ name: 'POOL' }, { name: 'ID' }, { name: 'ORIGIN_ID' }],
    options: { origin: { type: 'string', value: 'NAME', description: "The origin's active dm device: suspended around the snapshot (required if it is active)." } },
    async run(ctx, p) {
      const origin = p.options['origin'] as string | undefined;
      await (await openPool(ctx, p)).createSnap(idArg(p, 'ID', 'thin snap'), idArg(p, 'ORIGIN_ID', 'thin snap'), origin !== undefined ? { origin } : {});
    },
  },
  {
    name: 'delete',
    summary: 'Delete thin ID and free its blocks (irreversible; it must not be active).',
    positionals: [{ name: 'POOL' }, { name: 'ID' }],
    async run(ctx, p) {
      await (await openPool(ctx, p)).deleteThin(idArg(p, 'ID', 'thin delete'));
    },
  },
  {
    name: 'activate',
    summary: 'Activate thin ID as dm device NAME of --size.',
    positionals: [{ name: 'POOL' }, { name: 'ID' }, { name: 'NAME' }],
    options: {
      size: { type: 'string', value: 'SIZE', description: 'Virtual size (bytes with unit, or Ns for sectors). Required.' },
      'read-only': { type: 'boolean', description: 'Activate read-only.' },
      'external-origin': { type: 'string', value: 'DEV', description: 'Read-only external origin device.' },
      uuid: { type: 'string', value: 'UUID', description: "The thin device's dm uuid." },
    },
    examples: ['devmapper thin activate pool 1 thin1 --size 1G'],
    async run(ctx, p) {
      const cmd = 'thin activate';
      const size = p.options['size'] as string | undefined;
      if (size === undefined) throw new UsageError('--size is required', cmd);
      const sectors = parseSectorsArg(size, '--size', cmd);
      const ext = p.options['external-origin'] as string | undefined;
      const uuid = p.options['uuid'] as string | undefined;
      const pool = await openPool(ctx, p);
      await ThinDevice.of(pool, idArg(p, 'ID', cmd)).activate(p.args['NAME'] as string, sectors, {
        readOnly: p.options['read-only'] === true,
        ...(ext !== undefined ? { externalOrigin: ext } : {}),
        ...(uuid !== undefined ? { uuid } : {}),
      });
    },
  },
  {
    name: 'deactivate',
    summary: "Remove thin dm device NAME of POOL (its data stays in the pool).",
    positionals: [{ name: 'POOL' }, { name: 'NAME' }],
    async run(ctx, p) {
      await (await ThinDevice.open(await openPool(ctx, p), p.args['NAME'] as string)).deactivate();
    },
  },
  {
    name: 'status',
    summary: 'Mapped sectors of active thin device NAME of POOL.',
    positionals: [{ name: 'POOL' }, { name: 'NAME' }],
    json: true,
    async run(ctx, p) {
      const pool = await openPool(ctx, p);
      const name = p.args['NAME'] as string;
      const dev = await ThinDevice.open(pool, name);
      const s = await dev.status();
      const [line] = await ctx.deps.dm().tableStatus(name, { mode: 'table' });
      const w = s.kind === 'working' ? s : undefined;
      const out: ThinStatusJson = {
        name,
        pool: pool.name,
        deviceId: dev.id,
        lengthSectors: (line?.length ?? 0n) as unknown as number,
        kind: s.kind === 'inactive' ? 'error' : s.kind,
        mappedSectors: w ? (w.mappedSectors as unknown as number) : null,
        highestMappedSector: w && w.highestMappedSector !== null ? (w.highestMappedSector as unknown as number) : null,
      };
      if (p.options['json']) return ctx.stdout(toJson(out));
      ctx.stdout(
        table(
          ['NAME', 'POOL', 'ID', 'SIZE', 'MAPPED', 'HIGHEST'],
          [[name, pool.name, String(out.deviceId), `${out.lengthSectors}s`, out.mappedSectors === null ? s.kind : `${out.mappedSectors}s`, out.highestMappedSector === null ? '-' : String(out.highestMappedSector)]],
        ),
      );
    },
  },
];

export const poolGroup: GroupSpec<Ctx> = {
  name: 'pool',
  summary: 'Thin pools (dm thin-pool targets).',
  commands: poolCommands,
};

export const thinGroup: GroupSpec<Ctx> = {
  name: 'thin',
  summary: 'Thin devices inside a pool: create, snapshot, delete, activate.',
  commands: thinCommands,
};
