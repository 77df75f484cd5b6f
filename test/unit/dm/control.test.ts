import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';
import {
  DM_DEFERRED_REMOVE,
  DM_DEV_SUSPEND_CMD,
  DM_DEV_WAIT_CMD,
  DM_IMA_MEASUREMENT_FLAG,
  DM_NOFLUSH_FLAG,
  DM_PERSISTENT_DEV_FLAG,
  DM_QUERY_INACTIVE_TABLE_FLAG,
  DM_READONLY_FLAG,
  DM_SECURE_DATA_FLAG,
  DM_STATUS_TABLE_FLAG,
  DM_SUSPEND_FLAG,
  DM_TABLE_STATUS_CMD,
  DM_TARGET_MSG_CMD,
  DM_UUID_FLAG,
  GETVAL,
  IPC_RMID,
  IoctlError,
  SETVAL,
  type Syscalls,
  type SysvSemaphores,
} from '../../../src/ioctl/index.js';
import {
  DeviceBusyError,
  DeviceExistsError,
  DeviceNotFoundError,
  DmControl,
  DmUnavailableError,
  linearTarget,
  usesWorker,
  zeroTarget,
  type DmControlOptions,
} from '../../../src/dm/index.js';
import { FakeDm } from './fake-dm.js';

function setup(opts: Partial<DmControlOptions> = {}) {
  const k = new FakeDm();
  const sleeps: number[] = [];
  const dm = new DmControl({
    syscalls: k.syscalls(),
    nodes: 'manage',
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
    },
    ...opts,
  });
  return { k, dm, sleeps };
}
const lin = linearTarget(0n, 2048n, { device: { major: 7, minor: 0 }, offset: 0n });

test('version: stamps 4.0.0 and returns the kernel version; fd opened once', async () => {
  const { k, dm } = setup();
  assert.equal(await dm.version(), [4, 47, 0]);
  assert.equal(await dm.version(), [4, 47, 0]);
  assert.equal(k.seen.map((s) => s.header.version), [[4, 0, 0], [4, 0, 0]]);
  assert.equal(k.seen.map((s) => s.size), [312, 312]);
  assert.equal(dm.kernelVersion, [4, 47, 0]);
  dm.close();
  assert.not.ok(k.fdOpen);
});

test('each command gets its minimum interface version', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('a');
  await dm.targetMessage('a', 0n, 'x');
  await dm.armPoll();
  assert.equal(
    k.seen.map((s) => `${s.name} ${s.header.version.join('.')}`),
    ['DM_DEV_CREATE 4.0.0', 'DM_TARGET_MSG 4.2.0', 'DM_DEV_ARM_POLL 4.36.0'],
  );
});

test('list: starts at 16 KiB, doubles while BUFFER_FULL, then decodes', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('b', { uuid: 'U-b' });
  await dm.deviceCreate('a');
  k.seen.length = 0;
  k.listBufferFull = 2;
  const list = await dm.listDevices();
  assert.equal(k.seen.map((s) => s.size), [16384, 32768, 65536]);
  assert.equal(k.seen.map((s) => s.header.flags), [DM_UUID_FLAG, DM_UUID_FLAG, DM_UUID_FLAG]);
  assert.equal(k.seen[0]!.header.name, '');
  assert.equal(k.seen[0]!.header.uuid, '');
  assert.equal(list, [
    { name: 'b', dev: { major: 253, minor: 0 }, eventNr: 0, uuid: 'U-b' },
    { name: 'a', dev: { major: 253, minor: 1 }, eventNr: 0, uuid: null },
  ]);
});

test('list: buffer growth is bounded (16 doublings) and then a KernelOutputError', async () => {
  const { k, dm } = setup();
  k.listBufferFull = 1000;
  try {
    await dm.listDevices();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, KernelOutputError);
  }
  assert.is(k.seen.length, 17);
  assert.is(k.seen.at(-1)!.size, 16384 * 2 ** 16);
});

test('list: prefix filters are sent and re-applied client-side', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('app-1', { uuid: 'APP-1' });
  await dm.deviceCreate('app-2');
  await dm.deviceCreate('other', { uuid: 'APP-3' });
  k.seen.length = 0;
  assert.equal((await dm.listDevices({ namePrefix: 'app' })).map((d) => d.name), ['app-1', 'app-2']);
  assert.equal((await dm.listDevices({ uuidPrefix: 'APP-' })).map((d) => d.name), ['app-1', 'other']);
  assert.equal(k.seen.map((s) => [s.header.name, s.header.uuid]), [['app', ''], ['', 'APP-']]);
  // An old kernel (no prefix filter, no uuids in the list): same answers, uuids fetched by info.
  k.kernelMinor = 37;
  assert.equal((await dm.listDevices({ uuidPrefix: 'APP-' })).map((d) => [d.name, d.uuid]), [['app-1', 'APP-1'], ['other', 'APP-3']]);
});

