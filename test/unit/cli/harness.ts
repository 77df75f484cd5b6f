// SPDX-License-Identifier: MIT
// Runs the CLI in-process against injected fakes and captures its output.
import { run } from '../../../src/cli/main.js';
import type { CliDeviceSet, CliDm, CliLoop, Deps, MountEntry, SignalSource } from '../../../src/cli/context.js';
import type { DeviceInfo, DeviceSetDevice, DeviceSetStatus } from '../../../src/index.js';
import { DeviceNotFoundError, UnknownDeviceError } from '../../../src/index.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every call a fake received, as `method(args...)` strings, for "nothing changed" assertions. */
export type Calls = string[];

export interface CliOptions {
  tty?: boolean;
  env?: Record<string, string>;
  /** SIGINT/SIGTERM for the run (default: none, as when the CLI is embedded). */
  signals?: SignalSource;
}

export async function cli(argv: readonly string[], deps: Partial<Deps> = {}, opts: CliOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const fail = (what: string) => (): never => {
    throw new Error(`test: unexpected use of ${what}`);
  };
  const full: Deps = {
    dm: deps.dm ?? fail('dm'),
    loop: deps.loop ?? fail('loop'),
    runInVm: deps.runInVm ?? fail('runInVm'),
    openDeviceSet: deps.openDeviceSet ?? fail('openDeviceSet'),
    mounts: deps.mounts ?? (() => []),
    umount: deps.umount ?? fail('umount'),
    ...(deps.optionsFs ? { optionsFs: deps.optionsFs } : {}),
    ...(deps.openDriver ? { openDriver: deps.openDriver } : {}),
  };
  const code = await run(
    argv,
    {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
      stderrIsTTY: opts.tty ?? false,
      env: opts.env ?? { PATH: '/usr/bin:/bin' },
      cwd: '/work',
      ...(opts.signals ? { signals: opts.signals } : {}),
    },
    full,
  );
  return { code, stdout, stderr };
}

export function info(name: string, minor: number, extra: Partial<DeviceInfo> = {}): DeviceInfo {
  return {
    name,
    uuid: undefined,
    dev: { major: 253, minor },
    suspended: false,
    readOnly: false,
    activeTable: true,
    inactiveTable: false,
    deferredRemove: false,
    internalSuspend: false,
    openCount: 0,
    eventNr: 0,
    targetCount: 1,
    ...extra,
  };
}

/** A fake DmControl holding devices by name; records every mutating call. */
export function fakeDm(calls: Calls, devices: DeviceInfo[] = [info('alpha', 0, { uuid: 'U-alpha', eventNr: 3 }), info('beta', 1)]): CliDm {
  const byName = new Map(devices.map((d) => [d.name, d]));
  const find = (ref: unknown): DeviceInfo => {
    const r = ref as string | { name?: string; uuid?: string; dev?: { major: number; minor: number } };
    const name = typeof r === 'string' ? r : r.name;
    const hit = [...byName.values()].find((d) =>
      name !== undefined ? d.name === name : typeof r === 'object' && r.uuid !== undefined ? d.uuid === r.uuid : typeof r === 'object' && r.dev !== undefined && d.dev.minor === r.dev.minor,
    );
    if (!hit) throw new DeviceNotFoundError(typeof r === 'string' ? { name: r } : (r as { name: string }));
    return hit;
  };
  const fake = {
    version: async () => [4, 48, 0] as const,
    listDevices: async () => [...byName.values()].map((d) => ({ name: d.name, dev: d.dev, eventNr: d.eventNr, uuid: d.uuid ?? null })),
    deviceInfo: async (ref: unknown) => find(ref),
    deviceCreate: async (name: string, o: unknown) => {
      calls.push(`deviceCreate(${name},${JSON.stringify(o)})`);
      return info(name, 9);
    },
    createDevice: async (name: string, lines: unknown, o: unknown) => {
      calls.push(`createDevice(${name},${JSON.stringify(lines, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))},${JSON.stringify(o)})`);
      return info(name, 9);
    },
    tableLoad: async (ref: unknown, lines: unknown) => {
      find(ref);
      calls.push(`tableLoad(${JSON.stringify(ref)},${JSON.stringify(lines, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))})`);
      return find(ref);
    },
    deviceSuspend: async (ref: unknown, o: unknown) => (calls.push(`deviceSuspend(${JSON.stringify(ref)},${JSON.stringify(o)})`), find(ref)),
    deviceResume: async (ref: unknown) => (calls.push(`deviceResume(${JSON.stringify(ref)})`), find(ref)),
    deviceRemove: async (ref: unknown, o: unknown) => {
      find(ref);
      calls.push(`deviceRemove(${JSON.stringify(ref)},${JSON.stringify(o)})`);
      return { deferred: false, attempts: 1 };
    },
    deviceRename: async (ref: unknown, to: unknown) => (calls.push(`deviceRename(${JSON.stringify(ref)},${JSON.stringify(to)})`), find(ref)),
    deviceWait: async (ref: unknown, nr: number) => {
      calls.push(`deviceWait(${JSON.stringify(ref)},${nr})`);
      return { info: find(ref), targets: [{ start: 0n, length: 2048n, type: 'zero', params: '' }] };
    },
    tableStatus: async (ref: unknown, o: { mode?: string }) => {
      find(ref);
      return [{ start: 0n, length: 1n << 60n, type: 'linear', params: o.mode === 'table' ? '7:0 0' : '' }];
    },
    tableDeps: async () => [],
    listVersions: async () => [
      { name: 'zero', version: [1, 2, 0] as const },
      { name: 'linear', version: [1, 4, 0] as const },
    ],
    targetMessage: async (ref: unknown, sector: bigint, msg: string) => {
      find(ref);
      calls.push(`targetMessage(${JSON.stringify(ref)},${sector},${msg})`);
      return msg === 'stats' ? 'reply text' : null;
    },
    close: () => undefined,
  };
  return fake as unknown as CliDm;
}

