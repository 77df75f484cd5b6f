// SPDX-License-Identifier: MIT
// `<root>/cli-options.json`: the dm.* options `devmapper ds init` was given, read back by every
// later `ds` command. Written like the DeviceSet's own metadata (src/deviceset/metadata.ts, whose
// writer is private to its store): a temp file in the same directory created with
// O_EXCL|O_NOFOLLOW, written, fsynced, closed, renamed over the target, then the directory
// fsynced, so a crash leaves either the old file or the new one, never a torn mix
// (rename(2) replaces the name atomically). Read with O_NOFOLLOW: a symbolic link planted in the
// root is refused instead of followed.
import * as nodeFs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { errnoCode, type ValidationProblem } from '../errors.js';
import { MetadataCorruptError } from '../deviceset/index.js';

/** The CLI's own file under the root. */
export const CLI_OPTIONS_FILE = 'cli-options.json';
/** The only format this CLI writes and reads. */
export const CLI_OPTIONS_FORMAT_VERSION = 1;
/** Prefix of the temp files of {@link saveOptions} (a crash may leave one; the next save removes it). */
export const CLI_OPTIONS_TMP_PREFIX = `.${CLI_OPTIONS_FILE}.tmp-`;

/** The file-system calls used here: the seam for crash tests (throw from one to stop there). */
export interface OptionsFs {
  mkdirSync(path: string, options: { recursive: true; mode: number }): void;
  readdirSync(path: string): string[];
  openSync(path: string, flags: number, mode?: number): number;
  fstatSync(fd: number): { isFile(): boolean };
  /** The whole content of an open fd, as UTF-8. */
  readFdSync(fd: number): string;
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
}

/** The real node:fs behind {@link OptionsFs}. */
export const nodeOptionsFs: OptionsFs = {
  mkdirSync: (path, options) => void nodeFs.mkdirSync(path, options),
  readdirSync: (path) => nodeFs.readdirSync(path),
  openSync: (path, flags, mode) => nodeFs.openSync(path, flags, mode),
  fstatSync: (fd) => nodeFs.fstatSync(fd),
  readFdSync: (fd) => nodeFs.readFileSync(fd, 'utf8'),
  writeSync: (fd, data, offset, length) => nodeFs.writeSync(fd, data, offset, length),
  fsyncSync: (fd) => nodeFs.fsyncSync(fd),
  closeSync: (fd) => nodeFs.closeSync(fd),
  renameSync: (from, to) => nodeFs.renameSync(from, to),
  unlinkSync: (path) => nodeFs.unlinkSync(path),
};

// libuv opens every fd with O_CLOEXEC. O_NONBLOCK: a FIFO planted under the name must not hang
// the open (it is then refused as "not a regular file"); it changes nothing for regular files.
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = nodeFs.constants;

function corrupt(file: string, message: string, value?: unknown, cause?: unknown): MetadataCorruptError {
  const problem: ValidationProblem = value === undefined ? { path: '', message } : { path: '', message, value };
  return new MetadataCorruptError(file, [problem], cause === undefined ? undefined : { cause });
}

const REMEDY = `delete it and run 'devmapper ds init' again with the options of this root`;

/**
 * The options saved under `root`, or undefined when there is no such file.
 * @throws MetadataCorruptError (EMETADATACORRUPT) when the file is a symbolic link or not a
 *   regular file, is not JSON, or is not `{formatVersion: 1, options: string[]}`.
 */
export function readSavedOptions(root: string, fs: OptionsFs = nodeOptionsFs): string[] | undefined {
  const file = join(root, CLI_OPTIONS_FILE);
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    // open(2): ELOOP "O_NOFOLLOW was specified and pathname was a symbolic link".
    if (errnoCode(err) === 'ELOOP') throw corrupt(file, `is a symbolic link, which devmapper never follows here; ${REMEDY}`, undefined, err);
    throw err;
  }
  let text: string;
  try {
    if (!fs.fstatSync(fd).isFile()) throw corrupt(file, `is not a regular file; ${REMEDY}`);
    text = fs.readFdSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt(file, `not valid JSON (${err instanceof Error ? err.message : String(err)}); ${REMEDY}`, undefined, err);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw corrupt(file, `is not a JSON object; ${REMEDY}`, data);
  }
  const rec = data as { formatVersion?: unknown; options?: unknown };
  if (rec.formatVersion !== CLI_OPTIONS_FORMAT_VERSION) {
    const newer = typeof rec.formatVersion === 'number' && rec.formatVersion > CLI_OPTIONS_FORMAT_VERSION;
    throw corrupt(file, newer ? `written by a newer devmapper (format ${rec.formatVersion}; this one reads ${CLI_OPTIONS_FORMAT_VERSION})` : `formatVersion must be ${CLI_OPTIONS_FORMAT_VERSION}; ${REMEDY}`, rec.formatVersion);
  }
  if (!Array.isArray(rec.options) || !rec.options.every((o) => typeof o === 'string')) {
    throw corrupt(file, `options must be an array of "dm.key=value" strings; ${REMEDY}`, rec.options);
  }
  return rec.options as string[];
}

/** The exact bytes {@link saveOptions} writes for `options`. */
export function optionsFileText(options: readonly string[]): string {
  return JSON.stringify({ formatVersion: CLI_OPTIONS_FORMAT_VERSION, options }, null, 2) + '\n';
}

/** Saves `options` under `root` atomically and durably (see the file comment). */
export function saveOptions(root: string, options: readonly string[], fs: OptionsFs = nodeOptionsFs): void {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  for (const name of fs.readdirSync(root)) {
    if (!name.startsWith(CLI_OPTIONS_TMP_PREFIX)) continue;
    try {
      fs.unlinkSync(join(root, name)); // left by a save that died before its rename
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  const data = Buffer.from(optionsFileText(options), 'utf8');
  const tmp = join(root, `${CLI_OPTIONS_TMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let renamed = false;
  try {
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // rename(2) replaces a symbolic link at the target itself; it never writes through it.
    fs.renameSync(tmp, join(root, CLI_OPTIONS_FILE));
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // Best effort: the next save removes leftover temp files.
      }
    }
  }
  fsyncDir(root, fs);
}

/** Removes the options file (no error when it is already gone), durably. */
export function removeOptions(root: string, fs: OptionsFs = nodeOptionsFs): void {
  try {
    fs.unlinkSync(join(root, CLI_OPTIONS_FILE));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  fsyncDir(root, fs);
}

function fsyncDir(dir: string, fs: OptionsFs): void {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
