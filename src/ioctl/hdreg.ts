// SPDX-License-Identifier: MIT
// Mirrors HDIO_GETGEO and struct hd_geometry of include/uapi/linux/hdreg.h, x86_64/LP64 sizes.
// Kernel side: block/ioctl.c (`blkdev_getgeo`), and for dm devices drivers/md/dm.c
// (`dm_blk_getgeo` returns the geometry DM_DEV_SET_GEOMETRY stored).
import { KernelOutputError } from '../errors.js';
import { hexSnippet } from './layout.js';

/** Get the legacy CHS geometry (`struct hd_geometry *`). A plain number in hdreg.h, not _IO-encoded. */
export const HDIO_GETGEO = 0x0301;

/**
 * sizeof(struct hd_geometry) on LP64: `unsigned char heads` (offset 0), `unsigned char sectors`
 * (1), `unsigned short cylinders` (2), padding, `unsigned long start` (8).
 */
export const HD_GEOMETRY_SIZE = 16;

/** A decoded `struct hd_geometry`. */
export interface HdGeometry {
  readonly heads: number;
  readonly sectors: number;
  readonly cylinders: number;
  /** Start sector (`unsigned long`). */
  readonly start: bigint;
}

/**
 * Decodes the `struct hd_geometry` HDIO_GETGEO wrote into a {@link HD_GEOMETRY_SIZE}-byte buffer.
 * @throws KernelOutputError when the buffer is shorter than the struct.
 */
export function decodeHdGeometry(buf: Uint8Array): HdGeometry {
  if (buf.length < HD_GEOMETRY_SIZE)
    throw new KernelOutputError(`struct hd_geometry: ${buf.length} bytes, need ${HD_GEOMETRY_SIZE}`, hexSnippet(buf, 0, buf.length));
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return { heads: b.readUInt8(0), sectors: b.readUInt8(1), cylinders: b.readUInt16LE(2), start: b.readBigUInt64LE(8) };
}