export function fakeLoop(calls: Calls): CliLoop {
  const entry = {
    name: 'loop3',
    index: 3,
    major: 7,
    minor: 3,
    sizeSectors: 2048n,
    readOnly: false,
    logicalBlockSize: 512,
    bound: true,
    binding: { backingFile: '/tmp/a.img', backingFileDeleted: false, offset: 0n, sizeLimit: 0n, autoclear: false, partscan: false, directIo: false },
    path: '/dev/loop3',
  };
  const fake = {
    attach: async (file: string, o: unknown) => {
      calls.push(`attach(${file},${JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))})`);
      return {
        path: '/dev/loop3', index: 3, major: 7, minor: 3, backingFile: file, method: 'configure',
        status: { readOnly: false, autoclear: false, directIo: false },
      };
    },
    detach: async (spec: unknown) => (calls.push(`detach(${JSON.stringify(spec)})`), 'detached'),
    list: () => [entry],
    findByBackingFile: (file: string) => (file === '/tmp/a.img' ? [{ ...entry, backingFile: file, status: undefined, matchedBy: 'inode' }] : []),
    status: () => ({}),
  };
  return fake as unknown as CliLoop;
}

export function fakeStatus(): DeviceSetStatus {
  const sp = { used: 1n << 20n, total: 512n << 20n, available: 511n << 20n };
  return {
    poolName: 'devmapper-0:1-2-pool', dataFile: '/dev/loop0', dataLoopback: '/r/devicemapper/data', metadataFile: '/dev/loop1',
    metadataLoopback: '/r/devicemapper/metadata', data: sp, metadata: sp, sectorSize: 65536n, udevSyncSupported: false,
    deferredRemoveEnabled: true, deferredDeleteEnabled: true, deferredDeletedDeviceCount: 0, baseDeviceSize: 64n << 20n,
    baseDeviceFS: 'ext4', minFreeSpace: 51n << 20n, transactionId: 2n, mode: 'rw', needsCheck: false, poolOwned: true, quarantinedThinIds: [],
    autoextend: { enabled: false, threshold: null, percent: 20, max: null, lowWaterMark: null, state: 'off', message: null, lastExtension: null, extensions: 0 },
  };
}

/** JSON of a DeviceSet call's options: bigints as `<n>n`, an AbortSignal as "AbortSignal". */
function optionReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  return v instanceof AbortSignal ? 'AbortSignal' : v;
}

/** A fake DeviceSet with the base device and `ids`. */
export function fakeDeviceSet(calls: Calls, ids: string[] = ['c1']): CliDeviceSet {
  const devs = new Map<string, DeviceSetDevice>();
  const add = (hash: string, deviceId: number): void => {
    devs.set(hash, { hash, deviceId, size: 64n << 20n, transactionId: deviceId, state: 'ready', deleted: false, dmName: `devmapper-0:1-2-${hash || 'base'}`, devicePath: '' });
  };
  add('', 1);
  ids.forEach((id, i) => add(id, i + 2));
  const get = (h: string): DeviceSetDevice => {
    const d = devs.get(h);
    if (!d) throw new UnknownDeviceError(h);
    return d;
  };
  const fake = {
    addDevice: async (h: string, parent: string, o: unknown) => {
      get(parent);
      calls.push(`addDevice(${h},${parent},${JSON.stringify(o, optionReplacer)})`);
      add(h, devs.size + 1);
      return get(h);
    },
    deleteDevice: async (h: string, o: unknown) => (get(h), calls.push(`deleteDevice(${h},${JSON.stringify(o, optionReplacer)})`), 'deleted'),
    mountDevice: async (h: string, p: string) => (get(h), calls.push(`mountDevice(${h},${p})`)),
    deactivateDevice: async (h: string) => (get(h), calls.push(`deactivateDevice(${h})`)),
    hasDevice: (h: string) => devs.has(h),
    list: () => [...devs.keys()].filter((h) => h !== '').sort(),
    deviceInfo: get,
    status: async () => fakeStatus(),
    resizePool: async (s: bigint) => calls.push(`resizePool(${s})`),
    shutdown: async () => calls.push('shutdown()'),
  };
  return fake as unknown as CliDeviceSet;
}

export type { MountEntry };
