// SPDX-License-Identifier: MIT
// Why not FakeKernel: LoopControl's retry and errno paths need any call to fail with any errno at
// a chosen attempt (lost attach races, EBUSY, ENXIO mid-open), scripted per call.
// A tiny scripted stand-in for the kernel, just enough for LoopControl's control flow: it records
// every open/ioctl/close and fails the calls a test scripts to fail.
import { constants as osConstants } from 'node:os';
import { IoctlError, type IoctlArg, type StatResult, type SyscallName, type Syscalls } from '../../../src/ioctl/index.js';
import { decodeLoopConfig, decodeLoopInfo64, encodeLoopInfo64 } from '../../../src/ioctl/index.js';

/** The same error shape the real seam throws: an IoctlError with the errno of `code`. */
export class FakeErrno extends IoctlError {
  constructor(code: string, syscall: SyscallName, request?: string) {
    const errno = (osConstants.errno as Record<string, number>)[code];
    if (errno === undefined) throw new Error(`unknown errno ${code}`);
    super(request === undefined ? { syscall, errno } : { syscall, errno, request });
  }
}

export interface FakeFile {
  mode: number;
  dev?: bigint;
  ino?: bigint;
  /** open for write fails EACCES when false. */
  writable?: boolean;
}

export interface IoctlCall {
  path: string;
  name: string;
  arg: IoctlArg;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFBLK = 0o060000;
export const regular = (extra: Partial<FakeFile> = {}): FakeFile => ({ mode: S_IFREG | 0o644, dev: 0xfe01n, ino: 1234n, ...extra });
export const directory = (): FakeFile => ({ mode: S_IFDIR | 0o755 });

export class FakeSyscalls implements Syscalls {
  files = new Map<string, FakeFile>();
  /** Per request name, errno codes to throw on successive calls (undefined = succeed). */
  script = new Map<string, (string | undefined)[]>();
  /** Indexes LOOP_CTL_GET_FREE returns in turn; then keeps returning the last one. */
  freeIndexes: number[] = [0];
  ioctls: IoctlCall[] = [];
  /** Names of the ioctls that came through ioctlAsync (a worker hop), in order (also in `ioctls`). */
  asyncIoctls: string[] = [];
  opens: { path: string; flags: number }[] = [];
  closes: number[] = [];
  /** Loop state per index: the loop_info64 the device was configured with. */
  bound = new Map<number, { flags: number; offset: bigint; sizeLimit: bigint; name: string; blockSize: number }>();
  #fds = new Map<number, string>();
  #next = 10;

  openFds(): string[] {
    return [...this.#fds.values()];
  }

  #fail(name: string): void {
    const q = this.script.get(name);
    const code = q?.shift();
    if (!code) return;
    if (name.startsWith('open:')) throw new FakeErrno(code, 'open');
    throw new FakeErrno(code, 'ioctl', name);
  }

  open(path: string, flags: number): number {
    this.opens.push({ path, flags });
    this.#fail(`open:${path}`);
    const f = this.files.get(path);
    const write = (flags & 3) !== 0;
    if (f) {
      if ((f.mode & 0o170000) === S_IFDIR && write) throw new FakeErrno('EISDIR', 'open');
      if (write && f.writable === false) throw new FakeErrno('EACCES', 'open');
    } else if (path !== '/dev/loop-control' && !/^\/dev\/loop\d+$/.test(path)) {
      throw new FakeErrno('ENOENT', 'open');
    }
    const fd = this.#next++;
    this.#fds.set(fd, path);
    return fd;
  }

