// SPDX-License-Identifier: MIT
// dm ioctls that had never run on a real kernel (issue 18, "Interop"), each with an observable
// effect: DM_DEV_SET_GEOMETRY (HDIO_GETGEO on the dm node), DM_SECURE_DATA on a non-crypt table
// (the kernel wipes our request buffer; the table reads back), DM_REMOVE_ALL (only on this test's
// own devices: it refuses to run while any other dm device exists). DM_DEV_ARM_POLL is covered by
// dm.test.ts ("waitForEvent wakes when a table changes").
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { InvalidArgumentError } from '../../src/errors.js';
import { DM_SECURE_DATA_FLAG, HDIO_GETGEO, HD_GEOMETRY_SIZE, decodeHdGeometry, realSyscalls, type HdGeometry, type Syscalls } from '../../src/ioctl/index.js';
import { DmControl, formatTable, mapperPath, removeDeviceNode, zeroTarget, type Geometry } from '../../src/dm/index.js';
import { privilegedSuite, testName, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('ioctl-interop'));

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** What every DM_TABLE_LOAD sent: its flags, and whether its payload was all zeroes after the call. */
const loads: { flags: number; payloadZeroed: boolean }[] = [];

/** The real kernel seam, recording DM_TABLE_LOAD buffers after the kernel is done with them. */
function spySyscalls(): Syscalls {
  const real = realSyscalls();
  const record = (name: string, arg: unknown, flags: number): void => {
    if (name !== 'DM_TABLE_LOAD' || !Buffer.isBuffer(arg)) return;
    const payload = arg.subarray(312); // data_start: struct dm_ioctl is 312 bytes
    loads.push({ flags, payloadZeroed: payload.every((b) => b === 0) });
  };
  const flagsOf = (arg: unknown): number => (Buffer.isBuffer(arg) ? arg.readUInt32LE(28) : 0);
  return new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'ioctl')
        return (fd: number, req: number, arg: Buffer, name: string): number => {
          const flags = flagsOf(arg);
          try {
            return real.ioctl(fd, req, arg, name);
          } finally {
            record(name, arg, flags);
          }
        };
      if (prop === 'ioctlAsync')
        return async (fd: number, req: number, arg: Buffer, name: string): Promise<number> => {
          const flags = flagsOf(arg);
          try {
            return await real.ioctlAsync(fd, req, arg, name);
          } finally {
            record(name, arg, flags);
          }
        };
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

let dm: DmControl;
const sys = realSyscalls();
const DEV_DIR = '/dev';

test.before(() => {
  dm = new DmControl({ syscalls: spySyscalls() });
});

test.after(() => {
  dm.close();
});

