// SPDX-License-Identifier: MIT
// Builds dm-log-writes logs byte by byte as drivers/md/dm-log-writes.c writes them (log_super,
// log_one_block): the super in block 0, then per entry a header block (struct log_write_entry, a
// mark's name, zeroes) and, unless it is a discard, nr_sectors blocks of data. Shared by the
// decoder's tests (test/unit/dm/targets-faults.test.ts, test/unit/testing/write-log.test.ts).

/** One entry to write. */
export interface LogSpec {
  readonly sector?: bigint;
  readonly nrSectors?: bigint;
  readonly flags: bigint;
  /** A mark's name. */
  readonly mark?: string;
  /** The written data: nrSectors blocks, each filled with this byte. */
  readonly fill?: number;
  /** Overrides the header's data_len, for corrupt logs. */
  readonly dataLen?: bigint;
}

/** The log of `specs` with `sectorSize`-byte blocks; the super says `nrEntries` (default: all). */
export function buildLogWritesLog(sectorSize: number, specs: readonly LogSpec[], nrEntries = BigInt(specs.length)): Buffer {
  const parts: Buffer[] = [];
  const sup = Buffer.alloc(sectorSize);
  sup.writeBigUInt64LE(0x6a736677736872n, 0);
  sup.writeBigUInt64LE(1n, 8);
  sup.writeBigUInt64LE(nrEntries, 16);
  sup.writeUInt32LE(sectorSize, 24);
  parts.push(sup);
  for (const s of specs) {
    const h = Buffer.alloc(sectorSize);
    const name = s.mark !== undefined ? Buffer.from(s.mark) : Buffer.alloc(0);
    h.writeBigUInt64LE(s.sector ?? 0n, 0);
    h.writeBigUInt64LE(s.nrSectors ?? 0n, 8);
    h.writeBigUInt64LE(s.flags, 16);
    h.writeBigUInt64LE(s.dataLen ?? BigInt(name.length), 24);
    name.copy(h, 32);
    parts.push(h);
    if ((s.flags & 4n) === 0n && (s.nrSectors ?? 0n) > 0n) parts.push(Buffer.alloc(Number(s.nrSectors!) * sectorSize, s.fill ?? 0));
  }
  return Buffer.concat(parts);
}
