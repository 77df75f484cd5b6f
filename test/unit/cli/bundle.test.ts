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
import type { Syscalls } from '../../../src/ioctl/index.js';
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


test('a BatchWorker from the bundle starts its thread: dist/cli/batch-thread.js is bundled next to it', async () => {
  // BatchWorker starts new URL('./batch-thread.js', import.meta.url) relative to the chunk that
  // holds it; without the bundle's second entry point that file did not exist in dist/cli and the
  // first batch failed with BatchWorkerError. FIONREAD on a regular file needs no privilege
  // (fs/ioctl.c answers it from i_size).
  const dir = join(repo, 'dist/cli');
  const holders = readdirSync(dir).filter((f) => f.endsWith('.js') && /new URL\(["']\.\/batch-thread\.js["'], import\.meta\.url\)/.test(readFileSync(join(dir, f), 'utf8')));
  assert.ok(holders.length > 0, 'some chunk of the bundle holds BatchWorker');
  const tmp = mkdtempSync(join(tmpdir(), 'devmapper-bundle-batch-'));
  try {
    const file = join(tmp, 'f');
    writeFileSync(file, Buffer.alloc(12345));
    for (const holder of holders) {
      // The chunk exports realSyscalls (the CLI's layers import it), whose openBatch makes the
      // chunk's own BatchWorker.
      const mod = (await import(join(dir, holder))) as Record<string, unknown>;
      const realSyscalls = Object.values(mod).find((v): v is () => Syscalls => typeof v === 'function' && v.name === 'realSyscalls');
      assert.ok(realSyscalls, `${holder} exports realSyscalls`);
      const sys = realSyscalls!();
      const fd = sys.open(file, 0);
      const batcher = sys.openBatch!();
      try {
        const out = Buffer.alloc(4);
        const r = await batcher.run([{ fd, request: 0x541b, arg: out, requestName: 'FIONREAD' }]);
        assert.is(r.error, undefined);
        assert.equal(r.results, [0]);
        assert.is(out.readInt32LE(0), 12345);
      } finally {
        batcher.close();
        sys.close(fd);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
