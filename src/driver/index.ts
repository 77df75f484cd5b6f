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
export {
  DockerLayerNotFoundError,
  DockerLayerNotMountedError,
  DockerPoolConflictError,
  DockerImportRefusedError,
  DockerRootInvalidError,
  type DockerLayerProblem,
} from './errors.js';
export {
  DOCKER_BASE_FILE,
  DOCKER_DEVICESET_FILE,
  DOCKER_MAX_DEVICE_ID,
  DOCKER_TRANSACTION_FILE,
  DockerDeviceJson,
  DockerDeviceSetJson,
  DockerTransactionJson,
  dockerDmName,
  dockerPrefixFor,
  openTransactionOf,
  readDockerRoot,
  type DockerDevice,
  type DockerDeviceSetMeta,
  type DockerOpenTransaction,
  type DockerPoolSuperblock,
  type DockerRoot,
  type DockerTransaction,
  type ReadDockerRootOptions,
} from './docker-root.js';
export {
  DOCKER_LOW_WATER_MARK,
  DOCKER_RO_UUID_PREFIX,
  inspectDockerRoot,
  mountDockerLayer,
  readMountInfo,
  unmountDockerLayer,
  type DockerDeviceState,
  type DockerKernelDeps,
  type DockerLayerOptions,
  type DockerMountEntry,
  type DockerMountResult,
  type DockerRootReport,
  type DockerUnmountResult,
} from './docker-mount.js';
export {
  DOCKER_IMPORT_STEPS,
  importDockerRoot,
  nodeDockerImportFs,
  restoreDockerRoot,
  type DockerImportFs,
  type DockerImportOptions,
  type DockerImportReport,
  type DockerImportResult,
  type DockerImportStep,
  type DockerImportedDevice,
  type DockerImportedTransaction,
  type DockerRestoreOptions,
  type DockerRestoreResult,
} from './docker-import.js';
