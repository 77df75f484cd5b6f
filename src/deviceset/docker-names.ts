// SPDX-License-Identifier: MIT
// A DeviceSet root imported from Docker (src/driver/docker-import.ts): Docker's kernel name
// prefix, remembered in the deviceset record, and the finish of an import that a crash stopped
// between its two renames. DeviceSet.init calls {@link importedNamePrefix} before it builds the set.
/**
 * # Names of an imported root
 *
 * Docker named its devices `docker-<major>:<minor>-<inode>-<hash>` (moby v20.10
 * daemon/graphdriver/devmapper/deviceset.go initDevmapper, with its own major()/minor() split of
 * st_dev). An imported root keeps those names: its deviceset record carries
 * `namePrefix: "docker-MAJ:MIN-INO"`, and DeviceSet.init uses it instead of {@link prefixFor}
 * when it equals Docker's prefix of stat(root) now. A root that moved (another device or inode)
 * is refused: Docker would have used new names there, and the old names may belong to the root's
 * original.
 *
 * # The two renames of an import
 *
 * The import writes our records into `metadata.importing/` (with the marker `.docker-import.json`
 * written last), fsyncs it, then renames `metadata/` to `metadata.docker-<stamp>` (rename 1) and
 * `metadata.importing/` to `metadata/` (rename 2). A crash between the two leaves no `metadata/`,
 * a complete `metadata.importing/` whose marker names `metadata.docker-<stamp>`, and that
 * directory: {@link finishInterruptedImport} does rename 2. With no `metadata/` and a
 * `metadata.docker-*` directory but no such staging directory, a `docker restore` was
 * interrupted: refused, run the restore again.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { MetadataCorruptError } from './errors.js';
import { fsyncDirNoFollow, fsyncDirNoFollowAsync, lstatIfPresentAsync, readFileNoFollow, readFileNoFollowAsync } from './safe-path.js';
import { DEVICESET_FILE } from './metadata.js';

/** The staging directory of an import, next to `metadata/`. */
export const IMPORT_STAGING_DIR = 'metadata.importing';
/** Docker's `metadata/`, once imported: `metadata.docker-<stamp>`. */
export const DOCKER_ORIGINALS_PREFIX = 'metadata.docker-';
/** The import's marker in the staging directory (a dot file: MetadataStore.loadAll skips it). */
export const IMPORT_MARKER_FILE = '.docker-import.json';
/** The form of a Docker name prefix. */
export const DOCKER_PREFIX_RE = /^docker-\d+:\d+-\d+$/;

/**
 * deviceset.go major()/minor(): Docker's own split of st_dev, which is what its names carry
 * (`(dev >> 8) & 0xfff` and `(dev & 0xff) | ((dev >> 12) & 0xfff00)`), and the inode.
 */
export function dockerNamePrefix(st: { readonly dev: bigint; readonly ino: bigint }): string {
  const major = (st.dev >> 8n) & 0xfffn;
  const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n);
  return `docker-${major}:${minor}-${st.ino}`;
}

