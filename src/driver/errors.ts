// SPDX-License-Identifier: MIT
// The driver layer's errors: the graph-driver verbs over a DeviceSet (driver.ts) and the tools for
// roots written by Docker's own devicemapper driver (docker-*.ts). Every class has one stable
// `code`, listed in DEVMAPPER_ERROR_CODES; `cause` always keeps the lower error.
import { DevmapperError, type ValidationProblem } from '../errors.js';

/** Base class of the driver layer's errors (no code of its own). */
export abstract class DriverError extends DevmapperError {}

const show = (id: unknown): string => (typeof id === 'string' ? `layer '${id}'` : 'layer');

/**
 * A Docker root's problems for a message: their count, then `path: message` joined by '; '. The
 * paths are file paths with a JSON pointer after '#' (`ROOT/metadata/ID#/device_id`), not bare
 * pointers, so formatProblems (src/errors.ts) would misread them.
 */
function rootProblems(problems: unknown): { count: string; list: string } {
  const list: readonly ValidationProblem[] = Array.isArray(problems) ? problems : [];
  return {
    count: `${list.length} problem${list.length === 1 ? '' : 's'}`,
    list: list.map((p) => `${p.path}: ${p.message}`).join('; '),
  };
}

/**
 * `put(id)` of a layer that has no reference: neither this process's `get` nor the kernel's
 * mount table says it is mounted at `home/mnt/<id>`. Docker's Put ended in umount(2) EINVAL then;
 * here nothing is changed.
 */
export class LayerNotMountedError extends DriverError {
  override readonly name = 'LayerNotMountedError';
  readonly code = 'ELAYERNOTMOUNTED';
  constructor(
    readonly id: string,
    readonly mountPoint: string,
  ) {
    super(`${show(id)} is not mounted at ${String(mountPoint)}: put() needs a get() first`);
  }
}

/**
 * `remove(id)` of a layer that is still referenced (`get` without its `put`) or mounted at
 * `home/mnt/<id>` per the kernel's mount table. Docker assumed a proper Get/Put pairing and
 * let the device removal fail or defer; here it is refused before anything changes.
 */
export class LayerInUseError extends DriverError {
  override readonly name = 'LayerInUseError';
  readonly code = 'ELAYERINUSE';
  constructor(
    readonly id: string,
    readonly references: number,
    readonly mountPoint: string,
  ) {
    super(`${show(id)} is in use: ${String(references)} reference(s), mounted at ${String(mountPoint)}; put() it first`);
  }
}

/** A verb after {@link Driver.cleanup}. */
export class DriverClosedError extends DriverError {
  override readonly name = 'DriverClosedError';
  readonly code = 'EDRIVERCLOSED';
  constructor() {
    super('the driver was cleaned up (cleanup()); open it again with Driver.init');
  }
}

/**
 * `Driver.init(home, { doInit: false })` on a home that holds no complete DeviceSet: Docker's
 * `NewDeviceSet(…, doInit=false, …)` never creates files or a base device, so it refuses.
 * `missing` lists every file (or record state) it needed, relative to `home`.
 */
export class DriverNotInitializedError extends DriverError {
  override readonly name = 'DriverNotInitializedError';
  readonly code = 'EDRIVERNOTINIT';
  constructor(
    readonly home: string,
    readonly missing: readonly string[],
  ) {
    super(`${String(home)} holds no initialized driver (missing: ${Array.isArray(missing) ? missing.join(', ') : String(missing)}); create it with Driver.init(home) (doInit: true)`);
  }
}

// Errors of the tools for roots written by Docker's own devicemapper graph driver (docker-root.ts,
// docker-mount.ts).

/**
 * A Docker root that cannot be read as Docker wrote it: every problem found (a record that is no
 * JSON or does not match Docker's schema, a symbolic link where a file must be, a missing loop
 * file, two records with one thin id…), not only the first. `problems[i].path` is the file.
 */
export class DockerRootInvalidError extends DriverError {
  override readonly name = 'DockerRootInvalidError';
  readonly code = 'EDOCKERROOT';
  constructor(
    readonly root: string,
    readonly problems: readonly ValidationProblem[],
    options?: { cause?: unknown },
  ) {
    const { count, list } = rootProblems(problems);
    super(`${String(root)} is not a readable Docker devicemapper root (${count}): ${list}`, options);
  }
}

/** Why a layer cannot be used. */
export type DockerLayerProblem = 'unknown' | 'deleted' | 'uninitialized' | 'uncommitted';

/**
 * The id names no usable device of the Docker root: no record (`unknown`), a record marked for
 * deferred deletion (`deleted`), a base whose mkfs never finished (`uninitialized`), or the device
 * of Docker's open transaction, which Docker rolls back at its next start (`uncommitted`).
 */
export class DockerLayerNotFoundError extends DriverError {
  override readonly name = 'DockerLayerNotFoundError';
  readonly code = 'EDOCKERLAYER';
  constructor(
    readonly root: string,
    readonly id: string,
    readonly reason: DockerLayerProblem,
    options?: { cause?: unknown },
  ) {
    const why: Record<string, string> = {
      unknown: 'has no record under metadata/',
      deleted: 'is marked deleted (deferred deletion): Docker removes it',
      uninitialized: 'was never initialized (Docker recreates the base at its next start)',
      uncommitted: "is the device of Docker's open transaction: Docker deletes it at its next start",
    };
    super(`Docker layer '${String(id)}' of ${String(root)} ${why[reason] ?? String(reason)}`, options);
  }
}

/**
 * The Docker root's pool cannot be used without risking a second pool over the same metadata:
 * a live device under the pool's name that is not a thin-pool over this root's loop files, or
 * loop devices already bound to the root's data/metadata files without that pool.
 */
export class DockerPoolConflictError extends DriverError {
  override readonly name = 'DockerPoolConflictError';
  readonly code = 'EDOCKERPOOLCONFLICT';
  constructor(
    readonly root: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`the thin pool of Docker root ${String(root)} cannot be used safely: ${String(detail)}`, options);
  }
}

/** `docker unmount`: the layer is not mounted at that path (per the kernel's mount table). */
export class DockerLayerNotMountedError extends DriverError {
  override readonly name = 'DockerLayerNotMountedError';
  readonly code = 'EDOCKERNOTMOUNTED';
  constructor(
    readonly id: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`Docker layer '${String(id)}' is not mounted at ${String(path)}`, options);
  }
}

/**
 * `importDockerRoot` / `restoreDockerRoot` refused: every problem found (the root's own, see
 * {@link DockerRootInvalidError}, plus a hash the DeviceSet cannot take, a lock held by a
 * DeviceSet, a pool live under dockerd…), before anything was written.
 */
export class DockerImportRefusedError extends DriverError {
  override readonly name = 'DockerImportRefusedError';
  readonly code = 'EDOCKERIMPORT';
  constructor(
    readonly root: string,
    readonly problems: readonly ValidationProblem[],
    options?: { cause?: unknown },
  ) {
    const { count, list } = rootProblems(problems);
    super(`Docker root ${String(root)} cannot be imported or restored (${count}); nothing was written: ${list}`, options);
  }
}
