// SPDX-License-Identifier: MIT
// The FakeKernel's /dev/mapper/control: ctl_ioctl, copy_params/validate_params and the DM_*
// commands with the replies, flags and errnos of drivers/md/dm-ioctl.c (hash cells, __dev_status,
// retrieve_status, table_load, dev_rename, target_message …). Targets themselves are built by
// fake-dm-targets.ts.
import {
  decodeDmIoctl,
  DM_ACTIVE_PRESENT_FLAG,
  DM_BUFFER_FULL_FLAG,
  DM_COMMANDS,
  DM_DATA_OUT_FLAG,
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
  DM_INACTIVE_PRESENT_FLAG,
  DM_INTERNAL_SUSPEND_FLAG,
  DmIoctlLayout,
  DM_IOCTL,
  DM_IOCTL_DATA_OFFSET,
  DM_IOCTL_SIZE,
  DM_LIST_DEVICES_CMD,
  DM_LIST_VERSIONS_CMD,
  DM_NAME_LEN,
  DM_NOFLUSH_FLAG,
  DM_PERSISTENT_DEV_FLAG,
  DM_QUERY_INACTIVE_TABLE_FLAG,
  DM_READONLY_FLAG,
  DM_REMOVE_ALL_CMD,
  DM_SECURE_DATA_FLAG,
  DM_STATUS_TABLE_FLAG,
  DM_SUSPEND_FLAG,
  DM_TABLE_CLEAR_CMD,
  DM_TABLE_DEPS_CMD,
  DM_TABLE_LOAD_CMD,
  DM_TABLE_STATUS_CMD,
  DM_TARGET_MSG_CMD,
  DM_TARGET_MSG_SIZE,
  DmTargetMsgLayout,
  DM_TARGET_SPEC_SIZE,
  DM_TARGET_VERSIONS_SIZE,
  DM_UEVENT_GENERATED_FLAG,
  DM_UUID_FLAG,
  DM_UUID_LEN,
  DM_VERSION_CMD,
  encodeDmIoctl,
  encodeNameList,
  encodeTargetDeps,
  encodeTargetSpecs,
  encodeTargetVersions,
  huge_decode_dev,
  huge_encode_dev,
  type IoctlArg,
  POLLIN,
  type RawDmIoctl,
  fieldOffset,
  readCString,
  S_IFBLK,
  walkTargetSpecs,
} from '../ioctl/index.js';
import { kerr } from './errors.js';
import { type DmDev, type FakeState, type FakeTable, type FakeTarget, MINORBITS_MAX, type DmIoctlPort } from './fake-state.js';
import { splitArgs, TARGET_TYPES } from './fake-dm-targets.js';

// Offsets in struct dm_ioctl and struct dm_target_msg, from the src/ioctl layouts.
const H_VERSION = fieldOffset(DmIoctlLayout, 'version');
const H_DATA_SIZE = fieldOffset(DmIoctlLayout, 'data_size');
const H_NAME = fieldOffset(DmIoctlLayout, 'name');
const H_UUID = fieldOffset(DmIoctlLayout, 'uuid');
const MSG_SECTOR = fieldOffset(DmTargetMsgLayout, 'sector');

export interface DmCall {
  h: RawDmIoctl;
  /** The kernel's copy of the request buffer (param_size bytes, at least 312). */
  k: Buffer;
  /** data_size as sent. */
  paramSize: number;
  fdState: { armed: number };
  /** Non-zero ioctl return, for a handler that needs one. */
  rc?: number;
}

/** check_name: no '/'; on newer kernels also not 'control', '.' or '..'. */
export function checkName(name: string, rejectReserved: boolean): void {
  if (name.includes('/')) throw kerr('EINVAL', `invalid device name ${name}`);
  if (rejectReserved && (name === 'control' || name === '.' || name === '..')) throw kerr('EINVAL', `reserved device name ${name}`);
}

