// SPDX-License-Identifier: MIT
// The `--json` output schemas (src/cli/schemas.ts) as JSON Schema files, one per command:
// `schemas/<group>-<command>.schema.json` in the package, exported as `devmapper/schemas/…`, so a
// script can validate what it parses with any JSON Schema validator. The files are generated
// (`npm run schemas`) and committed; a unit test fails when they differ from the TypeBox sources.
// TypeBox schemas are JSON Schema (draft 7 keywords); JSON.stringify drops TypeBox's own symbols.
import { SCHEMAS } from './schemas.js';

/** The JSON Schema dialect the files declare. */
export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

/** File name of a command's schema: `dm ls` → `dm-ls.schema.json`. */
export function schemaFileName(command: string): string {
  return `${command.replace(/ /g, '-')}.schema.json`;
}

/** Every schema file: name → text (2-space JSON, newline at the end). */
export function jsonSchemaFiles(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [command, schema] of Object.entries(SCHEMAS)) {
    const doc = {
      $schema: JSON_SCHEMA_DIALECT,
      $id: `devmapper/schemas/${schemaFileName(command)}`,
      title: `devmapper ${command} --json`,
      ...(JSON.parse(JSON.stringify(schema)) as object),
    };
    out.set(schemaFileName(command), `${JSON.stringify(doc, null, 2)}\n`);
  }
  return out;
}
