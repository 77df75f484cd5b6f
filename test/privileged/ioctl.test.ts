// SPDX-License-Identifier: MIT
// The real libc boundary against a real kernel: DM_VERSION through the sync and async paths,
// LOOP_CTL_GET_FREE, errno through both paths, and an async DM_DEV_WAIT that blocks in the kernel
// while the event loop keeps turning. Raw dm ioctls on purpose (this is the layer below DmControl).
// Run: DEVMAPPER_PRIVILEGED=1 npx uvu dist/test/privileged 'ioctl\.test\.js$' (as root, with dm).
import { closeSync, openSync } from 'node:fs';
import * as assert from 'uvu/assert';
import * as io from '../../src/ioctl/index.js';
import { privilegedSuite, testName, withSweep } from '../helpers/privileged.js';

const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;
const test = withSweep(privilegedSuite('ioctl (real kernel)'));
const sc = io.realSyscalls();

let control = -1;
test.before(() => {
  control = sc.open('/dev/mapper/control', O_RDWR | O_CLOEXEC);
});
test.after(() => {
  if (control >= 0) sc.close(control);
  control = -1;
});

/** One raw dm ioctl: stamps the command's minimum version, returns the decoded header and buffer. */
function dm(request: number, header: io.DmIoctlInput, payload?: Buffer, size = 16384): { h: io.RawDmIoctl; buf: Buffer } {
  const c = io.dmCommand(request);
  if (!c) throw new Error(`not a dm request: ${request}`);
  const buf = io.buildDmRequest({ version: [...c.minVersion], ...header }, payload, size);
  sc.ioctl(control, request, buf, c.name);
  const h = io.decodeDmIoctl(buf);
  if (h.flags & io.DM_BUFFER_FULL_FLAG) throw new Error(`${c.name}: buffer full`);
  return { h, buf };
}

test('DM_VERSION round trip, sync and async', async () => {
  const sync = io.buildDmRequest({ version: [4, 0, 0] });
  assert.is(sc.ioctl(control, io.DM_VERSION, sync, 'DM_VERSION'), 0);
  const v1 = io.decodeDmIoctl(sync).version;
  const async = io.buildDmRequest({ version: [4, 0, 0] });
  assert.is(await sc.ioctlAsync(control, io.DM_VERSION, async, 'DM_VERSION'), 0);
  const v2 = io.decodeDmIoctl(async).version;
  console.log(`  kernel dm ioctl interface: ${v1.join('.')} (header mirrored: ${io.DM_VERSION_MAJOR}.${io.DM_VERSION_MINOR}.${io.DM_VERSION_PATCHLEVEL})`);
  assert.is(v1[0], 4);
  assert.equal(v2, v1);
});

test('DM_VERSION with a too-new minor → EINVAL, and the kernel still writes its version back', () => {
  const buf = io.buildDmRequest({ version: [4, 0xffff, 0] });
  try {
    sc.ioctl(control, io.DM_VERSION, buf, 'DM_VERSION');
    assert.unreachable('expected EINVAL');
  } catch (e) {
    assert.instance(e, io.IoctlError);
    assert.is((e as io.IoctlError).code, 'EINVAL');
  }
  assert.is(buf.readUInt32LE(0), 4);
  assert.ok(buf.readUInt32LE(4) < 0xffff);
});

test('LOOP_CTL_GET_FREE returns a non-negative index, sync and async', async () => {
  const lc = sc.open('/dev/loop-control', O_RDWR | O_CLOEXEC);
  try {
    const a = sc.ioctl(lc, io.LOOP_CTL_GET_FREE, 0, 'LOOP_CTL_GET_FREE');
    const b = await sc.ioctlAsync(lc, io.LOOP_CTL_GET_FREE, 0, 'LOOP_CTL_GET_FREE');
    assert.ok(a >= 0 && b >= 0, `${a} ${b}`);
  } finally {
    sc.close(lc);
  }
});

test('ioctl on a closed fd → IoctlError EBADF, sync and async', async () => {
  const fd = openSync('/dev/null', 'r');
  closeSync(fd);
  for (const run of [
    () => Promise.resolve(sc.ioctl(fd, io.DM_VERSION, io.buildDmRequest({}), 'DM_VERSION')),
    () => sc.ioctlAsync(fd, io.DM_VERSION, io.buildDmRequest({}), 'DM_VERSION'),
  ]) {
    try {
      await run();
      assert.unreachable('expected EBADF');
    } catch (e) {
      assert.instance(e, io.IoctlError);
      assert.is((e as io.IoctlError).code, 'EBADF');
      assert.is((e as io.IoctlError).request, 'DM_VERSION');
    }
  }
});