test('flags are masked to the command allowed set', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('a', { dev: { major: 253, minor: 9 } });
  await dm.tableLoad('a', [lin], { readOnly: true, secure: true });
  await dm.tableStatus('a', { mode: 'table', inactive: true, noflush: true });
  await dm.deviceSuspend('a', { noflush: true, skipLockfs: true });
  await dm.deviceInfo('a', { inactive: true });
  const flags = k.seen.map((s) => [s.name, s.header.flags]);
  assert.equal(flags[0], ['DM_DEV_CREATE', DM_PERSISTENT_DEV_FLAG]);
  assert.equal(flags[1], ['DM_TABLE_LOAD', DM_READONLY_FLAG | DM_SECURE_DATA_FLAG]);
  assert.equal(flags[2], ['DM_TABLE_STATUS', DM_STATUS_TABLE_FLAG | DM_QUERY_INACTIVE_TABLE_FLAG | 0x800]);
  assert.equal(flags[3], ['DM_DEV_SUSPEND', DM_SUSPEND_FLAG | 0x800 | 0x400]);
  assert.equal(flags[4], ['DM_DEV_STATUS', DM_QUERY_INACTIVE_TABLE_FLAG]);
  assert.is(k.seen[0]!.header.dev, 0xfd09n);
  // The mask itself: IMA is allowed for TABLE_STATUS only, DEFERRED only for removes.
  const { maskFlags } = await import('../../../src/dm/options.js');
  assert.is(maskFlags(12, DM_IMA_MEASUREMENT_FLAG | DM_DEFERRED_REMOVE), DM_IMA_MEASUREMENT_FLAG);
  assert.is(maskFlags(4, DM_IMA_MEASUREMENT_FLAG | DM_DEFERRED_REMOVE | DM_SUSPEND_FLAG), DM_DEFERRED_REMOVE);
  assert.is(maskFlags(3, 0xffffffff), DM_PERSISTENT_DEV_FLAG);
  assert.is(maskFlags(0, 0xffffffff), 0);
});

test('blocking commands use the async path; quick ones the sync path', async () => {
  const { k, dm } = setup();
  await dm.createDevice('a', [lin]);
  await dm.deviceInfo('a');
  await dm.tableStatus('a');
  await dm.deviceSuspend('a');
  await dm.targetMessage('a', 0n, 'x');
  await dm.deviceRemove('a');
  assert.equal(k.seen.map((s) => `${s.name}:${s.async ? 'async' : 'sync'}`), [
    'DM_DEV_CREATE:sync',
    'DM_TABLE_LOAD:async',
    'DM_DEV_SUSPEND:async',
    'DM_DEV_STATUS:sync',
    'DM_TABLE_STATUS:async',
    'DM_DEV_SUSPEND:async',
    'DM_TARGET_MSG:async',
    'DM_DEV_REMOVE:async',
  ]);
});

test('TABLE_STATUS: sync for table reads and noflush status (no thin commit), async otherwise', async () => {
  const { k, dm } = setup();
  await dm.createDevice('a', [lin]);
  k.seen.length = 0;
  await dm.tableStatus('a');
  await dm.tableStatus('a', { noflush: true });
  await dm.tableStatus('a', { mode: 'table' });
  await dm.tableStatus('a', { mode: 'table', inactive: true });
  assert.equal(
    k.seen.map((s) => `${s.name}:${s.async ? 'async' : 'sync'}`),
    ['DM_TABLE_STATUS:async', 'DM_TABLE_STATUS:sync', 'DM_TABLE_STATUS:sync', 'DM_TABLE_STATUS:sync'],
  );
  assert.is(usesWorker(DM_TABLE_STATUS_CMD, 0), true);
  assert.is(usesWorker(DM_TABLE_STATUS_CMD, DM_NOFLUSH_FLAG), false);
  assert.is(usesWorker(DM_TABLE_STATUS_CMD, DM_STATUS_TABLE_FLAG), false);
  // Only TABLE_STATUS has the exception: a noflush suspend still flushes nothing but waits for I/O.
  assert.is(usesWorker(DM_DEV_SUSPEND_CMD, DM_NOFLUSH_FLAG), true);
  assert.is(usesWorker(DM_DEV_WAIT_CMD, DM_STATUS_TABLE_FLAG), true);
  assert.is(usesWorker(DM_TARGET_MSG_CMD, DM_NOFLUSH_FLAG), true);
});

