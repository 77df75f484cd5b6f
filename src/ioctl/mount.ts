// SPDX-License-Identifier: MIT
// Mirrors the mount(2)/umount2(2) flags of include/uapi/linux/mount.h and sys/mount.h that this
// library may pass. `flags` of mount(2) is an unsigned long, hence bigint in the Syscalls seam.

export const MS_RDONLY = 1n;
export const MS_NOSUID = 2n;
export const MS_NODEV = 4n;
export const MS_NOEXEC = 8n;
export const MS_REMOUNT = 32n;
export const MS_BIND = 4096n;

/** umount2: force unmount (NFS mostly). */
export const MNT_FORCE = 1;
/** umount2: lazy unmount — detach now, clean up when no longer busy. */
export const MNT_DETACH = 2;
/** umount2: mark for expiry. */
export const MNT_EXPIRE = 4;
/** umount2: don't follow a symlink at the target. */
export const UMOUNT_NOFOLLOW = 8;
