// SPDX-License-Identifier: MIT
// /dev/mapper node management, the way libdm's fallback does it when udev does not
// (libdm/libdm-common.c: _add_dev_node, _rm_dev_node, _rename_dev_node; control node: _create_control).
import { errnoCode } from '../errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFMT, type Syscalls } from '../ioctl/index.js';
import { encodeDevNum, formatDevNum, type DevNum } from './devnum.js';
import { DeviceNodeError } from './errors.js';


/** `/dev/mapper/control` is the misc character device 10:236 (MAPPER_CTRL_MINOR, static since 2.6.36). */
export const DM_CONTROL_DEV: DevNum = { major: 10, minor: 236 };

/** Mode of `/dev/mapper` when we have to create it (libdm: umask 0022 → 0755). */
export const MAPPER_DIR_MODE = 0o755;
/** Mode of the control node (libdm: umask 0177 → 0600). */
export const CONTROL_NODE_MODE = 0o600;
/** Mode of `/dev/mapper/NAME` block nodes (libdm's configure-time default DM_DEVICE_MODE). */
export const DEVICE_NODE_MODE = 0o600;

/**
 * What a node operation did. Returned so callers and tests can see it; nothing here logs.
 * - `created`: there was nothing, a node was made;
 * - `kept`: a correct node (or a symlink to one) was already there;
 * - `replaced`: a stale block node (wrong major:minor) or a dangling symlink was unlinked first;
 * - `removed` / `absent`: for removal;
 * - `renamed`: for rename.
 */
export type NodeAction = 'created' | 'kept' | 'replaced' | 'removed' | 'absent' | 'renamed';

type Probe =
  | { kind: 'absent' }
  | { kind: 'node'; type: number; dev: bigint };

/**
 * stat(2) the path (following symlinks, as libdm does: a udev symlink to the right dm-N counts as
 * correct). ENOENT means absent *or a dangling symlink*; the latter shows up later as EEXIST from
 * mknod, which {@link ensureDeviceNode} handles.
 */
function probe(sys: Syscalls, path: string): Probe {
  try {
    const st = sys.stat(path);
    return { kind: 'node', type: st.mode & S_IFMT, dev: st.rdev };
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { kind: 'absent' };
    throw e;
  }
}

