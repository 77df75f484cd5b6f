// SPDX-License-Identifier: MIT
// DmControl's read-only commands that decode a data area: table/status lines (with crypt key
// redaction and reply wiping), deps, the device list (with prefix filters) and target versions.
// Each takes the control's choke point, so they add no ioctl path of their own.
// Kernel side: drivers/md/dm-ioctl.c (`retrieve_status`, `retrieve_deps`, `list_devices`,
// `list_versions`).
import type { DmIoctl } from './control-channel.js';
import type { DevNum } from './devnum.js';
import type { ListDevicesOptions, TableStatusOptions } from './options.js';
import { listDevicesRequest, listVersionsRequest, tableDepsRequest, tableStatusRequest, waitRequest, type DeviceRef } from './request.js';
import {
  decodeDeps,
  decodeDeviceInfo,
  decodeDeviceList,
  decodeTargetVersions,
  decodeTargets,
  type DeviceInfo,
  type DeviceListEntry,
  type TargetVersion,
} from './response.js';
import type { TargetLine } from './table.js';
import { CRYPT_TARGET, redactCryptParams } from './targets/crypt.js';

/**
 * Table-mode replies may hold crypt keys (`crypt_status` prints them as hex): zero the reply
 * buffer once decoded and redact the keys unless asked to reveal them.
 */
export function tableText(targets: TargetLine[], buf: Buffer, options: TableStatusOptions): TargetLine[] {
  if (options.mode !== 'table') return targets;
  buf.fill(0);
  if (options.revealKeys === true) return targets;
  return targets.map((t) => (t.type === CRYPT_TARGET ? { ...t, params: redactCryptParams(t.params) } : t));
}

/** DM_TABLE_STATUS, decoded; see DmControl.tableStatus. */
export async function readTableStatus(ioctl: DmIoctl, ref: DeviceRef, options: TableStatusOptions): Promise<TargetLine[]> {
  const { header, buf } = await ioctl(tableStatusRequest(ref, options));
  return tableText(decodeTargets(header, buf), buf, options);
}

/** DM_TABLE_STATUS with its reply header decoded too; see DmControl.tableStatusWithInfo. */
export async function readTableStatusWithInfo(ioctl: DmIoctl, ref: DeviceRef, options: TableStatusOptions): Promise<{ info: DeviceInfo; targets: TargetLine[] }> {
  const { header, buf } = await ioctl(tableStatusRequest(ref, options));
  return { info: decodeDeviceInfo(header), targets: tableText(decodeTargets(header, buf), buf, options) };
}

/** DM_DEV_WAIT, decoded; see DmControl.deviceWait. */
export async function readWait(ioctl: DmIoctl, ref: DeviceRef, eventNr: number, options: TableStatusOptions): Promise<{ info: DeviceInfo; targets: TargetLine[] }> {
  const { header, buf } = await ioctl(waitRequest(ref, eventNr, options));
  return { info: decodeDeviceInfo(header), targets: tableText(decodeTargets(header, buf), buf, options) };
}

/** DM_TABLE_DEPS, decoded; see DmControl.tableDeps. */
export async function readDeps(ioctl: DmIoctl, ref: DeviceRef, inactive: boolean): Promise<DevNum[]> {
  const { header, buf } = await ioctl(tableDepsRequest(ref, inactive));
  return decodeDeps(header, buf);
}

/** DM_LIST_VERSIONS, decoded; see DmControl.listVersions. */
export async function readVersions(ioctl: DmIoctl): Promise<TargetVersion[]> {
  const { header, buf } = await ioctl(listVersionsRequest());
  return decodeTargetVersions(header, buf);
}

/**
 * DM_LIST_DEVICES with the prefix filters re-applied here (see DmControl.listDevices);
 * `uuidOf` looks a uuid up on kernels whose list carries none.
 */
export async function readDeviceList(ioctl: DmIoctl, options: ListDevicesOptions, uuidOf: (dev: DevNum) => Promise<string | null>): Promise<DeviceListEntry[]> {
  const { header, buf } = await ioctl(listDevicesRequest(options));
  let list = decodeDeviceList(header, buf);
  const { namePrefix, uuidPrefix } = options;
  if (namePrefix) list = list.filter((d) => d.name.startsWith(namePrefix));
  if (uuidPrefix) {
    const out: DeviceListEntry[] = [];
    for (const d of list) {
      let uuid = d.uuid;
      if (uuid === undefined) uuid = await uuidOf(d.dev);
      if (uuid !== null && uuid.startsWith(uuidPrefix)) out.push({ ...d, uuid });
    }
    list = out;
  }
  return list;
}
