// SPDX-License-Identifier: MIT
// Why not FakeKernel: it stands in one layer higher (the ThinDm slice of DmControl), so the thin
// layer's call order and rollback are checked without dm ioctls at all.
// A tiny recording stand-in for DmControl (the ThinDm slice) and for the block-device primitives,
// so ThinPool / ThinDevice logic can be unit-tested: call order, zero-call validation, rollback.
import type { BlockDeviceInfo, BlockDevices, ThinDm, ThinDmDeviceInfo, ThinDmTarget } from '../../../src/thin/index.js';

/** Stand-in for the ioctl layer's IoctlError: only `.code` / `.errno` matter to the thin layer. */
export function ioctlError(code: string, errno: number, request = 'DM_TARGET_MSG'): Error & { code: string; errno: number } {
  return Object.assign(new Error(`ioctl ${request} failed: ${code}`), { code, errno });
}

export type Call = readonly [string, ...unknown[]];

interface FakeDevice {
  dev: { major: number; minor: number };
  suspended: boolean;
  table: ThinDmTarget[];
  openCount: number;
  /** INFO status params to report for the single target. */
  status: string;
}

/** A working pool status line with the given transaction id. */
export function poolStatusLine(transactionId = 0n, extra = '- rw discard_passdown queue_if_no_space - 1024'): string {
  return `${transactionId} 10/1024 0/8192 ${extra} `;
}

export class FakeDm implements ThinDm {
  readonly calls: Call[] = [];
  readonly devices = new Map<string, FakeDevice>();
  /** Per-method failure injection: return an error to throw it (the call is still recorded). */
  fail: Partial<Record<string, (...args: unknown[]) => Error | undefined>> = {};
  /** Called for each targetMessage after the failure hook; may change device state. */
  onMessage: ((name: string, message: string) => void) | undefined;
  #nextMinor = 0;

  #hook(method: string, args: unknown[]): void {
    this.calls.push([method, ...args]);
    const err = this.fail[method]?.(...args);
    if (err) throw err;
  }
  #get(name: string): FakeDevice {
    const d = this.devices.get(name);
    if (!d) throw ioctlError('ENXIO', 6, 'DM_DEV_STATUS');
    return d;
  }
  /** Adds an active device as if created elsewhere. */
  add(name: string, table: ThinDmTarget[], status = '', openCount = 0): FakeDevice {
    const d = { dev: { major: 253, minor: this.#nextMinor++ }, suspended: false, table, openCount, status };
    this.devices.set(name, d);
    return d;
  }
  methods(): string[] {
    return this.calls.map((c) => c[0]);
  }

  async deviceCreate(name: string, options?: { readonly uuid?: string }): Promise<void> {
    this.#hook('deviceCreate', [name, options]);
    if (this.devices.has(name)) throw ioctlError('EBUSY', 16, 'DM_DEV_CREATE');
    this.devices.set(name, { dev: { major: 253, minor: this.#nextMinor++ }, suspended: true, table: [], openCount: 0, status: '' });
  }
  async tableLoad(name: string, targets: readonly ThinDmTarget[], options?: { readonly readOnly?: boolean }): Promise<void> {
    this.#hook('tableLoad', [name, targets, options]);
    this.#get(name).table = [...targets];
  }
  async deviceResume(name: string): Promise<ThinDmDeviceInfo> {
    this.#hook('deviceResume', [name]);
    const d = this.#get(name);
    d.suspended = false;
    return { dev: d.dev, suspended: false, activeTable: d.table.length > 0, openCount: d.openCount };
  }
  async deviceSuspend(name: string, options?: { readonly noflush?: boolean }): Promise<void> {
    this.#hook('deviceSuspend', [name, options]);
    this.#get(name).suspended = true;
  }
  async deviceRemove(name: string, _options?: unknown): Promise<void> {
    this.#hook('deviceRemove', [name]);
    this.#get(name);
    this.devices.delete(name);
  }
  async deviceInfo(name: string): Promise<ThinDmDeviceInfo> {
    this.#hook('deviceInfo', [name]);
    const d = this.#get(name);
    return { dev: d.dev, suspended: d.suspended, activeTable: d.table.length > 0, openCount: d.openCount };
  }
  async tableStatus(name: string, options?: { readonly mode?: 'status' | 'table'; readonly noflush?: boolean }): Promise<ThinDmTarget[]> {
    this.#hook('tableStatus', [name, options]);
    const d = this.#get(name);
    if (options?.mode === 'table') return d.table;
    return d.table.map((t) => ({ ...t, params: d.status }));
  }
  async targetMessage(name: string, sector: bigint, message: string): Promise<null> {
    this.#hook('targetMessage', [name, sector, message]);
    this.#get(name);
    this.onMessage?.(name, message);
    return null;
  }
}

/** Fake block devices: a map from ref (path or maj:min) to info and the 4 KiB head. */
export class FakeBlockDevices implements BlockDevices {
  readonly calls: Call[] = [];
  readonly devs = new Map<string, { info: BlockDeviceInfo; head: Buffer }>();

  add(path: string, major: number, minor: number, sizeBytes: bigint, head: Buffer = Buffer.alloc(4096)): void {
    const entry = { info: { major, minor, path, sizeBytes }, head };
    this.devs.set(path, entry);
    this.devs.set(`${major}:${minor}`, entry);
  }
  async inspect(ref: string): Promise<BlockDeviceInfo> {
    this.calls.push(['inspect', ref]);
    const e = this.devs.get(ref);
    if (!e) throw new Error(`no such fake device ${ref}`);
    return e.info;
  }
  async readHead(path: string, bytes: number): Promise<Buffer> {
    this.calls.push(['readHead', path, bytes]);
    return Buffer.from(this.devs.get(path)!.head.subarray(0, bytes));
  }
  async zeroHead(path: string, bytes: number): Promise<void> {
    this.calls.push(['zeroHead', path, bytes]);
    this.devs.get(path)!.head.fill(0, 0, bytes);
  }
  /** Grows a device (both of its keys share one entry). */
  grow(path: string, sizeBytes: bigint): void {
    const e = this.devs.get(path)!;
    e.info = { ...e.info, sizeBytes };
  }
}

/** A thin superblock head: magic at 32, data block size at 336. */
export function thinSuperblockHead(dataBlockSize: number): Buffer {
  const b = Buffer.alloc(4096);
  b.writeUInt32LE(0xdeadbeef, 0);
  b.writeBigUInt64LE(27022010n, 32);
  b.writeUInt32LE(dataBlockSize, 336);
  return b;
}
