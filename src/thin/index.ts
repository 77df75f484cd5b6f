// SPDX-License-Identifier: MIT
// Public facade of the thin layer: pure dm-thin params, status parsers, message builders and errors.
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
  PoolBusyError,
  PoolFailedError,
  PoolNeedsCheckError,
  PoolOutOfDataSpaceError,
  PoolOutOfMetadataSpaceError,
  PoolReadOnlyError,
  ThinDeviceBusyError,
  ThinError,
  ThinIdInUseError,
  ThinIdNotFoundError,
  mapPoolRemoveError,
  mapThinMessageError,
  type MapThinMessageErrorContext,
  type ThinErrorContext,
} from './errors.js';
