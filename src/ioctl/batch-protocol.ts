// SPDX-License-Identifier: MIT
// The shared-memory layout between BatchWorker (batch-worker.ts, main thread) and its thread
// (batch-thread.ts). One control SharedArrayBuffer, read as Int32 slots (and a Float64 tail for
// step durations), and one arena SharedArrayBuffer holding the steps' buffers.
//
// Handshake: the main thread writes the steps and OP, then increments REQ and Atomics.notify()s
// it; the thread (blocked in Atomics.wait on REQ) runs the steps, writes RAN/FAILED/STOPPED and
// the per-step results, then increments DONE and notifies it; the main thread awaits DONE with
// Atomics.waitAsync. Startup counts as the first answer: DONE = 1 with READY = 1.
import { MAX_BATCH_STEPS } from './batch.js';

/** Int32 slot indexes of the control block. */
export const REQ = 0;
export const DONE = 1;
/** 1 once koffi is loaded in the thread. */
export const READY = 2;
export const OP = 3;
export const NSTEPS = 4;
/** Steps completed (their rc is valid). */
export const RAN = 5;
/** 1 when step RAN failed (its errno is in the step's ERRNO slot). */
export const FAILED = 6;
/** 1 when step RAN - 1 completed with its stopIf flag set. */
export const STOPPED = 7;

/** Ops. */
export const OP_RUN = 1;
/** Run, after taking a new arena from the message port (receiveMessageOnPort). */
export const OP_RUN_NEW_ARENA = 2;
export const OP_EXIT = 3;

/** First step slot, and slots per step. */
export const STEP_BASE = 16;
export const STEP_INTS = 10;
/** Offsets inside a step. */
export const S_FD = 0;
/** The request number as u32 bits (read back with >>> 0). */
export const S_REQUEST = 1;
export const S_KIND = 2;
export const S_OFFSET = 3;
export const S_LENGTH = 4;
/** Integer argument (KIND_INT), u32 bits. */
export const S_INT = 5;
/** stopIf: offset in the step's buffer (-1: none) and mask (u32 bits). */
export const S_STOP_OFFSET = 6;
export const S_STOP_MASK = 7;
export const S_RC = 8;
export const S_ERRNO = 9;

/** Argument kinds. */
export const KIND_PTR = 0;
export const KIND_INT = 1;

export const CTL_INTS = STEP_BASE + MAX_BATCH_STEPS * STEP_INTS;
/** Byte offset of the Float64 step durations (ms), after the Int32 slots (8-byte aligned). */
export const DURATIONS_BYTE_OFFSET = Math.ceil((CTL_INTS * 4) / 8) * 8;
export const CTL_BYTES = DURATIONS_BYTE_OFFSET + MAX_BATCH_STEPS * 8;

/** Initial arena size; grown (doubling) when a batch's buffers do not fit. */
export const INITIAL_ARENA_BYTES = 64 * 1024;

/** What the thread receives as workerData. */
export interface BatchThreadData {
  readonly ctl: SharedArrayBuffer;
  readonly arena: SharedArrayBuffer;
  /** Where OP_RUN_NEW_ARENA's SharedArrayBuffer arrives. */
  readonly port: import('node:worker_threads').MessagePort;
}
