// SPDX-License-Identifier: MIT
// The FakeKernel's block layer: open counts and holders (block/bdev.c), what last close triggers
// (loop autoclear, dm deferred remove), the BLK* ioctls of block/ioctl.c, and the storage behind a
// block device (the real backing file through loop/linear, else memory) where thin metadata lives.
import { readSync, writeSync } from 'node:fs';
import {
  BLK_RANGE_SIZE,
  BLKDISCARD,
  BLKFLSBUF,
  BLKGETSIZE64,
  BLKSSZGET,
  huge_decode_dev,
  type IoctlArg,
  LO_FLAGS_AUTOCLEAR,
  LO_FLAGS_READ_ONLY,
  minor as devMinor,
} from '../ioctl/index.js';
import { kerr } from './errors.js';
import { cloneMetadata, serializeMetadata, type ThinMetadata } from './thin-model.js';
import { type DmDev, type FakeState, fmtDev, LOOP_MAJOR, type LoopDev, SECTOR, tableSectors, type BlockPort } from './fake-state.js';

/** Open counts, last-close effects, BLK* ioctls (block/ioctl.c) and device storage. */
export class BlockLayer implements BlockPort {
  readonly #s: FakeState;

  constructor(s: FakeState) {
    this.#s = s;
  }

  /** blkdev_open: the device must exist (a dm device needs its disk), ro and O_EXCL checks. */
  checkOpen(dev: bigint, write: boolean, excl: boolean): void {
    const loop = this.loopOf(dev);
    const md = this.mdOf(dev);
    if (!loop && !md) throw kerr('ENXIO', `no block device ${fmtDev(dev)}`);
    if (md && !md.diskAdded) throw kerr('ENXIO', `${md.name} has no disk yet (no table was ever loaded)`);
    if (write && loop?.bound && loop.bound.flags & LO_FLAGS_READ_ONLY) throw kerr('EROFS', 'read-only loop device');
    if (write && md?.readOnly) throw kerr('EROFS', 'read-only dm device');
    if (excl && this.holders(dev) > 0) throw kerr('EBUSY', `${fmtDev(dev)} is held`);
  }

