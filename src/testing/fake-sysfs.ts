// SPDX-License-Identifier: MIT
// The FakeKernel's sysfs tree (/sys/block/loopN, /sys/block/dm-N, and their /sys/dev/block/MAJ:MIN
// links), written as real files under an injectable root for LoopControl's sysfsRoot: attributes
// of block/genhd.c, drivers/block/loop.c (loop/backing_file, offset, …) and drivers/md/dm-sysfs.c
// (dm/name, uuid, suspended).
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO, LO_FLAGS_PARTSCAN, LO_FLAGS_READ_ONLY } from '../ioctl/index.js';
import { type DmDev, type FakeState, LOOP_MAJOR, type LoopDev, SECTOR, tableSectors, type SysfsPort } from './fake-state.js';

/** Writes one sysfs attribute file (creating its directory). */
export function writeAttr(dir: string, name: string, value: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `${value}\n`);
}

/**
 * /sys/dev/block/MAJ:MIN → the device's directory (drivers/base/core.c device_create_sys_dev_entry;
 * the kernel's link points into /sys/devices/virtual/block/NAME, the fake's into /sys/block/NAME:
 * both end in the kernel name). Removed with the device.
 */
function devLink(root: string, major: number, minor: number, name: string, removed: boolean): void {
  const dir = join(root, 'dev', 'block');
  const link = join(dir, `${major}:${minor}`);
  rmSync(link, { force: true });
  if (removed) return;
  mkdirSync(dir, { recursive: true });
  symlinkSync(join('..', '..', 'block', name), link);
}

/** The fake /sys/block tree. */
export class Sysfs implements SysfsPort {
  readonly #s: FakeState;

  constructor(s: FakeState) {
    this.#s = s;
  }

  /** /sys/block/loopN and its loop/ attributes (loop_attr_* in drivers/block/loop.c). */
  loop(l: LoopDev, removed = false): void {
    if (!this.#s.sysfsRoot) return;
    const dir = join(this.#s.sysfsRoot, 'block', `loop${l.index}`);
    devLink(this.#s.sysfsRoot, LOOP_MAJOR, l.index, `loop${l.index}`, removed);
    if (removed) {
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    const b = l.bound;
    writeAttr(dir, 'dev', `${LOOP_MAJOR}:${l.index}`);
    writeAttr(dir, 'size', String(b ? b.sizeBytes / SECTOR : 0n));
    writeAttr(dir, 'ro', b && b.flags & LO_FLAGS_READ_ONLY ? '1' : '0');
    writeAttr(join(dir, 'queue'), 'logical_block_size', String(b?.blockSize ?? 512));
    const loopDir = join(dir, 'loop');
    if (!b) {
      rmSync(loopDir, { recursive: true, force: true });
      return;
    }
    writeAttr(loopDir, 'backing_file', b.path);
    writeAttr(loopDir, 'offset', String(b.offset));
    writeAttr(loopDir, 'sizelimit', String(b.sizeLimit));
    writeAttr(loopDir, 'autoclear', b.flags & LO_FLAGS_AUTOCLEAR ? '1' : '0');
    writeAttr(loopDir, 'partscan', b.flags & LO_FLAGS_PARTSCAN ? '1' : '0');
    writeAttr(loopDir, 'dio', b.flags & LO_FLAGS_DIRECT_IO ? '1' : '0');
  }

  /** /sys/block/dm-N and its dm/ attributes (drivers/md/dm-sysfs.c); gone until the disk is added. */
  dm(md: DmDev, removed = false): void {
    if (!this.#s.sysfsRoot) return;
    const dir = join(this.#s.sysfsRoot, 'block', `dm-${md.minor}`);
    devLink(this.#s.sysfsRoot, this.#s.dmMajor, md.minor, `dm-${md.minor}`, removed || !md.diskAdded);
    if (removed || !md.diskAdded) {
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    writeAttr(dir, 'dev', `${this.#s.dmMajor}:${md.minor}`);
    writeAttr(dir, 'size', String(tableSectors(md.live)));
    writeAttr(dir, 'ro', md.readOnly ? '1' : '0');
    writeAttr(join(dir, 'dm'), 'name', md.name);
    writeAttr(join(dir, 'dm'), 'uuid', md.uuid ?? '');
    writeAttr(join(dir, 'dm'), 'suspended', md.suspended ? '1' : '0');
  }
}
