#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// npm run validators: writes src/deviceset/schemas.generated.ts from the build (the TypeBox
// sources in dist/src/deviceset/record-schemas.js, compiled by schema-codegen.js).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { deviceSetSchemaModule } = await import(join(repo, 'dist/src/deviceset/schema-modules.js'));
const path = join(repo, 'src/deviceset/schemas.generated.ts');
writeFileSync(path, deviceSetSchemaModule());
console.log(`validators: wrote ${path}`);