/** ctl_ioctl and the DM_* commands (drivers/md/dm-ioctl.c). */
export class DmIoctl implements DmIoctlPort {
  readonly #s: FakeState;

  constructor(s: FakeState) {
    this.#s = s;
  }

  /** ctl_ioctl: check_version, lookup_ioctl, copy_params, validate_params, the command, copy back. */
  ctlIoctl(fdState: { armed: number }, request: number, arg: IoctlArg): number | Promise<number> {
    if (((request >>> 8) & 0xff) !== DM_IOCTL) throw kerr('ENOTTY', 'not a dm request');
    if (!Buffer.isBuffer(arg) || arg.length < DM_IOCTL_DATA_OFFSET) throw kerr('EFAULT');
    const cmd = request & 0xff;
    // check_version: the kernel's version is written back whatever happens next.
    const [kMaj, kMin, kPatch] = this.#s.dmVersion;
    const putVersion = (b: Buffer): void => {
      b.writeUInt32LE(kMaj, H_VERSION);
      b.writeUInt32LE(kMin, H_VERSION + 4);
      b.writeUInt32LE(kPatch, H_VERSION + 8);
    };
    const vMaj = arg.readUInt32LE(H_VERSION);
    const vMin = arg.readUInt32LE(H_VERSION + 4);
    putVersion(arg);
    if (vMaj !== kMaj || vMin > kMin) throw kerr('EINVAL', `dm version ${vMaj}.${vMin} vs kernel ${kMaj}.${kMin}`);
    if (cmd === DM_VERSION_CMD) return 0;
    const info = DM_COMMANDS[cmd];
    if (!info || info.cmd !== cmd || info.minVersion[1] > kMin) throw kerr('ENOTTY', `unknown dm command ${cmd}`);
    // copy_params
    const paramSize = arg.readUInt32LE(H_DATA_SIZE);
    if (paramSize < DM_IOCTL_DATA_OFFSET) throw kerr('EINVAL', `data_size ${paramSize} < 305`);
    if (paramSize > arg.length) throw kerr('EFAULT', 'data_size beyond the buffer');
    const k = Buffer.alloc(Math.max(paramSize, DM_IOCTL_SIZE));
    arg.copy(k, 0, 0, paramSize);
    k[H_NAME + DM_NAME_LEN - 1] = 0; // validate_params forces the strings' NULs
    k[H_UUID + DM_UUID_LEN - 1] = 0;
    const h = decodeDmIoctl(k);
    if (h.flags & DM_SECURE_DATA_FLAG) {
      arg.fill(0, 0, paramSize);
      putVersion(arg);
    }
    // validate_params
    h.flags &= ~(DM_BUFFER_FULL_FLAG | DM_UEVENT_GENERATED_FLAG | DM_SECURE_DATA_FLAG | DM_DATA_OUT_FLAG);
    if (cmd !== DM_REMOVE_ALL_CMD && cmd !== DM_LIST_DEVICES_CMD && cmd !== DM_LIST_VERSIONS_CMD) {
      if (cmd === DM_DEV_CREATE_CMD) {
        if (!h.name) throw kerr('EINVAL', 'name not supplied when creating device');
      } else if (h.name && h.uuid) throw kerr('EINVAL', 'only supply one of name or uuid');
    }
    const call: DmCall = { h, k, paramSize, fdState };
    h.data_size = DM_IOCTL_DATA_OFFSET;
    const finish = (): number => {
      encodeDmIoctl(h, k);
      putVersion(k);
      k.copy(arg, 0, 0, Math.min(h.data_size, arg.length));
      return call.rc ?? 0;
    };
    const r = this.dmCommand(cmd, call);
    if (r instanceof Promise) return r.then(finish);
    return finish();
  }

