// SPDX-License-Identifier: MIT
// No CommonJS module is loaded through the ESM loader when a user imports any entry point or the
// CLI starts. An ESM `import` of a CommonJS file makes Node lex the whole file for its named
// exports (cjs-module-lexer): for @solana/buffer-layout's 90 KB that was ~25 ms of every process
// start on the host and about a second in the TCG test guest. CommonJS dependencies are loaded
// with createRequire (src/ioctl/libc.ts for koffi, src/ioctl/buffer-layout.ts). The check is a
// loader hook (node:module register) that reports every module whose format is 'commonjs'.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

const HOOKS = `export async function load(url, context, next) {
  const r = await next(url, context);
  if (r.format === 'commonjs') process.stderr.write('CJS-VIA-ESM ' + url + '\\n');
  return r;
}
`;

/** The CommonJS files the ESM loader loaded while `entries` were imported, in load order. */
function cjsViaEsm(entries: readonly string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-cjs-'));
  try {
    const hooks = join(dir, 'hooks.mjs');
    writeFileSync(hooks, HOOKS);
    const script = [
      "import { register } from 'node:module';",
      `register(${JSON.stringify(pathToFileURL(hooks).href)});`,
      ...entries.map((e) => `await import(${JSON.stringify(pathToFileURL(join(repo, e)).href)});`),
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    return r.stderr.split('\n').filter((l) => l.startsWith('CJS-VIA-ESM ')).map((l) => l.slice(12).replace(pathToFileURL(repo).href, ''));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('no entry point and no CLI module loads a CommonJS file through the ESM loader', () => {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const entries = Object.values(pkg.exports)
    .map((v) => (typeof v === 'object' && v !== null ? (v as { default?: string }).default : undefined))
    .filter((v): v is string => typeof v === 'string' && v.endsWith('.js'));
  assert.ok(entries.length >= 9, `entries: ${entries.join(', ')}`);
  entries.push('./dist/src/cli/main.js');
  assert.equal(cjsViaEsm(entries), []);
});

test.run();
