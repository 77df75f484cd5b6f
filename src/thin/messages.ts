// SPDX-License-Identifier: MIT
// Pure builders for thin-pool messages (DM_TARGET_MSG, sector 0) as parsed by pool_message() in drivers/md/dm-thin.c.
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import { thinDeviceIdProblem } from './device-id.js';
import { isU64 } from './u64.js';

/*
 * Every builder validates before building, so a malformed message never
 * reaches the kernel, where it would only come back as a bare EINVAL. Messages
 * produce no output; a successful one makes the kernel commit the metadata.
 * All of them fail EOPNOTSUPP while the pool is read-only or failed.
 */

function assertIds(what: string, ids: ReadonlyArray<readonly [string, unknown]>): void {
  const problems = ids.map(([path, v]) => thinDeviceIdProblem(v, path)).filter((p): p is ValidationProblem => p !== undefined);
  if (problems.length > 0) throw new InvalidArgumentError(what, problems);
}

/**
 * `create_thin <dev_id>`: a new, empty thin device. Fails EEXIST if the id is
 * in use. The id alone is created; activate it by loading a `thin` target.
 * @throws InvalidArgumentError when `devId` is not a 24-bit id.
 */
export function createThinMessage(devId: number): string {
  assertIds('create_thin message', [['/devId', devId]]);
  return `create_thin ${devId}`;
}

/**
 * `create_snap <dev_id> <origin_id>`: an internal snapshot of `originId`.
 * If the origin is active it must be suspended around this message — the
 * kernel does not enforce it, and skipping it risks corrupting the snapshot
 * (thin-provisioning.rst, "Internal snapshots").
 *
 * A snapshot of itself (`devId === originId`) is refused here: the kernel
 * would find the id in use and fail EEXIST, so it can never succeed.
 * @throws InvalidArgumentError listing every bad argument.
 */
export function createSnapMessage(devId: number, originId: number): string {
  assertIds('create_snap message', [['/devId', devId], ['/originId', originId]]);
  if (devId === originId) {
    throw new InvalidArgumentError('create_snap message', [
      { path: '/devId', message: 'must differ from originId', value: devId },
    ]);
  }
  return `create_snap ${devId} ${originId}`;
}

/**
 * `delete <dev_id>`: irreversibly frees a thin device and its unshared
 * blocks. Fails ENODATA for an unknown id and EBUSY while the thin is active.
 * @throws InvalidArgumentError when `devId` is not a 24-bit id.
 */
export function deleteMessage(devId: number): string {
  assertIds('delete message', [['/devId', devId]]);
  return `delete ${devId}`;
}

/**
 * `set_transaction_id <current> <new>`: compare-and-swap of the pool's 64-bit
 * transaction id, used by userspace (Docker's DeviceSet, LVM) as a commit
 * marker. The kernel fails EINVAL when `current` does not match.
 * @throws InvalidArgumentError when either value is not a bigint in 0 … 2^64 − 1.
 */
export function setTransactionIdMessage(current: bigint, next: bigint): string {
  const problems: ValidationProblem[] = [];
  for (const [path, v] of [['/current', current], ['/next', next]] as const) {
    if (!isU64(v)) problems.push({ path, message: 'must be a bigint in 0 … 2^64-1', value: v });
  }
  if (problems.length > 0) throw new InvalidArgumentError('set_transaction_id message', problems);
  return `set_transaction_id ${current} ${next}`;
}

/**
 * `reserve_metadata_snap`: commit, then hold a read-only copy of the metadata
 * root (shown in pool status field 4) for tools like thin_dump. EBUSY if one is already held.
 */
export function reserveMetadataSnapMessage(): string {
  return 'reserve_metadata_snap';
}

/** `release_metadata_snap`: drop the held metadata snapshot. EINVAL if none is held. */
export function releaseMetadataSnapMessage(): string {
  return 'release_metadata_snap';
}

/**
 * The builders under the kernel's own verbs, for callers that prefer
 * `ThinPoolMessages.delete(id)` over the `*Message` names (`delete` is a
 * reserved word, so it cannot be a standalone function name).
 */
export const ThinPoolMessages = Object.freeze({
  createThin: createThinMessage,
  createSnap: createSnapMessage,
  delete: deleteMessage,
  setTransactionId: setTransactionIdMessage,
  reserveMetadataSnap: reserveMetadataSnapMessage,
  releaseMetadataSnap: releaseMetadataSnapMessage,
});
