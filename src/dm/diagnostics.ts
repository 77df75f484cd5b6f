// SPDX-License-Identifier: MIT
// The node:diagnostics_channel channel of the dm choke point (DmControl's one ioctl path). It
// publishes for the FakeKernel too, so a service's tracing can be tested without a kernel.
// Subscribing is the only cost: with no subscriber a call checks `hasSubscribers` once.
import { channel } from 'node:diagnostics_channel';

/** Every DM_* ioctl a DmControl makes, once it answered or failed. */
export const DM_CHANNEL = 'devmapper:dm';

/** What {@link DM_CHANNEL} publishes. */
export interface DmChannelMessage {
  /** The command's C name, e.g. `DM_DEV_CREATE`, `DM_TABLE_LOAD`, `DM_TARGET_MSG`. */
  readonly command: string;
  /** The device name or uuid sent in the header ('' when the command names none). */
  readonly name: string;
  readonly uuid: string;
  /** The device number sent (`major:minor`), or null when none was. */
  readonly dev: string | null;
  /** Wall time including buffer growth retries, in milliseconds. */
  readonly durationMs: number;
  /** 0 on success, else the kernel's errno (0 for a failure that was not the kernel's). */
  readonly errno: number;
  /** null on success, else the thrown error's stable `code` (e.g. `EDEVICENOTFOUND`, `EBUSY`). */
  readonly code: string | null;
}

/** @internal The channel object (publishers only). */
export const dmChannel = channel(DM_CHANNEL);
