// SPDX-License-Identifier: MIT
// bin/devmapper.js runs the bundled CLI (dist/cli, scripts/bundle-cli.mjs): it loads none of
// dist/src and fewer files than the unbundled tree, prints the package's version, and falls back to
// dist/src/cli when the bundle is missing or older than tsc's output (a stale bundle never runs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadedBy, repo } from './loaded-by.js';

const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;

for (const args of [['--version'], ['loop', 'ls', '--help'], ['loop', 'ls'], ['dm', 'ls'], ['ds', 'list', '--root', '/nonexistent/devmapper-bundle-test']]) {
  test(`devmapper ${args.join(' ')} runs the bundle: no dist/src module, fewer files than unbundled`, () => {
    const bin = loadedBy(args, 'bin');
    const src = loadedBy(args, 'src');
    // Same behaviour (the exit status depends on the machine, but equally for both).
    assert.is(bin.status, src.status, `${bin.stdout}\n---\n${src.stdout}`);
    assert.is(bin.stdout, src.stdout);
    assert.equal(bin.files.filter((f) => f.startsWith('dist/src/')), []);
    const ours = bin.files.filter((f) => f.startsWith('dist/cli/'));
    assert.ok(ours.includes('dist/cli/main.js'), ours.join(' '));
    const srcCount = src.files.filter((f) => f.startsWith('dist/src/')).length;
    assert.ok(ours.length < srcCount, `${ours.length} bundle files vs ${srcCount} modules`);
  });
}

test('the bundle holds @solana/buffer-layout instead of loading it from node_modules', () => {
  // scripts/bundle-cli.mjs: no CommonJS loader and package lookups at startup. (A require() is
  // not seen by the load recorder, so this reads the bundle's text: the package's name as a
  // module specifier would be a quoted string.)
  const dir = join(repo, 'dist/cli');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  assert.ok(files.some((f) => readFileSync(join(dir, f), 'utf8').includes('// node_modules/@solana/buffer-layout/lib/Layout.js')), 'bundled');
  assert.equal(files.filter((f) => /["']@solana\/buffer-layout["']/.test(readFileSync(join(dir, f), 'utf8'))), []);
});

test('bin/devmapper.js --version prints package.json\'s version from the bundle', () => {
  const r = spawnSync(process.execPath, [join(repo, 'bin/devmapper.js'), '--version'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `${version}\n`);
});

test('bin/devmapper.js picks the bundle unless it is missing or older than dist/src/cli/main.js', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-bin-'));
  try {
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(repo, 'bin/devmapper.js'), join(dir, 'bin/devmapper.js'));
    const fake = (which: string): string => `export async function run(argv) { process.stdout.write(${JSON.stringify(which)} + ' ' + argv.join(',') + '\\n'); return 7; }\n`;
    mkdirSync(join(dir, 'dist/src/cli'), { recursive: true });
    writeFileSync(join(dir, 'dist/src/cli/main.js'), fake('src'));
    const runBin = (): { status: number | null; stdout: string } => {
      const r = spawnSync(process.execPath, [join(dir, 'bin/devmapper.js'), 'a', 'b'], { encoding: 'utf8' });
      return { status: r.status, stdout: r.stdout };
    };
    assert.equal(runBin(), { status: 7, stdout: 'src a,b\n' }, 'no bundle');
    mkdirSync(join(dir, 'dist/cli'));
    writeFileSync(join(dir, 'dist/cli/main.js'), fake('bundle'));
    const at = (rel: string, s: number): void => utimesSync(join(dir, rel), s, s);
    at('dist/src/cli/main.js', 1_000_000);
    at('dist/cli/main.js', 1_000_100);
    assert.equal(runBin(), { status: 7, stdout: 'bundle a,b\n' }, 'bundle newer');
    at('dist/cli/main.js', 1_000_000);
    assert.equal(runBin(), { status: 7, stdout: 'bundle a,b\n' }, 'same mtime (an npm tarball stamps every file alike)');
    at('dist/src/cli/main.js', 1_000_200);
    assert.equal(runBin(), { status: 7, stdout: 'src a,b\n' }, 'bundle older than tsc output');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
