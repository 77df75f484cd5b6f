// SPDX-License-Identifier: MIT
// src/loop facade: loop devices (LoopControl), sparse backing files, sysfs readers, loop errors.
export {
  LOOP_ATTACH_MAX_ATTEMPTS,
  LOOP_ATTACH_RETRY_MAX_DELAY_MS,
  LOOP_ATTACH_RETRY_MIN_DELAY_MS,
  LOOP_EAGAIN_DELAY_MS,
  LOOP_EAGAIN_MAX_TRIES,
  LOOP_MAJOR,
  LOOP_OPEN_MAX_TRIES,
  LOOP_OPEN_RETRY_DELAY_MS,
  LoopControl,
  truncateUtf8,
  type DetachResult,
  type LoopControlOptions,
  type LoopDeviceSpec,
  type LoopListEntry,
  type LoopMatch,
  type LoopMatchFilter,
} from './control.js';
export { LoopAttachment, type LoopDeviceRef, type LoopStatus } from './attachment.js';
export {
  LOOP_MAX_BLOCK_SIZE,
  LOOP_MAX_BYTES,
  LOOP_MIN_BLOCK_SIZE,
  LOOP_SECTOR_SIZE,
  resolveAttachOptions,
  type LoopAttachMethod,
  type LoopAttachOptions,
  type ResolvedLoopAttachOptions,
} from './options.js';
export { DISCARD_CHUNK_BYTES, discardBlockDevice, type DiscardOptions } from './discard.js';
export { ensureSparseFile, SPARSE_FILE_STAGES, type EnsureSparseFileOptions, type SparseFileReport } from './sparse.js';
export type { LoopProgressCallback, LoopProgressEvent } from './progress.js';
export {
  DEFAULT_SYSFS_ROOT,
  listBoundLoops,
  listBoundLoopsSync,
  listLoopIndexes,
  listLoopIndexesSync,
  listLoops,
  listLoopsSync,
  parseBackingFile,
  parseDevAttr,
  parseLoopName,
  readLoopSysfs,
  readLoopSysfsSync,
  type BoundLoopSysfsInfo,
  type LoopSysfsBinding,
  type LoopSysfsInfo,
} from './sysfs.js';
export {
  BackingFileLinkError,
  BackingFileNotFoundError,
  BackingFileNotRegularError,
  BackingFileReadOnlyError,
  LoopAbortedError,
  LoopDeviceBusyError,
  LoopDeviceExistsError,
  LoopDeviceInUseError,
  LoopDeviceNotFoundError,
  LoopError,
  LoopNotBoundError,
  LoopUnsupportedError,
  NotALoopDeviceError,
  SparseFileShrinkError,
  SparseFileTooLargeError,
  fileTypeName,
} from './errors.js';