test('table load payload, status and table decoding', async () => {
  const { k, dm } = setup();
  await dm.createDevice('a', [zeroTarget(0n, 8n), { ...lin, start: 8n }]);
  const load = k.seen.find((s) => s.name === 'DM_TABLE_LOAD')!;
  assert.is(load.header.target_count, 2);
  assert.is(load.size, 312 + 48 + 48); // zero: 40+1 → 48; linear "7:0 0": 40+6 → 48
  assert.equal(await dm.tableStatus('a', { mode: 'table' }), [
    { start: 0n, length: 8n, type: 'zero', params: '' },
    { start: 8n, length: 2048n, type: 'linear', params: '7:0 0' },
  ]);
  assert.equal((await dm.tableStatus('a')).map((t) => t.params), ['status-of zero', 'status-of linear']);
});

test('info decodes flags and numbers', async () => {
  const { dm } = setup();
  const created = await dm.deviceCreate('a', { uuid: 'U' });
  assert.equal(created, {
    name: 'a',
    uuid: 'U',
    dev: { major: 253, minor: 0 },
    suspended: false,
    readOnly: false,
    activeTable: false,
    inactiveTable: false,
    deferredRemove: false,
    internalSuspend: false,
    openCount: 0,
    eventNr: 0,
    targetCount: 0,
  });
  await dm.tableLoad('a', [lin]);
  const staged = await dm.deviceInfo({ uuid: 'U' });
  assert.ok(staged.inactiveTable);
  assert.not.ok(staged.activeTable);
  const live = await dm.deviceResume('a');
  assert.equal([live.suspended, live.activeTable, live.inactiveTable, live.targetCount, live.eventNr], [false, true, false, 1, 0]);
});

test('ENXIO on lookup → DeviceNotFoundError with cause and header snapshot', async () => {
  const { dm } = setup();
  for (const call of [
    () => dm.deviceInfo('nope'),
    () => dm.tableStatus({ uuid: 'U-nope' }),
    () => dm.deviceRemove('nope'),
    () => dm.deviceSuspend({ dev: { major: 253, minor: 77 } }),
  ]) {
    try {
      await call();
      assert.unreachable();
    } catch (e) {
      assert.instance(e, DeviceNotFoundError);
      const cause = (e as DeviceNotFoundError).cause as IoctlError;
      assert.instance(cause, IoctlError);
      assert.is(cause.code, 'ENXIO');
      assert.ok(cause.header);
      assert.equal(cause.header!.version, [4, 47, 0]);
    }
  }
  assert.is(await dm.findDevice('nope'), null);
});

test('EBUSY on create → DeviceExistsError (name and uuid)', async () => {
  const { dm } = setup();
  await dm.deviceCreate('a', { uuid: 'U' });
  for (const [name, uuid] of [['a', undefined], ['b', 'U']] as const) {
    try {
      await dm.deviceCreate(name, uuid ? { uuid } : {});
      assert.unreachable();
    } catch (e) {
      assert.instance(e, DeviceExistsError);
      assert.is(((e as DeviceExistsError).cause as IoctlError).code, 'EBUSY');
      assert.is(((e as DeviceExistsError).cause as IoctlError).header!.name, name);
    }
  }
});

test('ENXIO on create: DeviceExistsError only for a requested minor, else the raw IoctlError', async () => {
  const { k, dm } = setup();
  k.failNext.DM_DEV_CREATE = 6;
  try {
    await dm.deviceCreate('a', { dev: { major: 253, minor: 7 } });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DeviceExistsError);
    assert.is(((e as DeviceExistsError).cause as IoctlError).code, 'ENXIO');
  }
  k.failNext.DM_DEV_CREATE = 6;
  try {
    await dm.deviceCreate('b');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, IoctlError);
    assert.is((e as IoctlError).code, 'ENXIO');
  }
});

test('other errnos propagate as IoctlError with request name and snapshot', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('a');
  k.failNext.DM_TABLE_LOAD = 22;
  try {
    await dm.tableLoad('a', [lin], { readOnly: true });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, IoctlError);
    const err = e as IoctlError;
    assert.is(err.code, 'EINVAL');
    assert.is(err.request, 'DM_TABLE_LOAD');
    assert.equal(
      [err.header!.name, err.header!.flags, err.header!.target_count, err.header!.data_size],
      ['a', DM_READONLY_FLAG, 1, 360],
    );
    assert.match(err.message, /ioctl DM_TABLE_LOAD failed: EINVAL .*name=a/);
  }
});

