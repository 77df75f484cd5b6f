// SPDX-License-Identifier: MIT
// What the layer does with a schema at run time besides the generated check
// (schemas.generated.ts): list every problem of a value that failed it, and drop unknown fields.
// Neither loads TypeBox on the path a valid record takes.
import { createRequire } from 'node:module';
import type { TSchema } from '@sinclair/typebox';
import type { ValidationProblem } from '../errors.js';

type ErrorsModule = typeof import('@sinclair/typebox/errors');
let errorsModule: ErrorsModule | undefined;

/**
 * Every problem of a value that failed its generated check, in TypeBox's words and order
 * (`Errors()` of `@sinclair/typebox/errors`). TypeBox is loaded here, once, on the first failure:
 * synchronously, through its CommonJS build (the same package; a schema's kind is a registered
 * symbol, `Symbol.for('TypeBox.Kind')`, so both builds read the generated objects).
 */
export function schemaErrors(schema: TSchema, value: unknown): ValidationProblem[] {
  errorsModule ??= createRequire(import.meta.url)('@sinclair/typebox/errors') as ErrorsModule;
  return [...errorsModule.Errors(schema, value)].map((e) => ({ path: e.path, message: e.message, value: e.value }));
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A copy of a valid value without the fields its schema does not name, at every depth: what
 * TypeBox's `Value.Clean` returns for this layer's schemas (objects, arrays of them, scalars and
 * unions of literals; a unit test compares the two). Key order is the value's own, as Clean keeps
 * it. A newer devmapper's optional fields are dropped on load.
 */
export function schemaClean(schema: TSchema, value: unknown): unknown {
  const s = schema as { type?: unknown; properties?: Record<string, TSchema>; items?: TSchema };
  if (s.type === 'object' && s.properties !== undefined && isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const sub = Object.hasOwn(s.properties, key) ? s.properties[key] : undefined;
      if (sub !== undefined) out[key] = schemaClean(sub, value[key]);
    }
    return out;
  }
  if (s.type === 'array' && s.items !== undefined && Array.isArray(value)) return value.map((v) => schemaClean(s.items!, v));
  return value;
}
