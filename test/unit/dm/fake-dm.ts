// SPDX-License-Identifier: MIT
// Why not FakeKernel: these tests script what no real kernel does on demand (a reply that claims
// DM_BUFFER_FULL forever, a version stamp of our choosing, EBUSY n times then success), at the byte level.
// A deliberately small in-test dm "kernel" behind the Syscalls seam: enough to exercise DmControl's
// choke point (versions, flags, buffer growth, errno mapping, retries, nodes). Not the FakeKernel.
import {
  DM_ACTIVE_PRESENT_FLAG,
  DM_BUFFER_FULL_FLAG,
  DM_DATA_OUT_FLAG,
  DM_INACTIVE_PRESENT_FLAG,
  DM_IOCTL_SIZE,
  DM_SUSPEND_FLAG,
  DM_UEVENT_GENERATED_FLAG,
  DM_UUID_FLAG,
  DM_STATUS_TABLE_FLAG,
  IoctlError,
  decodeDmIoctl,
  decodeTargetMsg,
  dmCommand,
  encodeDmIoctl,
  encodeNameList,
  encodeTargetSpecs,
  walkTargetSpecs,
  type DmTarget,
  type IoctlArg,
  type RawDmIoctl,
  type Syscalls,
} from '../../../src/ioctl/index.js';
import { FakeFs, strictSyscalls } from './fake-fs.js';

export interface SeenRequest {
  readonly name: string;
  readonly header: RawDmIoctl;
  readonly size: number;
  readonly async: boolean;
}

interface Dev {
  name: string;
  uuid: string;
  minor: number;
  live?: DmTarget[];
  inactive?: DmTarget[];
  suspended: boolean;
  openCount: number;
  eventNr: number;
}

export class FakeDm {
  readonly fs = new FakeFs();
  readonly seen: SeenRequest[] = [];
  readonly devices = new Map<string, Dev>();
  kernelMinor = 47;
  nextMinor = 0;
  /** Answer LIST_DEVICES with BUFFER_FULL this many times before fitting. */
  listBufferFull = 0;
  /** Fail DM_DEV_REMOVE with EBUSY this many times. */
  removeBusy = 0;
  /** Errno to fail the next request of this name with. */
  failNext: Record<string, number> = {};
  uevents = true;
  fdOpen = false;
  pollResults: number[] = [];

  constructor() {
    this.fs.entries.set('/dev', { kind: 'dir', mode: 0o755 });
    this.fs.entries.set('/dev/mapper', { kind: 'dir', mode: 0o755 });
    this.fs.entries.set('/dev/mapper/control', { kind: 'chr', mode: 0o600, rdev: 0xaecn });
  }

  syscalls(): Syscalls {
    return strictSyscalls({
      ...this.fs.fileCalls(),
      open: (path) => {
        if (path !== '/dev/mapper/control') throw new IoctlError({ syscall: 'open', errno: 2, path });
        this.fdOpen = true;
        return 42;
      },
      close: () => {
        this.fdOpen = false;
      },
      ioctl: (fd, req, arg, name) => this.ioctl(fd, req, arg, name, false),
      ioctlAsync: async (fd, req, arg, name) => this.ioctl(fd, req, arg, name, true),
      pollAsync: async () => this.pollResults.shift() ?? 0,
    });
  }

  private find(h: RawDmIoctl): Dev | undefined {
    if (h.uuid) return [...this.devices.values()].find((d) => d.uuid === h.uuid);
    if (h.name) return this.devices.get(h.name);
    if (h.dev) return [...this.devices.values()].find((d) => BigInt(0xfd00 | d.minor) === h.dev);
    return undefined;
  }

  private status(d: Dev, out: RawDmIoctl): void {
    out.name = d.name;
    out.uuid = d.uuid;
    out.dev = BigInt(0xfd00 | d.minor);
    out.open_count = d.openCount;
    out.event_nr = d.eventNr;
    out.target_count = d.live?.length ?? 0;
    out.flags &= ~(DM_SUSPEND_FLAG | DM_ACTIVE_PRESENT_FLAG | DM_INACTIVE_PRESENT_FLAG);
    if (d.suspended) out.flags |= DM_SUSPEND_FLAG;
    if (d.live) out.flags |= DM_ACTIVE_PRESENT_FLAG;
    if (d.inactive) out.flags |= DM_INACTIVE_PRESENT_FLAG;
  }

