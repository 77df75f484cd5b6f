// SPDX-License-Identifier: MIT
// Wiring a DeviceSet to a FakeKernel, so services built on devmapper can be unit-tested without
// root, device-mapper or a VM: every kernel call goes through the fake, files stay real.
import * as fsp from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';
import { DmControl } from '../dm/index.js';
import { LoopControl } from '../loop/index.js';
import type { BlockDevices } from '../thin/index.js';
import type { DeviceSetInit, FsTools } from '../deviceset/index.js';
import type { FakeKernel } from './fake-kernel.js';
import { SimulatedCrash } from './errors.js';

/** The filesystem UUID that {@link fakeFsTools} reports for every formatted device. */
export const FAKE_FILESYSTEM_UUID = '0b7c1c64-5a5d-4f7e-9c6a-1d1e2f3a4b5c';

/**
 * BlockDevices over the fake kernel: sizes through BLKGETSIZE64 (a syscall the fake counts), the
 * head of a loop device read from / zeroed in its backing file, which is where FakeKernel keeps
 * pool metadata. Without it a DeviceSet over a fake would inspect — and, for a new pool, zero —
 * the host's real /dev nodes.
 */
export function fakeBlockDevices(fake: FakeKernel, loops: LoopControl): BlockDevices {
  const loopOf = (ref: string) => {
    const m = /^(\d+):(\d+)$/.exec(ref);
    const l = fake.loops().find((x) => (m ? Number(m[1]) === 7 && Number(m[2]) === x.index : x.path === ref));
    if (!l) throw new InvalidArgumentError('block device', [{ path: '', message: 'no such (fake) loop device', value: ref }]);
    return l;
  };
  const backing = (path: string): string => {
    const l = loopOf(path);
    if (!l.backingFile) throw new InvalidArgumentError('block device', [{ path: '', message: 'loop device not bound', value: path }]);
    return l.backingFile;
  };
  const alive = (what: string): void => {
    if (fake.crashed) throw new SimulatedCrash(-1, 'before', `${what} after death`);
  };
  return {
    async inspect(ref) {
      const l = loopOf(ref);
      return { major: 7, minor: l.index, path: l.path, sizeBytes: await loops.sizeOf(l.path) };
    },
    async readHead(path, bytes) {
      alive('readHead');
      // fs/promises, as the real BlockDevices: a test recording the library's synchronous calls sees none here.
      const handle = await fsp.open(backing(path), 'r');
      try {
        const buf = Buffer.alloc(bytes);
        await handle.read(buf, 0, bytes, 0);
        return buf;
      } finally {
        await handle.close();
      }
    },
    async zeroHead(path, bytes) {
      alive('zeroHead');
      const handle = await fsp.open(backing(path), 'r+');
      try {
        await handle.write(Buffer.alloc(bytes), 0, bytes, 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
  };
}

/** FsTools over the fake: mkfs marks the device through fake.mkfs; blkid answers a constant uuid. */
export function fakeFsTools(fake: FakeKernel): FsTools {
  const alive = (what: string): void => {
    if (fake.crashed) throw new SimulatedCrash(-1, 'before', `${what} after death`);
  };
  return {
    mkfs: async (fs, device) => {
      alive('mkfs');
      fake.mkfs(device, fs);
    },
    uuid: async () => {
      alive('blkid');
      return FAKE_FILESYSTEM_UUID;
    },
    grow: async () => alive('growfs'),
    // The fake's mkfs marks stand for superblocks: never read the host's /dev.
    probe: async (device) => {
      const fs = fake.filesystemOf(device);
      return fs === 'ext4' || fs === 'xfs' ? fs : null;
    },
  };
}

/**
 * Everything `DeviceSet.init` needs to run against `fake` instead of the kernel: a DmControl and a
 * LoopControl on the fake's syscalls and /dev, fake block devices and filesystem tools, and no
 * sleeping in retry loops (and no reading of the host's /dev/kmsg). Spread it into the init options:
 * `DeviceSet.init(root, { ...fakeDeviceSetInit(fake), options: ['dm.loopdatasize=64M', …] })`.
 * The fake needs a sysfs tree (`new FakeKernel({ sysfs: true })`) for LoopControl.
 */
export function fakeDeviceSetInit(fake: FakeKernel, devDir = '/dev'): DeviceSetInit & { dm: DmControl; loops: LoopControl } {
  const noSleep = async (): Promise<void> => {};
  const dm = new DmControl({ devDir, syscalls: fake, sleep: noSleep, udevRecheckMs: 0 });
  const loops = new LoopControl({ devDir, syscalls: fake, sysfsRoot: fake.sysfsRoot ?? '/nonexistent', sleep: noSleep });
  return { dm, loops, syscalls: fake, blockDevices: fakeBlockDevices(fake, loops), tools: fakeFsTools(fake), deferredDeleteIntervalMs: 0, kernelLog: () => Promise.resolve(null) };
}
