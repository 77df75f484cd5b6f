// SPDX-License-Identifier: MIT
// Errors of the DeviceSet layer's pure foundations (metadata store, id allocation).
import { DevmapperError, type ValidationProblem } from '../errors.js';

/**
 * A metadata file could not be read back: not JSON, not a valid record, a record whose hash
 * does not match its file name, an unexpected file, or a format version newer than ours.
 * Never ignored: loading stops so that nothing acts on a half-known state.
 */
export class MetadataCorruptError extends DevmapperError {
  override readonly name = 'MetadataCorruptError';
  readonly code = 'EMETADATACORRUPT';
  /** Absolute path of the offending file. */
  readonly file: string;
  readonly problems: readonly ValidationProblem[];
  constructor(file: string, problems: readonly ValidationProblem[], options?: { cause?: unknown }) {
    const list = problems.map((p) => `${p.path || '/'}: ${p.message}`).join('; ');
    super(`corrupt metadata file ${file}: ${list}`, options);
    this.file = file;
    this.problems = problems;
  }
}

/** Every one of the 2^24 thin device ids is in use. */
export class DeviceIdsExhaustedError extends DevmapperError {
  override readonly name = 'DeviceIdsExhaustedError';
  readonly code = 'EDEVICEIDSEXHAUSTED';
  constructor() {
    super('unable to find a free device id: all 16777216 thin device ids are in use');
  }
}

/** What {@link UnsafePathError} found at the path. */
export type UnsafePathReason = 'symlink' | 'not-directory' | 'not-regular' | 'owner' | 'mode';

/**
 * A path under a DeviceSet root (the root itself, `devicemapper/`, `metadata/`, `mnt/`, the
 * loopback files, the records) is not what this DeviceSet would have made: a symbolic link, the
 * wrong kind of file, a directory owned by another user, or one that group or others may write.
 * Raised before anything is read, created, grown or bound through it: a link's target is never
 * touched.
 */
export class UnsafePathError extends DevmapperError {
  override readonly name = 'UnsafePathError';
  readonly code = 'EUNSAFEPATH';
  constructor(
    /** The offending path. */
    readonly path: string,
    readonly reason: UnsafePathReason,
    /** What was found, e.g. "a symbolic link", "a directory owned by uid 1000". */
    readonly found: string,
    /** What is required instead. */
    readonly expected: string,
    options?: { cause?: unknown },
  ) {
    super(`unsafe path ${path}: found ${found}, expected ${expected}`, options);
  }
}