/** HDIO_GETGEO on the device node. */
function getGeo(name: string): HdGeometry {
  const fd = openSync(mapperPath(DEV_DIR, name), 'r');
  try {
    const buf = Buffer.alloc(HD_GEOMETRY_SIZE);
    sys.ioctl(fd, HDIO_GETGEO, buf, 'HDIO_GETGEO');
    return decodeHdGeometry(buf);
  } finally {
    closeSync(fd);
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

test('DM_DEV_SET_GEOMETRY: HDIO_GETGEO reports it; a start beyond C×H×S is refused; a resize wipes it', async () => {
  const name = testName('geo');
  await dm.createDevice(name, [zeroTarget(0n, 16384n)]);
  try {
    // A new mapped_device has no geometry (alloc_dev: kzalloc; dm_blk_getgeo copies md->geometry).
    assert.equal(getGeo(name), { heads: 0, sectors: 0, cylinders: 0, start: 0n });
    const g: Geometry = { cylinders: 520, heads: 16, sectors: 63, start: 2048n };
    await dm.setGeometry(name, g);
    assert.equal(getGeo(name), { heads: 16, sectors: 63, cylinders: 520, start: 2048n });
    // dm_set_geometry refuses a start beyond C×H×S with EINVAL ("Start sector is beyond the
    // geometry limits"); we refuse it first, typed, and the geometry set before stays.
    assert.instance(await rejection(dm.setGeometry(name, { cylinders: 1, heads: 2, sectors: 3, start: 7n })), InvalidArgumentError);
    assert.equal(getGeo(name), { heads: 16, sectors: 63, cylinders: 520, start: 2048n });
    await dm.setGeometry(name, { cylinders: 1, heads: 2, sectors: 3, start: 6n });
    assert.equal(getGeo(name), { heads: 2, sectors: 3, cylinders: 1, start: 6n });
    // A table of the same size keeps the geometry; a new size wipes it (__bind: "Wipe any
    // geometry if the size of the table changed").
    await dm.tableLoad(name, [zeroTarget(0n, 16384n)]);
    await dm.deviceResume(name);
    assert.equal(getGeo(name), { heads: 2, sectors: 3, cylinders: 1, start: 6n });
    await dm.tableLoad(name, [zeroTarget(0n, 8192n)]);
    await dm.deviceResume(name);
    assert.equal(getGeo(name), { heads: 0, sectors: 0, cylinders: 0, start: 0n });
  } finally {
    await dm.deviceRemove(name);
  }
});

test('DM_SECURE_DATA on a zero table: the load succeeds, the kernel wipes our buffer, the table reads back', async () => {
  const name = testName('secure');
  await dm.createDevice(name, [zeroTarget(0n, 4096n)]);
  try {
    const n = loads.length;
    await dm.tableLoad(name, [zeroTarget(0n, 8192n)], { secure: true });
    assert.is(loads.length, n + 1);
    assert.is((loads[n]!.flags & DM_SECURE_DATA_FLAG) !== 0, true, 'DM_SECURE_DATA_FLAG sent');
    assert.is(loads[n]!.payloadZeroed, true, 'copy_params wiped the table from our request buffer');
    await dm.deviceResume(name);
    const table = await dm.tableStatus(name, { mode: 'table' });
    assert.equal(table, [{ start: 0n, length: 8192n, type: 'zero', params: '' }]);
    // dmsetup prints a blank after the type even when the params are empty.
    assert.is(sh('dmsetup', ['table', name]), `${formatTable(table).trimEnd()} \n`);
    // Without the flag the payload stays (the flag is what wipes it).
    const m = loads.length;
    await dm.tableLoad(name, [zeroTarget(0n, 4096n)]);
    assert.is(loads[m]!.flags & DM_SECURE_DATA_FLAG, 0);
    assert.is(loads[m]!.payloadZeroed, false);
    await dm.tableClear(name);
  } finally {
    await dm.deviceRemove(name);
  }
});

test('DM_REMOVE_ALL removes every unused device (only ours exist), keeps an open one; deferred removes it on close', async () => {
  const names = [testName('ra-a'), testName('ra-b'), testName('ra-open')];
  for (const n of names) await dm.createDevice(n, [zeroTarget(0n, 64n)]);
  const openName = names[2]!;
  let fd: number | undefined = openSync(mapperPath(DEV_DIR, openName), 'r');
  try {
    // REMOVE_ALL acts on every dm device of the guest: refuse to go on unless the only ones are ours.
    const present = (await dm.listDevices()).map((d) => d.name).sort();
    if (JSON.stringify(present) !== JSON.stringify([...names].sort()))
      throw new Error(`DM_REMOVE_ALL test refuses to run: dm devices other than its own exist: ${JSON.stringify(present.filter((x) => !names.includes(x)))}`);
    await dm.removeAll();
    // dm_hash_remove_all(keep_open_devices = true): the open device stays, the others are gone.
    assert.equal((await dm.listDevices()).map((d) => d.name), [openName]);
    assert.equal(sh('dmsetup', ['ls']).trim().split('\n').map((l) => l.split('\t')[0]), [openName]);
    assert.is((await dm.deviceInfo(openName)).deferredRemove, false);
    // With DM_DEFERRED_REMOVE the open one is marked and goes on its last close.
    await dm.removeAll({ deferred: true });
    assert.is((await dm.deviceInfo(openName)).deferredRemove, true);
    closeSync(fd);
    fd = undefined;
    // dm_blk_close queues the removal (dm_deferred_remove, a work item): poll for it to run.
    for (let i = 0; i < 200 && (await dm.listDevices()).length > 0; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(await dm.listDevices(), []);
  } finally {
    if (fd !== undefined) closeSync(fd);
    for (const n of names) {
      await dm.deviceRemove(n).catch(() => undefined);
      // REMOVE_ALL does not touch /dev/mapper: our nodes are ours to remove.
      removeDeviceNode(sys, mapperPath(DEV_DIR, n));
    }
  }
});

test.run();
