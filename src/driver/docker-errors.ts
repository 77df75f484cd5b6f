// SPDX-License-Identifier: MIT
// Errors of the tools for roots written by Docker's own devicemapper graph driver (docker-root.ts,
// docker-mount.ts). Each class has one stable `code`, listed in DEVMAPPER_ERROR_CODES.
import type { ValidationProblem } from '../errors.js';
import { DriverError } from './errors.js';

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
    const list = Array.isArray(problems) ? problems : [];
    super(
      `${String(root)} is not a readable Docker devicemapper root (${list.length} problem${list.length === 1 ? '' : 's'}): ` +
        list.map((p) => `${p.path}: ${p.message}`).join('; '),
      options,
    );
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