test('invalid input is refused before any syscall', async () => {
  const { k, dm } = setup();
  const bad = [
    () => dm.deviceCreate('has space'),
    () => dm.deviceCreate('ok', { uuid: 'bad/uuid é' }),
    () => dm.tableLoad('a', [{ ...lin, start: 1n }]),
    () => dm.deviceInfo(''),
    () => dm.deviceInfo({ dev: { major: 0, minor: 0 } }),
    () => dm.targetMessage('a', 0n, ''),
    () => dm.setGeometry('a', { cylinders: 70000, heads: 1, sectors: 1, start: 0n }),
    () => dm.setGeometry('a', { cylinders: 1, heads: 2, sectors: 3, start: 7n }),
    () => dm.deviceRename('a', { name: 'control' }),
    () => dm.createDevice('x', []),
  ];
  for (const call of bad) {
    try {
      await call();
      assert.unreachable();
    } catch (e) {
      assert.instance(e, InvalidArgumentError);
    }
  }
  assert.equal(k.seen, []);
  assert.not.ok(k.devices.has('x'));
});

test('remove retries EBUSY under the policy, then succeeds', async () => {
  const { k, dm, sleeps } = setup();
  await dm.deviceCreate('a');
  k.removeBusy = 3;
  assert.equal(await dm.deviceRemove('a'), { deferred: false, attempts: 4 });
  assert.equal(sleeps, [200, 200, 200]);
  assert.ok(k.seen.filter((s) => s.name === 'DM_DEV_REMOVE').every((s) => s.async));
});

test('remove gives DeviceBusyError after the last attempt', async () => {
  const { k, dm, sleeps } = setup();
  await dm.deviceCreate('a');
  k.removeBusy = 100;
  try {
    await dm.deviceRemove('a', { retry: { attempts: 3, delayMs: 7 } });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DeviceBusyError);
    assert.is((e as DeviceBusyError).attempts, 3);
    assert.is(((e as DeviceBusyError).cause as IoctlError).code, 'EBUSY');
  }
  assert.equal(sleeps, [7, 7]);
  assert.is(k.seen.filter((s) => s.name === 'DM_DEV_REMOVE').length, 3);
});

test('remove retry is cancelled by an AbortSignal', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('a');
  k.removeBusy = 100;
  const ac = new AbortController();
  let n = 0;
  const dm2 = new DmControl({
    syscalls: k.syscalls(),
    nodes: 'none',
    sleep: async (_ms, signal) => {
      if (++n === 2) ac.abort(new Error('stop'));
      signal?.throwIfAborted();
    },
  });
  try {
    await dm2.deviceRemove('a', { signal: ac.signal });
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'stop');
  }
  assert.is(k.seen.filter((s) => s.name === 'DM_DEV_REMOVE').length, 2);
  assert.ok(k.devices.has('a'));
});

test('deferred remove and cancel', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('a');
  await dm.deviceRemove('a', { deferred: true });
  assert.is(k.seen.at(-1)!.header.flags, DM_DEFERRED_REMOVE);
  await dm.deviceCreate('b');
  await dm.cancelDeferredRemove('b');
  assert.is(k.seen.at(-1)!.name, 'DM_TARGET_MSG');
});

test('target message reply: text with DM_DATA_OUT_FLAG, else null', async () => {
  const { dm } = setup();
  await dm.deviceCreate('a');
  assert.is(await dm.targetMessage('a', 0n, 'echo'), 'pong');
  assert.is(await dm.targetMessage('a', 0n, 'other'), null);
});

test('manage policy: node created on resume, renamed, removed; stale node replaced', async () => {
  const { k, dm } = setup();
  k.fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0xfd63n });
  await dm.createDevice('a', [lin]);
  assert.equal(k.fs.entries.get('/dev/mapper/a'), { kind: 'blk', mode: 0o600, rdev: 0xfd00n });
  await dm.deviceRename('a', { name: 'b' });
  assert.not.ok(k.fs.entries.has('/dev/mapper/a'));
  assert.equal(k.fs.entries.get('/dev/mapper/b'), { kind: 'blk', mode: 0o600, rdev: 0xfd00n });
  await dm.deviceRename('b', { uuid: 'U' });
  assert.ok(k.fs.entries.has('/dev/mapper/b'));
  await dm.deviceRemove({ uuid: 'U' });
  assert.not.ok(k.fs.entries.has('/dev/mapper/b'));
  // Created but never resumed: no node.
  await dm.deviceCreate('c');
  assert.not.ok(k.fs.entries.has('/dev/mapper/c'));
});

