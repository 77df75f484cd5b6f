// SPDX-License-Identifier: MIT
// The body of the batched-ioctl worker thread (started by batch-worker.ts; never imported by
// library code). It blocks in Atomics.wait until the main thread posts a batch, runs the steps
// synchronously through koffi (libc.ts), stops at the first failure or set stopIf flag, writes
// rc/errno per step and answers once. errno is read right after each call on this thread
// (libc.ts, sync form), so it is the step's own.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { libc } from './libc.js';
import {
  DONE,
  DURATIONS_BYTE_OFFSET,
  FAILED,
  KIND_INT,
  KIND_PTR,
  NSTEPS,
  OP,
  OP_EXIT,
  OP_RUN_NEW_ARENA,
  RAN,
  READY,
  REQ,
  STEP_BASE,
  STEP_INTS,
  STOPPED,
  S_ERRNO,
  S_FD,
  S_INT,
  S_KIND,
  S_LENGTH,
  S_OFFSET,
  S_RC,
  S_REQUEST,
  S_STOP_MASK,
  S_STOP_OFFSET,
  type BatchThreadData,
} from './batch-protocol.js';

const data = workerData as BatchThreadData;
const ctl = new Int32Array(data.ctl);
const durations = new Float64Array(data.ctl, DURATIONS_BYTE_OFFSET);
let arena = Buffer.from(data.arena);
const lib = libc(); // loads koffi in this thread; a failure surfaces as the Worker's 'error'

function runSteps(): void {
  const n = ctl[NSTEPS] ?? 0;
  let ran = 0;
  let failed = 0;
  let stopped = 0;
  for (let i = 0; i < n; i++) {
    const s = STEP_BASE + i * STEP_INTS;
    const fd = ctl[s + S_FD] ?? -1;
    const request = (ctl[s + S_REQUEST] ?? 0) >>> 0;
    const kind = ctl[s + S_KIND];
    const off = ctl[s + S_OFFSET] ?? 0;
    const len = ctl[s + S_LENGTH] ?? 0;
    const buf = kind === KIND_PTR ? arena.subarray(off, off + len) : null;
    const t0 = performance.now();
    const r = kind === KIND_INT ? lib.ioctlInt(fd, request, (ctl[s + S_INT] ?? 0) >>> 0) : lib.ioctlPtr(fd, request, buf);
    durations[i] = performance.now() - t0;
    ctl[s + S_RC] = r.rc;
    ctl[s + S_ERRNO] = r.errno;
    if (r.rc < 0) {
      failed = 1;
      break;
    }
    ran++;
    const stopOff = ctl[s + S_STOP_OFFSET] ?? -1;
    if (buf !== null && stopOff >= 0 && stopOff + 4 <= len && (buf.readUInt32LE(stopOff) & ctl[s + S_STOP_MASK]!) !== 0) {
      stopped = 1;
      break;
    }
  }
  ctl[RAN] = ran;
  ctl[FAILED] = failed;
  ctl[STOPPED] = stopped;
}

function answer(): void {
  Atomics.add(ctl, DONE, 1);
  Atomics.notify(ctl, DONE);
}

// REQ is read before the first answer: once DONE moves, the main thread may post at once.
let seen = Atomics.load(ctl, REQ);
Atomics.store(ctl, READY, 1);
answer();
for (;;) {
  Atomics.wait(ctl, REQ, seen);
  const req = Atomics.load(ctl, REQ);
  if (req === seen) continue;
  seen = req;
  const op = ctl[OP];
  if (op === OP_EXIT) break;
  if (op === OP_RUN_NEW_ARENA) {
    const m = receiveMessageOnPort(data.port);
    if (m !== undefined) arena = Buffer.from(m.message as SharedArrayBuffer);
  }
  runSteps();
  answer();
}
data.port.close();
