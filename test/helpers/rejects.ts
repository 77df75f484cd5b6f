// SPDX-License-Identifier: MIT
// uvu/assert has no async throws: one helper for "this promise rejects with that error class".
import * as assert from 'uvu/assert';

/** Resolves with the error when `p` rejects with an instance of `cls`; fails the test otherwise. */
export async function rejects<E>(p: Promise<unknown>, cls: new (...a: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, cls, `expected ${cls.name}, got ${String(err)}`);
    return err as E;
  }
  return assert.unreachable(`expected a ${cls.name} rejection`) as never;
}
