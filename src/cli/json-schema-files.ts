// SPDX-License-Identifier: MIT
// The `--json` output schemas (src/cli/schemas.ts) as JSON Schema files, one per command:
// `schemas/<group>-<command>.schema.json`, and `schemas/error.schema.json` for errors, in the package, exported as `devmapper/schemas/…`, so a
// script can validate what it parses with any JSON Schema validator. The files are generated
// (`npm run schemas`) and committed; a unit test fails when they differ from the TypeBox sources.
// TypeBox schemas are JSON Schema (draft 7 keywords); JSON.stringify drops TypeBox's own symbols.
import { CliErrorJson, SCHEMAS } from './schemas.js';

/** The JSON Schema dialect the files declare. */
export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

/** File name of a command's schema: `dm ls` → `dm-ls.schema.json`. */
export function schemaFileName(command: string): string {
  return `${command.replace(/ /g, '-')}.schema.json`;
}

/** The file of the `--json` error shape (CliErrorJson). */
export const ERROR_SCHEMA_FILE = 'error.schema.json';

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
  // The error line every command writes to stderr under --json.
  const error = {
    $schema: JSON_SCHEMA_DIALECT,
    $id: `devmapper/schemas/${ERROR_SCHEMA_FILE}`,
    title: 'devmapper error on stderr under --json',
    ...(JSON.parse(JSON.stringify(CliErrorJson)) as object),
  };
  out.set(ERROR_SCHEMA_FILE, `${JSON.stringify(error, null, 2)}\n`);
  return out;
}