test('async DM_DEV_WAIT blocks in the kernel while timers keep firing', async () => {
  let name = testName('ioctl-wait');
  const zero = (sectors: bigint) => io.encodeTargetSpecs([{ sector_start: 0n, length: sectors, target_type: 'zero', params: '' }]);
  const created = dm(io.DM_DEV_CREATE, { name }).h;
  const timers: NodeJS.Timeout[] = [];
  try {
    dm(io.DM_TABLE_LOAD, { name, target_count: 1 }, zero(2048n));
    dm(io.DM_DEV_SUSPEND, { name }); // no DM_SUSPEND_FLAG = resume
    const info = dm(io.DM_DEV_STATUS, { name }).h;
    console.log(`  created ${name} dev=${io.formatDev(created.dev)} event_nr=${info.event_nr}`);
    assert.ok(info.flags & io.DM_ACTIVE_PRESENT_FLAG);

    // Event-loop lag probe: a 10 ms interval; lag = how late each tick fires.
    let ticks = 0;
    let worstLag = 0;
    let last = performance.now();
    const interval = setInterval(() => {
      const now = performance.now();
      worstLag = Math.max(worstLag, now - last - 10);
      last = now;
      ticks++;
    }, 10);

    const waitBuf = io.buildDmRequest({ version: [4, 0, 0], name, event_nr: info.event_nr }, undefined, 16384);
    const started = performance.now();
    const waiting = sc.ioctlAsync(control, io.DM_DEV_WAIT, waitBuf, 'DM_DEV_WAIT');
    let settled = false;
    void waiting.finally(() => (settled = true));

    // Trigger an event: a rename (dm_hash_rename raises a table event); if that does not wake the
    // waiter, a table reload + resume; if nothing does, the test fails instead of hanging forever.
    const newName = testName('ioctl-wait-renamed');
    timers.push(
      setTimeout(() => {
        dm(io.DM_DEV_RENAME, { name }, io.encodeDmString(newName, io.DM_NAME_LEN - 1));
        name = newName;
      }, 300),
    );
    timers.push(
      setTimeout(() => {
        if (settled) return;
        console.log('  rename did not wake DM_DEV_WAIT; reloading the table');
        dm(io.DM_TABLE_LOAD, { name, target_count: 1 }, zero(4096n));
        dm(io.DM_DEV_SUSPEND, { name });
      }, 3000),
    );
    const timeout = new Promise<never>((_, reject) =>
      timers.push(setTimeout(() => reject(new Error('DM_DEV_WAIT did not return within 10 s')), 10_000)),
    );
    const rc = await Promise.race([waiting, timeout]);
    const blockedMs = performance.now() - started;
    clearInterval(interval);

    assert.is(rc, 0);
    const out = io.decodeDmIoctl(waitBuf);
    assert.ok(out.event_nr !== info.event_nr, `event_nr ${info.event_nr} → ${out.event_nr}`);
    const specs = io.walkTargetSpecs(waitBuf, out.data_start, out.data_size, out.target_count);
    assert.is(specs[0]?.target_type, 'zero');
    console.log(
      `  DM_DEV_WAIT blocked ${blockedMs.toFixed(0)} ms; event_nr ${info.event_nr} → ${out.event_nr}; ` +
        `interval ticks meanwhile: ${ticks}; worst event-loop lag: ${worstLag.toFixed(1)} ms`,
    );
    assert.ok(blockedMs >= 250, 'the wait really blocked until the event');
    assert.ok(ticks >= 10, `timers kept firing (${ticks} ticks)`);
    assert.ok(worstLag < 250, `worst lag ${worstLag.toFixed(1)} ms`);
  } finally {
    for (const t of timers) clearTimeout(t);
    dm(io.DM_DEV_REMOVE, { name });
  }
  // Gone: a status by name is ENXIO.
  try {
    dm(io.DM_DEV_STATUS, { name });
    assert.unreachable('expected ENXIO');
  } catch (e) {
    assert.is((e as io.IoctlError).code, 'ENXIO');
  }
});

test.run();
