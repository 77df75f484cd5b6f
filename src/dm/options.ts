// SPDX-License-Identifier: MIT
// Per-command option types, allowed-flag masks, buffer sizing and retry policies of DmControl.
// The masks are applied in ONE place: DmControl's private #ioctl choke point.
import {
  DM_DEFERRED_REMOVE,
  DM_DEV_ARM_POLL_CMD,
  DM_DEV_CREATE_CMD,
  DM_DEV_REMOVE_CMD,
  DM_DEV_RENAME_CMD,
  DM_DEV_SET_GEOMETRY_CMD,
  DM_DEV_STATUS_CMD,
  DM_DEV_SUSPEND_CMD,
  DM_DEV_WAIT_CMD,
  DM_GET_TARGET_VERSION_CMD,
  DM_IMA_MEASUREMENT_FLAG,
  DM_LIST_DEVICES_CMD,
  DM_LIST_VERSIONS_CMD,
  DM_NOFLUSH_FLAG,
  DM_PERSISTENT_DEV_FLAG,
  DM_QUERY_INACTIVE_TABLE_FLAG,
  DM_READONLY_FLAG,
  DM_REMOVE_ALL_CMD,
  DM_SECURE_DATA_FLAG,
  DM_SKIP_LOCKFS_FLAG,
  DM_STATUS_TABLE_FLAG,
  DM_SUSPEND_FLAG,
  DM_TABLE_CLEAR_CMD,
  DM_TABLE_DEPS_CMD,
  DM_TABLE_LOAD_CMD,
  DM_TABLE_STATUS_CMD,
  DM_TARGET_MSG_CMD,
  DM_UUID_FLAG,
  DM_VERSION_CMD,
} from '../ioctl/index.js';

/**
 * Input flags each command may carry, indexed by `*_CMD`. Anything else a request sets is masked
 * off by the choke point before the ioctl (devicemapper-rs `to_ioctl_hdr(…, allowable_flags)`).
 *
 * Derived from what drivers/md/dm-ioctl.c reads in each handler:
 * - VERSION, TABLE_CLEAR, LIST_VERSIONS, SET_GEOMETRY, ARM_POLL, GET_TARGET_VERSION: none;
 * - REMOVE_ALL, DEV_REMOVE: DM_DEFERRED_REMOVE (`dm_hash_remove_all`, `dm_lock_for_deletion`);
 * - LIST_DEVICES: DM_UUID_FLAG (include uuids);
 * - DEV_CREATE: DM_PERSISTENT_DEV_FLAG (`dev_create` takes the minor from `dev`);
 * - DEV_RENAME: DM_UUID_FLAG (set the uuid instead of renaming);
 * - DEV_SUSPEND: DM_SUSPEND_FLAG (absent = resume), DM_SKIP_LOCKFS_FLAG, DM_NOFLUSH_FLAG
 *   (`do_suspend` / `do_resume`);
 * - DEV_STATUS, TABLE_DEPS: DM_QUERY_INACTIVE_TABLE_FLAG (`__dev_status`, `table_deps`);
 * - DEV_WAIT, TABLE_STATUS: DM_STATUS_TABLE_FLAG, DM_QUERY_INACTIVE_TABLE_FLAG, DM_NOFLUSH_FLAG,
 *   plus DM_IMA_MEASUREMENT_FLAG for TABLE_STATUS (`retrieve_status`);
 * - TABLE_LOAD: DM_READONLY_FLAG, DM_SECURE_DATA_FLAG (`table_load`, `copy_params`);
 * - TARGET_MSG: DM_SECURE_DATA_FLAG (a message may carry a key).
 *
 * The historic DM_EXISTS_FLAG and DM_SKIP_BDGET_FLAG that libdm still sets are never sent: the
 * kernel ignores both.
 */
