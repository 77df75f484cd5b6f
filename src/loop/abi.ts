// SPDX-License-Identifier: MIT
// TEMPORARY bridge to the loop ABI until src/ioctl/loop.ts and src/ioctl/fs.ts land: the handful of
// include/uapi/linux/loop.h and linux/fs.h numbers and the two structs control.ts needs. Everything
// here will be replaced by re-exports from '../ioctl/index.js'.
export function huge_decode_dev(dev: bigint): { major: number; minor: number } {
  const n = Number(BigInt.asUintN(32, dev));
  return { major: (n >>> 8) & 0xfff, minor: ((n & 0xff) | ((n >>> 12) & 0xfff00)) >>> 0 };
}
export function major(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n));
}
export function minor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n));
}

export const LOOP_SET_FD = 0x4c00;
export const LOOP_CLR_FD = 0x4c01;
export const LOOP_SET_STATUS64 = 0x4c04;
export const LOOP_GET_STATUS64 = 0x4c05;
export const LOOP_SET_CAPACITY = 0x4c07;
export const LOOP_SET_DIRECT_IO = 0x4c08;
export const LOOP_SET_BLOCK_SIZE = 0x4c09;
export const LOOP_CONFIGURE = 0x4c0a;
export const LOOP_CTL_ADD = 0x4c80;
export const LOOP_CTL_REMOVE = 0x4c81;
export const LOOP_CTL_GET_FREE = 0x4c82;

export const LO_FLAGS_READ_ONLY = 1;
export const LO_FLAGS_AUTOCLEAR = 4;
export const LO_FLAGS_PARTSCAN = 8;
export const LO_FLAGS_DIRECT_IO = 16;

export const LO_NAME_SIZE = 64;
export const BLKGETSIZE64 = 0x80081272;

export const LOOP_INFO64_SIZE = 232;
export const LOOP_CONFIG_SIZE = 304;

export interface RawLoopInfo64 {
  lo_device: bigint;
  lo_inode: bigint;
  lo_rdevice: bigint;
  lo_offset: bigint;
  lo_sizelimit: bigint;
  lo_number: number;
  lo_flags: number;
  lo_file_name: string;
}

export function encodeLoopInfo64(v: RawLoopInfo64, b: Buffer = Buffer.alloc(LOOP_INFO64_SIZE), off = 0): Buffer {
  b.writeBigUInt64LE(v.lo_device, off);
  b.writeBigUInt64LE(v.lo_inode, off + 8);
  b.writeBigUInt64LE(v.lo_rdevice, off + 16);
  b.writeBigUInt64LE(v.lo_offset, off + 24);
  b.writeBigUInt64LE(v.lo_sizelimit, off + 32);
  b.writeUInt32LE(v.lo_number, off + 40);
  b.writeUInt32LE(v.lo_flags, off + 52);
  const name = Buffer.from(v.lo_file_name, 'utf8');
  if (name.length >= LO_NAME_SIZE) throw new RangeError('lo_file_name too long');
  name.copy(b, off + 56);
  return b;
}

export function decodeLoopInfo64(b: Buffer, off = 0): RawLoopInfo64 {
  const nameField = b.subarray(off + 56, off + 56 + LO_NAME_SIZE);
  const nul = nameField.indexOf(0);
  return {
    lo_device: b.readBigUInt64LE(off),
    lo_inode: b.readBigUInt64LE(off + 8),
    lo_rdevice: b.readBigUInt64LE(off + 16),
    lo_offset: b.readBigUInt64LE(off + 24),
    lo_sizelimit: b.readBigUInt64LE(off + 32),
    lo_number: b.readUInt32LE(off + 40),
    lo_flags: b.readUInt32LE(off + 52),
    lo_file_name: nameField.subarray(0, nul < 0 ? LO_NAME_SIZE : nul).toString('utf8'),
  };
}

export function encodeLoopConfig(v: { fd: number; block_size: number; info: RawLoopInfo64 }): Buffer {
  const b = Buffer.alloc(LOOP_CONFIG_SIZE);
  b.writeUInt32LE(v.fd, 0);
  b.writeUInt32LE(v.block_size, 4);
  encodeLoopInfo64(v.info, b, 8);
  return b;
}

export function decodeLoopConfig(b: Buffer): { fd: number; block_size: number; info: RawLoopInfo64 } {
  return { fd: b.readUInt32LE(0), block_size: b.readUInt32LE(4), info: decodeLoopInfo64(b, 8) };
}

import type { Syscalls } from '../ioctl/syscalls.js';
export function realSyscalls(): Syscalls {
  throw new Error('realSyscalls: src/ioctl has not landed yet; pass { syscalls } explicitly');
}