  /** The command table of lookup_ioctl. */
  dmCommand(cmd: number, c: DmCall): void | Promise<void> {
    switch (cmd) {
      case DM_REMOVE_ALL_CMD:
        return this.removeAll(c);
      case DM_LIST_DEVICES_CMD:
        return this.listDevices(c);
      case DM_DEV_CREATE_CMD:
        return this.devCreate(c);
      case DM_DEV_REMOVE_CMD:
        return this.devRemove(c);
      case DM_DEV_RENAME_CMD:
        return this.devRename(c);
      case DM_DEV_SUSPEND_CMD:
        return c.h.flags & DM_SUSPEND_FLAG ? this.doSuspend(c) : this.doResume(c);
      case DM_DEV_STATUS_CMD:
        return this.devStatus(this.find(c), c.h);
      case DM_DEV_WAIT_CMD:
        return this.devWait(c);
      case DM_TABLE_LOAD_CMD:
        return this.tableLoad(c);
      case DM_TABLE_CLEAR_CMD:
        return this.tableClear(c);
      case DM_TABLE_DEPS_CMD:
        return this.tableDeps(c);
      case DM_TABLE_STATUS_CMD:
        return this.tableStatus(c);
      case DM_LIST_VERSIONS_CMD:
        return this.listVersions(c, undefined);
      case DM_TARGET_MSG_CMD:
        return this.targetMessage(c);
      case DM_DEV_SET_GEOMETRY_CMD:
        return this.setGeometry(c);
      case DM_DEV_ARM_POLL_CMD:
        c.fdState.armed = this.#s.globalEvent;
        return;
      case DM_GET_TARGET_VERSION_CMD:
        return this.listVersions(c, c.h.name);
      default:
        throw kerr('ENOTTY');
    }
  }