function unlinkQuiet(sys: Syscalls, path: string): boolean {
  try {
    sys.unlink(path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

/**
 * Makes `path` a special file of `type` (S_IFBLK / S_IFCHR) for `dev`: keeps a correct one,
 * replaces one of the right type pointing at the wrong numbers, refuses to clobber anything else.
 *
 * The umask still applies to `mode`; with the usual 0022 (or even 0177) it leaves 0600 intact.
 * We do not call umask(2) because it is process-wide and Node offers no per-call form.
 *
 * @throws DeviceNodeError when a file of another type (regular file, directory, char device where
 *   a block device belongs…) is in the way.
 */
export function ensureSpecialNode(
  sys: Syscalls,
  path: string,
  type: number,
  dev: DevNum,
  mode: number,
  options: { expectAbsent?: boolean } = {},
): NodeAction {
  const want = encodeDevNum(dev);
  // Which syscall comes first follows what is likely there. A device that was just created has
  // no node: mknod first (one syscall, no failing stat and no ENOENT error object, which is not
  // free under emulation). Any other resume usually finds its node: stat first (one syscall).
  let mknodError: unknown;
  let found: Probe;
  if (options.expectAbsent === true) {
    try {
      sys.mknod(path, type | mode, want);
      return 'created';
    } catch (e) {
      mknodError = e;
    }
    found = probe(sys, path);
  } else {
    found = probe(sys, path);
    if (found.kind === 'absent') {
      try {
        sys.mknod(path, type | mode, want);
        return 'created';
      } catch (e) {
        mknodError = e;
      }
    }
  }
  if (found.kind === 'node') {
    if (found.type !== type)
      throw new DeviceNodeError(path, `exists and is not a ${type === S_IFBLK ? 'block' : 'character'} device`);
    // st_rdev (glibc dev_t) and the kernel's huge encoding agree for every real device number.
    // A correct node is kept whatever mknod said (EPERM or EROFS on a read-only /dev included).
    if (found.dev === want) return 'kept';
  } else if (errnoCode(mknodError) !== 'EEXIST') {
    // Nothing there and mknod failed for a real reason.
    throw mknodError;
  }
  // A node of the right type for other numbers, or (stat says ENOENT but mknod said EEXIST) a
  // dangling symlink such as udev's ../dm-N for a device that is gone. libdm unlinks those; so do we.
  unlinkQuiet(sys, path);
  try {
    sys.mknod(path, type | mode, want);
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
    // Recreated between our unlink and mknod (udev's late symlink, after its wait timed out):
    // take the path over once more, as libdm does.
    unlinkQuiet(sys, path);
    sys.mknod(path, type | mode, want);
  }
  return 'replaced';
}

/**
 * Creates or repairs the block node `/dev/mapper/NAME` for a device (libdm NODE_ADD).
 * @throws DeviceNodeError when a non-block file is in the way.
 */
export function ensureDeviceNode(sys: Syscalls, path: string, dev: DevNum, mode = DEVICE_NODE_MODE, options: { expectAbsent?: boolean } = {}): NodeAction {
  return ensureSpecialNode(sys, path, S_IFBLK, dev, mode, options);
}

/**
 * Removes `/dev/mapper/NAME` (libdm NODE_DEL). Missing is fine. When `dev` is given, only a block
 * node (or symlink) for exactly that device is removed, so we never delete a node that now belongs
 * to another device of the same name; when it points elsewhere it is left alone ('kept').
 *
 * Anything that is not a block device is left alone too ('kept') rather than reported: this runs
 * *after* the kernel removed the device, and failing then would report an error for a removal
 * that happened. (A dangling symlink stats as absent and is unlinked.)
 */
export function removeDeviceNode(sys: Syscalls, path: string, dev?: DevNum): NodeAction {
  const found = probe(sys, path);
  if (found.kind === 'absent') return unlinkQuiet(sys, path) ? 'removed' : 'absent';
  if (found.type !== S_IFBLK) return 'kept';
  if (dev !== undefined && found.dev !== encodeDevNum(dev)) return 'kept';
  return unlinkQuiet(sys, path) ? 'removed' : 'absent';
}

/**
 * Moves `/dev/mapper/OLD` to `/dev/mapper/NEW` after a DM_DEV_RENAME (libdm NODE_RENAME), then
 * makes sure NEW is right for `dev` (creating it if OLD was missing). A stale block node at NEW is
 * overwritten by rename(2) itself.
 * @throws DeviceNodeError when a non-block file sits at either path.
 */
export function renameDeviceNode(sys: Syscalls, from: string, to: string, dev: DevNum, mode = DEVICE_NODE_MODE): NodeAction {
  const src = probe(sys, from);
  if (src.kind === 'node' && src.type !== S_IFBLK) throw new DeviceNodeError(from, 'exists and is not a block device');
  const dst = probe(sys, to);
  if (dst.kind === 'node' && dst.type !== S_IFBLK) throw new DeviceNodeError(to, 'exists and is not a block device');
  if (src.kind === 'node' && src.dev === encodeDevNum(dev)) {
    sys.rename(from, to);
    return 'renamed';
  }
  // Nothing usable at OLD (missing or stale): drop a stale one and create NEW directly.
  if (src.kind === 'node') unlinkQuiet(sys, from);
  return ensureDeviceNode(sys, to, dev, mode);
}

/**
 * Makes sure `mapperDir` exists (0755) and `mapperDir/control` is the 10:236 character node (0600),
 * replacing a wrong one, as libdm's `_create_control` does before opening it.
 * @throws DeviceNodeError when `mapperDir` is not a directory or `control` is a non-char file.
 */
export function ensureControlNode(sys: Syscalls, mapperDir: string): NodeAction {
  const dir = probe(sys, mapperDir);
  if (dir.kind === 'absent') {
    try {
      sys.mkdir(mapperDir, MAPPER_DIR_MODE);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
  } else if (dir.type !== S_IFDIR) throw new DeviceNodeError(mapperDir, 'exists and is not a directory');
  return ensureSpecialNode(sys, `${mapperDir}/control`, S_IFCHR, DM_CONTROL_DEV, CONTROL_NODE_MODE);
}

/** True when `path` is (or links to) the 10:236 character node. Creates nothing. */
export function isControlNode(sys: Syscalls, path: string): boolean {
  const p = probe(sys, path);
  return p.kind === 'node' && p.type === S_IFCHR && p.dev === encodeDevNum(DM_CONTROL_DEV);
}

/**
 * Whether the text of `/proc/misc` lists the device-mapper misc device. The kernel writes one
 * `"%3i %s\n"` line (minor, name) per registered misc device (drivers/char/misc.c,
 * misc_seq_show), and dm registers its control device as DM_NAME "device-mapper" with minor
 * MAPPER_CTRL_MINOR (drivers/md/dm-ioctl.c, `_dm_misc`).
 */
export function miscListsDeviceMapper(procMisc: string): boolean {
  return procMisc.split('\n').some((line) => /^\s*\d+ device-mapper$/.test(line));
}

/** `'/dev/mapper/pool'` for `('/dev', 'pool')`. */
export function mapperPath(devDir: string, name: string): string {
  return `${devDir.replace(/\/+$/, '')}/mapper/${name}`;
}

/** Describes a node for messages: `/dev/mapper/pool (253:3)`. */
export function describeNode(path: string, dev: DevNum): string {
  return `${path} (${formatDevNum(dev)})`;
}
