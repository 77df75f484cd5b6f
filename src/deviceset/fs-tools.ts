// SPDX-License-Identifier: MIT
// Filesystem tools run as child processes (mkfs, blkid, tune2fs, resize2fs, xfs_growfs), as in
// Docker, plus the magic-number probe and the superblock UUID (fs-superblock.ts). The ioctl layers never shell out; only this file does.
import { execFile } from 'node:child_process';
import { openSync, readSync, closeSync } from 'node:fs';
import type { BaseFilesystem } from './options.js';
import { ExternalToolError } from './errors.js';
import { readDeviceHead, superblockUuid } from './fs-superblock.js';

/** Docker's ext4 mkfs options (with a fallback for mke2fs without lazy_journal_init). */
export const EXT4_MKFS_ARGS: readonly string[] = ['-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0'];
export const EXT4_MKFS_FALLBACK_ARGS: readonly string[] = ['-E', 'nodiscard,lazy_itable_init=0'];

/** The mkfs command line for the base device: Docker's defaults, then every dm.mkfsarg. */
export function mkfsCommand(fs: BaseFilesystem, device: string, extraArgs: readonly string[], fallback = false): string[] {
  if (fs === 'ext4') return ['mkfs.ext4', ...(fallback ? EXT4_MKFS_FALLBACK_ARGS : EXT4_MKFS_ARGS), ...extraArgs, device];
  // Docker adds "-m crc=0,finobt=0" only on kernels older than 3.16, which we do not support.
  return ['mkfs.xfs', ...extraArgs, device];
}

/** The growfs command: resize2fs takes the device, xfs_growfs the mount point. */
export function growCommand(fs: BaseFilesystem, device: string, mountPoint: string): string[] {
  return fs === 'ext4' ? ['resize2fs', device] : ['xfs_growfs', mountPoint];
}

/**
 * Per-call options of the tools: `signal` kills the child process (SIGTERM, then the tool call
 * rejects). Tools written before it existed ignore it; the DeviceSet still stops after them.
 */
export interface FsToolCall {
  readonly signal?: AbortSignal;
}

/** The external tools the DeviceSet uses; tests inject a fake. */
export interface FsTools {
  /** Makes the filesystem (Docker's args + dm.mkfsarg); ext4 is then tune2fs'd as Docker does. */
  mkfs(fs: BaseFilesystem, device: string, extraArgs: readonly string[], call?: FsToolCall): Promise<void>;
  /** The filesystem UUID, as `blkid -p` prints it (read from an ext4/xfs superblock; blkid for others). */
  uuid(device: string, call?: FsToolCall): Promise<string>;
  /** Grows a mounted filesystem to its device's size. */
  grow(fs: BaseFilesystem, device: string, mountPoint: string, call?: FsToolCall): Promise<void>;
  /**
   * Which of our filesystems the device holds (superblock magic), or null. Optional for FsTools
   * written before it existed: the DeviceSet then reads the device's first 4 KiB through node:fs
   * (so a fake kernel's FsTools must provide it; fakeFsTools does).
   */
  probe?(device: string): Promise<BaseFilesystem | null>;
}

/**
 * Runs a command; rejects with ExternalToolError carrying stderr. `signal` kills the child with
 * SIGTERM (node's execFile `signal` option) and the call rejects with that error as its cause.
 */
export function run(command: readonly string[], timeoutMs = 10 * 60_000, signal?: AbortSignal): Promise<string> {
  const [file, ...args] = command;
  return new Promise((resolve, reject) => {
    execFile(file ?? '', args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 4 << 20, ...(signal ? { signal } : {}) }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
        reject(new ExternalToolError(command, code, `${stderr}${stderr ? '' : err.message}`, { cause: err }));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** The real tools, through PATH. */
export const realFsTools: FsTools = {
  async mkfs(fs, device, extraArgs, call) {
    const signal = call?.signal;
    if (fs === 'ext4') {
      try {
        await run(mkfsCommand('ext4', device, extraArgs), undefined, signal);
      } catch (err) {
        if (!(err instanceof ExternalToolError) || !/lazy_journal_init/.test(err.stderr) || signal?.aborted) throw err;
        await run(mkfsCommand('ext4', device, extraArgs, true), undefined, signal);
      }
      // Docker: no mount-count or interval forced checks on container filesystems.
      await run(['tune2fs', '-c', '-1', '-i', '0', device], undefined, signal);
    } else {
      await run(mkfsCommand('xfs', device, extraArgs), undefined, signal);
    }
  },
  async uuid(device, call) {
    // ext4 and xfs (all a DeviceSet makes): read from the superblock, no child process
    // (fs-superblock.ts); anything else: blkid's low-level probe.
    const own = superblockUuid(await readDeviceHead(device));
    if (own !== null) return own;
    const out = (await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', device], undefined, call?.signal)).trim();
    if (!out) throw new ExternalToolError(['blkid', '-p', '-s', 'UUID', '-o', 'value', device], 0, 'no UUID found');
    return out;
  },
  async grow(fs, device, mountPoint, call) {
    await run(growCommand(fs, device, mountPoint), undefined, call?.signal);
  },
  async probe(device) {
    return probeFilesystem(await readDeviceHead(device));
  },
};

/** ext4 superblock magic 0xEF53 at byte 0x438; xfs "XFSB" at 0 (Docker's ProbeFsType). */
export function probeFilesystem(head: Uint8Array): BaseFilesystem | null {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 4 && b.toString('latin1', 0, 4) === 'XFSB') return 'xfs';
  if (b.length >= 0x43a && b.readUInt16LE(0x438) === 0xef53) return 'ext4';
  return null;
}

/** Reads the first 4 KiB of a device and probes it. */
export function probeDeviceFilesystem(device: string): BaseFilesystem | null {
  const fd = openSync(device, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return probeFilesystem(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}
