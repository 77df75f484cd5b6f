// SPDX-License-Identifier: MIT
// Crash-point sweep (issue 10): for DeviceSet init, addDevice, deleteDevice, resizePool and
// shutdown, stop the process dead at EVERY syscall (before the kernel acts, and after it acted
// without the caller learning) and at EVERY metadata write step, let the kernel close the dead
// process's fds (or reboot the machine for every fourth point), re-init on the same root and
// check the invariants of harness.ts: pool thin ids = record ids, no open transaction, record
// txids ≤ the pool's, data written before still mapped, no leaked dm device or loop, and a clean
// kernel after the final shutdown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OPS, measure, runOnce, type SweptOp } from './harness.js';

const summary: string[] = [];

async function sweep(op: SweptOp): Promise<void> {
  const t0 = performance.now();
  const { calls, steps } = await measure(op);
  assert.ok(calls > 0, `${op.name} makes syscalls`);
  const failures: string[] = [];
  let covered = 0;
  for (const when of ['before', 'after'] as const) {
    for (let n = 0; n < calls; n++) {
      const r = await runOnce(op, (w) => w.fake.crashAfter(n, { when }), { expectCrash: true, reboot: n % 4 === 3 });
      if (r.problems.length > 0) failures.push(`syscall #${n} (${when}${n % 4 === 3 ? ', reboot' : ''}): ${r.problems.join(' | ')}`);
      else covered++;
    }
  }
  for (let n = 0; n < steps; n++) {
    const r = await runOnce(
      op,
      (w) => {
        w.mfs.stopAt = w.mfs.steps + n;
      },
      { expectCrash: true, reboot: n % 4 === 3 },
    );
    if (r.problems.length > 0) failures.push(`metadata step #${n}${n % 4 === 3 ? ' (reboot)' : ''}: ${r.problems.join(' | ')}`);
    else covered++;
  }
  const total = 2 * calls + steps;
  summary.push(`${op.name}: ${covered}/${total} crash points pass (${calls} syscalls × before/after, ${steps} metadata steps) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(failures, [], `${op.name}: ${failures.length} crash points fail`);
}

for (const op of OPS) test(`crash sweep: ${op.name} recovers from a crash at every syscall and metadata step`, () => sweep(op));

test.after(() => {
  if (process.env.DEVMAPPER_SWEEP_REPORT) for (const line of summary) console.log(`  ${line}`);
});

test.run();