  close(fd: number): void {
    if (!this.#fds.has(fd)) throw new FakeErrno('EBADF', 'close');
    this.closes.push(fd);
    this.#fds.delete(fd);
  }

  #index(fd: number): number {
    const m = /loop(\d+)$/.exec(this.#fds.get(fd) ?? '');
    if (!m) throw new FakeErrno('ENOTTY', 'ioctl');
    return Number(m[1]);
  }

  ioctl(fd: number, _request: number, arg: IoctlArg, name: string): number {
    const path = this.#fds.get(fd);
    if (path === undefined) throw new FakeErrno('EBADF', 'ioctl', name);
    this.ioctls.push({ path, name, arg: Buffer.isBuffer(arg) ? Buffer.from(arg) : arg });
    this.#fail(name);
    switch (name) {
      case 'LOOP_CTL_GET_FREE':
        return this.freeIndexes.length > 1 ? (this.freeIndexes.shift() as number) : (this.freeIndexes[0] ?? 0);
      case 'LOOP_CTL_ADD':
      case 'LOOP_CTL_REMOVE':
        return Number(arg);
      case 'LOOP_CONFIGURE': {
        const i = this.#index(fd);
        if (this.bound.has(i)) throw new FakeErrno('EBUSY', 'ioctl', name);
        const c = decodeLoopConfig(arg as Buffer);
        this.bound.set(i, {
          flags: c.info.lo_flags,
          offset: c.info.lo_offset,
          sizeLimit: c.info.lo_sizelimit,
          name: c.info.lo_file_name,
          blockSize: c.block_size,
        });
        return 0;
      }
      case 'LOOP_SET_FD': {
        const i = this.#index(fd);
        if (this.bound.has(i)) throw new FakeErrno('EBUSY', 'ioctl', name);
        this.bound.set(i, { flags: 0, offset: 0n, sizeLimit: 0n, name: '', blockSize: 512 });
        return 0;
      }
      case 'LOOP_SET_STATUS64': {
        const b = this.bound.get(this.#index(fd));
        if (!b) throw new FakeErrno('ENXIO', 'ioctl', name);
        const info = decodeLoopInfo64(arg as Buffer);
        Object.assign(b, { flags: (b.flags & ~0x0c) | (info.lo_flags & 0x0c), offset: info.lo_offset, sizeLimit: info.lo_sizelimit, name: info.lo_file_name });
        return 0;
      }
      case 'LOOP_SET_DIRECT_IO': {
        const b = this.bound.get(this.#index(fd));
        if (!b) throw new FakeErrno('ENXIO', 'ioctl', name);
        b.flags = arg ? b.flags | 16 : b.flags & ~16;
        return 0;
      }
      case 'LOOP_SET_BLOCK_SIZE':
      case 'LOOP_SET_CAPACITY': {
        if (!this.bound.has(this.#index(fd))) throw new FakeErrno('ENXIO', 'ioctl', name);
        return 0;
      }
      case 'LOOP_GET_STATUS64': {
        const i = this.#index(fd);
        const b = this.bound.get(i);
        if (!b) throw new FakeErrno('ENXIO', 'ioctl', name);
        encodeLoopInfo64(
          {
            lo_device: 0xfe01n,
            lo_inode: 1234n,
            lo_rdevice: 0n,
            lo_offset: b.offset,
            lo_sizelimit: b.sizeLimit,
            lo_number: i,
            lo_flags: b.flags,
            lo_file_name: b.name,
          },
          arg as Buffer,
        );
        return 0;
      }
      case 'LOOP_CLR_FD': {
        const i = this.#index(fd);
        if (!this.bound.delete(i)) throw new FakeErrno('ENXIO', 'ioctl', name);
        return 0;
      }
      case 'BLKGETSIZE64':
        (arg as Buffer).writeBigUInt64LE(1n << 20n);
        return 0;
      default:
        throw new FakeErrno('ENOTTY', 'ioctl', name);
    }
  }

  async ioctlAsync(fd: number, request: number, arg: IoctlArg, name: string): Promise<number> {
    this.asyncIoctls.push(name);
    return this.ioctl(fd, request, arg, name);
  }

  fstat(fd: number): StatResult {
    const path = this.#fds.get(fd);
    if (path === undefined) throw new FakeErrno('EBADF', 'fstat');
    const m = /loop(\d+)$/.exec(path);
    if (m) return { dev: 5n, ino: 1n, rdev: BigInt(0x700 + Number(m[1])), mode: S_IFBLK | 0o660, size: 0n, blocks: 0n };
    return this.stat(path);
  }

  stat(path: string): StatResult {
    const f = this.files.get(path);
    if (!f) throw new FakeErrno('ENOENT', 'stat');
    return { dev: f.dev ?? 0xfe01n, ino: f.ino ?? 1234n, rdev: 0n, mode: f.mode, size: 1n << 20n, blocks: 0n };
  }

  lstat(path: string): StatResult {
    return this.stat(path);
  }

  mknod(): void {
    throw new FakeErrno('ENOSYS', 'mknod');
  }
  unlink(): void {
    throw new FakeErrno('ENOSYS', 'unlink');
  }
  rename(): void {
    throw new FakeErrno('ENOSYS', 'rename');
  }
  mkdir(): void {
    throw new FakeErrno('ENOSYS', 'mkdir');
  }
  fsync(): void {}
  flock(): void {
    throw new FakeErrno('ENOSYS', 'flock');
  }
  async mountAsync(): Promise<void> {
    throw new FakeErrno('ENOSYS', 'mount');
  }
  async umount2Async(): Promise<void> {
    throw new FakeErrno('ENOSYS', 'umount2');
  }
  async pollAsync(): Promise<number> {
    return 0;
  }
}
