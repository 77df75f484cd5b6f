// SPDX-License-Identifier: MIT
// LoopAttachment: a bound loop device as LoopControl.attach returns it, holding the device's fd.
import { constants as fsc } from 'node:fs';
import { errnoCode } from '../errors.js';
import { LOOP_CLR_FD, type Syscalls } from '../ioctl/index.js';
import { openLoopDevice } from './device-node.js';
import { LoopNotBoundError } from './errors.js';

/** A loop device: an index, its node and its device number. Accepted wherever a device is named. */
export interface LoopDeviceRef {
  /** Node path, e.g. `/dev/loop3`. */
  readonly path: string;
  /** N of loopN. */
  readonly index: number;
  readonly major: number;
  readonly minor: number;
}


/** LOOP_GET_STATUS64, decoded. */
export interface LoopStatus {
  /** lo_number. */
  readonly index: number;
  /** lo_file_name: the name given at attach (canonical path truncated to 63 bytes by us and util-linux). */
  readonly fileName: string;
  /** lo_device: st_dev of the backing file, as a dev_t. */
  readonly backingDevice: bigint;
  /** lo_device split into major:minor. */
  readonly backingDeviceMajor: number;
  readonly backingDeviceMinor: number;
  /** lo_inode. */
  readonly backingInode: bigint;
  /** lo_rdevice (0 for a regular backing file). */
  readonly backingRdevice: bigint;
  readonly offset: bigint;
  /** 0 = to the end of the file. */
  readonly sizeLimit: bigint;
  /** Raw lo_flags. */
  readonly flags: number;
  readonly readOnly: boolean;
  readonly autoclear: boolean;
  readonly partscan: boolean;
  readonly directIo: boolean;
}


/**
 * A bound loop device, as returned by {@link LoopControl.attach}. It holds the loop device's fd
 * open (unless attached with `hold: false`) — **call {@link close} once whatever uses the device
 * (a dm table load, a mount) holds it itself**. With autoclear (the default) the kernel detaches
 * the device as soon as its last opener closes: closing the handle before a consumer holds the
 * device detaches it at once; after that it detaches when the consumer lets go.
 */
export class LoopAttachment implements LoopDeviceRef {
  readonly path: string;
  readonly index: number;
  readonly major: number;
  readonly minor: number;
  /** Canonical path of the backing file. */
  readonly backingFile: string;
  /** How the device was bound. */
  readonly method: 'configure' | 'legacy';
  /** LOOP_GET_STATUS64 right after binding (shows whether direct I/O really got enabled). */
  readonly status: LoopStatus;
  /** How many free devices attach tried (1 unless it lost GET_FREE → bind races). */
  readonly attempts: number;
  #fd: number | undefined;
  readonly #sys: Syscalls;
  readonly #clearAtOnce: boolean;

  /** @internal */
  constructor(
    sys: Syscalls,
    init: {
      ref: LoopDeviceRef;
      fd: number | undefined;
      backingFile: string;
      method: 'configure' | 'legacy';
      status: LoopStatus;
      attempts: number;
      /** LOOP_CLR_FD returns at once on this kernel (LoopControl's loopClrFdReturnsAtOnce). */
      clearAtOnce?: boolean;
    },
  ) {
    this.#sys = sys;
    this.path = init.ref.path;
    this.index = init.ref.index;
    this.major = init.ref.major;
    this.minor = init.ref.minor;
    this.backingFile = init.backingFile;
    this.method = init.method;
    this.status = init.status;
    this.attempts = init.attempts;
    this.#fd = init.fd;
    this.#clearAtOnce = init.clearAtOnce ?? false;
  }

  /** The open loop device fd, or undefined once closed (or with `hold: false`). */
  get fd(): number | undefined {
    return this.#fd;
  }

  /** `major:minor`, as dm tables want it. */
  get devNumber(): string {
    return `${this.major}:${this.minor}`;
  }

  /** Closes the held fd. Idempotent. With autoclear this is what lets the device detach later. */
  close(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    this.#sys.close(fd);
  }

  /**
   * `using dev = await loops.attach(file, { autoclear: true })`: {@link close} at the end of the
   * scope. With autoclear, that last close is what detaches the device once nobody (a dm table,
   * another opener) uses it any more.
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * `await using dev = await loops.attach(file)`: {@link detach} at the end of the scope, through
   * the fd this handle holds, which proves the binding is still the one it made (while an fd is
   * open the kernel only defers a clear, so nobody can rebind the device under it). A handle that
   * no longer holds its fd (closed earlier, or attached with `hold: false`) cannot prove that: it
   * detaches nothing, as the project's rule for what is not provably ours wants. Already detached
   * (by someone else's LOOP_CLR_FD taking effect) is not an error.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#fd === undefined) return;
    try {
      await this.detach();
    } catch (err) {
      if (!(err instanceof LoopNotBoundError)) throw err;
    }
  }

  /**
   * LOOP_CLR_FD through the held fd (or a fresh fd on {@link path} once the handle is closed),
   * then closes it. If someone else still has the device open, the kernel only switches autoclear
   * on and the device detaches when they close it.
   * @throws {LoopNotBoundError} the device was already detached.
   */
  async detach(): Promise<void> {
    const held = this.#fd;
    const fd = held ?? openLoopDevice(this.#sys, this.path, fsc.O_RDONLY);
    try {
      // On the calling thread where the kernel returns at once (loopClrFdReturnsAtOnce, control.ts).
      if (this.#clearAtOnce) this.#sys.ioctl(fd, LOOP_CLR_FD, 0, 'LOOP_CLR_FD');
      else await this.#sys.ioctlAsync(fd, LOOP_CLR_FD, 0, 'LOOP_CLR_FD');
    } catch (err) {
      if (errnoCode(err) === 'ENXIO') throw new LoopNotBoundError(this.path, { cause: err });
      throw err;
    } finally {
      if (held === undefined) this.#sys.close(fd);
      else this.close();
    }
  }
}