function isDir(path: string): boolean {
  try {
    return fs.lstatSync(path).isDirectory();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** The `dockerMetadata` directory name an import marker names, or undefined (no/unreadable marker). */
export function importMarkerTarget(stagingDir: string): string | undefined {
  try {
    return markerTarget(readFileNoFollow(join(stagingDir, IMPORT_MARKER_FILE)));
  } catch {
    return undefined;
  }
}

/** {@link importMarkerTarget} through fs/promises. */
async function importMarkerTargetAsync(stagingDir: string): Promise<string | undefined> {
  try {
    return markerTarget(await readFileNoFollowAsync(join(stagingDir, IMPORT_MARKER_FILE)));
  } catch {
    return undefined;
  }
}

function markerTarget(bytes: Buffer): string | undefined {
  const t = (JSON.parse(bytes.toString('utf8')) as { dockerMetadata?: unknown }).dockerMetadata;
  return typeof t === 'string' && t.startsWith(DOCKER_ORIGINALS_PREFIX) && !t.includes('/') ? t : undefined;
}

/**
 * Finishes an import stopped between its two renames (see the file comment): with no
 * `metadata/`, a staging directory whose marker names an existing `metadata.docker-*` is renamed
 * to `metadata/` (and the root fsynced). Returns whether it did. The caller holds the root lock.
 * @throws MetadataCorruptError with no `metadata/` and a `metadata.docker-*` directory that no
 *   complete staging directory claims: a `docker restore` was interrupted.
 */
export function finishInterruptedImport(root: string): boolean {
  const meta = join(root, 'metadata');
  if (fs.existsSync(meta) || isLinkOrOther(meta)) return false;
  const staging = join(root, IMPORT_STAGING_DIR);
  const target = isDir(staging) ? importMarkerTarget(staging) : undefined;
  if (target !== undefined && isDir(join(root, target))) {
    fs.renameSync(staging, meta);
    fsyncDirNoFollow(root);
    return true;
  }
  refuseInterruptedRestore(root, meta, fs.readdirSync(root));
  return false;
}

/** {@link finishInterruptedImport} through fs/promises (every look, the rename and the fsync off the event loop). */
async function finishInterruptedImportAsync(root: string): Promise<boolean> {
  const meta = join(root, 'metadata');
  if (await lexistsAsync(meta)) return false;
  const staging = join(root, IMPORT_STAGING_DIR);
  const target = (await isDirAsync(staging)) ? await importMarkerTargetAsync(staging) : undefined;
  if (target !== undefined && (await isDirAsync(join(root, target)))) {
    await fs.promises.rename(staging, meta);
    await fsyncDirNoFollowAsync(root);
    return true;
  }
  refuseInterruptedRestore(root, meta, await fs.promises.readdir(root));
  return false;
}

/** With no `metadata/`, a `metadata.docker-*` among `names` (the root's) is an interrupted restore. */
function refuseInterruptedRestore(root: string, meta: string, names: readonly string[]): void {
  const originals = names.filter((n) => n.startsWith(DOCKER_ORIGINALS_PREFIX));
  if (originals.length > 0) {
    throw new MetadataCorruptError(meta, [
      {
        path: '',
        message: `is missing while ${originals.join(', ')} holds Docker's records: a 'devmapper docker restore' (or import) was interrupted; run 'devmapper docker restore ${root}' again, or 'devmapper docker import ${root}'`,
      },
    ]);
  }
}

async function isDirAsync(path: string): Promise<boolean> {
  return (await lstatIfPresentAsync(path))?.isDirectory() ?? false;
}

/** Anything at `path` (lstat: a link counts, never followed); any error counts as absent, as in the sync twin. */
async function lexistsAsync(path: string): Promise<boolean> {
  return (await lstatIfPresentAsync(path).catch(() => undefined)) !== undefined;
}

function isLinkOrOther(path: string): boolean {
  try {
    fs.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The recorded Docker name prefix of `root` (its deviceset record's `namePrefix`), or undefined
 * for a root that was not imported (no record, no field: the caller derives its own prefix).
 * Reads only; an unreadable record is left to MetadataStore.loadAll to report.
 * @throws MetadataCorruptError the recorded prefix is not Docker's prefix of stat(root) now.
 */
export function recordedNamePrefix(root: string, st: { readonly dev: bigint; readonly ino: bigint }): string | undefined {
  const file = join(root, 'metadata', DEVICESET_FILE);
  let value: unknown;
  try {
    value = JSON.parse(readFileNoFollow(file).toString('utf8'));
  } catch {
    return undefined;
  }
  return checkedPrefix(file, value, st);
}

/** {@link recordedNamePrefix} through fs/promises. */
async function recordedNamePrefixAsync(root: string, st: { readonly dev: bigint; readonly ino: bigint }): Promise<string | undefined> {
  const file = join(root, 'metadata', DEVICESET_FILE);
  let value: unknown;
  try {
    value = JSON.parse((await readFileNoFollowAsync(file)).toString('utf8'));
  } catch {
    return undefined;
  }
  return checkedPrefix(file, value, st);
}

/** The `namePrefix` of the deviceset record `value` read from `file`, checked against stat(root) `st`. */
function checkedPrefix(file: string, value: unknown, st: { readonly dev: bigint; readonly ino: bigint }): string | undefined {
  const p = (value as { namePrefix?: unknown } | null)?.namePrefix;
  if (p === undefined) return undefined;
  const now = dockerNamePrefix(st);
  if (typeof p !== 'string' || !DOCKER_PREFIX_RE.test(p) || p !== now) {
    throw new MetadataCorruptError(file, [
      {
        path: '/namePrefix',
        message: `records the Docker name prefix ${JSON.stringify(p)}, but this root's is ${now} now: the root was moved or copied after the import, and the old names may belong to its original`,
        value: p,
      },
    ]);
  }
  return p;
}

/**
 * DeviceSet.init's prefix step for a root that may have been imported from Docker: finishes an
 * interrupted import, then returns the recorded Docker prefix, or undefined. Caller holds the lock.
 */
export function importedNamePrefix(root: string, st: { readonly dev: bigint; readonly ino: bigint }): string | undefined {
  finishInterruptedImport(root);
  return recordedNamePrefix(root, st);
}

/** {@link importedNamePrefix} through fs/promises, for DeviceSet.init: nothing on the event loop. */
export async function importedNamePrefixAsync(root: string, st: { readonly dev: bigint; readonly ino: bigint }): Promise<string | undefined> {
  await finishInterruptedImportAsync(root);
  return recordedNamePrefixAsync(root, st);
}
