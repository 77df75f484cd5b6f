// SPDX-License-Identifier: MIT
// The API reference (`npm run docs:api`, TypeDoc) documents exactly the package's module entry
// points: typedoc.json's entryPoints are the sources of package.json's "exports" (types), one each.
// Building the reference itself takes TypeDoc ~30 s of CPU, so it is not run here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const read = (f: string): unknown => JSON.parse(readFileSync(join(repo, f), 'utf8'));

test('typedoc.json: one entry point per module export of package.json, warnings are errors', () => {
  const pkg = read('package.json') as { exports: Record<string, string | { types?: string }>; scripts: Record<string, string>; files: string[] };
  const cfg = read('typedoc.json') as { entryPoints: string[]; treatWarningsAsErrors: boolean; out: string };
  const fromExports = Object.values(pkg.exports)
    .map((t) => (typeof t === 'string' ? undefined : t.types))
    .filter((t): t is string => t !== undefined && t.endsWith('.d.ts'))
    .map((t) => t.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts'))
    .sort();
  assert.equal([...cfg.entryPoints].sort(), fromExports);
  for (const e of cfg.entryPoints) assert.ok(existsSync(join(repo, e)), e);
  assert.is(cfg.treatWarningsAsErrors, true);
  assert.is(pkg.scripts['docs:api'], 'typedoc');
  const ignored = readFileSync(join(repo, '.gitignore'), 'utf8').split('\n');
  assert.ok(ignored.includes(`/${cfg.out}/`), 'the generated reference is not committed');
  assert.ok(pkg.files.includes('docs') && pkg.files.includes(`!${cfg.out}`), 'nor packed with docs/ (943 files)');
});

test.run();