  /** __find_device_hash_cell: uuid, else name, else dev; writes name/uuid back, INACTIVE_PRESENT. */
  find(c: DmCall): DmDev {
    const h = c.h;
    let md: DmDev | undefined;
    if (h.uuid) {
      if (!h.name && h.dev === 0n) md = [...this.#s.dm.values()].find((d) => d.uuid === h.uuid);
    } else if (h.name) {
      if (h.dev === 0n) md = this.#s.dm.get(h.name);
    } else if (h.dev !== 0n) md = this.#s.block.mdOf(h.dev);
    if (!md) throw kerr('ENXIO', 'no such device');
    h.name = md.name;
    h.uuid = md.uuid ?? '';
    if (md.inactive) h.flags |= DM_INACTIVE_PRESENT_FLAG;
    else h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    return md;
  }

  /** __dev_status. */
  devStatus(md: DmDev, h: RawDmIoctl): void {
    h.flags &= ~(DM_SUSPEND_FLAG | DM_READONLY_FLAG | DM_ACTIVE_PRESENT_FLAG | DM_INTERNAL_SUSPEND_FLAG);
    if (md.suspended) h.flags |= DM_SUSPEND_FLAG;
    if (md.deferredRemove) h.flags |= DM_DEFERRED_REMOVE;
    h.dev = md.dev;
    h.open_count = this.#s.block.openers(md.dev);
    h.event_nr = md.eventNr;
    h.target_count = 0;
    if (md.live) {
      if (!(h.flags & DM_QUERY_INACTIVE_TABLE_FLAG)) {
        if (md.readOnly) h.flags |= DM_READONLY_FLAG;
        h.target_count = md.live.targets.length;
      }
      h.flags |= DM_ACTIVE_PRESENT_FLAG;
    }
    if (h.flags & DM_QUERY_INACTIVE_TABLE_FLAG && md.inactive) {
      if (md.inactive.readOnly) h.flags |= DM_READONLY_FLAG;
      h.target_count = md.inactive.targets.length;
    }
  }

  /** dm_issue_global_event: wakes pollers of /dev/mapper/control. */
  globalEventBump(): void {
    this.#s.globalEvent++;
    const ws = [...this.#s.globalWaiters];
    this.#s.globalWaiters.clear();
    for (const w of ws) w();
  }

  /** dm_table_event → event_callback: the device's event counter, DEV_WAIT waiters, poll. */
  mdEvent(md: DmDev): void {
    md.eventNr = (md.eventNr + 1) >>> 0;
    const ws = [...md.waiters];
    md.waiters.clear();
    for (const w of ws) w();
    this.globalEventBump();
  }

  /** Bytes of the user buffer after the header (get_result_buffer). */
  resultSpace(c: DmCall): number {
    return Math.max(0, c.paramSize - DM_IOCTL_SIZE);
  }

  /** remove_all → dm_hash_remove_all: every unopened device goes, open ones may be deferred. */
  removeAll(c: DmCall): void {
    const deferred = (c.h.flags & DM_DEFERRED_REMOVE) !== 0;
    for (let progress = true; progress; ) {
      progress = false;
      for (const md of [...this.#s.dm.values()]) {
        if (!this.#s.dm.has(md.name)) continue;
        if (this.#s.block.openers(md.dev) > 0) {
          if (deferred) md.deferredRemove = true;
          continue;
        }
        this.removeDm(md);
        progress = true;
      }
    }
    this.#s.block.settle();
  }

  /** list_devices: dm_name_list entries, filtered by name/uuid prefix on dm ≥ 4.45. */
  listDevices(c: DmCall): void {
    const h = c.h;
    const minor = this.#s.dmVersion[1];
    const filter = minor >= 45;
    const withUuid = (h.flags & DM_UUID_FLAG) !== 0 && minor >= 45;
    const list = [...this.#s.dm.values()]
      .filter((d) => !filter || (d.name.startsWith(h.name) && (d.uuid ?? '').startsWith(h.uuid)))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    const entries = list.map((d) => ({ name: d.name, dev: d.dev, event_nr: d.eventNr, ...(d.uuid ? { uuid: d.uuid } : {}) }));
    const payload = entries.length === 0 ? Buffer.alloc(0) : encodeNameList(entries, minor, withUuid, DM_IOCTL_SIZE);
    const len = this.resultSpace(c);
    if (len < payload.length || len < 8) {
      h.flags |= DM_BUFFER_FULL_FLAG;
      return;
    }
    c.k.fill(0, DM_IOCTL_SIZE, DM_IOCTL_SIZE + 8);
    payload.copy(c.k, DM_IOCTL_SIZE);
    h.data_start = DM_IOCTL_SIZE;
    h.data_size = DM_IOCTL_SIZE + payload.length;
  }

  /** dev_create: dm_create (a minor, persistent or the first free) + dm_hash_insert. */
  devCreate(c: DmCall): void {
    const h = c.h;
    checkName(h.name, this.#s.rejectReserved);
    let minor: number;
    if (h.flags & DM_PERSISTENT_DEV_FLAG) {
      minor = huge_decode_dev(h.dev).minor;
      if (minor >= MINORBITS_MAX) throw kerr('EINVAL');
      // Observed on Linux 6.1: a taken minor fails with ENXIO (not EBUSY as the idr code suggests).
      if (this.#s.dmByMinor.has(minor)) throw kerr('ENXIO', `minor ${minor} in use`);
    } else {
      minor = 0;
      while (this.#s.dmByMinor.has(minor)) minor++;
    }
    if (this.#s.dm.has(h.name)) throw kerr('EBUSY', `name ${h.name} in use`);
    if (h.uuid && [...this.#s.dm.values()].some((d) => d.uuid === h.uuid)) throw kerr('EBUSY', `uuid ${h.uuid} in use`);
    const md: DmDev = {
      name: h.name,
      uuid: h.uuid || null,
      minor,
      dev: huge_encode_dev(this.#s.dmMajor, minor),
      live: null,
      inactive: null,
      suspended: false,
      eventNr: 0,
      deferredRemove: false,
      diskAdded: false,
      readOnly: false,
      waiters: new Set(),
    };
    this.#s.dm.set(md.name, md);
    this.#s.dmByMinor.set(minor, md);
    this.globalEventBump();
    h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    this.devStatus(md, h);
  }

  /** dev_remove: EBUSY while open, unless DM_DEFERRED_REMOVE marks it for last close. */
  devRemove(c: DmCall): void {
    const h = c.h;
    const md = this.find(c);
    if (this.#s.block.openers(md.dev) > 0) {
      if (h.flags & DM_DEFERRED_REMOVE) {
        md.deferredRemove = true;
        return;
      }
      throw kerr('EBUSY', `${md.name} is open`);
    }
    const added = md.diskAdded;
    this.removeDm(md);
    h.flags &= ~DM_DEFERRED_REMOVE;
    if (added) h.flags |= DM_UEVENT_GENERATED_FLAG;
    this.#s.block.settle();
  }

  /** __hash_remove + dm_destroy: tables destroyed, waiters woken, minor freed, node gone. */
  removeDm(md: DmDev): void {
    if (md.live) this.mdEvent(md);
    this.#s.dm.delete(md.name);
    this.#s.dmByMinor.delete(md.minor);
    const live = md.live;
    const inactive = md.inactive;
    md.live = null;
    md.inactive = null;
    if (live) this.#s.dmTargets.releaseTable(md, live);
    if (inactive) this.#s.dmTargets.releaseTable(md, inactive);
    for (const w of md.waiters) w();
    md.waiters.clear();
    if (md.diskAdded) this.#s.devfs.kernelRemove(`${this.#s.devDir}/dm-${md.minor}`, md.dev);
    this.#s.sysfs.dm(md, true);
    this.globalEventBump();
  }

  /** dev_rename → dm_hash_rename: a new name, or a uuid set once. */
  devRename(c: DmCall): void {
    const h = c.h;
    const changeUuid = (h.flags & DM_UUID_FLAG) !== 0;
    let next: string;
    try {
      next = readCString(c.k, DM_IOCTL_SIZE, c.paramSize, 'rename payload').value;
    } catch {
      throw kerr('EINVAL', 'invalid new name or uuid');
    }
    if (h.data_start < DM_IOCTL_DATA_OFFSET || !next || Buffer.byteLength(next) > (changeUuid ? DM_UUID_LEN - 1 : DM_NAME_LEN - 1))
      throw kerr('EINVAL', 'invalid new name or uuid');
    if (!changeUuid) checkName(next, this.#s.rejectReserved);
    const taken = changeUuid ? [...this.#s.dm.values()].some((d) => d.uuid === next) : this.#s.dm.has(next);
    if (taken) throw kerr('EBUSY', `${next} already exists`);
    const md = this.#s.dm.get(h.name);
    if (!md) throw kerr('ENXIO', `rename of non-existent device ${h.name}`);
    if (changeUuid && md.uuid) throw kerr('EINVAL', `uuid already set to ${md.uuid}`);
    if (changeUuid) md.uuid = next;
    else {
      this.#s.dm.delete(md.name);
      md.name = next;
      this.#s.dm.set(next, md);
    }
    if (md.live) this.mdEvent(md);
    else this.globalEventBump();
    if (md.diskAdded) h.flags |= DM_UEVENT_GENERATED_FLAG;
    this.#s.sysfs.dm(md);
    // dev_rename reports __dev_status only: name/uuid in the reply stay as sent.
    this.devStatus(md, h);
  }

  /** dm_suspend: a thin-pool commits its metadata on presuspend. */
  suspendMd(md: DmDev): void {
    if (md.suspended) return;
    md.suspended = true;
    for (const t of md.live?.targets ?? []) {
      if (t.impl.kind === 'thin-pool') {
        const e = this.#s.pools.get(md.minor);
        if (e) {
          e.model.commit();
          e.model.suspended = true;
        }
      }
    }
    this.#s.sysfs.dm(md);
  }

  /** do_suspend. */
  doSuspend(c: DmCall): void {
    const md = this.find(c);
    this.suspendMd(md);
    this.devStatus(md, c.h);
  }

  /** do_resume: swaps in the inactive table (dm_swap_table), then dm_resume. */
  doResume(c: DmCall): void {
    const h = c.h;
    const md = this.find(c);
    const next = md.inactive;
    md.inactive = null;
    h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    if (next) {
      this.suspendMd(md);
      const old = md.live;
      md.live = next;
      md.readOnly = next.readOnly;
      if (old) this.#s.dmTargets.releaseTable(md, old, false);
      this.globalEventBump();
    }
    if (md.suspended) {
      // preresume/resume of the targets: a thin-pool sizes its data device and raises an event.
      for (const t of md.live?.targets ?? []) {
        if (t.impl.kind !== 'thin-pool') continue;
        const e = this.#s.pools.get(md.minor);
        if (!e) continue;
        e.model.features = t.impl.features;
        e.model.lowWaterBlocks = t.impl.lowWater;
        e.model.resume(t.length, this.#s.dmTargets.metadataBlocksOf(e.metaDev));
      }
      md.suspended = false;
      if (md.diskAdded) h.flags |= DM_UEVENT_GENERATED_FLAG;
    }
    this.#s.sysfs.dm(md);
    this.#s.block.settle();
    this.devStatus(md, h);
  }

  /** dev_wait: blocks until the event counter moves past event_nr, then reports status. */
  devWait(c: DmCall): void | Promise<void> {
    const md = this.find(c);
    const reply = (): void => {
      this.devStatus(md, c.h);
      const t = c.h.flags & DM_QUERY_INACTIVE_TABLE_FLAG ? md.inactive : md.live;
      if (t) this.retrieveStatus(md, t, c);
    };
    if (md.eventNr !== c.h.event_nr) return reply();
    return new Promise<void>((resolve) => md.waiters.add(resolve)).then(reply);
  }

  /** table_status: STATUSTYPE_INFO, or STATUSTYPE_TABLE with DM_STATUS_TABLE_FLAG. */
  tableStatus(c: DmCall): void {
    const md = this.find(c);
    this.devStatus(md, c.h);
    const t = c.h.flags & DM_QUERY_INACTIVE_TABLE_FLAG ? md.inactive : md.live;
    if (t) this.retrieveStatus(md, t, c);
  }

  /** retrieve_status: specs + status/table strings, DM_BUFFER_FULL_FLAG when they don't fit. */
  retrieveStatus(md: DmDev, t: FakeTable, c: DmCall): void {
    const table = (c.h.flags & DM_STATUS_TABLE_FLAG) !== 0;
    const noflush = (c.h.flags & DM_NOFLUSH_FLAG) !== 0;
    const len = this.resultSpace(c);
    const lines = t.targets.map((x) => ({
      sector_start: x.start,
      length: x.length,
      target_type: x.type,
      params: table ? this.#s.dmTargets.tableText(x) : this.#s.dmTargets.statusText(md, x, noflush),
    }));
    let used = 0;
    let off = 0;
    const specs: typeof lines = [];
    for (const l of lines) {
      const strBytes = Buffer.byteLength(l.params) + 1;
      // The kernel gives up when the spec does not fit, or the string fills the rest exactly.
      const remaining = len - off - DM_TARGET_SPEC_SIZE;
      if (len - off <= DM_TARGET_SPEC_SIZE || strBytes >= remaining) {
        c.h.flags |= DM_BUFFER_FULL_FLAG;
        break;
      }
      specs.push(l);
      used = DM_IOCTL_SIZE + off + DM_TARGET_SPEC_SIZE + strBytes;
      off = Math.ceil((off + DM_TARGET_SPEC_SIZE + strBytes) / 8) * 8;
    }
    if (specs.length > 0) {
      const payload = encodeTargetSpecs(specs, 'data_start');
      payload.copy(c.k, DM_IOCTL_SIZE, 0, Math.min(payload.length, c.k.length - DM_IOCTL_SIZE));
    }
    c.h.data_start = DM_IOCTL_SIZE;
    if (used) c.h.data_size = used;
    c.h.target_count = t.targets.length;
  }

  /** table_clear: drops the inactive table. */
  tableClear(c: DmCall): void {
    const md = this.find(c);
    const old = md.inactive;
    md.inactive = null;
    c.h.flags &= ~DM_INACTIVE_PRESENT_FLAG;
    if (old) this.#s.dmTargets.releaseTable(md, old);
    this.devStatus(md, c.h);
  }

  /** table_deps: the dm_target_deps of the live (or inactive) table. */
  tableDeps(c: DmCall): void {
    const md = this.find(c);
    this.devStatus(md, c.h);
    const t = c.h.flags & DM_QUERY_INACTIVE_TABLE_FLAG ? md.inactive : md.live;
    if (!t) return;
    const payload = encodeTargetDeps(t.devices);
    if (this.resultSpace(c) < payload.length) {
      c.h.flags |= DM_BUFFER_FULL_FLAG;
      return;
    }
    payload.copy(c.k, DM_IOCTL_SIZE);
    c.h.data_start = DM_IOCTL_SIZE;
    c.h.data_size = DM_IOCTL_SIZE + payload.length;
  }

  /** list_versions / get_target_version: the dm_target_versions of the known targets. */
  listVersions(c: DmCall, name: string | undefined): void {
    let types = TARGET_TYPES;
    if (name !== undefined) {
      const t = TARGET_TYPES.find((x) => x.name === name);
      if (!t) throw kerr('EINVAL', `unknown target type ${name}`);
      types = [t];
    }
    const needed = types.reduce((n, t) => n + DM_TARGET_VERSIONS_SIZE + Buffer.byteLength(t.name) + 1 + 7, 0);
    if (this.resultSpace(c) < needed) {
      c.h.flags |= DM_BUFFER_FULL_FLAG;
      return;
    }
    encodeTargetVersions(types).copy(c.k, DM_IOCTL_SIZE);
    c.h.data_start = DM_IOCTL_SIZE;
    c.h.data_size = DM_IOCTL_SIZE + needed;
  }

  /** target_message: "@cancel_deferred_remove", or a message to the target at `sector`. */
  targetMessage(c: DmCall): void {
    const md = this.find(c);
    let sector: bigint;
    let message: string;
    try {
      sector = c.k.readBigUInt64LE(c.h.data_start + MSG_SECTOR);
      message = readCString(c.k, c.h.data_start + DM_TARGET_MSG_SIZE, c.paramSize, 'dm_target_msg').value;
    } catch {
      throw kerr('EINVAL', 'invalid target message parameters');
    }
    if (c.h.data_start < DM_IOCTL_DATA_OFFSET) throw kerr('EINVAL', 'invalid target message parameters');
    const argv = splitArgs(message);
    if (argv.length === 0) throw kerr('EINVAL', 'empty message');
    let r = 2;
    if (argv[0]!.startsWith('@')) {
      if (argv[0]!.toLowerCase() === '@cancel_deferred_remove') {
        if (argv.length !== 1) throw kerr('EINVAL');
        md.deferredRemove = false;
        r = 0;
      } else throw kerr('EINVAL', `unsupported dm core message ${argv[0]}`);
    } else {
      // Observed on Linux 6.1: without a live table the message fails EINVAL.
      if (!md.live) throw kerr('EINVAL', 'no live table to deliver the message to');
      const t = md.live.targets.find((x) => sector >= x.start && sector < x.start + x.length);
      if (!t) throw kerr('EINVAL', 'target message sector outside device');
      if (t.impl.kind !== 'thin-pool') throw kerr('EINVAL', 'target type does not support messages');
      const e = this.#s.pools.get(md.minor);
      if (!e) throw kerr('EINVAL');
      this.#s.dmTargets.poolMessage(e, argv);
      r = 0;
    }
    this.devStatus(md, c.h);
    c.rc = r;
  }

  /** dev_set_geometry: parses and range-checks, stores nothing. */
  setGeometry(c: DmCall): void {
    this.find(c);
    let s: string;
    try {
      s = readCString(c.k, c.h.data_start, c.paramSize, 'geometry').value;
    } catch {
      throw kerr('EINVAL', 'invalid geometry');
    }
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(s);
    if (!m) throw kerr('EINVAL', 'unable to interpret geometry');
    const [cyl, heads, sectors, start] = [BigInt(m[1]!), BigInt(m[2]!), BigInt(m[3]!), BigInt(m[4]!)];
    if (cyl > 65535n || heads > 255n || sectors > 255n) throw kerr('EINVAL', 'geometry exceeds range limits');
    if (start > cyl * heads * sectors) throw kerr('EINVAL', 'start sector beyond the geometry');
    c.h.data_size = 0;
  }

  /** table_load: builds the table (dm_table_add_target per spec) as the inactive one. */
  tableLoad(c: DmCall): void {
    const h = c.h;
    const md = this.find(c);
    if (h.target_count === 0) throw kerr('EINVAL', 'no targets specified');
    let specs;
    try {
      specs = walkTargetSpecs(c.k, h.data_start, c.paramSize, h.target_count, 'spec');
    } catch {
      throw kerr('EINVAL', 'malformed target spec list');
    }
    if (h.data_start < DM_IOCTL_SIZE) throw kerr('EINVAL', 'spec overlaps the header');
    const table: FakeTable = { targets: [], readOnly: (h.flags & DM_READONLY_FLAG) !== 0, devices: [] };
    const built: FakeTarget[] = [];
    try {
      for (const s of specs) {
        if (s.length === 0n) throw kerr('EINVAL', 'zero-length target');
        const prev = built[built.length - 1];
        const expected = prev ? prev.start + prev.length : 0n;
        if (!TARGET_TYPES.some((t) => t.name === s.target_type)) throw kerr('EINVAL', `unknown target type ${s.target_type}`);
        if (s.sector_start !== expected) throw kerr('EINVAL', 'gap in table');
        const impl = this.#s.dmTargets.construct(md, s.target_type, s.params, s.length, table);
        built.push({ start: s.sector_start, length: s.length, type: s.target_type, impl });
        table.targets = built;
      }
      if (built.some((t) => t.impl.kind === 'thin-pool') && built.length > 1) throw kerr('EINVAL', 'thin-pool must be the only target');
      const immutable = (t: FakeTable | null): boolean => !!t?.targets.some((x) => x.impl.kind === 'thin-pool');
      if ((immutable(md.live) || immutable(md.inactive)) && !immutable(table)) throw kerr('EINVAL', "can't replace immutable target type thin-pool");
    } catch (e) {
      this.#s.dmTargets.releaseTargets(built);
      this.#s.dmTargets.dropPoolIfUnused(md);
      throw e;
    }
    const old = md.inactive;
    md.inactive = table;
    if (old) this.#s.dmTargets.releaseTable(md, old);
    if (!md.diskAdded) {
      md.diskAdded = true;
      this.#s.devfs.kernelNode(`${this.#s.devDir}/dm-${md.minor}`, S_IFBLK | 0o660, md.dev);
    }
    this.#s.sysfs.dm(md);
    h.flags |= DM_INACTIVE_PRESENT_FLAG;
    this.devStatus(md, h);
  }

  /** dm_poll: POLLIN once an event happened since the fd was armed (DM_DEV_ARM_POLL or open). */
  poll(e: { armed: number }, events: number, timeoutMs: number): number | Promise<number> {
    const ready = (): number => (this.#s.globalEvent !== e.armed ? events & POLLIN : 0);
    if (ready() || timeoutMs === 0) return ready();
    return new Promise<number>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = (): void => {
        if (timer) clearTimeout(timer);
        this.#s.globalWaiters.delete(wake);
        resolve(ready());
      };
      this.#s.globalWaiters.add(wake);
      if (timeoutMs > 0) timer = setTimeout(wake, timeoutMs);
    });
  }
}
