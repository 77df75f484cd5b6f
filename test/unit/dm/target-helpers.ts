// SPDX-License-Identifier: MIT
// Shared pieces of the dm target unit tests (targets*.test.ts).
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';

/** A device number. */
export const d = (major: number, minor: number): { major: number; minor: number } => ({ major, minor });
export const isInvalid = (e: unknown): boolean => e instanceof InvalidArgumentError;
export const isKernelOutput = (e: unknown): boolean => e instanceof KernelOutputError;

/** The problem paths of the InvalidArgumentError `fn` throws (any other outcome fails). */
export function problemPaths(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof InvalidArgumentError) return e.problems.map((p) => p.path);
    throw e;
  }
  throw new Error('expected an InvalidArgumentError');
}
