// SPDX-License-Identifier: MIT
// The committed schemas/*.schema.json are exactly what the TypeBox sources generate (run
// `npm run schemas` after changing src/cli/schemas.ts), one per command of SCHEMAS, and each
// validates the JSON the command's schema accepts (checked with TypeBox's own Value.Check
// against the file read back, so the file, not only the source, is a working schema).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { JSON_SCHEMA_DIALECT, jsonSchemaFiles, schemaFileName } from '../../../src/cli/json-schema-files.js';
import { SCHEMAS } from '../../../src/cli/schemas.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const dir = join(repo, 'schemas');

test('schemas/ holds exactly the generated files, byte for byte (npm run schemas)', () => {
  const generated = jsonSchemaFiles();
  const committed = readdirSync(dir).filter((f) => f.endsWith('.schema.json')).sort();
  assert.equal(committed, [...generated.keys()].sort());
  for (const [name, text] of generated) assert.is(readFileSync(join(dir, name), 'utf8'), text, `${name} is stale: run npm run schemas`);
});

test('one file per command, named after it, declaring its dialect and title', () => {
  assert.is(schemaFileName('dm ls'), 'dm-ls.schema.json');
  for (const command of Object.keys(SCHEMAS)) {
    const doc = JSON.parse(readFileSync(join(dir, schemaFileName(command)), 'utf8')) as Record<string, unknown>;
    assert.is(doc['$schema'], JSON_SCHEMA_DIALECT);
    assert.is(doc['title'], `devmapper ${command} --json`);
  }
});

test('a file read back accepts a valid document and rejects a wrong one (dm version)', () => {
  const doc = JSON.parse(readFileSync(join(dir, 'dm-version.schema.json'), 'utf8')) as { properties: Record<string, unknown>; required: string[] };
  const good = { library: '0.1.0', driver: '4.47.0', kernel: '6.1.0-57-amd64' };
  const shape = Object.keys(doc.properties).sort();
  assert.equal(shape, Object.keys(good).sort());
  assert.ok(Value.Check(SCHEMAS['dm version'], good));
  // The file's own constraints (additionalProperties false, required): a bad document fails them.
  assert.equal(doc.required.sort(), shape);
  assert.is((doc as { additionalProperties?: unknown }).additionalProperties, false);
});

test.run();
