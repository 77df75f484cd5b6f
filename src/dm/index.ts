// SPDX-License-Identifier: MIT
// src/dm facade: device-mapper control (DmControl), names, tables, trivial targets and domain
// errors. Layers above (thin, deviceset) import from here only.
export { DmControl } from './control.js';
export { DM_CHANNEL, type DmChannelMessage } from './diagnostics.js';
export type { DmControlOptions, RemoveResult, RenameTo, Sleep, WaitResult } from './control.js';
export {
  DeviceBusyError,
  DeviceExistsError,
  DeviceNodeError,
  DeviceNotFoundError,
  DmError,
  DmUnavailableError,
  WriteLogCorruptError,
  describeIdent,
} from './errors.js';
export type { DeviceIdent, WriteLogProblem } from './errors.js';
export {
  DM_NAME_MAX_BYTES,
  DM_UUID_MAX_BYTES,
  dmNameProblems,
  dmUuidProblems,
  isDmName,
  isDmUuid,
  lookupProblems,
  toDmName,
  toDmUuid,
} from './names.js';
export type { DmName, DmUuid } from './names.js';
export { assertDevNum, decodeDevNum, devNumProblems, encodeDevNum, formatDevNum, parseDevNum, sameDevNum } from './devnum.js';
export type { DevNum } from './devnum.js';
export {
  DM_MAX_TARGET_TYPE_BYTES,
  assertTable,
  formatTable,
  formatTargetLine,
  parseTable,
  parseTargetLine,
  tableProblems,
  tableSize,
  targetLineProblems,
} from './table.js';
export type { TargetLine } from './table.js';
export { LINEAR_TARGET, formatLinearParams, linearTarget, parseLinearParams } from './targets/linear.js';
export type { LinearParams } from './targets/linear.js';
export { STRIPED_TARGET, formatStripedParams, parseStripedParams, parseStripedStatus, stripedTarget } from './targets/striped.js';
export type { Stripe, StripedParams, StripedStatus } from './targets/striped.js';
export { ZERO_TARGET, formatZeroParams, parseZeroParams, zeroTarget } from './targets/zero.js';
export { ERROR_TARGET, errorTarget, formatErrorParams, parseErrorParams } from './targets/error.js';
export {
  FLAKEY_TARGET,
  flakeyParamsProblems,
  flakeyTarget,
  formatFlakeyParams,
  parseFlakeyParams,
  parseFlakeyStatus,
} from './targets/flakey.js';
export type { FlakeyCorruptBioByte, FlakeyParams, FlakeyStatus } from './targets/flakey.js';
export { DELAY_TARGET, delayParamsProblems, delayTarget, formatDelayParams, parseDelayParams, parseDelayStatus } from './targets/delay.js';
export type { DelayClass, DelayParams, DelayStatus } from './targets/delay.js';
export {
  LOG_WRITES_FLAGS,
  LOG_WRITES_MAGIC,
  LOG_WRITES_MARK_MAX_BYTES,
  LOG_WRITES_TARGET,
  LOG_WRITES_VERSION,
  decodeLogWritesLog,
  formatLogWritesParams,
  logWritesMarkMessage,
  logWritesMarkProblems,
  logWritesParamsProblems,
  logWritesTarget,
  parseLogWritesParams,
  parseLogWritesStatus,
  replayLogWrites,
} from './targets/log-writes.js';
export type { LogWritesEntry, LogWritesLog, LogWritesParams, LogWritesReader, LogWritesReplayOp, LogWritesStatus } from './targets/log-writes.js';
export {
  CRYPT_KEYRING_TYPES,
  CRYPT_MAX_KEY_BYTES,
  CRYPT_REDACTED_PREFIX,
  CRYPT_TARGET,
  CryptHexKey,
  cryptCipherProblems,
  cryptKeyProblems,
  cryptKeySetMessage,
  cryptKeyWipeMessage,
  cryptParamsProblems,
  cryptTarget,
  formatCryptParams,
  formatCryptParamsRedacted,
  isCryptKeyMessage,
  parseCryptParams,
  parseCryptStatus,
  redactCryptKey,
  redactCryptParams,
} from './targets/crypt.js';
export type { CryptIntegrity, CryptKey, CryptKeyringKey, CryptKeyringType, CryptNoKey, CryptParams, CryptRedactedKey, CryptStatus } from './targets/crypt.js';
export {
  VERITY_TARGET,
  formatVerityParams,
  parseVerityParams,
  parseVerityStatus,
  parseVeritysetupFormat,
  verityParamsProblems,
  verityTarget,
} from './targets/verity.js';
export type { VerityFec, VerityParams, VerityStatus, VeritysetupFormatInfo } from './targets/verity.js';
export {
  CACHE_BLOCK_SIZE_MAX_SECTORS,
  CACHE_BLOCK_SIZE_MIN_SECTORS,
  CACHE_TARGET,
  cacheInvalidateCblocksMessage,
  cacheMigrationThresholdMessage,
  cacheParamsProblems,
  cacheTarget,
  formatCacheParams,
  parseCacheParams,
  parseCacheStatus,
} from './targets/cache.js';
export type { CacheIoMode, CacheParams, CachePolicyName, CacheStatus, CacheUsage } from './targets/cache.js';
export {
  WRITECACHE_TARGET,
  formatWritecacheParams,
  parseWritecacheParams,
  parseWritecacheStatus,
  writecacheMessage,
  writecacheParamsProblems,
  writecacheTarget,
} from './targets/writecache.js';
export type { WritecacheMessage, WritecacheParams, WritecacheStats, WritecacheStatus } from './targets/writecache.js';
export {
  RAID_MAX_DEVICES,
  RAID_TARGET,
  RAID_TYPES,
  formatRaidParams,
  parseRaidParams,
  parseRaidStatus,
  raidInSync,
  raidMessage,
  raidParamsProblems,
  raidTarget,
} from './targets/raid.js';
export type { RaidHealth, RaidLeg, RaidMessage, RaidParams, RaidStatus, RaidSyncAction, RaidType } from './targets/raid.js';
export {
  INTEGRITY_TARGET,
  formatIntegrityParams,
  integrityParamsProblems,
  integrityTarget,
  parseIntegrityParams,
  parseIntegrityStatus,
} from './targets/integrity.js';
export type { IntegrityAlgorithm, IntegrityMode, IntegrityParams, IntegrityStatus } from './targets/integrity.js';
export {
  SNAPSHOT_MAX_CHUNK_SECTORS,
  SNAPSHOT_MERGE_TARGET,
  SNAPSHOT_ORIGIN_TARGET,
  SNAPSHOT_TARGET,
  formatSnapshotOriginParams,
  formatSnapshotParams,
  isSnapshotMergeComplete,
  parseSnapshotOriginParams,
  parseSnapshotOriginStatus,
  parseSnapshotParams,
  parseSnapshotStatus,
  snapshotMergeTarget,
  snapshotOriginParamsProblems,
  snapshotOriginTarget,
  snapshotParamsProblems,
  snapshotTarget,
} from './targets/snapshot.js';
export type { SnapshotOriginParams, SnapshotOriginStatus, SnapshotParams, SnapshotStatus, SnapshotStore } from './targets/snapshot.js';
export { MIRROR_MAX_LEGS, MIRROR_TARGET, formatMirrorParams, mirrorParamsProblems, mirrorTarget, parseMirrorParams, parseMirrorStatus } from './targets/mirror.js';
export type { MirrorCoreLog, MirrorDiskLog, MirrorHealth, MirrorLeg, MirrorLog, MirrorLogStatus, MirrorLogSync, MirrorParams, MirrorStatus } from './targets/mirror.js';
export { ALLOWED_FLAGS, BUFFER_POLICY, GROWABLE_COMMANDS, REMOVE_RETRY, maskFlags } from './options.js';
export type {
  DeviceCreateOptions,
  DeviceRemoveOptions,
  Geometry,
  ListDevicesOptions,
  RetryPolicy,
  SuspendOptions,
  TableLoadOptions,
  TableStatusOptions,
  WaitForEventOptions,
} from './options.js';
export { BLOCKING_COMMANDS, identify, usesWorker } from './request.js';
export type { DeviceRef, DmRequest, DmRequestHeader } from './request.js';
export type { DeviceInfo, DeviceListEntry, DmVersion, TargetVersion } from './response.js';
export { DEVICE_NODE_MODE, DM_CONTROL_DEV, ensureControlNode, ensureDeviceNode, isControlNode, mapperPath, miscListsDeviceMapper, removeDeviceNode, renameDeviceNode } from './nodes.js';
export type { NodeAction } from './nodes.js';
export { udevCookie } from './udev.js';
export type { NodePolicy } from './udev.js';
