// SPDX-License-Identifier: MIT
// Pure response decoders: a returned ioctl buffer (header at 0, payload at data_start) → typed
// results. The payload walkers themselves live in src/ioctl (dm-ioctl.ts); this file gives their
// output dm-layer shapes (DevNum, TargetLine, flags as booleans).
import {
  DM_ACTIVE_PRESENT_FLAG,
  DM_DATA_OUT_FLAG,
  DM_DEFERRED_REMOVE,
  DM_INACTIVE_PRESENT_FLAG,
  DM_INTERNAL_SUSPEND_FLAG,
  DM_READONLY_FLAG,
  DM_SUSPEND_FLAG,
  decodeDmString,
  decodeTargetDeps,
  visitNameList,
  devPartsFromU32,
  walkTargetSpecs,
  walkTargetVersions,
  type RawDmIoctl,
} from '../ioctl/index.js';
import { decodeDevNum, type DevNum } from './devnum.js';
import type { TargetLine } from './table.js';

/** A dm interface or target version: `[major, minor, patch]`. */
export type DmVersion = readonly [number, number, number];

/** State of one device, decoded from the header the kernel fills in (`__dev_status`). */
export interface DeviceInfo {
  readonly name: string;
  /** The uuid, or undefined when the device has none. */
  readonly uuid: string | undefined;
  readonly dev: DevNum;
  /**
   * DM_SUSPEND_FLAG: suspended by DM_DEV_SUSPEND. A freshly created device is *not* suspended
   * (it just has no table; observed on Linux 6.1), and a device is no longer suspended after resume.
   */
  readonly suspended: boolean;
  /** DM_READONLY_FLAG: the live table (or, for `inactive` queries, the inactive one) is read-only. */
  readonly readOnly: boolean;
  /** DM_ACTIVE_PRESENT_FLAG: a live table is present. */
  readonly activeTable: boolean;
  /** DM_INACTIVE_PRESENT_FLAG: a loaded, not yet resumed table is present. */
  readonly inactiveTable: boolean;
  /** DM_DEFERRED_REMOVE: removal is scheduled for the last close. */
  readonly deferredRemove: boolean;
  /** DM_INTERNAL_SUSPEND_FLAG: suspended by dm itself (e.g. thin devices while their pool suspends). */
  readonly internalSuspend: boolean;
  /** Openers of the device (a snapshot; stale by the time you read it). */
  readonly openCount: number;
  /**
   * The device's event counter (`dm_table_event`: target events such as thin-pool thresholds, and
   * renames). A plain load + resume does not bump it (observed on Linux 6.1), although it does
   * raise the global event that {@link DmControl.waitForEvent} sees.
   */
  readonly eventNr: number;
  /** Targets in the live table (or the inactive one, for `inactive` queries). */
  readonly targetCount: number;
}

/** Decodes the device state of a returned header. */
export function decodeDeviceInfo(h: RawDmIoctl): DeviceInfo {
  return {
    name: h.name,
    uuid: h.uuid === '' ? undefined : h.uuid,
    dev: decodeDevNum(h.dev),
    suspended: (h.flags & DM_SUSPEND_FLAG) !== 0,
    readOnly: (h.flags & DM_READONLY_FLAG) !== 0,
    activeTable: (h.flags & DM_ACTIVE_PRESENT_FLAG) !== 0,
    inactiveTable: (h.flags & DM_INACTIVE_PRESENT_FLAG) !== 0,
    deferredRemove: (h.flags & DM_DEFERRED_REMOVE) !== 0,
    internalSuspend: (h.flags & DM_INTERNAL_SUSPEND_FLAG) !== 0,
    openCount: h.open_count,
    eventNr: h.event_nr,
    targetCount: h.target_count,
  };
}

/** One device of a LIST_DEVICES answer. */
export interface DeviceListEntry {
  readonly name: string;
  readonly dev: DevNum;
  /** Event counter; only reported by kernels with dm ioctl ≥ 4.38. */
  readonly eventNr: number | undefined;
  /**
   * The uuid; `null` when the kernel said the device has none, `undefined` when the kernel could
   * not say (dm ioctl < 4.45 does not report uuids in the list).
   */
  readonly uuid: string | null | undefined;
}

/** Decodes a LIST_DEVICES answer (`buf` is the whole ioctl buffer). */
export function decodeDeviceList(h: RawDmIoctl, buf: Buffer): DeviceListEntry[] {
  // One object per device straight from the buffer (visitNameList), not walkNameList's raw
  // entries mapped again: listDevices runs once per device on large sets.
  const out: DeviceListEntry[] = [];
  visitNameList(buf, h.data_start, h.data_size, h.version[1], (name, devLo, devHi, eventNr, flags, uuid) => {
    out.push({
      name,
      dev: devPartsFromU32(devLo, devHi),
      eventNr,
      // flags bit 0 = HAS_UUID, bit 1 = DOESNT_HAVE_UUID; neither = the kernel did not report.
      uuid: uuid !== undefined ? uuid : flags !== undefined && (flags & 2) !== 0 ? null : undefined,
    });
  });
  return out;
}

/** Decodes TABLE_STATUS / DEV_WAIT output into table lines (params = status or table text). */
export function decodeTargets(h: RawDmIoctl, buf: Buffer): TargetLine[] {
  return walkTargetSpecs(buf, h.data_start, h.data_size, h.target_count, 'data_start').map((t) => ({
    start: t.sector_start,
    length: t.length,
    type: t.target_type,
    params: t.params,
  }));
}

/** Decodes TABLE_DEPS output. */
export function decodeDeps(h: RawDmIoctl, buf: Buffer): DevNum[] {
  return decodeTargetDeps(buf, h.data_start, h.data_size).map(decodeDevNum);
}

/** A registered target type. */
export interface TargetVersion {
  readonly name: string;
  readonly version: DmVersion;
}

/** Decodes LIST_VERSIONS / GET_TARGET_VERSION output. */
export function decodeTargetVersions(h: RawDmIoctl, buf: Buffer): TargetVersion[] {
  return walkTargetVersions(buf, h.data_start, h.data_size).map((v) => ({ name: v.name, version: v.version }));
}

/** The reply of a TARGET_MSG: its text when the target wrote one (DM_DATA_OUT_FLAG), else null. */
export function decodeMessageReply(h: RawDmIoctl, buf: Buffer): string | null {
  if ((h.flags & DM_DATA_OUT_FLAG) === 0) return null;
  return decodeDmString(buf, h.data_start, h.data_size);
}
