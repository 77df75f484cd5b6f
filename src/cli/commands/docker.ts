// SPDX-License-Identifier: MIT
// `devmapper docker ...`: roots written by Docker's own devicemapper graph driver, read-only.
// `ls` reads the records and what of the root is live; `mount` activates (under Docker's names)
// and mounts one layer read-only; `unmount` undoes exactly what `mount` activated (by dm uuid).
// Nothing under the Docker root is ever written (src/driver/docker-root.ts, docker-mount.ts).
// The command table (names, options, help) is specs/docker.ts; this module is loaded when a
// command runs.
import { isAbsolute, resolve } from 'node:path';
import { importDockerRoot, inspectDockerRoot, mountDockerLayer, restoreDockerRoot, unmountDockerLayer, type DockerKernelDeps, type DockerRootReport } from '../../driver/index.js';
import { nodeOptionsFs, readSavedOptions, saveOptions } from '../options-file.js';
import type { Handler, Parsed } from '../args.js';
import type { Ctx } from '../context.js';
import { humanSize, table, toJson } from '../output.js';
import type { DockerImportJson, DockerLsJson } from '../schemas.js';

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
  async import(ctx, p) {
    ctx.progress('validating the Docker root and writing the DeviceSet records');
    const r = await importDockerRoot(rootArg(ctx, p), kernelDeps(ctx), {
      ...poolOpt(p),
      signal: ctx.signal,
      // The report below says what the info lines would; warnings go to stderr.
      log: (level, message) => (level === 'warn' ? ctx.stderr(`devmapper: warn: ${message}\n`) : undefined),
    });
    // cli-options.json after the import: a crash in between leaves a complete import, and running
    // the command again (outcome already-imported) writes it then. An existing file is kept.
    const fs = ctx.deps.optionsFs ?? nodeOptionsFs;
    const optionsSaved = readSavedOptions(r.root, fs) === undefined;
    if (optionsSaved) saveOptions(r.root, r.options, fs);
    const j: DockerImportJson = {
      root: r.root,
      outcome: r.outcome,
      prefix: r.prefix,
      poolName: r.poolName,
      dockerMetadata: r.dockerMetadata,
      importedAt: r.importedAt,
      options: [...r.options],
      optionsSaved,
      removedStaging: r.removedStaging,
      devices: r.devices.map((d) => ({ ...d })),
      pendingDeletion: [...r.pendingDeletion],
      openTransaction: r.openTransaction === null ? null : { ...r.openTransaction },
    };
    if (p.options['json'] === true) {
      ctx.stdout(toJson(j));
      return;
    }
    const lines = [
      `${j.outcome === 'imported' ? 'imported' : j.outcome === 'finished' ? 'finished the interrupted import of' : 'already imported:'} ${j.root}`,
      `Names:           ${j.prefix}-* (pool ${j.poolName})`,
      `Devices:         ${j.devices.length}${j.pendingDeletion.length > 0 ? ` (${j.pendingDeletion.length} pending deletion)` : ''}`,
      `Docker records:  ${j.root}/${j.dockerMetadata} (undo: devmapper docker restore ${j.root})`,
      `Options:         ${j.optionsSaved ? 'saved in' : 'kept'} ${j.root}/cli-options.json`,
    ];
    if (j.removedStaging) lines.push('Removed:         metadata.importing/ of an import that stopped before its renames');
    if (j.openTransaction !== null) lines.push(`Open transaction: ${j.openTransaction.note}`);
    ctx.stdout(`${lines.join('\n')}\n`);
  },
  async restore(ctx, p) {
    const r = restoreDockerRoot(rootArg(ctx, p));
    if (!ctx.quiet) ctx.stderr(`restored Docker's records of ${r.root} from ${r.dockerMetadata}${r.ourMetadata === null ? '' : `; the DeviceSet's records are kept in ${r.ourMetadata}`}\n`);
  },
} satisfies Record<string, Handler<Ctx>>;
