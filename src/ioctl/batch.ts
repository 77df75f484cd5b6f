// SPDX-License-Identifier: MIT
// Batched ioctls: a sequence of requests the kernel side runs one after another, answering once
// (issue #21 §1). The real implementation is a worker thread (batch-worker.ts); a Syscalls seam
// without `openBatch` (or the FakeKernel's inline runner, runBatchInline) keeps the per-call path.
import { BatchWorkerError, IoctlError } from './errors.js';

/** The seam's synchronous ioctl (Syscalls.ioctl), which an inline batch runs each step through. */
interface SyncIoctl {
  ioctl(fd: number, request: number, arg: Buffer | number | bigint, requestName: string): number;
}

/**
 * "Stop after this step when the u32 at `offset` of its buffer has any bit of `mask` set" — how a
 * dm step says "the kernel answered DM_BUFFER_FULL_FLAG, grow my buffer and run me again": the
 * kernel has then done the step (its output did not fit), so running the next step would act on a
 * reply the caller has not seen.
 */
export interface StopIfFlag {
  readonly offset: number;
  readonly mask: number;
}

/** One ioctl of a batch. A Buffer argument is the kernel's in/out buffer, as with `ioctl`. */
export interface IoctlStep {
  readonly fd: number;
  readonly request: number;
  readonly arg: Buffer | number | bigint;
  /** C name of the request, for errors and diagnostics. */
  readonly requestName: string;
  readonly stopIf?: StopIfFlag;
}

/** How a batch ended. */
export interface BatchOutcome {
  /**
   * Results (ioctl return values) of the steps that completed, in order; `results.length` is the
   * index of the first step that did not complete (failed, or not run after a `stopIf`).
   */
  readonly results: number[];
  /** The failure of step `results.length`, with its errno; later steps were not run. */
  readonly error?: IoctlError;
  /**
   * Set when step `results.length - 1` completed but its `stopIf` flag was set: the steps after
   * it were not run.
   */
  readonly stopped?: boolean;
}

/**
 * Runs sequences of ioctls in one hop. One batcher runs one batch at a time (`busy` while it
 * does); callers that find it busy use the per-call path instead of queueing behind it.
 */
export interface IoctlBatcher {
  /** True while a batch is in flight. */
  readonly busy: boolean;
  /**
   * Runs `steps` in order, stopping at the first failure (reported with its index and errno) or
   * after a step whose `stopIf` flag is set. Buffers are written back before the promise resolves.
   * @throws BatchWorkerError when the batcher is closed or its worker died; IoctlError never
   *   (a failed step is reported in the outcome).
   */
  run(steps: readonly IoctlStep[]): Promise<BatchOutcome>;
  /** Stops the worker (after the batch in flight, if any). Idempotent. */
  close(): void;
}

/** Maximum number of steps in one batch. */
export const MAX_BATCH_STEPS = 16;

/** True when the stopIf flag of `step` is set in its (written-back) buffer. */
export function stopFlagSet(step: IoctlStep): boolean {
  const s = step.stopIf;
  if (s === undefined || !Buffer.isBuffer(step.arg) || s.offset + 4 > step.arg.length) return false;
  return (step.arg.readUInt32LE(s.offset) & s.mask) !== 0;
}

/**
 * Runs a batch with the seam's synchronous `ioctl`, in the caller's turn: what a fake kernel's
 * `openBatch` does (the FakeKernel's batches run inline).
 */
export async function runBatchInline(sys: SyncIoctl, steps: readonly IoctlStep[]): Promise<BatchOutcome> {
  const results: number[] = [];
  for (const step of steps) {
    try {
      results.push(sys.ioctl(step.fd, step.request, step.arg, step.requestName));
    } catch (e) {
      if (e instanceof IoctlError) return { results, error: e };
      throw e;
    }
    if (stopFlagSet(step)) return { results, stopped: true };
  }
  return { results };
}

/** An {@link IoctlBatcher} over {@link runBatchInline} (never busy: each batch completes inline). */
export function inlineBatcher(sys: SyncIoctl): IoctlBatcher {
  let closed = false;
  return {
    busy: false,
    run: async (steps) => {
      if (closed) throw new BatchWorkerError('the batcher is closed');
      return runBatchInline(sys, steps);
    },
    close: () => {
      closed = true;
    },
  };
}
