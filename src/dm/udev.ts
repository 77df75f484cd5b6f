// SPDX-License-Identifier: MIT
// How DmControl cooperates with udev: libdm's udev flag bits (libdm/libdevmapper.h, not kernel
// ABI) and the node policy decision. We never create SysV-semaphore cookies; see NodePolicy.

/** `DM_UDEV_FLAGS_SHIFT`: udev flags travel in the high 16 bits of `dm_ioctl.event_nr`. */
export const DM_UDEV_FLAGS_SHIFT = 16;
/** 10-dm.rules: don't create /dev/mapper symlinks. */
export const DM_UDEV_DISABLE_DM_RULES_FLAG = 0x0001;
/** Subsystem rules (LVM's 11-dm-lvm.rules…) skip the device. */
export const DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG = 0x0002;
/** 13-dm-disk.rules: no /dev/disk/by-* links, no blkid scan. */
export const DM_UDEV_DISABLE_DISK_RULES_FLAG = 0x0004;
/** Other rules skip the device. */
export const DM_UDEV_DISABLE_OTHER_RULES_FLAG = 0x0008;
/** The event comes from the library that changed the device (not a synthesized "change"). */
export const DM_UDEV_PRIMARY_SOURCE_FLAG = 0x0040;

/**
 * Who keeps `/dev/mapper/NAME` right:
 * - `'manage'`: DmControl does, like libdm's fallback (mknod after resume, rename, unlink after
 *   remove). Chosen by `'auto'` when udev is not running (`/run/udev/control` absent, the same
 *   test systemd's libudev makes). If udev *is* running while we manage, we set
 *   DISABLE_DM_RULES | DISABLE_SUBSYSTEM_RULES so its rules don't race ours (what libdm does
 *   when it handles nodes itself).
 * - `'udev'`: udev's rules do (Debian's 55-dm.rules, lvm2's 10-dm.rules: a symlink to ../dm-N).
 *   Our resume/remove/rename uevents carry DM_UDEV_PRIMARY_SOURCE_FLAG and, when the seam has
 *   SysV semaphores, a libdm udev cookie (udev-cookie.ts): the call returns once udev ran every
 *   rule for *that* uevent (95-dm-notify.rules completes the cookie), bounded by udevTimeoutMs.
 *   Watching /dev/mapper alone cannot tell that: udev reads the device name from sysfs when it
 *   handles an event, so a late event of an earlier device on the same minor can make, and its
 *   "remove" then delete, the new device's link (seen in the udev CI cell). Without semaphores
 *   (the FakeKernel, a seam without `sysv`, ENOSYS) we watch the node instead (lstat, bounded).
 *   Either way, if udev did not make the node right in time we fall back to `'manage'`
 *   behaviour, the fallback libdm prints "Falling back to direct node creation" for. A process
 *   killed between the ioctl and the wait leaves its semaphore behind, as libdm's do (`ipcs -s`,
 *   keys 0x0d4dXXXX; `dmsetup udevcookies` lists them, `dmsetup udevcomplete_all` clears them).
 * - `'none'`: nobody here touches /dev/mapper (cookie 0).
 * Chosen per operation with `'auto'` (the default), so starting udev later is noticed.
 */
export type NodePolicy = 'manage' | 'udev' | 'none';

/** The `event_nr` "cookie" to send with RESUME, REMOVE and RENAME under a policy. */
export function udevCookie(policy: NodePolicy, udevRunning: boolean): number {
  switch (policy) {
    case 'udev':
      return (DM_UDEV_PRIMARY_SOURCE_FLAG << DM_UDEV_FLAGS_SHIFT) >>> 0;
    case 'manage':
      return udevRunning
        ? ((DM_UDEV_PRIMARY_SOURCE_FLAG | DM_UDEV_DISABLE_DM_RULES_FLAG | DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG) <<
            DM_UDEV_FLAGS_SHIFT) >>>
            0
        : 0;
    case 'none':
      return 0;
  }
}
