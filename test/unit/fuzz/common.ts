// SPDX-License-Identifier: MIT
// Shared pieces of the fuzz suites (issue 10): the "typed or ok" oracle and a case counter.
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { DevmapperError } from '../../../src/errors.js';

/** Total generated cases, per file (printed with DEVMAPPER_FUZZ_REPORT=1). */
export const counts = new Map<string, number>();

/** Runs `fn`; an exception must be a DevmapperError with a string code. Returns the result or undefined. */
export function typedOrOk<T>(label: string, fn: () => T): T | undefined {
  counts.set(label, (counts.get(label) ?? 0) + 1);
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof DevmapperError) || typeof (err as { code?: unknown }).code !== 'string') {
      assert.unreachable(`${label}: untyped exception ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
    return undefined;
  }
}

/** Async version of {@link typedOrOk}. */
export async function typedOrOkAsync<T>(label: string, fn: () => Promise<T>): Promise<T | undefined> {
  counts.set(label, (counts.get(label) ?? 0) + 1);
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof DevmapperError) || typeof (err as { code?: unknown }).code !== 'string') {
      assert.unreachable(`${label}: untyped exception ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
    return undefined;
  }
}

export function report(file: string, t0: number): void {
  if (!process.env.DEVMAPPER_FUZZ_REPORT) return;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`  ${file}: ${total} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const [k, v] of counts) console.log(`    ${k}: ${v}`);
}

/** The blanks between words of a table or status line, as a parser may meet them. */
export const tableSep = fc.constantFrom(' ', '  ', '\t', '\n');

/**
 * Text for a parser: near-valid lines (up to `maxWords` of `word`, each followed by a blank of
 * {@link tableSep}) and, as often, any string.
 */
export function tableText(word: fc.Arbitrary<string>, maxWords: number): { nearValid: fc.Arbitrary<string>; anyText: fc.Arbitrary<string> } {
  const nearValid = fc.array(fc.tuple(word, tableSep), { maxLength: maxWords }).map((ws) => ws.map(([w, s]) => w + s).join(''));
  return { nearValid, anyText: fc.oneof(nearValid, fc.string({ maxLength: 64 })) };
}