  /** Openers of a block device: fds, dm tables holding it, mounts. */
  openers(dev: bigint): number {
    let n = 0;
    for (const e of this.#s.fds.values()) if (e.kind === 'block' && e.dev === dev) n++;
    return n + this.holders(dev);
  }

  /** Kernel-side holders: dm devices whose live or inactive table uses `dev`, and mounts. */
  holders(dev: bigint): number {
    let n = 0;
    for (const md of this.#s.dm.values()) if (md.live?.devices.includes(dev) || md.inactive?.devices.includes(dev)) n++;
    for (const m of this.#s.mounts) if (m.dev === dev) n++;
    return n;
  }

  /** Runs what last-close triggers (loop autoclear, deferred dm remove) until nothing changes. */
  settle(): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const l of this.#s.loops.values()) {
        if (l.bound && l.bound.flags & LO_FLAGS_AUTOCLEAR && this.openers(l.dev) === 0) {
          this.#s.loop.unbind(l);
          changed = true;
        }
      }
      for (const md of [...this.#s.dm.values()]) {
        if (md.deferredRemove && this.openers(md.dev) === 0) {
          this.#s.dmIoctl.removeDm(md);
          changed = true;
        }
      }
    }
  }

  /** The dm device at `dev`, if any. */
  mdOf(dev: bigint): DmDev | undefined {
    const { major, minor } = huge_decode_dev(dev);
    if (major !== this.#s.dmMajor) return undefined;
    return this.#s.dmByMinor.get(minor);
  }

  /** The loop device at `dev`, if any. */
  loopOf(dev: bigint): LoopDev | undefined {
    const { major, minor } = huge_decode_dev(dev);
    if (major !== LOOP_MAJOR) return undefined;
    return this.#s.loops.get(minor);
  }

  /** Where a device's bytes live: a backing file (through loop, linear at sector 0), else the dev. */
  storageKey(dev: bigint): string {
    const loop = this.loopOf(dev);
    if (loop?.bound) return `file:${loop.bound.fileDev}:${loop.bound.fileIno}:${loop.bound.offset}`;
    const md = this.mdOf(dev);
    const t = md?.live?.targets[0] ?? md?.inactive?.targets[0];
    if (t?.impl.kind === 'linear' && t.start === 0n) return `${this.storageKey(t.impl.dev)}+${t.impl.offset}`;
    return `dev:${dev}`;
  }

  /** Resolves a device to a real file and byte offset (loop, or linear at sector 0 over one). */
  fileOf(dev: bigint): { fd: number; offset: bigint } | undefined {
    const loop = this.loopOf(dev);
    if (loop?.bound) return { fd: loop.bound.fd, offset: loop.bound.offset };
    const md = this.mdOf(dev);
    const t = md?.live?.targets[0] ?? md?.inactive?.targets[0];
    if (t?.impl.kind === 'linear' && t.start === 0n) {
      const inner = this.fileOf(t.impl.dev);
      return inner ? { fd: inner.fd, offset: inner.offset + t.impl.offset * SECTOR } : undefined;
    }
    return undefined;
  }

  /** Reads the first `len` bytes of a device (zeros where nothing was written). */
  readStorage(dev: bigint, len: number): Buffer {
    const f = this.fileOf(dev);
    const buf = Buffer.alloc(len);
    if (f) {
      readSync(f.fd, buf, 0, len, Number(f.offset));
      return buf;
    }
    const mem = this.#s.memStorage.get(this.storageKey(dev));
    if (mem) mem.copy(buf, 0, 0, Math.min(len, mem.length));
    return buf;
  }

  /** Writes thin pool metadata to the start of its metadata device. */
  persistMetadata(dev: bigint, m: ThinMetadata): void {
    const data = serializeMetadata(cloneMetadata(m));
    const f = this.fileOf(dev);
    if (f) {
      writeSync(f.fd, data, 0, data.length, Number(f.offset));
      return;
    }
    this.#s.memStorage.set(this.storageKey(dev), data);
  }

  /** Size in bytes of a block device (BLKGETSIZE64). */
  sizeBytes(dev: bigint): bigint {
    const loop = this.loopOf(dev);
    if (loop) return loop.bound?.sizeBytes ?? 0n;
    const md = this.mdOf(dev);
    return md ? tableSectors(md.live) * SECTOR : 0n;
  }

  /** The logical block size (a dm device stacks the largest of its devices'). */
  logicalBlockSize(dev: bigint, depth = 0): number {
    const loop = this.loopOf(dev);
    if (loop) return loop.bound?.blockSize ?? 512;
    const md = this.mdOf(dev);
    if (!md?.live || depth > 16) return 512;
    return Math.max(512, ...md.live.devices.map((d) => this.logicalBlockSize(d, depth + 1)));
  }

  /** blkdev_ioctl (block/ioctl.c), then the driver's ioctl (lo_ioctl) for a loop device. */
  ioctl(e: { dev: bigint; write: boolean }, request: number, arg: IoctlArg): number {
    const loop = this.loopOf(e.dev);
    switch (request) {
      case BLKGETSIZE64:
        if (!Buffer.isBuffer(arg) || arg.length < 8) throw kerr('EFAULT');
        arg.writeBigUInt64LE(this.sizeBytes(e.dev), 0);
        return 0;
      case BLKSSZGET:
        if (!Buffer.isBuffer(arg) || arg.length < 4) throw kerr('EFAULT');
        arg.writeInt32LE(this.logicalBlockSize(e.dev), 0);
        return 0;
      case BLKFLSBUF:
        return 0;
      case BLKDISCARD:
        return this.discard(e, arg);
    }
    if (loop) return this.#s.loop.ioctl(loop, e, request, arg);
    throw kerr('ENOTTY');
  }

  /** blk_ioctl_discard: aligned, inside the device, on a writable fd; thin devices unmap. */
  discard(e: { dev: bigint; write: boolean }, arg: IoctlArg): number {
    if (!Buffer.isBuffer(arg) || arg.length < BLK_RANGE_SIZE) throw kerr('EFAULT');
    if (!e.write) throw kerr('EBADF', 'BLKDISCARD needs a writable fd');
    const start = arg.readBigUInt64LE(0);
    const len = arg.readBigUInt64LE(8);
    const lbs = BigInt(this.logicalBlockSize(e.dev));
    if (start % lbs !== 0n || len % lbs !== 0n) throw kerr('EINVAL', 'unaligned discard');
    if (start + len > this.sizeBytes(e.dev)) throw kerr('EINVAL', 'discard beyond the end');
    const md = this.mdOf(e.dev);
    const t = md?.live?.targets[0]?.impl;
    if (md && t?.kind === 'thin') {
      const pmd = this.#s.dmByMinor.get(devMinor(t.poolDev));
      const pe = pmd ? this.#s.pools.get(pmd.minor) : undefined;
      if (pe) {
        if (pe.model.features.ignoreDiscard) throw kerr('EOPNOTSUPP');
        const blockBytes = BigInt(pe.model.meta.dataBlockSize) * SECTOR;
        const first = (start + blockBytes - 1n) / blockBytes;
        const end = (start + len) / blockBytes;
        if (end > first) pe.model.discard(t.id, Number(first), Number(end - first));
      }
    }
    return 0;
  }
}
