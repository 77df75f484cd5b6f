// SPDX-License-Identifier: MIT
// The base of every error this library throws, plus errno helpers. LEAF: imports nothing from src/.
import { getSystemErrorName } from 'node:util';

/**
 * Base class of every error thrown by devmapper. `code` is a stable string that callers can
 * switch on; `cause` (ES2022) always keeps the lower-level error that led here.
 */
export abstract class DevmapperError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** One problem found while validating input. `path` is a JSON pointer into the input. */
export interface ValidationProblem {
  readonly path: string;
  readonly message: string;
  readonly value?: unknown;
}

/**
 * Bad input, detected before anything reached the kernel or the disk. `problems` lists every
 * problem found, not only the first.
 */
export class InvalidArgumentError extends DevmapperError {
  override readonly name = 'InvalidArgumentError';
  readonly code = 'EINVALIDARG';
  readonly problems: readonly ValidationProblem[];
  constructor(what: string, problems: readonly ValidationProblem[], options?: { cause?: unknown }) {
    const list = problems.map((p) => `${p.path || '/'}: ${p.message}`).join('; ');
    super(`invalid ${what}: ${list}`, options);
    this.problems = problems;
  }
}

/** Kernel output (a status or table line, a list payload) that we could not parse. */
export class KernelOutputError extends DevmapperError {
  override readonly name = 'KernelOutputError';
  readonly code = 'EKERNELOUTPUT';
  readonly raw: string;
  constructor(message: string, raw: string, options?: { cause?: unknown }) {
    super(message, options);
    this.raw = raw;
  }
}

/** Symbolic name of a positive errno ('EBUSY'), or `E<n>` when Node does not know it. */
export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `E${errno}`;
  }
}

/** True when `err`, or any error in its `cause` chain, carries the given errno code. */
export function isErrno(err: unknown, code: string): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 16; depth++) {
    if (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
