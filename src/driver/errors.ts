// SPDX-License-Identifier: MIT
// The driver layer's errors: the graph-driver verbs over a DeviceSet (driver.ts) and the tools for
// roots written by Docker's own devicemapper driver (docker-*.ts). Every class has one stable
// `code`, listed in DEVMAPPER_ERROR_CODES; `cause` always keeps the lower error.
import { DevmapperError } from '../errors.js';

/** Base class of the driver layer's errors (no code of its own). */
export abstract class DriverError extends DevmapperError {}

const show = (id: unknown): string => (typeof id === 'string' ? `layer '${id}'` : 'layer');

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
