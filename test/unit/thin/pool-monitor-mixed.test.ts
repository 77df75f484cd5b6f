// SPDX-License-Identifier: MIT
// PoolMonitor and readings taken mid-reload (issue #20, data growth safety). A reload swaps the
// table (do_resume() → dm_swap_table()) before the resume grows the data space map
// (pool_preresume() → maybe_resize_data_dev()); a reading in between pairs the NEW table (length,
// low water mark) with the OLD status (total and free data blocks). The FakeKernel's resume is
// atomic, so the test replays the pool's status reply from before the grow to the monitor's
// status read: exactly the bytes a real kernel would have answered mid-reload.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DmControl } from '../../../src/dm/index.js';
import { DM_STATUS_TABLE_FLAG, type IoctlArg, type Syscalls } from '../../../src/ioctl/index.js';
import { LoopControl, ensureSparseFile } from '../../../src/loop/index.js';
import { PoolMonitor } from '../../../src/thin/index.js';
import { FakeKernel } from '../../../src/testing/index.js';

const BLOCK_SECTORS = 128n; // 64 KiB data blocks
const FLAGS_OFFSET = 28; // struct dm_ioctl: version[3], data_size, data_start, target_count, open_count, flags

/**
 * FakeKernel syscalls with a gate on pollAsync (the monitor reads only when the test opens it)
 * and a status replay: the last status reply (DM_TABLE_STATUS without DM_STATUS_TABLE_FLAG) is
 * kept, and while `stale` > 0 the next status read answers it instead of the live one.
 */