export const ALLOWED_FLAGS: Readonly<Record<number, number>> = Object.freeze({
  [DM_VERSION_CMD]: 0,
  [DM_REMOVE_ALL_CMD]: DM_DEFERRED_REMOVE,
  [DM_LIST_DEVICES_CMD]: DM_UUID_FLAG,
  [DM_DEV_CREATE_CMD]: DM_PERSISTENT_DEV_FLAG,
  [DM_DEV_REMOVE_CMD]: DM_DEFERRED_REMOVE,
  [DM_DEV_RENAME_CMD]: DM_UUID_FLAG,
  [DM_DEV_SUSPEND_CMD]: DM_SUSPEND_FLAG | DM_SKIP_LOCKFS_FLAG | DM_NOFLUSH_FLAG,
  [DM_DEV_STATUS_CMD]: DM_QUERY_INACTIVE_TABLE_FLAG,
  [DM_DEV_WAIT_CMD]: DM_STATUS_TABLE_FLAG | DM_QUERY_INACTIVE_TABLE_FLAG | DM_NOFLUSH_FLAG,
  [DM_TABLE_LOAD_CMD]: DM_READONLY_FLAG | DM_SECURE_DATA_FLAG,
  [DM_TABLE_CLEAR_CMD]: 0,
  [DM_TABLE_DEPS_CMD]: DM_QUERY_INACTIVE_TABLE_FLAG,
  [DM_TABLE_STATUS_CMD]:
    DM_STATUS_TABLE_FLAG | DM_QUERY_INACTIVE_TABLE_FLAG | DM_NOFLUSH_FLAG | DM_IMA_MEASUREMENT_FLAG,
  [DM_LIST_VERSIONS_CMD]: 0,
  [DM_TARGET_MSG_CMD]: DM_SECURE_DATA_FLAG,
  [DM_DEV_SET_GEOMETRY_CMD]: 0,
  [DM_DEV_ARM_POLL_CMD]: 0,
  [DM_GET_TARGET_VERSION_CMD]: 0,
});

/** Flags of `flags` that command `cmd` may carry; unknown commands allow nothing. */
export function maskFlags(cmd: number, flags: number): number {
  return (flags & (ALLOWED_FLAGS[cmd] ?? 0)) >>> 0;
}

/**
 * Commands whose output can overflow the buffer: the kernel then sets DM_BUFFER_FULL_FLAG and
 * returns success with partial or no data (`list_devices`, `__list_versions`, `table_deps`,
 * `retrieve_status`, `target_message`). Only these are retried with a bigger buffer; BUFFER_FULL
 * on anything else is reported as a KernelOutputError.
 */
export const GROWABLE_COMMANDS: ReadonlySet<number> = new Set([
  DM_LIST_DEVICES_CMD,
  DM_LIST_VERSIONS_CMD,
  DM_GET_TARGET_VERSION_CMD,
  DM_TABLE_DEPS_CMD,
  DM_TABLE_STATUS_CMD,
  DM_DEV_WAIT_CMD,
  DM_TARGET_MSG_CMD,
]);

/**
 * Buffer sizing for the growable commands: start at 16 KiB (libdm's initial size for LIST, DEPS,
 * STATUS, TABLE and TARGET_MSG) and double on DM_BUFFER_FULL_FLAG, at most 16 times
 * (16 KiB << 16 = 1 GiB), which is where libdm gives up too. Other commands get exactly
 * 312 + payload bytes: they return no payload.
 */
export const BUFFER_POLICY = Object.freeze({ initialBytes: 16 * 1024, maxDoublings: 16 });

/** A bounded retry schedule. */
export interface RetryPolicy {
  /** Total number of attempts (the first one included). */
  readonly attempts: number;
  /** Pause between attempts, in milliseconds. */
  readonly delayMs: number;
}

/**
 * DM_DEV_REMOVE on EBUSY: libdm's `retry_remove` schedule (libdm-iface.c: up to 25 tries, 200 ms
 * apart). Worth it because udev rules and blkid briefly open every new or changed device.
 */
export const REMOVE_RETRY: RetryPolicy = Object.freeze({ attempts: 25, delayMs: 200 });

