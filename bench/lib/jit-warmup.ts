// SPDX-License-Identifier: MIT
// The guest bench's JIT warm-up for the kernel-bound dm rows: the measured library paths
// (DmControl.createDevice + deviceRemove, suspend + resume, deviceInfo + deviceWait +
// deviceRename, ThinPool.status, createThin, ThinDevice.snapshot, activate + deactivate) run `n`
// times against the stub kernel (bench/lib/stub-kernel.ts) before the real kernel is timed.
//
// Why through a stub: V8 optimizes a function after it has run enough (its interrupt budget), and
// under TCG each real create+remove costs ~40 ms of kernel time (the remove's RCU grace periods),
// so the 20 real warm-up cycles the bench can afford leave these paths in V8's interpreter and
// baseline tiers. Measured in a 6.1 guest (2026-12-07): createDevice's JavaScript against the
// stub cost 1,473 µs per call over the first 1,000 calls and 470–480 µs from the 4,000th on, and
// a real createDevice went from 6–8 ms after 20–300 real cycles to 3.4–4.3 ms after the warm-up.
// A long-running service that makes thousands of devices runs the optimized code; these rows are
// meant to show that steady state. The methods are the same functions whatever the seam (they
// live on the classes' prototypes), so what V8 learns here is what the real calls run.
import { DmControl, zeroTarget } from '../../src/dm/index.js';
import { ThinDevice, ThinPool } from '../../src/thin/index.js';
import { stubKernel } from './stub-kernel.js';

/** Wall time of each warmed path, ms (for the bench log). */
export type WarmupTimes = Readonly<Record<string, number>>;

/**
 * With `batch`, a DmControl({ batch: true }) over a stub whose batches run inline: its batched
 * paths (one batch per create and per snapshot) are the ones warmed. The BatchWorker thread has a
 * JIT of its own, which this cannot reach (see batchedDm in bench/guest.ts).
 */
export async function warmDmPaths(n: number, options: { readonly batch?: boolean } = {}): Promise<WarmupTimes> {
  // Options as the bench's own DmControl: default node policy ('auto' → 'manage': no udev control
  // socket in the stub, so nodes are made with mknod as in the guest).
  const batch = options.batch === true;
  const dm = new DmControl({ syscalls: stubKernel({ batch }), procMiscPath: null, batch });
  const times: Record<string, number> = {};
  const time = async (label: string, fn: (i: number) => Promise<unknown>): Promise<void> => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await fn(i);
    times[label] = performance.now() - t;
  };
  try {
    const table = [zeroTarget(0n, 2048n)];
    await time('createDevice+deviceRemove', async (i) => {
      await dm.createDevice(`warm-${i}`, table);
      await dm.deviceRemove(`warm-${i}`);
    });
    await time('deviceSuspend+deviceResume', async () => {
      await dm.deviceSuspend('warm-origin');
      await dm.deviceResume('warm-origin');
    });
    // The lag bench's DM_DEV_WAIT scenario: a wait that a rename ends (its one late tick turned out
    // to be the emulator's, not the rename's first compile: docs/bench.md, session 11).
    await time('deviceInfo+deviceWait+deviceRename', async (i) => {
      const info = await dm.deviceInfo(`warm-r${i}`);
      await dm.deviceWait(`warm-r${i}`, info.eventNr);
      await dm.deviceRename(`warm-r${i}`, { name: `warm-r${i}-2` });
    });
    // The stub answers a table read of a name ending in "pool" with a thin-pool line.
    const pool = await ThinPool.open(dm, 'warm-pool');
    await time('ThinPool.status', () => pool.status());
    await time('ThinPool.createThin', (i) => pool.createThin(i + 2));
    const origin = ThinDevice.of(pool, 1);
    await origin.activate('warm-origin', 2048n);
    await time('ThinDevice.snapshot', (i) => origin.snapshot(i + 2));
    await origin.deactivate();
    await time('ThinDevice.activate+deactivate', async (i) => {
      const t = ThinDevice.of(pool, i + 2);
      await t.activate(`warm-thin-${i}`, 2048n);
      await t.deactivate();
    });
  } finally {
    dm.close();
  }
  return times;
}
