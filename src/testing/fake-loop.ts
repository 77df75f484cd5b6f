// SPDX-License-Identifier: MIT
// The FakeKernel's loop driver: /dev/loop-control (LOOP_CTL_*) and the LOOP_* ioctls of a loop
// device, mirroring drivers/block/loop.c (loop_configure, loop_set_status_from_info,
// loop_get_status64, autoclear on last close).
import { fstatSync, openSync, realpathSync } from 'node:fs';
import {
  decodeLoopConfig,
  decodeLoopInfo64,
  encodeLoopInfo64,
  type IoctlArg,
  LO_CRYPT_NONE,
  LO_FLAGS_AUTOCLEAR,
  LO_FLAGS_DIRECT_IO,
  LO_FLAGS_READ_ONLY,
  LO_KEY_SIZE,
  LOOP_CLR_FD,
  LOOP_CONFIGURE,
  LOOP_CONFIGURE_SETTABLE_FLAGS,
  LOOP_CTL_ADD,
  LOOP_CTL_GET_FREE,
  LOOP_CTL_REMOVE,
  LOOP_GET_STATUS64,
  LOOP_INFO64_SIZE,
  LOOP_SET_BLOCK_SIZE,
  LOOP_SET_CAPACITY,
  LOOP_SET_DIRECT_IO,
  LOOP_SET_FD,
  LOOP_SET_STATUS64,
  LOOP_SET_STATUS_CLEARABLE_FLAGS,
  LOOP_SET_STATUS_SETTABLE_FLAGS,
  makedev,
  S_IFBLK,
  S_IFMT,
} from '../ioctl/index.js';
import { kerr } from './errors.js';
import {
  closeQuietly,
  type FakeState,
  LOOP_MAJOR,
  type LoopBinding,
  type LoopDev,
  MINORBITS_MAX,
  O_ACCMODE,
  realCall,
  SECTOR,
  type LoopPort,
} from './fake-state.js';

export function validBlockSize(bs: number): boolean {
  return Number.isInteger(bs) && bs >= 512 && bs <= 4096 && (bs & (bs - 1)) === 0;
}

/** loop-control and loop device ioctls (drivers/block/loop.c). */
export class LoopDriver implements LoopPort {
  readonly #s: FakeState;

  constructor(s: FakeState) {
    this.#s = s;
  }