function harness(fake: FakeKernel) {
  let release: ((how: 'open' | 'expire') => void) | undefined;
  let enteredWaiters: Array<() => void> = [];
  let waiting = false;
  let saved: Buffer | undefined;
  /** timeouts: the timeout of every gated poll, in call order. */
  /** keep: stop refreshing the saved reply (the replay stays the one from before). */
  const h = { stale: 0, statusReads: 0, timeouts: [] as number[], devWaits: 0, keep: false };
  const isStatus = (name: string, arg: IoctlArg): arg is Buffer => name === 'DM_TABLE_STATUS' && Buffer.isBuffer(arg) && (arg.readUInt32LE(FLAGS_OFFSET) & DM_STATUS_TABLE_FLAG) === 0;
  const after = (name: string, arg: IoctlArg): void => {
    if (!isStatus(name, arg)) return;
    h.statusReads++;
    if (h.stale > 0 && saved) {
      h.stale--;
      saved.copy(arg, 0, 0, Math.min(saved.length, arg.length));
    } else if (!h.keep) saved = Buffer.from(arg);
  };
  const sys = new Proxy(fake, {
    get(target, prop) {
      if (prop === 'pollAsync')
        return async (fd: number, events: number, timeoutMs: number): Promise<number> => {
          h.timeouts.push(timeoutMs);
          waiting = true;
          for (const w of enteredWaiters) w();
          enteredWaiters = [];
          const how = await new Promise<'open' | 'expire'>((r) => (release = r));
          if (how === 'open') return fake.pollAsync(fd, events, 0);
          // The poll times out: let its time pass (waitForEvent checks its deadline against
          // Date.now(), and a timer may fire a millisecond early), no event.
          await new Promise((r) => setTimeout(r, timeoutMs + 10));
          return 0;
        };
      if (prop === 'ioctl')
        return (fd: number, req: number, arg: IoctlArg, name: string): number => {
          const r = fake.ioctl(fd, req, arg, name);
          after(name, arg);
          return r;
        };
      if (prop === 'ioctlAsync')
        return async (fd: number, req: number, arg: IoctlArg, name: string): Promise<number> => {
          if (name === 'DM_DEV_WAIT') h.devWaits++;
          const r = await fake.ioctlAsync(fd, req, arg, name);
          after(name, arg);
          return r;
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as Syscalls;
  return {
    h,
    sys,
    entered: () => (waiting ? Promise.resolve() : new Promise<void>((r) => enteredWaiters.push(r))),
    open: () => {
      waiting = false;
      const r = release;
      release = undefined;
      r?.('open');
    },
    /** The gated poll times out (after its own timeout, real time) with no event. */
    expire: () => {
      waiting = false;
      const r = release;
      release = undefined;
      r?.('expire');
    },
  };
}

/** A monitor on the harness's seam, with its lowWater and readingSkipped events written to `seen`. */
function watch(sys: Syscalls, mechanism: 'arm-poll' | 'dev-wait'): { m: PoolMonitor; seen: string[] } {
  const m = new PoolMonitor(['pool'], { mechanism, dm: { syscalls: sys } });
  const seen: string[] = [];
  m.on('lowWater', (e) => seen.push(`lowWater free=${e.freeDataBlocks} mark=${e.lowWaterMark} total=${e.status.totalDataBlocks}`));
  m.on('readingSkipped', (e) => seen.push(`skipped table=${e.tableDataBlocks} status=${e.statusDataBlocks}`));
  return { m, seen };
}

async function world() {
  const dir = mkdtempSync(join(tmpdir(), 'pool-monitor-mixed-'));
  const fake = new FakeKernel({ sysfs: true });
  const dm = new DmControl({ syscalls: fake, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 }, sleep: async () => {} });
  const loops = new LoopControl({ syscalls: fake, sysfsRoot: fake.sysfsRoot!, sleep: async () => {} });
  await ensureSparseFile(join(dir, 'meta'), 4096 * 1024);
  await ensureSparseFile(join(dir, 'data'), 64 * 64 * 1024);
  const meta = await loops.attach(join(dir, 'meta'));
  const data = await loops.attach(join(dir, 'data'));
  const line = (blocks: bigint, mark: bigint) => ({ start: 0n, length: blocks * BLOCK_SECTORS, type: 'thin-pool', params: `${meta.devNumber} ${data.devNumber} ${BLOCK_SECTORS} ${mark} 0` });
  // 16 blocks with the autoextend mark of 80 % (3), 12 used: 4 free, above the mark.
  await dm.createDevice('pool', [line(16n, 3n)]);
  await dm.targetMessage('pool', 0n, 'create_thin 1');
  const p = fake.device('pool')!;
  await dm.createDevice('thin', [{ start: 0n, length: 64n * BLOCK_SECTORS, type: 'thin', params: `${p.major}:${p.minor} 1` }]);
  fake.writeThin('thin', 0, 12);
  /** The grow: reload at 32 blocks with the mark of the new length (6), resume. */
  const grow = async (): Promise<void> => {
    await dm.tableLoad('pool', [line(32n, 6n)]);
    await dm.deviceResume('pool');
  };
  const cleanup = async (m: PoolMonitor, open: () => void): Promise<void> => {
    const closed = m.close();
    open(); // the gated wait returns, the monitor sees it is closed
    await closed;
    await dm.deviceRemove('thin');
    await dm.deviceRemove('pool');
    await loops.detach(data.path);
    await loops.detach(meta.path);
    rmSync(dir, { recursive: true, force: true });
  };
  return { fake, grow, cleanup };
}

test('a mixed reading (new table, old status) once: re-read, no lowWater', async () => {
  const { fake, grow, cleanup } = await world();
  const g = harness(fake);
  const { m, seen } = watch(g.sys, 'arm-poll');
  try {
    await g.entered();
    assert.is(m.state('pool')?.belowLowWater, false);
    assert.is(g.h.statusReads, 1);
    await grow();
    g.h.stale = 1; // the next status read answers the 16-block pool: free 4 ≤ the new mark 6
    g.open();
    await g.entered();
    assert.equal(seen, []);
    assert.is(g.h.statusReads, 3, 'the mixed reading was read again');
    const st = m.state('pool')?.status;
    assert.is(st?.kind === 'working' ? st.totalDataBlocks : null, 32n);
    assert.is(m.state('pool')?.lowWaterMark, 6n);
    assert.is(m.state('pool')?.belowLowWater, false);
  } finally {
    await cleanup(m, g.open);
  }
});

test('a reading mixed twice in a row: nothing judged, readingSkipped, previous state kept until the next event', async () => {
  const { fake, grow, cleanup } = await world();
  const g = harness(fake);
  const { m, seen } = watch(g.sys, 'arm-poll');
  try {
    await g.entered();
    const before = m.state('pool');
    await grow();
    g.h.stale = 2;
    g.open();
    await g.entered();
    assert.equal(seen, ['skipped table=32 status=16']);
    assert.is(m.state('pool'), before);
    // The resume cleared low_water_triggered (pool_resume()), so the kernel raises the next
    // crossing (alloc_data_block() checks the free count before it allocates: the 27th block, 6 free ≤ 6). It wakes the monitor, the reading is settled, and reported.
    fake.writeThin('thin', 12, 15);
    g.open();
    await g.entered();
    assert.equal(seen, ['skipped table=32 status=16', 'lowWater free=5 mark=6 total=32']);
    assert.is(m.state('pool')?.lowWaterMark, 6n);
  } finally {
    await cleanup(m, g.open);
  }
});

test('a skipped reading is read again after 100 ms with no event (the resume that settles it raises none), doubling while mixed', async () => {
  const { fake, grow, cleanup } = await world();
  const g = harness(fake);
  const m = new PoolMonitor(['pool'], { mechanism: 'arm-poll', dm: { syscalls: g.sys } });
  const seen: string[] = [];
  m.on('readingSkipped', (e) => seen.push(`skipped table=${e.tableDataBlocks} status=${e.statusDataBlocks}`));
  try {
    await g.entered();
    assert.equal(g.h.timeouts, [250], 'settled: the 10 s re-check, in 250 ms slices');
    await grow();
    g.h.stale = 4; // two rounds of two mixed reads
    g.open();
    await g.entered();
    assert.equal(g.h.timeouts.slice(1), [100], 'skipped: the next read is 100 ms away');
    g.expire(); // no event comes
    await g.entered();
    assert.equal(seen, ['skipped table=32 status=16', 'skipped table=32 status=16']);
    assert.equal(g.h.timeouts.slice(2), [200], 'still mixed: twice as long');
    g.expire();
    await g.entered();
    // The third round reads the settled pool, with no event: the grown total is judged.
    assert.is(g.h.statusReads, 6, "1 + 2 mixed + 2 mixed + 1");
    const st = m.state('pool')?.status;
    assert.is(st?.kind === 'working' ? st.totalDataBlocks : null, 32n);
    assert.is(m.state('pool')?.lowWaterMark, 6n);
    assert.equal(g.h.timeouts.slice(3), [250], 'settled again: back to the periodic re-check');
  } finally {
    await cleanup(m, g.open);
  }
});

test('DM_DEV_WAIT mode: a skipped pool is read again after 100 ms instead of waiting in the kernel for its next event', async () => {
  const { fake, grow, cleanup } = await world();
  const g = harness(fake);
  const { m, seen } = watch(g.sys, 'dev-wait');
  try {
    await m.ready;
    /** Until the monitor has entered its `n`th DM_DEV_WAIT (parked in the kernel). */
    const parked = async (n: number): Promise<void> => {
      for (let i = 0; i < 1000 && g.h.devWaits < n; i++) await new Promise((r) => setImmediate(r));
      assert.ok(g.h.devWaits >= n, `DM_DEV_WAIT #${n} entered`);
    };
    await parked(1);
    g.h.keep = true; // the replay stays the 16-block pool's status
    await grow();
    // Whatever the grow woke has been read and the monitor waits in the kernel again.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    const reads = g.h.statusReads;
    const waits = g.h.devWaits;
    // The crossing's event wakes the wait; both readings of that round answer the 16-block pool.
    g.h.stale = 2;
    fake.writeThin('thin', 12, 15); // 27 of 32 used: 5 free ≤ the new mark 6
    const judged = new Promise<void>((resolve) => m.on('lowWater', () => resolve()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([judged, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`not judged in 5 s: ${seen.join(', ')}`)), 5000)))]).finally(() => clearTimeout(timer));
    assert.equal(seen, ['skipped table=32 status=16', 'lowWater free=5 mark=6 total=32']);
    assert.is(g.h.statusReads, reads + 3, '2 mixed + 1, with no second kernel event');
    // One DM_DEV_WAIT after the judged reading, none between the skip and it (the old loop
    // waited there, for an event that never came).
    await parked(waits + 1);
    assert.is(g.h.devWaits, waits + 1);
  } finally {
    await cleanup(m, g.open);
  }
});

