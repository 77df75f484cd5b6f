#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// npm run schemas: writes schemas/*.schema.json from the build (dist/src/cli/json-schema-files.js).
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { jsonSchemaFiles } = await import(join(repo, 'dist/src/cli/json-schema-files.js'));
const dir = join(repo, 'schemas');
mkdirSync(dir, { recursive: true });
for (const f of readdirSync(dir)) if (f.endsWith('.schema.json')) rmSync(join(dir, f));
const files = jsonSchemaFiles();
for (const [name, text] of files) writeFileSync(join(dir, name), text);
console.log(`schemas: ${files.size} files in ${dir}`);
