// SPDX-License-Identifier: MIT
// The FakeKernel's mount(2)/umount2(2) (fs/namespace.c: do_mount, do_umount) and the filesystem
// marks mkfs leaves on a device (what a superblock probe would find).
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import {
  LO_FLAGS_READ_ONLY,
  minor as devMinor,
  MNT_DETACH,
  MNT_EXPIRE,
  MNT_FORCE,
  MS_BIND,
  MS_RDONLY,
  MS_REMOUNT,
  S_IFBLK,
  S_IFDIR,
  S_IFMT,
} from '../ioctl/index.js';
import { kerr } from './errors.js';
import { type FakeState, realStat, type MountsPort } from './fake-state.js';

/** mount/umount2 (fs/namespace.c) and filesystem marks. */
export class Mounts implements MountsPort {
  readonly #s: FakeState;

  constructor(s: FakeState) {
    this.#s = s;
  }

  /** A dm name or a /dev path to the block device number. */
  devOfSpec(spec: string): bigint {
    if (!spec.includes('/')) {
      const md = this.#s.dm.get(spec);
      if (!md) throw new Error(`no dm device ${spec}`);
      return md.dev;
    }
    const st = this.#s.devfs.stat(spec);
    if ((st.mode & S_IFMT) !== S_IFBLK) throw new Error(`${spec} is not a block device`);
    return st.rdev;
  }

  /** Filesystem marks follow the data: thin id in its pool's metadata storage, loop backing file, else dev. */
  markKey(dev: bigint): string {
    const md = this.#s.block.mdOf(dev);
    const t = md?.live?.targets[0]?.impl;
    if (md && t?.kind === 'thin') {
      const pmd = this.#s.dmByMinor.get(devMinor(t.poolDev));
      const e = pmd ? this.#s.pools.get(pmd.minor) : undefined;
      if (e) {
        // Snapshot inheritance: walk to the oldest ancestor sharing blocks is not tracked; the
        // mark is copied on create_snap instead (see #poolMessage).
        return `thin:${this.#s.block.storageKey(e.metaDev)}:${t.id}`;
      }
    }
    const loop = this.#s.block.loopOf(dev);
    if (loop?.bound) return `file:${loop.bound.fileDev}:${loop.bound.fileIno}`;
    return `dev:${dev}`;
  }

  /** do_mount: MS_REMOUNT, MS_BIND, or a new mount of a block device holding `fstype`. */
  mount(source: string, target: string, fstype: string, flags: bigint, data: string | null): void {
    const tgt = posix.normalize(target);
    if (flags & MS_REMOUNT) {
      const m = this.#s.mounts.filter((x) => x.target === tgt).pop();
      if (!m) throw kerr('EINVAL', `${target} is not mounted`);
      Object.assign(m, { flags, data });
      return;
    }
    this.checkMountTarget(tgt);
    if (flags & MS_BIND) {
      this.#s.mounts.push({ source, target: tgt, fstype, flags, data, dev: 0n, busy: false });
      return;
    }
    if (!this.#s.devfs.owns(source)) throw kerr('ENOTBLK', source);
    const st = this.#s.devfs.stat(source);
    if ((st.mode & S_IFMT) !== S_IFBLK) throw kerr('ENOTBLK', source);
    const dev = st.rdev;
    const md = this.#s.block.mdOf(dev);
    const loop = this.#s.block.loopOf(dev);
    if (!(md?.diskAdded && md.live) && !loop?.bound) throw kerr('ENXIO', `no usable device at ${source}`);
    if (md?.suspended) throw kerr('EINTR', 'device is suspended: mount would block');
    const fs = this.#s.fsMarks.get(this.markKey(dev));
    if (!fs || fs !== fstype) throw kerr('EINVAL', fs ? `${source} holds ${fs}, not ${fstype}` : `no ${fstype} filesystem on ${source}`);
    if (!(flags & MS_RDONLY) && (md?.readOnly || (loop?.bound && loop.bound.flags & LO_FLAGS_READ_ONLY))) throw kerr('EACCES', 'read-only device');
    if (this.#s.mounts.some((m) => m.dev === dev && m.target === tgt)) throw kerr('EBUSY', `${source} already mounted on ${target}`);
    this.#s.mounts.push({ source, target: tgt, fstype, flags, data, dev, busy: false });
  }

  /** The mount point must be a directory. */
  checkMountTarget(tgt: string): void {
    if (this.#s.devfs.owns(tgt)) {
      if ((this.#s.devfs.stat(tgt).mode & S_IFMT) !== S_IFDIR) throw kerr('ENOTDIR', tgt);
      return;
    }
    const st = realStat(() => statSync(tgt, { bigint: true }));
    if ((st.mode & S_IFMT) !== S_IFDIR) throw kerr('ENOTDIR', tgt);
  }

  /** ksys_umount/do_umount: EBUSY while busy unless MNT_DETACH; last close effects follow. */
  umount(target: string, flags: number): void {
    if (flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | 8)) throw kerr('EINVAL', 'bad umount flags');
    if (flags & MNT_EXPIRE && flags & (MNT_FORCE | MNT_DETACH)) throw kerr('EINVAL');
    const tgt = posix.normalize(target);
    const idx = this.#s.mounts.map((m) => m.target).lastIndexOf(tgt);
    if (idx < 0) throw kerr('EINVAL', `${target} is not a mount point`);
    const m = this.#s.mounts[idx]!;
    if (m.busy && !(flags & MNT_DETACH)) throw kerr('EBUSY', `${target} is busy`);
    this.#s.mounts.splice(idx, 1);
    this.#s.block.settle();
  }
}