test('with no event at all, every pool is read again after recheckMs; 0 waits for events only', async () => {
  const { fake, cleanup } = await world();
  const g = harness(fake);
  const m = new PoolMonitor(['pool'], { mechanism: 'arm-poll', recheckMs: 150, dm: { syscalls: g.sys } });
  const low: string[] = [];
  m.on('lowWater', (e) => low.push(`lowWater free=${e.freeDataBlocks}`));
  try {
    await g.entered();
    assert.is(g.h.statusReads, 1);
    assert.equal(g.h.timeouts, [150]);
    // The pool crosses its mark and the event is lost (the harness swallows it): the re-read sees it.
    fake.writeThin('thin', 12, 2); // 14 of 16 used: 2 free ≤ 3
    g.expire();
    await g.entered();
    assert.is(g.h.statusReads, 2);
    assert.equal(low, ['lowWater free=2']);
  } finally {
    await cleanup(m, g.open);
  }
  const w2 = await world();
  const g2 = harness(w2.fake);
  const m2 = new PoolMonitor(['pool'], { mechanism: 'arm-poll', recheckMs: 0, dm: { syscalls: g2.sys } });
  try {
    await g2.entered();
    assert.equal(g2.h.timeouts, [250], 'no deadline: waitForEvent polls in 250 ms slices for ever');
  } finally {
    await w2.cleanup(m2, g2.open);
  }
});

test.run();
