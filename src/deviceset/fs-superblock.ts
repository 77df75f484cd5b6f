// SPDX-License-Identifier: MIT
// The filesystem UUID read from the superblock, as `blkid -p -s UUID -o value` prints it, without
// spawning blkid: every DeviceSet.init verifies the base device's UUID (Docker's
// verifyBaseDeviceUUIDFS), which was a child process per `ds` command. Only ext4 and xfs, the two
// filesystems a DeviceSet makes; anything else returns null and the caller asks blkid.
// Offsets: ext4's struct ext4_super_block sits at byte 1024, s_magic (0xEF53) at 0x38 and
// s_uuid[16] at 0x68 (fs/ext4/ext4.h); xfs's struct xfs_dsb sits at byte 0, sb_magicnum "XFSB" at 0
// and sb_uuid at 32 after sb_blocksize (4), sb_dblocks, sb_rblocks, sb_rextents (8 each)
// (fs/xfs/libxfs/xfs_format.h). util-linux's blkid reads the same fields
// (libblkid/src/superblocks/ext.c, xfs.c) and prints them with uuid_unparse's 8-4-4-4-12 lowercase.
import { open } from 'node:fs/promises';

/** Bytes a probe reads from the start of the device: both superblocks lie within them. */
export const SUPERBLOCK_HEAD_BYTES = 4096;

const EXT4_SB = 1024;
const EXT4_MAGIC_OFF = EXT4_SB + 0x38;
const EXT4_UUID_OFF = EXT4_SB + 0x68;
const XFS_UUID_OFF = 32;

function unparse(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The UUID of the ext4 or xfs filesystem whose first bytes are `head`, in blkid's form; null when
 * `head` holds neither superblock, is too short, or the UUID is all zeros (blkid prints none then).
 */
export function superblockUuid(head: Uint8Array): string | null {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  let raw: Buffer | undefined;
  if (b.length >= XFS_UUID_OFF + 16 && b.toString('latin1', 0, 4) === 'XFSB') raw = b.subarray(XFS_UUID_OFF, XFS_UUID_OFF + 16);
  else if (b.length >= EXT4_UUID_OFF + 16 && b.readUInt16LE(EXT4_MAGIC_OFF) === 0xef53) raw = b.subarray(EXT4_UUID_OFF, EXT4_UUID_OFF + 16);
  if (raw === undefined || raw.every((x) => x === 0)) return null;
  return unparse(raw);
}

/** The first {@link SUPERBLOCK_HEAD_BYTES} of a device or file, read off the event loop (fs/promises). */
export async function readDeviceHead(device: string): Promise<Buffer> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(SUPERBLOCK_HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
