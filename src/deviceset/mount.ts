// SPDX-License-Identifier: MIT
// The DeviceSet's mount mechanics: the filesystem probe, mount option words (flags vs filesystem data), xfs nouuid,
// dm.mountopt and the label, the mount(2) call with the kernel log's explanation of a failure,
// dm.xfs_nospace_max_retries, and the unmount.
import * as fs from 'node:fs';
import type { DmControl } from '../dm/index.js';
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, type Syscalls } from '../ioctl/index.js';
import { checkAbort } from './abort.js';
import { probeFilesystem } from './base-image.js';
import { DeviceSetUnsupportedError, MountFailedError, UnknownFilesystemError } from './errors.js';
import type { FsTools } from './fs-tools.js';
import { kernelLogTail, type KernelLog, type KernelLogCursor } from './kernel-log.js';
import type { BaseFilesystem, ResolvedDeviceSetOptions } from './options.js';

/**
 * Mount option words that are mount(2) flags, not filesystem data (include/uapi/linux/mount.h;
 * the ones src/ioctl does not mirror are spelled out here).
 */
const FLAG_WORDS: Record<string, bigint> = {
  ro: MS_RDONLY,
  nosuid: MS_NOSUID,
  nodev: MS_NODEV,
  noexec: MS_NOEXEC,
  sync: 16n, // MS_SYNCHRONOUS
  dirsync: 128n, // MS_DIRSYNC
  noatime: 1024n, // MS_NOATIME
  nodiratime: 2048n, // MS_NODIRATIME
  relatime: 1n << 21n, // MS_RELATIME
  strictatime: 1n << 24n, // MS_STRICTATIME
  lazytime: 1n << 25n, // MS_LAZYTIME
};

/** Splits mount options into mount(2) flags and the filesystem's data string. */
export function splitMountOptions(options: readonly string[]): { flags: bigint; data: string } {
  let flags = 0n;
  const data: string[] = [];
  for (const o of options.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '')) {
    const f = FLAG_WORDS[o];
    if (f !== undefined) flags |= f;
    else if (o !== 'rw') data.push(o);
  }
  return { flags, data: data.join(',') };
}

/** What a mount(2) errno usually means, for {@link MountFailedError}. */
export function mountErrorHint(code: string): string {
  switch (code) {
    case 'EINVAL':
      return 'bad mount option or a corrupt/unknown filesystem (see dmesg)';
    case 'ENOENT':
      return 'the mount point or the device node does not exist';
    case 'EBUSY':
      return 'already mounted, or the device is held exclusively';
    case 'EACCES':
    case 'EPERM':
      return 'not permitted (needs CAP_SYS_ADMIN)';
    case 'EROFS':
      return 'the device is read-only';
    default:
      return 'see dmesg';
  }
}

/** What {@link mountThinDevice} works with. */
export interface MountDeps {
  readonly dm: DmControl;
  readonly sys: Syscalls;
  readonly tools: FsTools;
  readonly kernelLog: KernelLog;
  readonly options: ResolvedDeviceSetOptions;
  /** The dm name of `hash`. */
  dmName(hash: string): string;
  /** Deactivates `hash` after a failed mount (deferred when allowed); never throws. */
  undoActivate(hash: string): Promise<void>;
}

/** The caller's part of a mount: extra options, SELinux label, cancellation. */
export interface MountRequest {
  readonly options?: string;
  readonly label?: string;
  readonly signal?: AbortSignal;
}

/**
 * Mounts the active device `device` of `hash` at `path`: its filesystem probed, nouuid (xfs),
 * dm.mountopt, the request's options and label. On a failure the device is deactivated again.
 * @throws UnknownFilesystemError, MountFailedError (with the errno's explanation and the kernel
 *   log lines), OperationAbortedError, DeviceSetUnsupportedError (dm.xfs_nospace_max_retries not applied).
 */
export async function mountThinDevice(d: MountDeps, hash: string, device: string, path: string, req: MountRequest): Promise<void> {
  let fsType: BaseFilesystem | null;
  try {
    fsType = await probeFilesystem(d.tools, device);
  } catch (err) {
    await d.undoActivate(hash);
    throw err;
  }
  if (fsType === null) {
    await d.undoActivate(hash);
    throw new UnknownFilesystemError(device);
  }
  const words = [
    ...(fsType === 'xfs' ? ['nouuid'] : []),
    ...(d.options.mountOptions ? [d.options.mountOptions] : []),
    ...(req.options ? [req.options] : []),
    ...(req.label ? [`context="${req.label}"`] : []),
  ];
  const { flags, data } = splitMountOptions(words);
  const log = await openKernelLogQuietly(d.kernelLog);
  try {
    if (req.signal?.aborted) {
      await d.undoActivate(hash);
      checkAbort(req.signal, 'mountDevice');
    }
    try {
      await d.sys.mountAsync(device, path, fsType, flags, data === '' ? null : data);
    } catch (err) {
      // The errno alone rarely says what is wrong (EINVAL covers a bad option and a corrupt
      // superblock alike): the filesystem's own words are in the kernel log. Read them while
      // the device is still active, so its dm-N name is known.
      const kernelLog = await kernelLogFor(d, hash, log);
      await d.undoActivate(hash);
      const code = (err as { code?: string }).code ?? 'error';
      const why = `${code}: ${mountErrorHint(code)} (${(err as Error).message})`;
      throw new MountFailedError(hash, device, path, fsType, data, why, { cause: err, kernelLog });
    }
  } finally {
    await closeQuietly(log);
  }
  if (fsType === 'xfs' && d.options.xfsNoSpaceMaxRetries !== null) {
    try {
      const info = await d.dm.deviceInfo(d.dmName(hash));
      await fs.promises.writeFile(`/sys/fs/xfs/dm-${info.dev.minor}/error/metadata/ENOSPC/max_retries`, String(d.options.xfsNoSpaceMaxRetries));
    } catch (err) {
      await unmountPath(d.sys, path).catch(() => undefined);
      await d.undoActivate(hash);
      throw new DeviceSetUnsupportedError(`dm.xfs_nospace_max_retries is set but could not be applied: ${String(err)}`);
    }
  }
}

/** Lazy unmount (MNT_DETACH) of a path this DeviceSet mounted. */
export async function unmountPath(sys: Syscalls, path: string): Promise<void> {
  await sys.umount2Async(path, MNT_DETACH);
}

async function openKernelLogQuietly(kernelLog: KernelLog): Promise<KernelLogCursor | null> {
  try {
    return await kernelLog();
  } catch {
    return null;
  }
}

async function closeQuietly(log: KernelLogCursor | null): Promise<void> {
  try {
    await log?.close();
  } catch {
    // the cursor only served the error message
  }
}

/** The kernel log lines since `log` was opened about `hash`'s dm-N device (or the last few). Never throws. */
async function kernelLogFor(d: MountDeps, hash: string, log: KernelLogCursor | null): Promise<string[]> {
  try {
    const records = (await log?.read()) ?? [];
    if (records.length === 0) return [];
    const info = await d.dm.deviceInfo(d.dmName(hash)).catch(() => undefined);
    return kernelLogTail(records, info ? `dm-${info.dev.minor}` : '');
  } catch {
    return [];
  }
}