test('rename: uuid/dev refs are resolved to a name; EBUSY → DeviceExistsError', async () => {
  const { k, dm } = setup();
  await dm.deviceCreate('a', { uuid: 'U' });
  await dm.deviceCreate('b');
  k.seen.length = 0;
  const info = await dm.deviceRename({ uuid: 'U' }, { name: 'c' });
  assert.is(info.name, 'c');
  assert.equal(k.seen.map((s) => `${s.name} ${s.header.name}`), ['DM_DEV_STATUS ', 'DM_DEV_RENAME a']);
  try {
    await dm.deviceRename('c', { name: 'b' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DeviceExistsError);
  }
});

test('udev policy: waits for udev, then falls back to creating the node itself', async () => {
  const k = udevFake();
  let polls = 0;
  // A clock that only the polls advance: the outcome cannot depend on the host's speed (a
  // loaded CI host once took longer than the 50 ms between two polls in real time).
  let now = 0;
  const dm = new DmControl({
    syscalls: k.syscalls(),
    udevTimeoutMs: 50,
    clock: () => now,
    sleep: async (ms) => {
      now += ms;
      // "udev" creates the symlink on the 3rd poll
      if (++polls === 3) {
        k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
        k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
      }
    },
  });
  await dm.createDevice('a', [lin]);
  assert.is(polls, 3);
  assert.equal(k.fs.entries.get('/dev/mapper/a'), { kind: 'link', target: '../dm-0' });
  const resume = k.seen.find((s) => s.name === 'DM_DEV_SUSPEND')!;
  assert.is(resume.header.event_nr, 0x40 << 16);
  // Remove: udev never acts here, so after the timeout we unlink ourselves.
  const t0 = now;
  await dm.deviceRemove('a');
  assert.not.ok(k.fs.entries.has('/dev/mapper/a'));
  assert.is(k.seen.at(-1)!.header.event_nr, 0x40 << 16);
  assert.is(now - t0, 60, 'waited the whole udevTimeoutMs (50 ms, in 20 ms polls) before unlinking');
});

/**
 * udev running, /dev/mapper/a a leftover link to `target` of an earlier device of that name, and
 * a new device 'a' about to get dm-0. "udev" handles the old remove on the 2nd poll (unlinks), and
 * our resume's change on the next poll after it (links ../dm-0); `events` records both.
 */
function staleLinkScenario(target: string): { k: FakeDm; dm: DmControl; events: string[]; state: { polls: number } } {
  const k = udevFake();
  k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
  k.fs.entries.set('/dev/mapper/a', { kind: 'link', target });
  const events: string[] = [];
  const state = { polls: 0 };
  const resumes = (): number => k.seen.filter((x) => x.name === 'DM_DEV_SUSPEND').length;
  const dm = new DmControl({
    syscalls: k.syscalls(),
    udevTimeoutMs: 60_000,
    sleep: async () => {
      state.polls++;
      if (state.polls === 2) {
        k.fs.entries.delete('/dev/mapper/a');
        events.push(`udev removed the stale link (resumes so far: ${resumes()})`);
      } else if (resumes() === 1 && !k.fs.entries.has('/dev/mapper/a')) {
        k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
        events.push('udev linked the new device');
      }
    },
  });
  return { k, dm, events, state };
}

test('udev policy: a stale link of an earlier device of the same name is waited away before the first resume', async () => {
  // Seen in the udev CI cell: a deferred remove completed (udev's blkid closed the device), the
  // DeviceSet created the name again and got the same minor, and udev had not yet handled the
  // old "remove": ../dm-0 resolved to the new device, createDevice returned, udev then deleted the
  // link and the caller's open failed with ENOENT.
  const { dm, events, state } = staleLinkScenario('../dm-0');
  const info = await dm.createDevice('a', [lin]);
  events.push('createDevice returned');
  assert.equal(info.dev, { major: 253, minor: 0 });
  assert.equal(events, ['udev removed the stale link (resumes so far: 0)', 'udev linked the new device', 'createDevice returned']);
  // A later resume of the same (no longer fresh) device does not wait for anything.
  state.polls = 0;
  await dm.deviceSuspend('a');
  await dm.deviceResume('a');
  assert.is(state.polls, 0);
});

function udevFake(): FakeDm {
  const k = new FakeDm();
  k.fs.entries.set('/run', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev/control', { kind: 'file', mode: 0o600 });
  return k;
}

test('udev policy: a remove returns once udev unlinked the link, not when it merely dangles', async () => {
  // The kernel drops /dev/dm-N at once, so stat(2) of udev's link says ENOENT long before udev
  // handles the "remove" uevent. Returning then let a re-create of the name race udev's late
  // unlink (the DeviceSet's grow path: resize2fs met ENOENT in the udev CI cell).
  const k = udevFake();
  k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
  let polls = 0;
  let removes = 0;
  const dm = new DmControl({
    syscalls: k.syscalls(),
    udevTimeoutMs: 60_000,
    sleep: async () => {
      polls++;
      if (!k.fs.entries.has('/dev/mapper/a') && removes === 0) k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
      // "udev" handles the remove on the 3rd poll after it.
      else if (removes === 1 && polls === 3) k.fs.entries.delete('/dev/mapper/a');
    },
  });
  await dm.createDevice('a', [lin]);
  k.fs.entries.delete('/dev/dm-0'); // what the kernel does on DM_DEV_REMOVE (devtmpfs)
  polls = 0;
  removes = 1;
  k.fs.calls.length = 0;
  await dm.deviceRemove('a');
  assert.is(polls, 3, 'waited for udev while the link dangled');
  assert.not.ok(k.fs.entries.has('/dev/mapper/a'));
  assert.equal(k.fs.calls, [], 'udev unlinked it, not us');
});

test('udev policy: a dangling link of an earlier device of the same name is waited away before the first resume', async () => {
  const { dm, events } = staleLinkScenario('../dm-7'); // dm-7 is gone: the link dangles
  await dm.createDevice('a', [lin]);
  events.push('createDevice returned');
  assert.equal(events, ['udev removed the stale link (resumes so far: 0)', 'udev linked the new device', 'createDevice returned']);
});

test('udev policy: a regular file at the node path is not waited for on remove, and never unlinked by us', async () => {
  const k = udevFake();
  let polls = 0;
  const dm = new DmControl({ syscalls: k.syscalls(), udevTimeoutMs: 60_000, sleep: async () => void polls++ });
  await dm.deviceCreate('a');
  k.fs.entries.set('/dev/mapper/a', { kind: 'file', mode: 0o644 });
  await dm.deviceRemove('a');
  assert.is(polls, 0);
  assert.equal(k.fs.entries.get('/dev/mapper/a'), { kind: 'file', mode: 0o644 });
});

/**
 * SysV semaphores for the cookie tests: a table of sets, and `udev`, called when the library
 * waits for zero, which stands for udev handling the queued uevents (and running
 * `dmsetup udevcomplete`, i.e. -1 on the cookie's semaphore).
 */
function fakeSysv(udev: (complete: () => void) => void = (complete) => complete()) {
  const sets = new Map<number, { key: number; val: number; udevRan?: boolean }>();
  const log: string[] = [];
  let next = 7;
  const need = (id: number) => {
    const s = sets.get(id);
    if (!s) throw new IoctlError({ syscall: 'semop', errno: 22 });
    return s;
  };
  const sysv: SysvSemaphores = {
    semget(key, _n, flags) {
      log.push(`semget ${key.toString(16)} ${flags.toString(8)}`);
      if ([...sets.values()].some((s) => s.key === key)) throw new IoctlError({ syscall: 'semget', errno: 17 });
      sets.set(next, { key, val: 0 });
      return next++;
    },
    semctl(id, _num, cmd, val = 0) {
      const s = need(id);
      if (cmd === GETVAL) {
        // udev gets to run once the library polls for zero (its wait).
        if (s.udevRan !== true) {
          s.udevRan = true;
          udev(() => {
            s.val -= 1;
            log.push(`udevcomplete -> ${s.val}`);
          });
        }
        log.push(`getval ${s.val}`);
        return s.val;
      }
      log.push(`semctl ${cmd} ${val}`);
      if (cmd === SETVAL) s.val = val;
      if (cmd === IPC_RMID) sets.delete(id);
      return 0;
    },
    semop(id, ops) {
      const s = need(id);
      for (const o of ops) {
        if (s.val + o.op < 0) throw new IoctlError({ syscall: 'semop', errno: 11 });
        s.val += o.op;
        log.push(`semop ${o.op} -> ${s.val}`);
      }
    },
  };
  return { sysv, sets, log };
}

function udevFakeWith(sysv: SysvSemaphores): { k: FakeDm; syscalls: Syscalls } {
  const k = udevFake();
  const base = k.syscalls();
  const syscalls = new Proxy(base, { get: (t, p) => (p === 'sysv' ? sysv : (t as unknown as Record<string | symbol, unknown>)[p]) });
  return { k, syscalls };
}

test('udev cookie: the resume carries (flags << 16) | base, and createDevice returns once udev completed the cookie', async () => {
  const events: string[] = [];
  let k!: FakeDm;
  const { sysv, sets, log } = fakeSysv((complete) => {
    // udev handles a late event of an earlier device on this minor first: it reads the NEW name
    // from sysfs and links it, then that device's "remove" deletes the link; then our event.
    k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
    events.push('udev: late event of the old device links the name');
    k.fs.entries.delete('/dev/mapper/a');
    events.push("udev: the old device's remove unlinks it");
    k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
    events.push('udev: our change links it; 95-dm-notify completes the cookie');
    complete();
  });
  const made = udevFakeWith(sysv);
  k = made.k;
  k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
  let polls = 0;
  const dm = new DmControl({ syscalls: made.syscalls, udevTimeoutMs: 60_000, sleep: async () => void polls++ });
  await dm.createDevice('a', [lin]);
  events.push('createDevice returned');
  assert.equal(events.at(-1), 'createDevice returned');
  assert.is(events.length, 4);
  assert.equal(k.fs.entries.get('/dev/mapper/a'), { kind: 'link', target: '../dm-0' });
  assert.is(polls, 0, 'no polling at all: udev had completed the cookie at the first look');
  const key = Number.parseInt(log[0]!.split(' ')[1]!, 16);
  assert.is(key >>> 16, 0x0d4d);
  assert.is(log[0], `semget ${key.toString(16)} ${(0o1000 | 0o2000 | 0o600).toString(8)}`);
  const resume = k.seen.find((x) => x.name === 'DM_DEV_SUSPEND')!;
  assert.is(resume.header.event_nr, ((0x40 << 16) | (key & 0xffff)) >>> 0);
  assert.equal(log.slice(1), [`semctl ${SETVAL} 1`, 'semop 1 -> 2', 'semop -1 -> 1', 'udevcomplete -> 0', 'getval 0', `semctl ${IPC_RMID} 0`]);
  assert.is(sets.size, 0, 'the semaphore is removed');
});

test('udev cookie: no uevent (deferred remove of a busy device) drops the cookie without waiting; remove and rename wait for it', async () => {
  const { sysv, sets, log } = fakeSysv();
  const { k, syscalls } = udevFakeWith(sysv);
  k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
  const dm = new DmControl({ syscalls, udevTimeoutMs: 60_000, sleep: async () => undefined });
  await dm.deviceCreate('a');
  k.uevents = false;
  log.length = 0;
  await dm.deviceRemove('a', { deferred: true });
  assert.equal(log.slice(1), [`semctl ${SETVAL} 1`, 'semop 1 -> 2', `semctl ${IPC_RMID} 0`]);
  assert.is(sets.size, 0);
  k.uevents = true;
  await dm.deviceCreate('b');
  log.length = 0;
  await dm.deviceRename('b', { name: 'c' });
  assert.ok(log.includes('udevcomplete -> 0'), log.join('\n'));
  log.length = 0;
  await dm.deviceRemove('c');
  assert.ok(log.includes('udevcomplete -> 0'), log.join('\n'));
  assert.is(sets.size, 0);
});

test('udev cookie: a timeout falls back to the node itself without polling; ENOSYS from semget falls back to polling, once', async () => {
  const never = fakeSysv(() => undefined);
  const a = udevFakeWith(never.sysv);
  a.k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
  const dm = new DmControl({ syscalls: a.syscalls, udevTimeoutMs: 100, sleep: () => new Promise((r) => setTimeout(r, 5)) });
  await dm.createDevice('a', [lin]);
  assert.equal(a.k.fs.entries.get('/dev/mapper/a'), { kind: 'blk', mode: 0o600, rdev: 0xfd00n }, 'the fallback made the node');
  assert.ok(never.log.includes('getval 1'), 'the cookie was never completed');
  assert.is(never.sets.size, 0);

  let semgets = 0;
  const nosys: SysvSemaphores = {
    semget: () => {
      semgets++;
      throw new IoctlError({ syscall: 'semget', errno: 38 });
    },
    semctl: () => 0,
    semop: () => undefined,
  };
  const b = udevFakeWith(nosys);
  let polls2 = 0;
  const dm2 = new DmControl({
    syscalls: b.syscalls,
    udevTimeoutMs: 60_000,
    sleep: async () => {
      if (++polls2 === 2) b.k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
    },
  });
  b.k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
  await dm2.createDevice('a', [lin]);
  assert.is(polls2, 2, 'watched the node instead');
  await dm2.deviceSuspend('a');
  await dm2.deviceResume('a');
  assert.is(semgets, 1, 'ENOSYS is remembered');
});

test('udev policy: an entry that cannot pass for the new device (other numbers) is not waited for before the resume', async () => {
  const k = udevFake();
  k.fs.entries.set('/dev/dm-0', { kind: 'blk', mode: 0o660, rdev: 0xfd00n });
  k.fs.entries.set('/dev/mapper/a', { kind: 'blk', mode: 0o600, rdev: 0x103n }); // 1:3, someone's leftover
  const resumesAtPoll: number[] = [];
  const dm = new DmControl({
    syscalls: k.syscalls(),
    udevTimeoutMs: 60_000,
    sleep: async () => {
      resumesAtPoll.push(k.seen.filter((x) => x.name === 'DM_DEV_SUSPEND').length);
      // "udev" links the device once it has seen our resume (replacing the leftover).
      if (resumesAtPoll.at(-1) === 1) k.fs.entries.set('/dev/mapper/a', { kind: 'link', target: '../dm-0' });
    },
  });
  await dm.createDevice('a', [lin]);
  assert.equal(resumesAtPoll, [1], 'the only poll came after the resume');
});

test('udev absent: the negative answer is reused for udevRecheckMs; a present udev is re-checked each time', async () => {
  const k = new FakeDm();
  const statted: string[] = [];
  const sys = k.syscalls();
  const syscalls = { ...sys, stat: (p: string) => (statted.push(p), sys.stat(p)) };
  const udevStats = (): number => statted.filter((p) => p === '/run/udev/control').length;
  let now = 1000;
  const dm = new DmControl({ syscalls, udevRecheckMs: 200, clock: () => now, sleep: async () => {} });
  await dm.createDevice('a', [lin]);
  await dm.deviceSuspend('a');
  await dm.deviceResume('a');
  await dm.deviceRemove('a');
  assert.is(udevStats(), 1, 'one stat for three resumes/removes within the window');
  // udev starts: noticed once the window has passed; from then on every operation re-checks.
  k.fs.entries.set('/run', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev/control', { kind: 'file', mode: 0o600 });
  await dm.createDevice('b', [lin]);
  assert.is(k.seen.at(-1)!.header.event_nr, 0, 'still within the window: manage, cookie 0');
  now += 199;
  await dm.deviceSuspend('b');
  await dm.deviceResume('b');
  assert.is(k.seen.at(-1)!.header.event_nr, 0, 'still within the window at 199 ms');
  now += 1;
  const before = udevStats();
  await dm.deviceSuspend('b');
  await dm.deviceResume('b');
  assert.is(k.seen.at(-1)!.header.event_nr, 0x40 << 16, 'udev noticed: udev policy cookie');
  await dm.deviceSuspend('b');
  await dm.deviceResume('b');
  assert.is(udevStats(), before + 2, 'positive answers are not cached');
  // nodes: 'none' never asks.
  const none = new DmControl({ syscalls, nodes: 'none' });
  const n0 = udevStats();
  await none.createDevice('c', [lin]);
  await none.deviceRemove('c');
  assert.is(udevStats(), n0);
  // udevRecheckMs 0: every operation asks.
  k.fs.entries.delete('/run/udev/control');
  const every = new DmControl({ syscalls, udevRecheckMs: 0 });
  const e0 = udevStats();
  await every.createDevice('d', [lin]);
  await every.deviceRemove('d');
  assert.is(udevStats(), e0 + 2);
});

test('manage policy while udev runs disables the dm and subsystem rules in the cookie', async () => {
  const { k, dm } = setup();
  k.fs.entries.set('/run', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev', { kind: 'dir', mode: 0o755 });
  k.fs.entries.set('/run/udev/control', { kind: 'file', mode: 0o600 });
  await dm.createDevice('a', [lin]);
  assert.is(k.seen.find((s) => s.name === 'DM_DEV_SUSPEND')!.header.event_nr, (0x40 | 0x1 | 0x2) << 16);
});

test('createDevice rolls back (removes) when the load fails', async () => {
  const { k, dm } = setup();
  k.failNext.DM_TABLE_LOAD = 22;
  try {
    await dm.createDevice('a', [lin]);
    assert.unreachable();
  } catch (e) {
    assert.is((e as IoctlError).code, 'EINVAL');
  }
  assert.equal(k.seen.map((s) => s.name), ['DM_DEV_CREATE', 'DM_TABLE_LOAD', 'DM_DEV_REMOVE']);
  assert.is(k.devices.size, 0);
});

test('control node is created when missing; ENODEV on open → DmUnavailableError', async () => {
  const k = new FakeDm();
  k.fs.entries.delete('/dev/mapper/control');
  k.fs.entries.delete('/dev/mapper');
  const dm = new DmControl({ syscalls: k.syscalls(), nodes: 'none' });
  await dm.version();
  assert.equal(k.fs.calls.slice(0, 2), ['mkdir /dev/mapper 755', 'mknod /dev/mapper/control 20600 aec']);
  const sys = k.syscalls();
  const nodev = new DmControl({
    syscalls: { ...sys, stat: sys.stat, mknod: sys.mknod, mkdir: sys.mkdir, open: () => { throw new IoctlError({ syscall: 'open', errno: 19, path: '/dev/mapper/control' }); } },
  });
  try {
    await nodev.version();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DmUnavailableError);
  }
});

test('waitForEvent: true on POLLIN, false on timeout, rejects on abort', async () => {
  const { k, dm } = setup();
  k.pollResults = [0, 1];
  assert.is(await dm.waitForEvent(), true);
  assert.is(await dm.waitForEvent({ timeoutMs: 1 }), false);
  const ac = new AbortController();
  ac.abort(new Error('bye'));
  try {
    await dm.waitForEvent({ signal: ac.signal });
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'bye');
  }
});

test.run();
