// SPDX-License-Identifier: MIT
// Fault injection (issue 10): for DeviceSet init, addDevice, deleteDevice, resizePool and
// shutdown, fail the N-th syscall of the operation with EBUSY, EINTR, ENOMEM, EIO or ENOSPC (the
// fake's failNext, so the error is the seam's own IoctlError). The operation must succeed (a
// documented retry or a tolerated failure) or throw a DevmapperError with a string code; then the
// process is abandoned and a re-init of the root must pass the sweep's invariants.
// DEVMAPPER_FAULT_STRIDE=k runs every k-th index only (default 1: all of them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OPS, measure, runOnce, type SweptOp } from '../sweep/harness.js';

const ERRNOS = ['EBUSY', 'EINTR', 'ENOMEM', 'EIO', 'ENOSPC'] as const;
const STRIDE = Math.max(1, Number(process.env.DEVMAPPER_FAULT_STRIDE ?? 1) || 1);
const summary: string[] = [];

async function inject(op: SweptOp): Promise<void> {
  const t0 = performance.now();
  const { calls } = await measure(op);
  const failures: string[] = [];
  let runs = 0;
  let typed = 0;
  let ok = 0;
  for (let n = 0; n < calls; n += STRIDE) {
    for (const errno of ERRNOS) {
      const r = await runOnce(op, (w) => void w.fake.failNext({ errno, skip: n }), { expectCrash: false });
      runs++;
      if (r.outcome === 'ok') ok++;
      else typed++;
      if (r.problems.length > 0) failures.push(`syscall #${n} ${errno}: ${r.problems.join(' | ')}`);
    }
  }
  summary.push(`${op.name}: ${runs}/${calls * ERRNOS.length} injections (${ok} succeeded anyway, ${typed} typed errors), ${failures.length} problems, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(failures, [], `${op.name}: ${failures.length} injections break it`);
}

for (const op of OPS) test(`fault injection: ${op.name} gives typed errors and a recoverable root for every errno at every syscall`, () => inject(op));

test.after(() => {
  if (process.env.DEVMAPPER_SWEEP_REPORT) for (const line of summary) console.log(`  ${line}`);
});

test.run();
