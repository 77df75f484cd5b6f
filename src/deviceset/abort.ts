// SPDX-License-Identifier: MIT
// Cancellation between the DeviceSet's steps: an AbortSignal is honoured between steps, never inside one.
import { OperationAbortedError } from './errors.js';

/** Throws {@link OperationAbortedError} when `signal` has fired: called between steps, never inside one. */
export function checkAbort(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) throw new OperationAbortedError(operation, { cause: signal.reason });
}

/** Runs a child-process tool; when `signal` fired meanwhile, its failure is the abort. */
export async function runTool<T>(signal: AbortSignal | undefined, operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    const out = await fn();
    checkAbort(signal, operation);
    return out;
  } catch (err) {
    if (signal?.aborted && !(err instanceof OperationAbortedError)) throw new OperationAbortedError(operation, { cause: err });
    throw err;
  }
}
