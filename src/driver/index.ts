// SPDX-License-Identifier: MIT
/**
 * `devmapper/driver`: the seed's graph driver above the DeviceSet (Docker's
 * `daemon/graphdriver/devmapper`: `Init(home, options)` → `NewDeviceSet` → `initDevmapper` →
 * `setupBaseImage`, then Create/Get/Put/Remove…), and the tools for roots written by Docker.
 */
export { DriverError, DriverClosedError, DriverNotInitializedError, LayerInUseError, LayerNotMountedError } from './errors.js';
export {
  Driver,
  assertInitialized,
  dockerHumanSize,
  statusPairs,
  type CreateOptions,
  type CreateReadWriteOptions,
  type DriverInit,
  type DriverMetadata,
  type DriverStatusPair,
  type GetOptions,
} from './driver.js';
export { Locker } from './locker.js';
export { RefCounter, mountPointsOf, procMountChecker, type MountChecker } from './refcount.js';
export * from './docker-errors.js';
export * from './docker-root.js';
export * from './docker-mount.js';
