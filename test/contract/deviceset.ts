// SPDX-License-Identifier: MIT
// The DeviceSet contract: what a service sees of a loop-backed DeviceSet (records, kernel devices,
// outcomes, typed refusals, restart), with the same assertions on FakeKernel (unit tests,
// test/unit/deviceset-contract-fake.test.ts) and on the real kernel in the VM
// (test/privileged/deviceset-contract.test.ts). A difference between the two worlds fails one
// of them: the fake is only worth its speed while it behaves like the kernel at this level too.
import * as assert from 'uvu/assert';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DmControl } from '../../src/dm/index.js';
import { DeviceAlreadyExistsError, DeviceInUseError, DeviceSet, UnknownDeviceError, type DeviceSetInit } from '../../src/deviceset/index.js';
import { parseThinPoolStatus } from '../../src/thin/index.js';
import { rejects } from '../helpers/rejects.js';
import type { SuiteFactory } from './env.js';

export interface DeviceSetContractEnv {
  readonly kind: 'fake' | 'real';
  /** A fresh, empty directory for a root (0700, ours). */
  root(): string;
  /** What DeviceSet.init needs besides `options` (the fake's seams, or nothing for the real kernel). */
  init(): Partial<DeviceSetInit>;
  /** A DmControl on the same kernel, for the oracle's own reads. */
  dm(): DmControl;
  /** Whether a block node exists at `path` in this world. */
  nodeExists(path: string): boolean;
  cleanup(): Promise<void>;
}

export type DeviceSetEnvFactory = () => DeviceSetContractEnv | Promise<DeviceSetContractEnv>;

const MiB = 1024n * 1024n;
const OPTIONS = ['dm.loopdatasize=256M', 'dm.loopmetadatasize=8M', 'dm.basesize=32M', 'dm.min_free_space=0%'];
const quiet = { log: () => undefined };

async function rejectsWith<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E, code: string): Promise<void> {
  assert.is((await rejects(p, cls) as { code?: string }).code, code);
}

/** The set's dm devices (its prefix), sorted. */
async function setDevices(dm: DmControl, ds: DeviceSet): Promise<string[]> {
  return (await dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(`${ds.prefix}-`)).sort();
}

export function registerDeviceSetContract(suiteFactory: SuiteFactory, makeEnv: DeviceSetEnvFactory): void {
  const test = suiteFactory('deviceset contract');
  let env: DeviceSetContractEnv;
  const open: DeviceSet[] = [];
  const init = async (root: string): Promise<DeviceSet> => {
    const ds = await DeviceSet.init(root, { ...env.init(), options: OPTIONS, ...quiet });
    open.push(ds);
    return ds;
  };
  test.before.each(async () => {
    env = await makeEnv();
  });
  test.after.each(async () => {
    for (const ds of open.splice(0)) await ds.shutdown().catch(() => undefined);
    await env.cleanup();
  });

  test('a fresh root: the pool alone is active, the base is recorded, status agrees with the kernel', async () => {
    const ds = await init(env.root());
    const st = await ds.status();
    assert.equal(ds.list(), []);
    assert.ok(ds.hasDevice(''));
    assert.is(st.poolName, `${ds.prefix}-pool`);
    assert.is(st.poolOwned, true);
    assert.is(st.baseDeviceFS, 'ext4');
    assert.is(st.baseDeviceSize, 32n * MiB);
    assert.is(st.data.total, 256n * MiB);
    assert.is(st.metadata.total, 8n * MiB);
    assert.equal(await setDevices(env.dm(), ds), [st.poolName]);
    const pool = parseThinPoolStatus((await env.dm().tableStatus(st.poolName))[0]?.params ?? '');
    assert.is(pool.kind, 'working');
    if (pool.kind === 'working') {
      assert.is(BigInt(pool.transactionId), st.transactionId);
      assert.is(BigInt(pool.totalDataBlocks) * st.sectorSize, st.data.total);
    }
  });

  test('images and snapshots: records, sizes, typed refusals, exact delete outcomes', async () => {
    const ds = await init(env.root());
    await ds.addDevice('img', '');
    await ds.addDevice('ctr', 'img');
    assert.equal(ds.list(), ['ctr', 'img']);
    assert.is((await ds.deviceStatus('ctr')).sizeInSectors, (32n * MiB) / 512n);
    await rejectsWith(ds.addDevice('ctr', 'img'), DeviceAlreadyExistsError, 'EDEVICEEXISTS');
    await rejectsWith(ds.addDevice('x', 'missing'), UnknownDeviceError, 'EUNKNOWNDEVICE');
    await rejectsWith(ds.deleteDevice('missing'), UnknownDeviceError, 'EUNKNOWNDEVICE');
    const txBefore = (await ds.status()).transactionId;
    assert.is(await ds.deleteDevice('ctr', { sync: true }), 'deleted');
    assert.equal(ds.list(), ['img']);
    assert.not.ok(ds.hasDevice('ctr'));
    assert.is((await ds.status()).transactionId, txBefore + 1n);
    // Nothing but the pool is left active by add or delete.
    assert.equal(await setDevices(env.dm(), ds), [`${ds.prefix}-pool`]);
  });

  test('activation: the node appears and goes; a mounted device is refused deletion until unmounted', async () => {
    const root = env.root();
    const ds = await init(root);
    await ds.addDevice('img', '');
    const path = await ds.activateDevice('img');
    assert.ok(env.nodeExists(path), path);
    assert.equal(await setDevices(env.dm(), ds), [`${ds.prefix}-img`, `${ds.prefix}-pool`]);
    await ds.deactivateDevice('img');
    assert.equal(await setDevices(env.dm(), ds), [`${ds.prefix}-pool`]);
    const mp = join(root, 'mnt', 'img');
    mkdirSync(mp, { recursive: true, mode: 0o700 });
    await ds.mountDevice('img', mp);
    await rejectsWith(ds.deleteDevice('img'), DeviceInUseError, 'EDEVICEINUSE');
    await ds.unmountDevice('img', mp);
    assert.is(await ds.deleteDevice('img', { sync: true }), 'deleted');
  });

  test('shutdown leaves no device of the set; the next init loads the same records', async () => {
    const root = env.root();
    const ds = await init(root);
    await ds.addDevice('img', '');
    await ds.addDevice('ctr', 'img');
    const ids = [ds.deviceInfo('img').deviceId, ds.deviceInfo('ctr').deviceId];
    const tx = (await ds.status()).transactionId;
    await ds.shutdown();
    open.splice(open.indexOf(ds), 1);
    assert.equal(await setDevices(env.dm(), ds), []);
    const again = await init(root);
    assert.is(again.prefix, ds.prefix);
    assert.equal(again.list(), ['ctr', 'img']);
    assert.equal([again.deviceInfo('img').deviceId, again.deviceInfo('ctr').deviceId], ids);
    assert.is((await again.status()).transactionId, tx);
  });

  test('resizePool grows the data device; the kernel reports the new length', async () => {
    const ds = await init(env.root());
    await ds.resizePool('384M');
    const st = await ds.status();
    assert.is(st.data.total, 384n * MiB);
    const [line] = await env.dm().tableStatus(st.poolName);
    assert.is(line?.length, (384n * MiB) / 512n);
  });

  test.run();
}
