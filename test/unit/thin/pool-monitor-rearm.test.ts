// SPDX-License-Identifier: MIT
// PoolMonitor and a grow it did not see (issue #20 part 2): a table reload with a new length or
// low water mark goes through pool_resume(), which clears dm-thin's low_water_triggered, so the
// kernel raises the low-water event again at the next crossing. When no reading of the monitor
// fell between the grow and that crossing (the autoextend case: the monitor's reader is busy, or
// the reload raised nothing it woke for), the previous reading is still "below the mark" and an
// edge test alone would stay silent: the pool would run dry with nobody told. The monitor treats
// a changed length or mark as a re-armed edge. Its waits are held here by a gate on pollAsync, so
// which readings happen is decided by the test, not by timing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DmControl } from '../../../src/dm/index.js';
import type { Syscalls } from '../../../src/ioctl/index.js';
import { LoopControl, ensureSparseFile } from '../../../src/loop/index.js';
import { PoolMonitor } from '../../../src/thin/index.js';
import { FakeKernel } from '../../../src/testing/index.js';

const BLOCK_SECTORS = 128n; // 64 KiB data blocks

/** FakeKernel syscalls whose pollAsync waits until the test opens the gate (once per open). */
function gated(fake: FakeKernel): { sys: Syscalls; entered: () => Promise<void>; open: () => void } {
  let release: (() => void) | undefined;
  let enteredWaiters: Array<() => void> = [];
  let waiting = false;
  const pollAsync = async (fd: number, events: number): Promise<number> => {
    waiting = true;
    for (const w of enteredWaiters) w();
    enteredWaiters = [];
    await new Promise<void>((r) => (release = r));
    return fake.pollAsync(fd, events, 0);
  };
  const sys = new Proxy(fake, {
    get(target, prop) {
      if (prop === 'pollAsync') return pollAsync;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as Syscalls;
  return {
    sys,
    // Resolves once the monitor is in its wait (its reading of the last wake is complete).
    entered: () => (waiting ? Promise.resolve() : new Promise<void>((r) => enteredWaiters.push(r))),
    open: () => {
      waiting = false;
      const r = release;
      release = undefined;
      r?.();
    },
  };
}

test('a grow between two readings re-arms lowWater: the crossing after it is reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pool-monitor-rearm-'));
  const fake = new FakeKernel({ sysfs: true });
  const dm = new DmControl({ syscalls: fake, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 }, sleep: async () => {} });
  const loops = new LoopControl({ syscalls: fake, sysfsRoot: fake.sysfsRoot!, sleep: async () => {} });
  try {
    await ensureSparseFile(join(dir, 'meta'), 4096 * 1024);
    await ensureSparseFile(join(dir, 'data'), 64 * 64 * 1024);
    const meta = await loops.attach(join(dir, 'meta'));
    const data = await loops.attach(join(dir, 'data'));
    const line = (blocks: bigint, mark: bigint) => ({ start: 0n, length: blocks * BLOCK_SECTORS, type: 'thin-pool', params: `${meta.devNumber} ${data.devNumber} ${BLOCK_SECTORS} ${mark} 0` });
    await dm.createDevice('pool', [line(16n, 4n)]);
    await dm.targetMessage('pool', 0n, 'create_thin 1');
    const p = fake.device('pool')!;
    await dm.createDevice('thin', [{ start: 0n, length: 64n * BLOCK_SECTORS, type: 'thin', params: `${p.major}:${p.minor} 1` }]);

    const g = gated(fake);
    const m = new PoolMonitor(['pool'], { mechanism: 'arm-poll', dm: { syscalls: g.sys } });
    const lows: string[] = [];
    m.on('lowWater', (e) => lows.push(`free=${e.freeDataBlocks} mark=${e.lowWaterMark} total=${e.status.totalDataBlocks}`));
    await g.entered();
    assert.is(m.state('pool')?.belowLowWater, false);

    // Crossing 1: the 13th block is allocated with 4 free (≤ the mark 4).
    fake.writeThin('thin', 0, 13);
    g.open();
    await g.entered();
    assert.equal(lows, ['free=3 mark=4 total=16']);

    // The grow (reload + resume) and the next crossing, with no reading in between.
    await dm.tableLoad('pool', [line(32n, 8n)]);
    await dm.deviceSuspend('pool');
    await dm.deviceResume('pool');
    fake.writeThin('thin', 13, 12); // the 25th block is allocated with 8 of 32 free
    g.open();
    await g.entered();
    assert.equal(lows, ['free=3 mark=4 total=16', 'free=7 mark=8 total=32']);

    const closed = m.close();
    g.open();
    await closed;
    meta.close();
    data.close();
  } finally {
    dm.close();
    fake.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
