// SPDX-License-Identifier: MIT
// `devmapper pool ...` and `devmapper thin ...`: thin pools and thin devices over ThinPool /
// ThinDevice. The command tables (names, options, help) are specs/thin.ts; this module is loaded
// when a command runs. The size syntax (size-args.ts) is loaded by the commands that take a size.
import { ThinDevice, ThinPool } from '../../thin/index.js';
import type { Handler, Parsed } from '../args.js';
import type { Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { parseU64Arg, parseUintArg, table, toJson } from '../output.js';
import { POOL_FEATURES } from '../specs/constants.js';
import type { PoolStatusJson, ThinStatusJson } from '../schemas.js';

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

export const poolHandlers = {
  async create(ctx, p) {
    const cmd = 'pool create';
    const { parseBlockSize, parseSectorsArg } = await import('../size-args.js');
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
  async status(ctx, p) {
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
  async message(ctx, p) {
    const reply = await ctx.deps.dm().targetMessage(p.args['POOL'] as string, 0n, (p.args['MESSAGE'] as string[]).join(' '));
    if (reply) ctx.stdout(reply.endsWith('\n') ? reply : `${reply}\n`);
  },
  async resize(ctx, p) {
    const { parseSectorsArg } = await import('../size-args.js');
    const len = p.options['length'] as string | undefined;
    await (await openPool(ctx, p)).resize(len !== undefined ? { dataLengthSectors: parseSectorsArg(len, '--length', 'pool resize') } : {});
  },
  async remove(ctx, p) {
    await (await openPool(ctx, p)).remove();
  },
} satisfies Record<string, Handler<Ctx>>;

export const thinHandlers = {
  async create(ctx, p) {
    await (await openPool(ctx, p)).createThin(idArg(p, 'ID', 'thin create'));
  },
  async snap(ctx, p) {
    const origin = p.options['origin'] as string | undefined;
    await (await openPool(ctx, p)).createSnap(idArg(p, 'ID', 'thin snap'), idArg(p, 'ORIGIN_ID', 'thin snap'), origin !== undefined ? { origin } : {});
  },
  async delete(ctx, p) {
    await (await openPool(ctx, p)).deleteThin(idArg(p, 'ID', 'thin delete'));
  },
  async activate(ctx, p) {
    const cmd = 'thin activate';
    const { parseSectorsArg } = await import('../size-args.js');
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
  async deactivate(ctx, p) {
    await (await ThinDevice.open(await openPool(ctx, p), p.args['NAME'] as string)).deactivate();
  },
  async status(ctx, p) {
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
} satisfies Record<string, Handler<Ctx>>;
