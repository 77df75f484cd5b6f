// SPDX-License-Identifier: MIT
// node:diagnostics_channel channels of the kernel seam. Subscribing is the only cost: with no
// subscriber a call checks `hasSubscribers` once and takes no timestamp.
import { channel } from 'node:diagnostics_channel';

/** Every ioctl(2) the real Syscalls make (`realSyscalls()`), dm, loop and block alike. */
export const IOCTL_CHANNEL = 'devmapper:ioctl';

/** What {@link IOCTL_CHANNEL} publishes, once per ioctl, after it returned. */
export interface IoctlChannelMessage {
  /** The request's C name, e.g. `DM_DEV_CREATE`, `LOOP_CONFIGURE`, `BLKGETSIZE64`. */
  readonly request: string;
  readonly fd: number;
  /** True when it ran on libuv's pool (koffi `.async`), false when it blocked the calling thread. */
  readonly async: boolean;
  /** Wall time of the call, in milliseconds (performance.now()). */
  readonly durationMs: number;
  /** 0 on success, else the errno the kernel returned. */
  readonly errno: number;
}

/** @internal The channel object (publishers only). */
export const ioctlChannel = channel(IOCTL_CHANNEL);