  /** loop_control_ioctl: LOOP_CTL_ADD, LOOP_CTL_REMOVE, LOOP_CTL_GET_FREE. */
  control(request: number, arg: IoctlArg): number {
    const n = typeof arg === 'bigint' ? Number(BigInt.asIntN(64, arg)) : typeof arg === 'number' ? arg : NaN;
    switch (request) {
      case LOOP_CTL_GET_FREE: {
        for (const l of [...this.#s.loops.values()].sort((a, b) => a.index - b.index)) if (!l.bound) return l.index;
        let i = 0;
        while (this.#s.loops.has(i)) i++;
        this.add(i);
        return i;
      }
      case LOOP_CTL_ADD: {
        if (!Number.isInteger(n) || n < -1 || n >= MINORBITS_MAX) throw kerr('EINVAL');
        if (n >= 0 && this.#s.loops.has(n)) throw kerr('EEXIST', `loop${n} exists`);
        let i = n;
        if (i < 0) for (i = 0; this.#s.loops.has(i); i++);
        this.add(i);
        return i;
      }
      case LOOP_CTL_REMOVE: {
        if (!Number.isInteger(n) || n < 0) throw kerr('EINVAL');
        const l = this.#s.loops.get(n);
        if (!l) throw kerr('ENODEV', `no loop${n}`);
        if (l.bound || this.#s.block.openers(l.dev) > 0) throw kerr('EBUSY', `loop${n} is in use`);
        this.#s.loops.delete(n);
        this.#s.devfs.kernelRemove(`${this.#s.devDir}/loop${n}`, l.dev);
        this.#s.sysfs.loop(l, true);
        return 0;
      }
      default:
        throw kerr('ENOSYS');
    }
  }

  /** loop_add: a new unbound /dev/loopN. */
  add(index: number): void {
    const l: LoopDev = { index, dev: makedev(LOOP_MAJOR, index), bound: null };
    this.#s.loops.set(index, l);
    this.#s.devfs.kernelNode(`${this.#s.devDir}/loop${index}`, S_IFBLK | 0o660, l.dev);
    this.#s.sysfs.loop(l);
  }

  /** lo_ioctl: the LOOP_* requests on a loop device. */
  ioctl(l: LoopDev, e: { dev: bigint; write: boolean }, request: number, arg: IoctlArg): number {
    switch (request) {
      case LOOP_CONFIGURE: {
        if (!Buffer.isBuffer(arg)) throw kerr('EFAULT');
        const cfg = decodeLoopConfig(arg);
        this.bind(l, e.write, cfg.fd, cfg.block_size, cfg.info, true);
        return 0;
      }
      case LOOP_SET_FD: {
        const fd = Number(arg);
        this.bind(l, e.write, fd, 0, undefined, false);
        return 0;
      }
      case LOOP_CLR_FD:
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        l.bound.flags |= LO_FLAGS_AUTOCLEAR;
        this.#s.sysfs.loop(l);
        return 0;
      case LOOP_GET_STATUS64: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        if (!Buffer.isBuffer(arg) || arg.length < LOOP_INFO64_SIZE) throw kerr('EFAULT');
        const b = l.bound;
        encodeLoopInfo64(
          {
            lo_device: b.fileDev,
            lo_inode: b.fileIno,
            lo_rdevice: 0n,
            lo_offset: b.offset,
            lo_sizelimit: b.sizeLimit,
            lo_number: l.index,
            lo_flags: b.flags,
            lo_file_name: b.fileName,
          },
          arg,
        );
        return 0;
      }
      case LOOP_SET_STATUS64: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        if (!Buffer.isBuffer(arg) || arg.length < LOOP_INFO64_SIZE) throw kerr('EFAULT');
        const info = decodeLoopInfo64(arg);
        this.statusFromInfo(info);
        const b = l.bound;
        b.offset = info.lo_offset;
        b.sizeLimit = info.lo_sizelimit;
        b.fileName = info.lo_file_name;
        const set = info.lo_flags & LOOP_SET_STATUS_SETTABLE_FLAGS;
        const clear = ~info.lo_flags & LOOP_SET_STATUS_CLEARABLE_FLAGS;
        b.flags = (b.flags | set) & ~clear;
        b.sizeBytes = this.size(b);
        this.#s.sysfs.loop(l);
        return 0;
      }
      case LOOP_SET_CAPACITY:
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        l.bound.sizeBytes = this.size(l.bound);
        this.#s.sysfs.loop(l);
        return 0;
      case LOOP_SET_DIRECT_IO: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        const on = Number(arg) !== 0;
        l.bound.flags = on ? l.bound.flags | LO_FLAGS_DIRECT_IO : l.bound.flags & ~LO_FLAGS_DIRECT_IO;
        this.#s.sysfs.loop(l);
        return 0;
      }
      case LOOP_SET_BLOCK_SIZE: {
        if (!l.bound) throw kerr('ENXIO', 'not bound');
        const bs = Number(arg);
        if (!validBlockSize(bs)) throw kerr('EINVAL', 'bad block size');
        l.bound.blockSize = bs;
        this.#s.sysfs.loop(l);
        return 0;
      }
      default:
        throw kerr('EINVAL', 'unknown loop request');
    }
  }

  /** The checks of loop_set_status_from_info. */
  statusFromInfo(info: { lo_encrypt_key_size: number; lo_encrypt_type: number; lo_offset: bigint; lo_sizelimit: bigint }): void {
    if (info.lo_encrypt_key_size > LO_KEY_SIZE) throw kerr('EINVAL');
    if (info.lo_encrypt_type !== LO_CRYPT_NONE) throw kerr('EINVAL');
    const LLONG_MAX = (1n << 63n) - 1n;
    if (info.lo_offset > LLONG_MAX || info.lo_sizelimit > LLONG_MAX) throw kerr('EOVERFLOW');
  }

  /** loop_configure (LOOP_CONFIGURE, LOOP_SET_FD): binds a backing file to the device. */
  bind(
    l: LoopDev,
    devWritable: boolean,
    backingFd: number,
    blockSize: number,
    info: ReturnType<typeof decodeLoopInfo64> | undefined,
    configure: boolean,
  ): void {
    const real = this.#s.realFds.get(backingFd);
    const fake = this.#s.fds.get(backingFd);
    if (!real && !fake) throw kerr('EBADF', 'bad backing fd');
    if (l.bound) throw kerr('EBUSY', `loop${l.index} is bound`);
    if (!real) throw kerr(fake?.kind === 'block' && fake.dev === l.dev ? 'EBADF' : 'EINVAL', 'backing must be a regular file here');
    const st = fstatSync(backingFd, { bigint: true });
    if ((Number(st.mode) & S_IFMT) !== 0o100000) throw kerr('EINVAL', 'backing file is neither a regular file nor a block device');
    if (info) {
      if ((info.lo_flags & ~LOOP_CONFIGURE_SETTABLE_FLAGS) !== 0) throw kerr('EINVAL', 'unsupported lo_flags');
      if (blockSize && !validBlockSize(blockSize)) throw kerr('EINVAL', 'bad block size');
      this.statusFromInfo(info);
    }
    const fileWritable = (real.flags & O_ACCMODE) !== 0;
    const readOnly = !fileWritable || !devWritable || ((info?.lo_flags ?? 0) & LO_FLAGS_READ_ONLY) !== 0;
    const fd = realCall(() => openSync(real.path, readOnly ? 'r' : 'r+'));
    let canonical = real.path;
    try {
      canonical = realpathSync(real.path);
    } catch {
      /* keep as given */
    }
    const flags = ((configure ? info?.lo_flags ?? 0 : 0) & ~LO_FLAGS_READ_ONLY) | (readOnly ? LO_FLAGS_READ_ONLY : 0);
    const b: LoopBinding = {
      path: canonical,
      fd,
      fileDev: st.dev,
      fileIno: st.ino,
      offset: info?.lo_offset ?? 0n,
      sizeLimit: info?.lo_sizelimit ?? 0n,
      flags,
      fileName: info?.lo_file_name ?? '',
      blockSize: blockSize || 512,
      sizeBytes: 0n,
    };
    b.sizeBytes = this.size(b);
    l.bound = b;
    this.#s.sysfs.loop(l);
  }

  /** (file size − offset) limited by sizelimit, rounded down to 512 bytes. */
  size(b: LoopBinding): bigint {
    const size = fstatSync(b.fd, { bigint: true }).size;
    let n = size > b.offset ? size - b.offset : 0n;
    if (b.sizeLimit > 0n && b.sizeLimit < n) n = b.sizeLimit;
    return (n / SECTOR) * SECTOR;
  }

  /** __loop_clr_fd: the device is free again. */
  unbind(l: LoopDev): void {
    if (!l.bound) return;
    closeQuietly(l.bound.fd);
    l.bound = null;
    this.#s.sysfs.loop(l);
  }
}
