// SPDX-License-Identifier: MIT
// The device-mapper contract: the same assertions (exact errnos, payload layouts, flags) against
// FakeKernel in the unit suite and against the real kernel in the VM.
import * as assert from 'uvu/assert';
import { constants as fsc } from 'node:fs';
import { DeviceBusyError, DeviceExistsError, DeviceNotFoundError, linearTarget, zeroTarget, errorTarget, type DmControl } from '../../src/dm/index.js';
import {
  BLKGETSIZE64,
  BLKSSZGET,
  DM_DEV_CREATE,
  DM_DEV_STATUS,
  DM_IOCTL,
  DM_LIST_DEVICES,
  DM_TABLE_LOAD,
  DM_TABLE_STATUS,
  _IOWR,
  buildDmRequest,
  decodeDmIoctl,
  encodeTargetSpecs,
  type IoctlArg,
  type Syscalls,
} from '../../src/ioctl/index.js';
import { errnoOf, type ContractEnv, type EnvFactory, type SuiteFactory } from './env.js';

const MiB = 1024 * 1024;
const O_RDWR = fsc.O_RDWR;
const O_CLOEXEC = 0o2000000;

/** Raw ioctl on the control node through the env's Syscalls: for requests DmControl refuses to build. */
function raw(env: ContractEnv, request: number, header: Parameters<typeof buildDmRequest>[0], payload?: Buffer, size = 0): { code: string; buf: Buffer } {
  const fd = env.open(`${env.devDir}/mapper/control`, O_RDWR | O_CLOEXEC);
  const buf = buildDmRequest({ version: [4, 0, 0], ...header }, payload, size);
  try {
    env.sys.ioctl(fd, request, buf, 'RAW');
    return { code: 'ok', buf };
  } catch (e) {
    return { code: (e as { code?: string }).code ?? String(e), buf };
  } finally {
    env.close(fd);
  }
}

/** A Syscalls that counts requests by name (to see BUFFER_FULL retries). */
function counting(sys: Syscalls): { sys: Syscalls; count: Map<string, number> } {
  const count = new Map<string, number>();
  const bump = (n: string): void => {
    count.set(n, (count.get(n) ?? 0) + 1);
  };
  const wrapped: Syscalls = Object.create(sys) as Syscalls;
  wrapped.ioctl = (fd: number, r: number, a: IoctlArg, n: string) => {
    bump(n);
    return sys.ioctl(fd, r, a, n);
  };
  wrapped.ioctlAsync = (fd: number, r: number, a: IoctlArg, n: string) => {
    bump(n);
    return sys.ioctlAsync(fd, r, a, n);
  };
  for (const k of ['open', 'close', 'fstat', 'stat', 'mknod', 'unlink', 'rename', 'mkdir', 'fsync', 'mountAsync', 'umount2Async', 'pollAsync'] as const) {
    (wrapped as unknown as Record<string, unknown>)[k] = (sys[k] as (...a: unknown[]) => unknown).bind(sys);
  }
  return { sys: wrapped, count };
}

async function linearDevice(env: ContractEnv, dm: DmControl, base: string, sectors = 2048n): Promise<{ name: string; loop: { major: number; minor: number } }> {
  const loop = await env.blockDevice(Number(sectors) * 512);
  const name = env.name(base);
  await dm.createDevice(name, [linearTarget(0n, sectors, { device: { major: loop.major, minor: loop.minor }, offset: 0n })], { uuid: `U-${name}` });
  return { name, loop };
}

