// SPDX-License-Identifier: MIT
// Public facade of the thin layer: pure dm-thin params, status parsers, message builders and errors,
// plus the stateful ThinPool / ThinDevice built on DmControl.
export { MAX_DEV_ID, isThinDeviceId, thinDeviceId, type ThinDeviceId } from './device-id.js';
export { MAX_MAJOR, MAX_MINOR, parseDevNumber, type DevNumber } from './device-ref.js';
export { U64_MAX } from './u64.js';
export {
  DATA_BLOCK_SIZE_MAX_SECTORS,
  DATA_BLOCK_SIZE_MIN_SECTORS,
  MAX_POOL_FEATURE_ARGS,
  SECTOR_SIZE,
  formatPoolParams,
  parsePoolParams,
  poolLengthSectors,
  poolParamsProblems,
  validatePoolParams,
  type ParsedThinPoolParams,
  type ThinPoolFeatures,
  type ThinPoolParams,
} from './pool-params.js';
export { formatThinParams, parseThinParams, thinParamsProblems, validateThinParams, type ThinParams } from './thin-params.js';
export {
  isBelowLowWater,
  isOutOfDataSpace,
  isPoolReadOnly,
  parseThinPoolStatus,
  poolDataFree,
  poolMetadataFree,
  poolStatusError,
  type ThinPoolDiscard,
  type ThinPoolErrorStatus,
  type ThinPoolFailStatus,
  type ThinPoolMode,
  type ThinPoolNoSpacePolicy,
  type ThinPoolStatus,
  type ThinPoolWorkingStatus,
} from './pool-status.js';
export {
  parseThinStatus,
  type ThinErrorStatus,
  type ThinFailStatus,
  type ThinInactiveStatus,
  type ThinStatus,
  type ThinWorkingStatus,
} from './thin-status.js';
export {
  ThinPoolMessages,
  createSnapMessage,
  createThinMessage,
  deleteMessage,
  releaseMetadataSnapMessage,
  reserveMetadataSnapMessage,
  setTransactionIdMessage,
} from './messages.js';
export {
  BlockDeviceBusyError,
  PoolBusyError,
  PoolFailedError,
  PoolMetadataMismatchError,
  PoolMetadataNotEmptyError,
  PoolNeedsCheckError,
  PoolOutOfDataSpaceError,
  PoolOutOfMetadataSpaceError,
  PoolReadOnlyError,
  PoolShrinkError,
  ThinDeviceBusyError,
  ThinError,
  ThinIdInUseError,
  ThinIdNotFoundError,
  TransactionIdMismatchError,
  UnexpectedTargetError,
  type ThinErrorContext,
} from './errors.js';
export { mapPoolRemoveError, mapThinMessageError, type MapThinMessageErrorContext } from './errno-map.js';
export {
  METADATA_BLOCK_BYTES,
  THIN_METADATA_MAX_BYTES,
  THIN_SUPERBLOCK_MAGIC,
  classifyMetadataHead,
  realBlockDevices,
  type BlockDeviceInfo,
  type BlockDevices,
  type MetadataHead,
} from './block-device.js';
export type { ThinDm, ThinDmDevNum, ThinDmDeviceInfo, ThinDmTarget } from './dm-port.js';
export {
  THIN_POOL_TARGET,
  ThinPool,
  type CreateSnapOptions,
  type CreateSnapOrigin,
  type ThinPoolCreateOptions,
  type ThinPoolOpenOptions,
  type ThinPoolResizeOptions,
} from './pool.js';
export { THIN_TARGET, ThinDevice, type ThinActivateOptions } from './thin-device.js';
export {
  PoolMonitor,
  type PoolReadingSkippedEvent,
  metadataThreshold,
  type PoolAppearedEvent,
  type PoolLowWaterEvent,
  type PoolMetadataLowEvent,
  type PoolModeChangeEvent,
  type PoolMonitorEvents,
  type PoolMonitorMechanism,
  type PoolMonitorMode,
  type PoolMonitorOptions,
  type PoolMonitorState,
  type PoolPresenceEvent,
  type PoolStatusEvent,
} from './pool-monitor.js';
