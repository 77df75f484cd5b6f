// SPDX-License-Identifier: MIT
// `devmapper docker ...`: roots written by Docker's own devicemapper graph driver, read-only.
// `ls` reads the records and what of the root is live; `mount` activates (under Docker's names)
// and mounts one layer read-only; `unmount` undoes exactly what `mount` activated (by dm uuid).
// Nothing under the Docker root is ever written (src/driver/docker-root.ts, docker-mount.ts).
// The command table (names, options, help) is specs/docker.ts; this module is loaded when a
// command runs.
import { isAbsolute, resolve } from 'node:path';
import { inspectDockerRoot, mountDockerLayer, unmountDockerLayer, type DockerKernelDeps, type DockerRootReport } from '../../driver/index.js';
import type { Handler, Parsed } from '../args.js';
import type { Ctx } from '../context.js';
import { humanSize, table, toJson } from '../output.js';
import type { DockerLsJson } from '../schemas.js';

const abs = (ctx: Ctx, p: string): string => (isAbsolute(p) ? p : resolve(ctx.cwd, p));
const rootArg = (ctx: Ctx, p: Parsed): string => abs(ctx, p.args['ROOT'] as string);
const poolOpt = (p: Parsed): { thinPoolDev?: string } => {
  const v = p.options['pool'] as string | undefined;
  return v === undefined ? {} : { thinPoolDev: v };
};

function kernelDeps(ctx: Ctx): DockerKernelDeps {
  return { dm: ctx.deps.dm(), loops: ctx.deps.loop(), mounts: () => ctx.deps.mounts() };
}

/** DockerRootReport → the stable JSON shape. */
export function dockerLsJson(r: DockerRootReport): DockerLsJson {
  return {
    root: r.root,
    prefix: r.prefix,
    poolName: r.poolName,
    poolLive: r.poolLive,
    poolTransactionId: r.poolTransactionId,
    dataFile: r.dataFile,
    metadataFile: r.metadataFile,
    baseDeviceUuid: r.baseDeviceUuid,
    baseDeviceFilesystem: r.baseDeviceFilesystem,
    nextDeviceId: r.nextDeviceId,
    openTransaction: r.openTransaction === undefined ? null : { ...r.openTransaction },
    devices: r.devices.map((d) => ({
      id: d.id,
      hash: d.hash,
      deviceId: d.deviceId,
      size: d.size,
      transactionId: d.transactionId,
      initialized: d.initialized,
      deleted: d.deleted,
      dmName: d.dmName,
      active: d.active,
      mountedAt: [...d.mountedAt],
      uncommitted: d.uncommitted,
    })),
  };
}

function lsText(r: DockerLsJson): string {
  const head = [
    `Root:            ${r.root}`,
    `Pool:            ${r.poolName} (${r.poolLive ? 'live' : 'not live'})`,
    `Transaction Id:  ${r.poolTransactionId ?? '-'}`,
    `Base Device:     ${r.baseDeviceFilesystem || '-'} ${r.baseDeviceUuid || ''}`.trimEnd(),
  ];
  if (r.openTransaction !== null) head.push(`Open transaction: ${r.openTransaction.note}`);
  const state = (d: DockerLsJson['devices'][number]): string =>
    [d.deleted ? 'deleted' : '', d.uncommitted ? 'uncommitted' : '', d.active ? 'active' : '', d.mountedAt.length > 0 ? `mounted at ${d.mountedAt.join(', ')}` : '']
      .filter((x) => x !== '')
      .join(', ') || '-';
  const rows = r.devices.map((d) => [d.id, String(d.deviceId), humanSize(d.size), String(d.transactionId), state(d)]);
  return `${head.join('\n')}\n\n${table(['ID', 'THIN ID', 'SIZE', 'TXID', 'STATE'], rows)}`;
}

export const handlers = {
  async ls(ctx, p) {
    const r = dockerLsJson(await inspectDockerRoot(rootArg(ctx, p), kernelDeps(ctx), poolOpt(p)));
    ctx.stdout(p.options['json'] === true ? toJson(r) : lsText(r));
  },
  async mount(ctx, p) {
    ctx.progress('activating and mounting the layer read-only');
    const mountOptions = p.options['options'] as string | undefined;
    const r = await mountDockerLayer(rootArg(ctx, p), p.args['ID'] as string, abs(ctx, p.args['PATH'] as string), kernelDeps(ctx), {
      ...poolOpt(p),
      signal: ctx.signal,
      ...(mountOptions === undefined ? {} : { mountOptions }),
    });
    if (r.openTransaction !== undefined) ctx.stderr(`devmapper: warn: ${r.openTransaction.note}\n`);
    if (!ctx.quiet) ctx.stderr(`mounted ${r.dmName} (${r.filesystem}, read-only${r.mountData ? `, ${r.mountData}` : ''}) at ${r.target}\n`);
  },
  async unmount(ctx, p) {
    const r = await unmountDockerLayer(rootArg(ctx, p), p.args['ID'] as string, abs(ctx, p.args['PATH'] as string), kernelDeps(ctx), { ...poolOpt(p), signal: ctx.signal });
    if (!ctx.quiet) ctx.stderr(`unmounted ${r.target}${r.removedDevice ? '; layer device removed' : ''}${r.removedPool ? '; pool removed' : ''}\n`);
  },
} satisfies Record<string, Handler<Ctx>>;