export function registerDmContract(suiteFactory: SuiteFactory, makeEnv: EnvFactory): void {
  const test = suiteFactory('dm contract');
  let env: ContractEnv;
  let dm: DmControl;
  test.before.each(async () => {
    env = await makeEnv();
    dm = env.dm();
  });
  test.after.each(async () => {
    await env.cleanup();
  });

  test('DM_VERSION: major 4, a minor with ARM_POLL and GET_TARGET_VERSION', async () => {
    const [maj, min] = await dm.version();
    assert.is(maj, 4);
    assert.ok(min >= 41, `minor ${min}`);
  });

  test('create: a fresh device has no tables, is not suspended, event 0, opens 0', async () => {
    const name = env.name('fresh');
    const info = await dm.deviceCreate(name, { uuid: `U-${name}` });
    assert.is(info.name, name);
    assert.is(info.uuid, `U-${name}`);
    assert.is(info.activeTable, false);
    assert.is(info.inactiveTable, false);
    assert.is(info.suspended, false);
    assert.is(info.openCount, 0);
    assert.is(info.eventNr, 0);
    assert.is(info.targetCount, 0);
  });

  test('list after create has the device with its uuid, dev number and event number', async () => {
    const name = env.name('listed');
    const info = await dm.deviceCreate(name, { uuid: `U-${name}` });
    const e = (await dm.listDevices()).find((d) => d.name === name);
    assert.ok(e);
    assert.equal(e.dev, info.dev);
    assert.is(e.uuid, `U-${name}`);
    assert.is(e.eventNr, 0);
    const noUuid = env.name('nouuid');
    await dm.deviceCreate(noUuid);
    assert.is((await dm.listDevices()).find((d) => d.name === noUuid)?.uuid, null);
    // prefix filters (kernel-side on ≥ 4.45, client-side otherwise)
    assert.equal((await dm.listDevices({ namePrefix: name })).map((d) => d.name), [name]);
    assert.equal((await dm.listDevices({ uuidPrefix: `U-${name}` })).map((d) => d.name), [name]);
  });

  test('lookup by name, uuid and dev number', async () => {
    const name = env.name('lookup');
    const info = await dm.deviceCreate(name, { uuid: `U-${name}` });
    assert.is((await dm.deviceInfo({ uuid: `U-${name}` })).name, name);
    const byDev = await dm.deviceInfo({ dev: info.dev });
    assert.is(byDev.name, name);
    assert.is(byDev.uuid, `U-${name}`);
  });

  test('unknown name → ENXIO on every lookup command', async () => {
    const ghost = env.name('ghost');
    const ops: [string, () => Promise<unknown>][] = [
      ['info', () => dm.deviceInfo(ghost)],
      ['remove', () => dm.deviceRemove(ghost)],
      ['suspend', () => dm.deviceSuspend(ghost)],
      ['resume', () => dm.deviceResume(ghost)],
      ['load', () => dm.tableLoad(ghost, [zeroTarget(0n, 8n)])],
      ['clear', () => dm.tableClear(ghost)],
      ['status', () => dm.tableStatus(ghost)],
      ['deps', () => dm.tableDeps(ghost)],
      ['message', () => dm.targetMessage(ghost, 0n, 'hello')],
      ['rename', () => dm.deviceRename(ghost, { name: env.name('other') })],
    ];
    for (const [what, op] of ops) assert.is(await errnoOf(op), 'ENXIO', what);
    try {
      await dm.deviceInfo(ghost);
      assert.unreachable();
    } catch (e) {
      assert.instance(e, DeviceNotFoundError);
    }
    assert.is(await dm.findDevice(ghost), null);
  });

  test('duplicate name or uuid on create → EBUSY, and nothing is created', async () => {
    const name = env.name('dup');
    await dm.deviceCreate(name, { uuid: `U-${name}` });
    const dupName = dm.deviceCreate(name, { uuid: `U2-${name}` });
    assert.is(await errnoOf(dupName), 'EBUSY');
    await dupName.catch((e) => assert.instance(e, DeviceExistsError));
    const other = env.name('dup2');
    assert.is(await errnoOf(dm.deviceCreate(other, { uuid: `U-${name}` })), 'EBUSY');
    assert.is(await dm.findDevice(other), null);
    assert.is(await dm.findDevice({ uuid: `U2-${name}` }), null);
  });

  test('create with a minor in use → ENXIO (not EBUSY), nothing created', async () => {
    const a = await dm.deviceCreate(env.name('minor-a'));
    const b = env.name('minor-b');
    assert.is(await errnoOf(dm.deviceCreate(b, { dev: a.dev })), 'ENXIO');
    assert.is(await dm.findDevice(b), null);
  });

  test('raw: bad version, unknown command, short data_size, name+uuid, bad names', async () => {
    const v5 = raw(env, DM_DEV_STATUS, { version: [5, 0, 0], name: 'x' });
    assert.is(v5.code, 'EINVAL');
    const [maj, min] = await dm.version();
    assert.is(decodeDmIoctl(v5.buf).version[0], maj, 'kernel version written back on failure');
    assert.is(raw(env, DM_DEV_STATUS, { version: [4, min + 1, 0], name: 'x' }).code, 'EINVAL');
    assert.is(raw(env, _IOWR(DM_IOCTL, 30, 312), { name: 'x' }).code, 'ENOTTY');
    const short = buildDmRequest({ version: [4, 0, 0], name: 'x' });
    short.writeUInt32LE(300, 12);
    const fd = env.open(`${env.devDir}/mapper/control`, O_RDWR | O_CLOEXEC);
    assert.is(await errnoOf(() => env.sys.ioctl(fd, DM_DEV_STATUS, short, 'DM_DEV_STATUS')), 'EINVAL');
    env.close(fd);
    const name = env.name('both');
    await dm.deviceCreate(name, { uuid: `U-${name}` });
    assert.is(raw(env, DM_DEV_STATUS, { name, uuid: `U-${name}` }).code, 'EINVAL');
    assert.is(raw(env, DM_DEV_CREATE, { name: '' }).code, 'EINVAL');
    // 'control', '.' and '..' are refused only by kernels newer than 6.1: not part of the contract.
    assert.is(raw(env, DM_DEV_CREATE, { name: `a/${name}` }).code, 'EINVAL');
    // name + dev: the lookup fails
    assert.is(raw(env, DM_DEV_STATUS, { name, dev: 0xfd00n }).code, 'ENXIO');
  });

  test('table load → inactive; resume → live; table round-trips exactly', async () => {
    const loop = await env.blockDevice(MiB);
    const name = env.name('table');
    await dm.deviceCreate(name);
    const lines = [
      linearTarget(0n, 1024n, { device: { major: loop.major, minor: loop.minor }, offset: 0n }),
      zeroTarget(1024n, 512n),
      errorTarget(1536n, 512n),
    ];
    const loaded = await dm.tableLoad(name, lines);
    assert.is(loaded.inactiveTable, true);
    assert.is(loaded.activeTable, false);
    const inactive = await dm.tableStatus(name, { mode: 'table', inactive: true });
    assert.equal(inactive, lines);
    // No live table: the kernel leaves data_start as sent (312) and answers data_size 305, 0 targets.
    const none = raw(env, DM_TABLE_STATUS, { name, flags: 1 << 4 }, undefined, 16384);
    assert.is(none.code, 'ok');
    const nh = decodeDmIoctl(none.buf);
    assert.equal([nh.data_start, nh.data_size, nh.target_count], [312, 305, 0]);
    const info = await dm.deviceInfo(name, { inactive: true });
    assert.is(info.targetCount, 3);
    const resumed = await dm.deviceResume(name);
    assert.is(resumed.activeTable, true);
    assert.is(resumed.inactiveTable, false);
    assert.is(resumed.suspended, false);
    assert.is(resumed.targetCount, 3);
    assert.equal(await dm.tableStatus(name, { mode: 'table' }), lines);
    const status = await dm.tableStatus(name);
    assert.equal(status.map((t) => [t.type, t.params]), [['linear', ''], ['zero', ''], ['error', '']]);
    assert.equal(await dm.tableDeps(name), [{ major: loop.major, minor: loop.minor }]);
  });

  test('a device path in a table comes back as major:minor', async () => {
    const loop = await env.blockDevice(MiB);
    const name = env.name('bypath');
    await dm.deviceCreate(name);
    await dm.tableLoad(name, [{ start: 0n, length: 1024n, type: 'linear', params: `${loop.path} 8` }]);
    assert.equal(await dm.tableStatus(name, { mode: 'table', inactive: true }), [
      { start: 0n, length: 1024n, type: 'linear', params: `${loop.major}:${loop.minor} 8` },
    ]);
  });

  test('bad tables → EINVAL (gap, unknown type, bad params, zero targets)', async () => {
    const name = env.name('badtable');
    await dm.deviceCreate(name);
    assert.is(await errnoOf(dm.tableLoad(name, [{ start: 0n, length: 8n, type: 'no-such-target', params: '' }])), 'EINVAL');
    assert.is(await errnoOf(dm.tableLoad(name, [{ start: 0n, length: 8n, type: 'linear', params: 'nonsense' }])), 'EINVAL');
    assert.is(await errnoOf(dm.tableLoad(name, [{ start: 0n, length: 8n, type: 'zero', params: 'extra' }])), 'EINVAL');
    const gap = encodeTargetSpecs([
      { sector_start: 0n, length: 8n, target_type: 'zero', params: '' },
      { sector_start: 16n, length: 8n, target_type: 'zero', params: '' },
    ]);
    assert.is(raw(env, DM_TABLE_LOAD, { name, target_count: 2 }, gap).code, 'EINVAL');
    const start = encodeTargetSpecs([{ sector_start: 8n, length: 8n, target_type: 'zero', params: '' }]);
    assert.is(raw(env, DM_TABLE_LOAD, { name, target_count: 1 }, start).code, 'EINVAL');
    assert.is(raw(env, DM_TABLE_LOAD, { name, target_count: 0 }, Buffer.alloc(8)).code, 'EINVAL');
    const info = await dm.deviceInfo(name);
    assert.is(info.inactiveTable, false);
  });

  test('table clear drops the inactive table only', async () => {
    const { name } = await linearDevice(env, dm, 'clear');
    await dm.tableLoad(name, [zeroTarget(0n, 2048n)]);
    const cleared = await dm.tableClear(name);
    assert.is(cleared.inactiveTable, false);
    assert.is(cleared.activeTable, true);
    assert.is((await dm.tableStatus(name, { mode: 'table' }))[0]?.type, 'linear');
  });

  test('suspend/resume flags; suspend twice is a no-op; read-only table', async () => {
    const { name } = await linearDevice(env, dm, 'susp');
    assert.is((await dm.deviceSuspend(name)).suspended, true);
    assert.is((await dm.deviceSuspend(name)).suspended, true);
    assert.is((await dm.deviceInfo(name)).suspended, true);
    assert.is((await dm.deviceResume(name)).suspended, false);
    assert.is((await dm.deviceResume(name)).suspended, false);
    await dm.tableLoad(name, [zeroTarget(0n, 2048n)], { readOnly: true });
    assert.is((await dm.deviceInfo(name, { inactive: true })).readOnly, true);
    assert.is((await dm.deviceInfo(name)).readOnly, false);
    const ro = await dm.deviceResume(name);
    assert.is(ro.readOnly, true);
    assert.is(ro.suspended, false);
  });

  test('rename: new name works, old is gone, taken name → EBUSY', async () => {
    const { name } = await linearDevice(env, dm, 'ren');
    const to = env.name('renamed');
    await dm.deviceRename(name, { name: to });
    assert.is(await dm.findDevice(name), null);
    const info = await dm.deviceInfo(to);
    assert.is(info.uuid, `U-${name}`);
    assert.ok((await dm.listDevices()).some((d) => d.name === to));
    const other = env.name('taken');
    await dm.deviceCreate(other);
    assert.is(await errnoOf(dm.deviceRename(to, { name: other })), 'EBUSY');
    // the new-name check comes first: even a missing source reports EBUSY
    assert.is(await errnoOf(dm.deviceRename(env.name('missing'), { name: other })), 'EBUSY');
  });

  test('set uuid: once only (EINVAL after), not to a uuid in use (EBUSY)', async () => {
    const name = env.name('setuuid');
    await dm.deviceCreate(name);
    await dm.deviceRename(name, { uuid: `U-${name}` });
    assert.is((await dm.deviceInfo(name)).uuid, `U-${name}`);
    assert.is(await errnoOf(dm.deviceRename(name, { uuid: `U2-${name}` })), 'EINVAL');
    const other = env.name('setuuid2');
    await dm.deviceCreate(other);
    assert.is(await errnoOf(dm.deviceRename(other, { uuid: `U-${name}` })), 'EBUSY');
  });

  test('event numbers: table swap on resume and rename', async () => {
    const name = env.name('events');
    await dm.deviceCreate(name);
    const before = (await dm.deviceInfo(name)).eventNr;
    await dm.tableLoad(name, [zeroTarget(0n, 8n)]);
    const afterResume = (await dm.deviceResume(name)).eventNr;
    const to = env.name('events2');
    await dm.deviceRename(name, { name: to });
    const afterRename = (await dm.deviceInfo(to)).eventNr;
    assert.equal({ before, afterResume, afterRename }, { before: 0, afterResume: 0, afterRename: 1 });
  });

  test('remove while open → EBUSY; openCount counts the opener', async () => {
    const { name } = await linearDevice(env, dm, 'busy');
    const fd = env.open(dm.nodePath(name), fsc.O_RDONLY | O_CLOEXEC);
    assert.is((await dm.deviceInfo(name)).openCount, 1);
    const r = dm.deviceRemove(name);
    assert.is(await errnoOf(r), 'EBUSY');
    await r.catch((e) => assert.instance(e, DeviceBusyError));
    env.close(fd);
    assert.is((await dm.deviceInfo(name)).openCount, 0);
    assert.equal(await dm.deviceRemove(name), { deferred: false, attempts: 1 });
    assert.is(await dm.findDevice(name), null);
  });

  test('deferred remove: flagged while open, gone after the last close; cancel works', async () => {
    const { name } = await linearDevice(env, dm, 'deferred');
    let fd = env.open(dm.nodePath(name), fsc.O_RDONLY | O_CLOEXEC);
    assert.equal(await dm.deviceRemove(name, { deferred: true }), { deferred: true, attempts: 1 });
    assert.is((await dm.deviceInfo(name)).deferredRemove, true);
    await dm.cancelDeferredRemove(name);
    assert.is((await dm.deviceInfo(name)).deferredRemove, false);
    env.close(fd);
    assert.ok(await dm.findDevice(name));
    fd = env.open(dm.nodePath(name), fsc.O_RDONLY | O_CLOEXEC);
    await dm.deviceRemove(name, { deferred: true });
    env.close(fd);
    assert.ok(await env.eventually(async () => (await dm.findDevice(name)) === null), 'removed after last close');
  });

  test('a device used by another table is busy', async () => {
    const { name } = await linearDevice(env, dm, 'lower');
    const lower = await dm.deviceInfo(name);
    const upper = env.name('upper');
    await dm.createDevice(upper, [linearTarget(0n, 1024n, { device: lower.dev, offset: 0n })]);
    assert.is((await dm.deviceInfo(name)).openCount, 1);
    assert.is(await errnoOf(dm.deviceRemove(name)), 'EBUSY');
    assert.equal(await dm.tableDeps(upper), [lower.dev]);
    await dm.deviceRemove(upper);
    assert.is((await dm.deviceInfo(name)).openCount, 0);
  });

  test('messages: no handler → EINVAL; outside the device → EINVAL; no live table → EINVAL', async () => {
    const { name } = await linearDevice(env, dm, 'msg');
    assert.is(await errnoOf(dm.targetMessage(name, 0n, 'hello')), 'EINVAL');
    assert.is(await errnoOf(dm.targetMessage(name, 1n << 40n, 'hello')), 'EINVAL');
    const bare = env.name('msg-bare');
    await dm.deviceCreate(bare);
    assert.is(await errnoOf(dm.targetMessage(bare, 0n, 'hello')), 'EINVAL');
    // dm-core messages need no table
    assert.is(await dm.targetMessage(bare, 0n, '@cancel_deferred_remove'), null);
  });

  test('block ioctls on a dm device: size and sector size', async () => {
    const { name } = await linearDevice(env, dm, 'blk', 4096n);
    const fd = env.open(dm.nodePath(name), fsc.O_RDONLY | O_CLOEXEC);
    const b = Buffer.alloc(8);
    env.sys.ioctl(fd, BLKGETSIZE64, b, 'BLKGETSIZE64');
    assert.is(b.readBigUInt64LE(0), 4096n * 512n);
    env.sys.ioctl(fd, BLKSSZGET, b, 'BLKSSZGET');
    assert.is(b.readInt32LE(0), 512);
    env.close(fd);
  });

  test('target versions: linear listed; GET_TARGET_VERSION agrees; unknown → null', async () => {
    const v = await dm.getTargetVersion('linear');
    assert.ok(v);
    const listed = (await dm.listVersions()).find((t) => t.name === 'linear');
    assert.equal(listed?.version, v);
    assert.is(await dm.getTargetVersion('no-such-target'), null);
  });

  test('ARM_POLL + poll: quiet until an event, then POLLIN', async () => {
    const { name } = await linearDevice(env, dm, 'poll');
    const watcher = env.dm(env.sys);
    await watcher.armPoll();
    assert.is(await watcher.waitForEvent({ timeoutMs: 50 }), false);
    await dm.deviceRename(name, { name: env.name('poll2') });
    assert.is(await watcher.waitForEvent({ timeoutMs: 2000 }), true);
    watcher.close();
  });

  test('DEV_WAIT returns once the event counter moves', async () => {
    const { name } = await linearDevice(env, dm, 'wait');
    const { eventNr } = await dm.deviceInfo(name);
    const waiter = env.dm(env.sys);
    const waiting = waiter.deviceWait({ uuid: `U-${name}` }, eventNr);
    await new Promise((r) => setTimeout(r, 50));
    const to = env.name('wait2');
    await dm.deviceRename(name, { name: to });
    const r = await waiting;
    assert.is(r.info.eventNr, eventNr + 1);
    // dev_wait writes the name back at lookup, before it sleeps: the reply has the old one.
    assert.is(r.info.name, name);
    assert.is(r.targets[0]?.type, 'linear');
    waiter.close();
  });

  test('LIST_DEVICES grows its buffer past BUFFER_FULL for 200 devices', async () => {
    const { sys, count } = counting(env.sys);
    const lister = env.dm(sys);
    const prefix = env.name('many');
    const made: string[] = [];
    for (let i = 0; i < 200; i++) {
      const n = `${prefix}-${String(i).padStart(3, '0')}-with-a-long-enough-name-to-overflow`;
      (env as { track?: (n: string) => void }).track?.(n);
      await dm.deviceCreate(n, { uuid: `U-${n}` });
      made.push(n);
    }
    const list = await lister.listDevices();
    const ours = list.filter((d) => d.name.startsWith(prefix));
    assert.is(ours.length, 200);
    assert.ok(ours.every((d) => d.uuid === `U-${d.name}`));
    assert.ok((count.get('DM_LIST_DEVICES') ?? 0) >= 2, `LIST_DEVICES calls: ${count.get('DM_LIST_DEVICES')}`);
    // raw: a buffer with room for nothing → BUFFER_FULL and success
    const r = raw(env, DM_LIST_DEVICES, { flags: 1 << 14 }, undefined, 320);
    assert.is(r.code, 'ok');
    assert.ok(decodeDmIoctl(r.buf).flags & (1 << 8));
    for (const n of made) await dm.deviceRemove(n);
    lister.close();
  });

  test.run();
}