/** Options of {@link DmControl.deviceCreate}. */
export interface DeviceCreateOptions {
  /** uuid to give the device (validated as {@link DmUuid}; immutable once set). */
  readonly uuid?: string;
  /** Ask for this device number (DM_PERSISTENT_DEV_FLAG). Only the minor is honoured by the kernel. */
  readonly dev?: { readonly major: number; readonly minor: number };
}

/** Options of {@link DmControl.deviceRemove}. */
export interface DeviceRemoveOptions {
  /**
   * If the device is open, schedule its removal for the last close instead of failing
   * (DM_DEFERRED_REMOVE). The call then resolves with `{ deferred: true }`.
   */
  readonly deferred?: boolean;
  /** EBUSY retry schedule; `{attempts: 1, delayMs: 0}` disables retrying. Default REMOVE_RETRY. */
  readonly retry?: RetryPolicy;
  /**
   * Cancels the retry loop between attempts (an ioctl already in flight completes; the call then
   * rejects with the signal's reason). Once the remove succeeded, an abort only cuts short the
   * wait for udev: /dev/mapper/NAME is then removed directly, as after udevTimeoutMs.
   */
  readonly signal?: AbortSignal;
}

/** Options of {@link DmControl.deviceSuspend}. */
export interface SuspendOptions {
  /** DM_NOFLUSH_FLAG: don't wait for queued I/O; keep it queued across the suspend. */
  readonly noflush?: boolean;
  /** DM_SKIP_LOCKFS_FLAG: don't freeze a filesystem mounted on the device. */
  readonly skipLockfs?: boolean;
}

/** Options of {@link DmControl.tableLoad}. */
export interface TableLoadOptions {
  /** DM_READONLY_FLAG: the table (and, once resumed, the device) is read-only. */
  readonly readOnly?: boolean;
  /**
   * DM_SECURE_DATA_FLAG: the kernel wipes its copies of the table (use for tables holding keys).
   * It also zeroes our request buffer; we never read it back except the header. Default: on when
   * the table has a `crypt` target, off otherwise.
   */
  readonly secure?: boolean;
}

/** Options of {@link DmControl.tableStatus}. */
export interface TableStatusOptions {
  /** `'status'` (default): per-target status text. `'table'`: the table parameters (DM_STATUS_TABLE_FLAG). */
  readonly mode?: 'status' | 'table';
  /** Report on the inactive (loaded, not yet resumed) table (DM_QUERY_INACTIVE_TABLE_FLAG). */
  readonly inactive?: boolean;
  /** DM_NOFLUSH_FLAG: e.g. stop thin-pool committing metadata before reporting. */
  readonly noflush?: boolean;
  /**
   * Mode 'table' only: return crypt keys as the kernel reports them (hex). Default false: the
   * inline key of every `crypt` line is replaced by `redacted:<bytes>` (targets/crypt.ts
   * redactCryptParams), so a table read back can be logged; keyring references are kept.
   */
  readonly revealKeys?: boolean;
}

/** Options of {@link DmControl.listDevices}. */
export interface ListDevicesOptions {
  /** Only devices whose name starts with this. */
  readonly namePrefix?: string;
  /** Only devices whose uuid starts with this. */
  readonly uuidPrefix?: string;
}

/** Options of {@link DmControl.waitForEvent}. */
export interface WaitForEventOptions {
  /** Give up after this long and resolve `false`. Default: wait forever. */
  readonly timeoutMs?: number;
  /** Rejects with the signal's reason when aborted. */
  readonly signal?: AbortSignal;
}

/** Legacy CHS geometry for {@link DmControl.setGeometry} (limits from `dev_set_geometry`). */
export interface Geometry {
  /** 0..65535. */
  readonly cylinders: number;
  /** 0..255. */
  readonly heads: number;
  /** 0..255. */
  readonly sectors: number;
  /** Start sector (unsigned long). */
  readonly start: bigint;
}
