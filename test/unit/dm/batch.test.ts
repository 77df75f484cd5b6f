// Batched kernel calls (issue #21 §1) on the FakeKernel, whose openBatch runs batches inline:
// DmControl.createDevice sends create → load → resume as one batch, a thin snapshot of an active
// origin suspend → create_snap → resume; a failed step stops the batch and the rollback is keyed
// on which step failed. ControlChannel.batch regrows a DM_BUFFER_FULL_FLAG reply.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeviceExistsError, DmControl, zeroTarget } from '../../../src/dm/index.js';
import { ControlChannel } from '../../../src/dm/control-channel.js';
import { infoRequest, tableStatusRequest } from '../../../src/dm/request.js';
import { LoopControl, ensureSparseFile } from '../../../src/loop/index.js';
import { ThinDevice, ThinIdInUseError, ThinPool } from '../../../src/thin/index.js';
import { FakeKernel } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';
import type { IoctlBatcher, Syscalls } from '../../../src/ioctl/index.js';

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'dm-batch-test-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The FakeKernel with its batcher wrapped to record each batch's request names. While
 * `gate.hold` is set a batch waits (busy) until `gate.release()`.
 */
function spied(fake: FakeKernel): { sys: Syscalls; batches: string[][]; gate: { hold: boolean; release: () => void } } {
  const batches: string[][] = [];
  let waiters: Array<() => void> = [];
  const gate = {
    hold: false,
    release: () => {
      gate.hold = false;
      for (const w of waiters) w();
      waiters = [];
    },
  };
  const sys = new Proxy(fake, {
    get(t, p) {
      if (p === 'openBatch')
        return (): IoctlBatcher => {
          const inner = t.openBatch();
          let inFlight = 0;
          return {
            get busy() {
              return inner.busy || inFlight > 0;
            },
            run: async (steps) => {
              batches.push(steps.map((s) => s.requestName));
              inFlight++;
              try {
                if (gate.hold) await new Promise<void>((r) => waiters.push(r));
                return await inner.run(steps);
              } finally {
                inFlight--;
              }
            },
            close: () => inner.close(),
          };
        };
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as Syscalls;
  return { sys, batches, gate };
}

function world(fake = new FakeKernel({ sysfs: true })) {
  const { sys, batches, gate } = spied(fake);
  const dm = new DmControl({ syscalls: sys, batch: true, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 }, sleep: async () => {} });
  return { fake, sys, batches, gate, dm };
}

/** The dm requests the fake kernel saw, with their results, from call index `from`. */
function dmCalls(fake: FakeKernel, from = 0): string[] {
  return fake.calls.filter((c) => c.index >= from && c.request?.startsWith('DM_')).map((c) => `${c.request} ${String(c.result)}`);
}

const CREATE_LOAD_RESUME = ['DM_DEV_CREATE', 'DM_TABLE_LOAD', 'DM_DEV_SUSPEND'];

test('createDevice: create → load → resume in one batch; the device is live and its node made', async () => {
  const { fake, batches, dm } = world();
  const info = await dm.createDevice('a', [zeroTarget(0n, 8n)]);
  assert.equal(batches, [CREATE_LOAD_RESUME]);
  assert.equal(dmCalls(fake), ['DM_DEV_CREATE ok', 'DM_TABLE_LOAD ok', 'DM_DEV_SUSPEND ok']);
  assert.is(info.name, 'a');
  assert.is(info.suspended, false);
  assert.equal(fake.device('a')?.live, [{ start: 0n, length: 8n, type: 'zero', params: '' }]);
  assert.is(fake.stat('/dev/mapper/a').rdev, fake.stat(`/dev/dm-${info.dev.minor}`).rdev);
  dm.close();
  fake.dispose();
});

test('createDevice: a failed load stops the batch (no resume sent) and the device is removed', async () => {
  const { fake, batches, dm } = world();
  fake.failNext({ request: 'DM_TABLE_LOAD', errno: 'EINVAL' });
  const e = (await rejects(dm.createDevice('a', [zeroTarget(0n, 8n)]), Error)) as Error & { code?: string; rollbackError?: unknown };
  assert.is(e.code, 'EINVAL');
  assert.is(e.rollbackError, undefined);
  // The rollback's remove can block too: a batch of one.
  assert.equal(batches, [CREATE_LOAD_RESUME, ['DM_DEV_REMOVE']]);
  assert.equal(dmCalls(fake), ['DM_DEV_CREATE ok', 'DM_TABLE_LOAD EINVAL', 'DM_DEV_REMOVE ok']);
  assert.is(fake.device('a'), undefined);
  dm.close();
  fake.dispose();
});

test('createDevice: a failed resume is the last step; the device is removed', async () => {
  const { fake, dm } = world();
  fake.failNext({ request: 'DM_DEV_SUSPEND', errno: 'EIO' });
  const e = (await rejects(dm.createDevice('a', [zeroTarget(0n, 8n)]), Error)) as Error & { code?: string };
  assert.is(e.code, 'EIO');
  assert.equal(dmCalls(fake), ['DM_DEV_CREATE ok', 'DM_TABLE_LOAD ok', 'DM_DEV_SUSPEND EIO', 'DM_DEV_REMOVE ok']);
  assert.is(fake.device('a'), undefined);
  dm.close();
  fake.dispose();
});

test('createDevice: a failed create (name taken) maps to DeviceExistsError and removes nothing', async () => {
  const { fake, dm } = world();
  await dm.createDevice('a', [zeroTarget(0n, 8n)]);
  const from = fake.callCount;
  const e = await dm.createDevice('a', [zeroTarget(0n, 16n)]).then(
    () => assert.unreachable('created twice'),
    (err: unknown) => err,
  );
  assert.instance(e, DeviceExistsError);
  assert.equal(dmCalls(fake, from), ['DM_DEV_CREATE EBUSY']);
  assert.equal(fake.device('a')?.live, [{ start: 0n, length: 8n, type: 'zero', params: '' }]);
  dm.close();
  fake.dispose();
});

test('a seam without openBatch: the same createDevice, one call per ioctl', async () => {
  const fake = new FakeKernel({ sysfs: true });
  const sys = new Proxy(fake, {
    get(t, p) {
      if (p === 'openBatch') return undefined;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as Syscalls;
  const dm = new DmControl({ syscalls: sys, batch: true, nodes: 'manage', sleep: async () => {} });
  await dm.createDevice('a', [zeroTarget(0n, 8n)]);
  assert.equal(dmCalls(fake), ['DM_DEV_CREATE ok', 'DM_TABLE_LOAD ok', 'DM_DEV_SUSPEND ok']);
  assert.is(fake.device('a')?.suspended, false);
  dm.close();
  fake.dispose();
});

async function thinWorld() {
  const w = world();
  const loops = new LoopControl({ syscalls: w.sys, sysfsRoot: w.fake.sysfsRoot!, sleep: async () => {} });
  const metaFile = join(dir, 'meta');
  const dataFile = join(dir, 'data');
  await ensureSparseFile(metaFile, 4 * 1024 * 1024);
  await ensureSparseFile(dataFile, 16 * 64 * 1024);
  const meta = await loops.attach(metaFile);
  const data = await loops.attach(dataFile);
  await w.dm.createDevice('pool', [{ start: 0n, length: 16n * 128n, type: 'thin-pool', params: `${meta.devNumber} ${data.devNumber} 128 2 0` }]);
  meta.close();
  data.close();
  const pool = await ThinPool.open(w.dm, 'pool');
  const origin = await ThinDevice.create(pool, 1);
  await origin.activate('origin', 1024n);
  w.batches.length = 0;
  return { ...w, pool, origin };
}

test('snapshot of an active origin: suspend → create_snap → resume in one batch', async () => {
  const { fake, batches, dm, pool, origin } = await thinWorld();
  const from = fake.callCount;
  const snap = await origin.snapshot(2);
  assert.is(snap.id, 2);
  assert.equal(batches, [['DM_DEV_SUSPEND', 'DM_TARGET_MSG', 'DM_DEV_SUSPEND']]);
  // The info read first (was the origin suspended by someone else?), then the batch.
  assert.equal(dmCalls(fake, from), ['DM_DEV_STATUS ok', 'DM_DEV_SUSPEND ok', 'DM_TARGET_MSG ok', 'DM_DEV_SUSPEND ok']);
  assert.is(fake.device('origin')?.suspended, false);
  // The snapshot exists in the pool: taking id 2 again is refused.
  const again = await ThinDevice.create(pool, 2).then(
    () => assert.unreachable('id 2 free'),
    (err: unknown) => err,
  );
  assert.instance(again, ThinIdInUseError);
  dm.close();
  fake.dispose();
});

test('snapshot: a failed create_snap stops the batch; the origin is resumed and the error mapped', async () => {
  const { fake, batches, dm, pool, origin } = await thinWorld();
  await ThinDevice.create(pool, 2);
  const from = fake.callCount;
  await rejects(origin.snapshot(2), ThinIdInUseError);
  // create_thin 2 first: a single blocking request, a batch of one; after the failed create_snap
  // the resume goes alone, also a batch of one.
  assert.equal(batches, [['DM_TARGET_MSG'], ['DM_DEV_SUSPEND', 'DM_TARGET_MSG', 'DM_DEV_SUSPEND'], ['DM_DEV_SUSPEND']]);
  assert.equal(dmCalls(fake, from), ['DM_DEV_STATUS ok', 'DM_DEV_SUSPEND ok', 'DM_TARGET_MSG EEXIST', 'DM_DEV_SUSPEND ok']);
  assert.is(fake.device('origin')?.suspended, false);
  dm.close();
  fake.dispose();
});

test('snapshot: a failed suspend sends nothing else', async () => {
  const { fake, dm, origin } = await thinWorld();
  const from = fake.callCount;
  fake.failNext({ request: 'DM_DEV_SUSPEND', errno: 'EIO' });
  const e = (await rejects(origin.snapshot(2), Error)) as Error & { code?: string };
  assert.is(e.code, 'EIO');
  assert.equal(dmCalls(fake, from), ['DM_DEV_STATUS ok', 'DM_DEV_SUSPEND EIO']);
  assert.is(fake.device('origin')?.suspended, false);
  dm.close();
  fake.dispose();
});

test('a single request that can block goes to the batcher as a batch of one (create_thin, a committing pool status, remove); one that cannot stays synchronous; a busy batcher is not waited for', async () => {
  const { fake, batches, gate, dm, pool } = await thinWorld();
  const from = fake.callCount;
  await ThinDevice.create(pool, 2); // DM_TARGET_MSG create_thin 2
  await pool.status(); // DM_TABLE_STATUS without DM_NOFLUSH_FLAG: pool_status() may commit
  await pool.status({ noflush: true }); // never blocks: synchronous, not batched
  await dm.deviceInfo('origin'); // DM_DEV_STATUS: synchronous
  assert.equal(batches, [['DM_TARGET_MSG'], ['DM_TABLE_STATUS']]);
  // The same replies as the per-call path: the status decodes, an error maps to its domain class.
  await rejects(ThinDevice.create(pool, 2), ThinIdInUseError);
  assert.equal(batches.slice(2), [['DM_TARGET_MSG']]);
  assert.equal(dmCalls(fake, from).slice(-1), ['DM_TARGET_MSG EEXIST']);
  // While a batch is in flight, another blocking request takes ioctlAsync instead of queueing.
  const n = batches.length;
  const asyncCalls: string[] = [];
  const origAsync = fake.ioctlAsync.bind(fake);
  (fake as unknown as { ioctlAsync: typeof fake.ioctlAsync }).ioctlAsync = (fd, req, arg, name) => {
    asyncCalls.push(name);
    return origAsync(fd, req, arg, name);
  };
  gate.hold = true;
  const first = ThinDevice.create(pool, 3);
  for (let i = 0; i < 1000 && batches.length === n; i++) await new Promise((r) => setImmediate(r));
  assert.equal(batches.slice(n), [['DM_TARGET_MSG']], 'create_thin 3 is in the batcher, held');
  await ThinDevice.create(pool, 4); // done while the batch is still held
  assert.equal(asyncCalls, ['DM_TARGET_MSG']);
  assert.equal(batches.slice(n), [['DM_TARGET_MSG']]);
  gate.release();
  await first;
  dm.close();
  fake.dispose();
});

test('ControlChannel.batch: a DM_BUFFER_FULL_FLAG reply stops the batch; that step is sent again, twice as big, with the rest', async () => {
  const { fake, sys, batches, dm } = world();
  // 600 zero targets: their status (a 40-byte dm_target_spec and an empty string, 8-byte aligned,
  // each) needs more than the 16 KiB a status request starts with.
  await dm.createDevice('big', Array.from({ length: 600 }, (_, i) => zeroTarget(BigInt(i) * 8n, 8n)));
  batches.length = 0;
  const from = fake.callCount;
  const chan = new ControlChannel(sys, '/dev', null, true);
  assert.ok(chan.canBatch());
  const out = await chan.batch([tableStatusRequest('big'), infoRequest('big')]);
  assert.equal(batches, [
    ['DM_TABLE_STATUS', 'DM_DEV_STATUS'],
    ['DM_TABLE_STATUS', 'DM_DEV_STATUS'],
  ]);
  // The info request after the full reply was not sent with the first batch.
  assert.equal(dmCalls(fake, from), ['DM_TABLE_STATUS ok', 'DM_TABLE_STATUS ok', 'DM_DEV_STATUS ok']);
  assert.is(out.failed, undefined);
  assert.is(out.replies.length, 2);
  assert.is(out.replies[0]!.buf.length, 32 * 1024);
  assert.is(out.replies[0]!.header.target_count, 600);
  assert.is(out.replies[1]!.header.name, 'big');
  chan.close();
  dm.close();
  fake.dispose();
});

test('DmControl.close closes its batcher; the next batch opens a new one', async () => {
  const fake = new FakeKernel({ sysfs: true });
  let opened = 0;
  let closed = 0;
  const sys = new Proxy(fake, {
    get(t, p) {
      if (p === 'openBatch')
        return (): IoctlBatcher => {
          opened++;
          const inner = t.openBatch();
          return { busy: false, run: (s) => inner.run(s), close: () => (closed++, inner.close()) };
        };
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as Syscalls;
  const dm = new DmControl({ syscalls: sys, batch: true, nodes: 'none' });
  await dm.createDevice('a', [zeroTarget(0n, 8n)]);
  await dm.createDevice('b', [zeroTarget(0n, 8n)]);
  assert.equal([opened, closed], [1, 0]);
  dm.close();
  assert.equal([opened, closed], [1, 1]);
  await dm.createDevice('c', [zeroTarget(0n, 8n)]);
  assert.equal([opened, closed], [2, 1]);
  dm[Symbol.dispose]();
  assert.equal([opened, closed], [2, 2]);
  fake.dispose();
});

test('batching is opt-in: without batch: true no batcher is opened and each ioctl goes alone', async () => {
  const fake = new FakeKernel({ sysfs: true });
  let opened = 0;
  const sys = new Proxy(fake, {
    get(t, p) {
      if (p === 'openBatch') return () => {
        opened++;
        return fake.openBatch();
      };
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as Syscalls;
  const dm = new DmControl({ syscalls: sys, nodes: 'manage', sleep: async () => {} });
  await dm.createDevice('a', [zeroTarget(0n, 8n)]);
  assert.is(opened, 0);
  assert.equal(dmCalls(fake), ['DM_DEV_CREATE ok', 'DM_TABLE_LOAD ok', 'DM_DEV_SUSPEND ok']);
  assert.throws(() => new DmControl({ syscalls: sys, batch: 'yes' as unknown as boolean }), /batch/);
  dm.close();
  fake.dispose();
});

test.run();
