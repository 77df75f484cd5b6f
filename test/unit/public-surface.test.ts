// SPDX-License-Identifier: MIT
// The public surface is chosen: every entry point of package.json's "exports" exports exactly the
// names pinned in public-surface.json, so a change to the surface is deliberate and visible in
// review (update the JSON in the same commit).
// The README's and docs' examples import only what their entry exports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { exports: Record<string, string | { default: string; types: string }> };
const pinned = JSON.parse(readFileSync(join(repo, 'test', 'unit', 'public-surface.json'), 'utf8')) as Record<string, string[]>;
// Data files, not modules: package.json and the --json schemas (checked by cli/json-schemas.test).
const UNPINNED = new Set(['./package.json', './schemas/*.json']);

const entries = Object.entries(pkg.exports)
  .filter(([entry]) => !UNPINNED.has(entry))
  .map(([entry, target]) => ({ entry, file: join(repo, typeof target === 'string' ? target : target.default), types: typeof target === 'string' ? undefined : join(repo, target.types) }));

async function namesOf(file: string): Promise<string[]> {
  return Object.keys(await import(pathToFileURL(file).href)).sort();
}

test('every entry point is pinned, and nothing else is', () => {
  assert.equal(Object.keys(pinned).sort(), entries.map((e) => e.entry).sort());
});

for (const { entry, file } of entries) {
  test(`${entry} exports exactly the pinned names`, async () => {
    assert.equal(await namesOf(file), pinned[entry]);
  });
}

test('internals are not exported from the package root', async () => {
  const root = new Set(await namesOf(join(repo, 'dist', 'src', 'index.js')));
  const internals = ['AsyncMutex', 'KeyedMutex', 'REMOVE_RETRY', 'LOOP_ATTACH_MAX_ATTEMPTS', 'LOOP_OPEN_MAX_TRIES', 'CRASH_POINTS', 'crashHook', 'maskFlags', 'identify', 'encodeDevNum', 'reconcile'];
  assert.equal(internals.filter((n) => root.has(n)), []);
});

/** `import { a, type B } from 'devmapper…'` statements in the fenced code of a markdown file. */
function docImports(text: string): { spec: string; names: { name: string; type: boolean }[] }[] {
  const out: { spec: string; names: { name: string; type: boolean }[] }[] = [];
  for (const block of text.matchAll(/```(?:ts|typescript|js|javascript|mjs)\n([\s\S]*?)```/g)) {
    for (const m of (block[1] ?? '').matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+['"](devmapper(?:\/[a-z]+)?)['"]/g)) {
      const all = m[1] !== undefined;
      const names = (m[2] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => ({ name: s.replace(/^type\s+/, '').replace(/\s+as\s+.*$/, ''), type: all || s.startsWith('type ') }));
      out.push({ spec: m[3] ?? '', names });
    }
  }
  return out;
}

test('README and docs examples import only what their entry exports', async () => {
  const docs = [join(repo, 'README.md'), join(repo, 'DEVELOPERS.md'), ...readdirSync(join(repo, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(repo, 'docs', f))];
  const missing: string[] = [];
  let checked = 0;
  for (const doc of docs) {
    for (const { spec, names } of docImports(readFileSync(doc, 'utf8'))) {
      const entry = spec === 'devmapper' ? '.' : `.${spec.slice('devmapper'.length)}`;
      const target = pkg.exports[entry];
      if (target === undefined) {
        missing.push(`${doc}: ${spec} is not an entry point`);
        continue;
      }
      const file = join(repo, typeof target === 'string' ? target : target.default);
      const values = new Set(await namesOf(file));
      const dts = typeof target === 'string' ? '' : readFileSync(join(repo, target.types), 'utf8');
      for (const { name, type } of names) {
        checked++;
        const ok = values.has(name) || (type && new RegExp(`\\b${name}\\b`).test(dts));
        if (!ok) missing.push(`${doc}: ${name} from ${spec}`);
      }
    }
  }
  assert.ok(checked > 0, 'the docs have examples to check');
  assert.equal(missing, []);
});

test.run();