  ioctl(fd: number, request: number, arg: IoctlArg, requestName: string, async: boolean): number {
    if (fd !== 42 || !Buffer.isBuffer(arg)) throw new Error('bad fd/arg');
    const buf = arg;
    const cmd = dmCommand(request);
    if (!cmd || cmd.name !== requestName) throw new Error(`bad request ${requestName}`);
    const h = decodeDmIoctl(buf);
    this.seen.push({ name: cmd.name, header: h, size: buf.length, async });
    const fail = (errno: number): never => {
      buf.writeUInt32LE(4, 0);
      buf.writeUInt32LE(this.kernelMinor, 4);
      throw new IoctlError({ syscall: 'ioctl', errno, request: cmd.name });
    };
    if (h.data_size !== buf.length || h.data_start !== DM_IOCTL_SIZE) fail(14);
    const injected = this.failNext[cmd.name];
    if (injected !== undefined) {
      delete this.failNext[cmd.name];
      fail(injected);
    }
    const out: RawDmIoctl = { ...h, version: [4, this.kernelMinor, 0], data_size: 305 };
    let payload: Buffer | undefined;
    const need = (): Dev => this.find(h) ?? fail(6);
    switch (cmd.name) {
      case 'DM_VERSION':
        break;
      case 'DM_LIST_DEVICES': {
        const entries = [...this.devices.values()]
          .filter((d) => d.name.startsWith(h.name) && d.uuid.startsWith(h.uuid))
          .map((d) => ({ name: d.name, dev: BigInt(0xfd00 | d.minor), event_nr: d.eventNr, uuid: d.uuid || undefined }));
        payload = encodeNameList(entries, this.kernelMinor, (h.flags & DM_UUID_FLAG) !== 0);
        if (this.listBufferFull > 0) {
          this.listBufferFull--;
          payload = undefined;
          out.flags |= DM_BUFFER_FULL_FLAG;
        }
        break;
      }
      case 'DM_DEV_CREATE': {
        if (this.devices.has(h.name) || (h.uuid && [...this.devices.values()].some((d) => d.uuid === h.uuid))) fail(16);
        const d: Dev = { name: h.name, uuid: h.uuid, minor: this.nextMinor++, suspended: false, openCount: 0, eventNr: 0 };
        this.devices.set(d.name, d);
        this.status(d, out);
        break;
      }
      case 'DM_DEV_REMOVE': {
        const d = need();
        if (this.removeBusy > 0) {
          this.removeBusy--;
          fail(16);
        }
        this.devices.delete(d.name);
        out.name = d.name;
        if (this.uevents) out.flags |= DM_UEVENT_GENERATED_FLAG;
        break;
      }
      case 'DM_DEV_RENAME': {
        const d = need();
        const to = buf.toString('latin1', DM_IOCTL_SIZE, buf.indexOf(0, DM_IOCTL_SIZE));
        if (h.flags & DM_UUID_FLAG) {
          if (d.uuid) fail(22);
          d.uuid = to;
        } else {
          if (this.devices.has(to)) fail(16);
          this.devices.delete(d.name);
          d.name = to;
          this.devices.set(to, d);
          if (d.live) d.eventNr++;
        }
        this.status(d, out);
        out.name = h.name;
        if (this.uevents) out.flags |= DM_UEVENT_GENERATED_FLAG;
        break;
      }
      case 'DM_DEV_SUSPEND': {
        const d = need();
        if (h.flags & DM_SUSPEND_FLAG) d.suspended = true;
        else {
          if (d.inactive) {
            d.live = d.inactive;
            delete d.inactive;
          }
          d.suspended = false;
          if (this.uevents) out.flags |= DM_UEVENT_GENERATED_FLAG;
        }
        this.status(d, out);
        break;
      }
      case 'DM_DEV_STATUS':
        this.status(need(), out);
        break;
      case 'DM_TABLE_LOAD': {
        const d = need();
        d.inactive = walkTargetSpecs(buf, h.data_start, h.data_size, h.target_count, 'spec');
        this.status(d, out);
        break;
      }
      case 'DM_TABLE_STATUS': {
        const d = need();
        this.status(d, out);
        const lines = (d.live ?? []).map((t) => ({ ...t, params: h.flags & DM_STATUS_TABLE_FLAG ? t.params : `status-of ${t.target_type}` }));
        payload = encodeTargetSpecs(lines, 'data_start');
        out.target_count = lines.length;
        break;
      }
      case 'DM_TARGET_MSG': {
        const d = need();
        const { message } = decodeTargetMsg(buf, h.data_start, h.data_size);
        this.status(d, out);
        if (message === 'echo') {
          payload = Buffer.from('pong\0');
          out.flags |= DM_DATA_OUT_FLAG;
        }
        break;
      }
      case 'DM_DEV_ARM_POLL':
        break;
      default:
        fail(25);
    }
    if (payload) {
      if (DM_IOCTL_SIZE + payload.length > buf.length) out.flags |= DM_BUFFER_FULL_FLAG;
      else {
        payload.copy(buf, DM_IOCTL_SIZE);
        out.data_size = DM_IOCTL_SIZE + payload.length;
      }
    }
    encodeDmIoctl(out, buf);
    return 0;
  }
}
