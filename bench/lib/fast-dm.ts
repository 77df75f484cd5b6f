// SPDX-License-Identifier: MIT
// PROTOTYPE, bench only: a hand-coded struct dm_ioctl encoder/decoder (fixed offsets, direct
// Buffer writes, no buffer-layout), used by the "what-if" info rows to show what the proposed fix
// to src/ioctl/dm-ioctl.ts (buildDmRequest / decodeDmIoctl) would buy. Offsets: protocol-facts §1.2.
// It validates only what the kernel cannot survive (lengths); it is not the library's code path.

export interface FastHeader {
  readonly version: readonly [number, number, number];
  readonly flags?: number;
  readonly eventNr?: number;
  readonly dev?: bigint;
  readonly targetCount?: number;
  readonly name?: string;
  readonly uuid?: string;
}

const SIZE = 312;

/** A zeroed request buffer of max(312 + payload, minSize) bytes with the header written. */
export function fastBuild(h: FastHeader, payload?: Uint8Array, minSize = 0): Buffer {
  const size = Math.max(SIZE + (payload?.length ?? 0), minSize);
  const b = Buffer.alloc(size);
  b.writeUInt32LE(h.version[0], 0);
  b.writeUInt32LE(h.version[1], 4);
  b.writeUInt32LE(h.version[2], 8);
  b.writeUInt32LE(size, 12);
  b.writeUInt32LE(SIZE, 16);
  if (h.targetCount) b.writeUInt32LE(h.targetCount, 20);
  if (h.flags) b.writeUInt32LE(h.flags >>> 0, 28);
  if (h.eventNr) b.writeUInt32LE(h.eventNr >>> 0, 32);
  if (h.dev) b.writeBigUInt64LE(h.dev, 40);
  if (h.name && b.write(h.name, 48, 127, 'utf8') !== Buffer.byteLength(h.name)) throw new RangeError('name > 127 bytes');
  if (h.uuid && b.write(h.uuid, 176, 128, 'utf8') !== Buffer.byteLength(h.uuid)) throw new RangeError('uuid > 128 bytes');
  if (payload) b.set(payload, SIZE);
  return b;
}

export interface FastReply {
  readonly version: [number, number, number];
  readonly dataSize: number;
  readonly dataStart: number;
  readonly targetCount: number;
  readonly openCount: number;
  readonly flags: number;
  readonly eventNr: number;
  readonly dev: bigint;
  readonly name: string;
  readonly uuid: string;
}

function cstr(b: Buffer, start: number, size: number): string {
  const nul = b.indexOf(0, start);
  const end = nul < 0 || nul > start + size ? start + size : nul;
  return b.toString('utf8', start, end);
}

export function fastDecode(b: Buffer): FastReply {
  return {
    version: [b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8)],
    dataSize: b.readUInt32LE(12),
    dataStart: b.readUInt32LE(16),
    targetCount: b.readUInt32LE(20),
    openCount: b.readInt32LE(24),
    flags: b.readUInt32LE(28),
    eventNr: b.readUInt32LE(32),
    dev: b.readBigUInt64LE(40),
    name: cstr(b, 48, 128),
    uuid: cstr(b, 176, 129),
  };
}
