// SPDX-License-Identifier: MIT
// The package as a user gets it (issue 17): `npm pack`, then `npm install <tarball>` into a fresh
// project with no dev dependencies, then every entry point of package.json's "exports" imported
// from ESM, from CommonJS (require(esm), Node ≥ 20.19) and type-checked from a strict TypeScript
// consumer under `nodenext` and under `bundler` resolution. The names each entry exports are the
// ones pinned in public-surface.json; the `devmapper` bin runs. Needs the build (dist/) and npm;
// the install prefers npm's cache (filled by `npm ci`), so it needs no network when that ran.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
  files: string[];
  engines: { node: string };
};
const pinned = JSON.parse(readFileSync(join(repo, 'test', 'unit', 'public-surface.json'), 'utf8')) as Record<string, string[]>;
const entries = Object.keys(pkg.exports).filter((e) => e !== './package.json' && !e.includes('*'));
const specifier = (entry: string): string => (entry === '.' ? pkg.name : `${pkg.name}/${entry.slice(2)}`);
const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

const work = mkdtempSync(join(tmpdir(), 'devmapper-pack-'));
const app = join(work, 'app');
let tarball = '';
let packedFiles: string[] = [];

function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

test.before(() => {
  // `npm pack --json` lists what the tarball holds; --ignore-scripts: nothing of ours runs at pack.
  const out = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], repo)) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, out[0]!.filename);
  packedFiles = out[0]!.files.map((f) => f.path).sort();
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', tarball], app);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test('the tarball holds the build, the bin and what the README links to; no tests, no sources', () => {
  for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'bin/devmapper.js', 'dist/cli/main.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'docs/cli.md', 'docs/deviceset.md']) {
    assert.ok(packedFiles.includes(f), `${f} is packed`);
  }
  assert.equal(packedFiles.filter((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.startsWith('src/') || f.startsWith('test/')), []);
  // Every local link of the README resolves inside the tarball.
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const links = [...readme.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)/g)].map((m) => m[1]!.replace(/^\.\//, ''));
  assert.equal(links.filter((l) => !packedFiles.some((f) => f === l || f.startsWith(`${l.replace(/\/$/, '')}/`))), [], 'README links to files that are not packed');
});

test('every `files` entry of package.json packs something; every doc of docs/ is packed', () => {
  assert.equal(
    pkg.files.filter((entry) => !entry.startsWith('!') && !packedFiles.some((f) => f === entry || f.startsWith(`${entry}/`))),
    [],
    'files entries that match nothing',
  );
  // A negated entry ('!docs/api': the generated API reference) keeps its files out.
  const negated = pkg.files.filter((entry) => entry.startsWith('!')).map((entry) => entry.slice(1));
  assert.equal(packedFiles.filter((f) => negated.some((n) => f === n || f.startsWith(`${n}/`))), []);
  const docs = readdirSync(join(repo, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`).sort();
  assert.ok(docs.length > 0);
  assert.equal(packedFiles.filter((f) => f.startsWith('docs/')), docs);
  assert.equal(packedFiles.filter((f) => f.startsWith('test/') || f.includes('/test/')), []);
});

test('package.json as installed: repository, homepage, bugs, os and an engines.node the README states', () => {
  const installed = JSON.parse(readFileSync(join(app, 'node_modules', pkg.name, 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(installed['repository'], { type: 'git', url: 'git+https://github.com/devmapper-js/devmapper.git' });
  assert.is(installed['homepage'], 'https://github.com/devmapper-js/devmapper#readme');
  assert.equal(installed['bugs'], { url: 'https://github.com/devmapper-js/devmapper/issues' });
  assert.equal(installed['os'], ['linux']);
  // require(esm) works unflagged from Node 20.19 (the CommonJS test below runs it); the README's
  // first paragraph states the same minimum as engines.node.
  assert.equal(installed['engines'], { node: '>=20.19.0' });
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  assert.equal([...readme.matchAll(/Node\.js (\d+(?:\.\d+)*) (?:and|or) later/g)].map((m) => m[1]), ['20.19', '20.19', '20.19']);
});

test('installed with no dev dependencies: only the declared dependencies are there', () => {
  const installed = JSON.parse(readFileSync(join(app, 'node_modules', pkg.name, 'package.json'), 'utf8')) as { version: string };
  assert.is(installed.version, pkg.version);
  for (const dev of ['typescript', 'uvu', 'fast-check', '@types/node']) assert.not.ok(existsSync(join(app, 'node_modules', dev)), `${dev} is not installed`);
  for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(app, 'node_modules', dep, 'package.json')), `${dep} is installed`);
});

test('ESM: every entry point imports and exports exactly its pinned names', () => {
  const script = [
    'const out = {};',
    ...entries.map((e) => `out[${JSON.stringify(e)}] = Object.keys(await import(${JSON.stringify(specifier(e))})).sort();`),
    'console.log(JSON.stringify(out));',
  ].join('\n');
  writeFileSync(join(app, 'esm.mjs'), script);
  const got = JSON.parse(run(process.execPath, ['esm.mjs'], app)) as Record<string, string[]>;
  for (const e of entries) assert.equal(got[e], pinned[e], e);
});

test('the --json schemas are exported as files: devmapper/schemas/<command>.schema.json', () => {
  writeFileSync(join(app, 'schema.cjs'), `console.log(JSON.stringify(require('${pkg.name}/schemas/dm-ls.schema.json').title))`);
  assert.is(JSON.parse(run(process.execPath, ['schema.cjs'], app)), 'devmapper dm ls --json');
});

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
test(`CommonJS: require() of every entry point (require(esm): Node ≥ 20.19; this is ${process.versions.node})`, () => {
  const script = ['const out = {};', ...entries.map((e) => `out[${JSON.stringify(e)}] = Object.keys(require(${JSON.stringify(specifier(e))})).sort();`), 'console.log(JSON.stringify(out));'].join('\n');
  writeFileSync(join(app, 'cjs.cjs'), script);
  // engines.node is >=20.19.0: an older Node is not supported, and this test says so.
  assert.ok(major > 20 || (major === 20 && minor >= 19), `Node ${process.versions.node} is older than engines.node ${pkg.engines.node}`);
  const got = JSON.parse(run(process.execPath, ['--no-warnings', 'cjs.cjs'], app)) as Record<string, string[]>;
  for (const e of entries) assert.equal(got[e], pinned[e], e);
});

for (const mode of ['nodenext', 'bundler'] as const) {
  test(`TypeScript (strict, ${mode}, lib check on): every entry point's types resolve and check`, () => {
    const dir = join(app, `ts-${mode}`);
    mkdirSync(dir, { recursive: true });
    const lines = entries.map((e, i) => `import * as m${i} from '${specifier(e)}';`);
    lines.push(`export const counts: number[] = [${entries.map((_, i) => `Object.keys(m${i}).length`).join(', ')}];`);
    // A few typed uses, so the declarations are used and not only found.
    lines.push(`export function code(e: unknown): string | undefined { return e instanceof m0.DevmapperError ? e.code : undefined; }`);
    writeFileSync(join(dir, 'consumer.ts'), `${lines.join('\n')}\n`);
    const compilerOptions =
      mode === 'nodenext'
        ? { module: 'nodenext', moduleResolution: 'nodenext' }
        : { module: 'esnext', moduleResolution: 'bundler' };
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...compilerOptions,
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          // A consumer of a Node library has @types/node; ours stands in for it.
          typeRoots: [join(repo, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    // The consumer's package.json (type: module) is one level up; node_modules/devmapper is found from there.
    run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], dir);
  });
}

test('source maps work for an installed user: --enable-source-maps names src/…ts and the line of the throw', () => {
  // A typed error thrown by the library (parseDevNum refuses 'nope' before anything else runs).
  writeFileSync(
    join(app, 'stack.mjs'),
    [
      "import { parseDevNum } from 'devmapper/dm';",
      "try { parseDevNum('nope'); } catch (e) { console.log(JSON.stringify({ code: e.code, stack: e.stack })); }",
    ].join('\n'),
  );
  const got = JSON.parse(run(process.execPath, ['--enable-source-maps', 'stack.mjs'], app)) as { code: string; stack: string };
  assert.is(got.code, 'EINVALIDARG');
  const frame = /^\s+at .*?\(?(\S+?):(\d+):(\d+)\)?$/m.exec(got.stack);
  assert.ok(frame, got.stack);
  const file = frame[1]!.startsWith('file:') ? fileURLToPath(frame[1]!) : frame[1]!;
  const line = Number(frame[2]);
  assert.is(file, join(app, 'node_modules', pkg.name, 'src', 'dm', 'devnum.ts'), got.stack);
  // The source text is in what was installed: the map's sourcesContent (tsconfig inlineSources).
  const map = JSON.parse(readFileSync(join(app, 'node_modules', pkg.name, 'dist', 'src', 'dm', 'devnum.js.map'), 'utf8')) as {
    sources: string[];
    sourcesContent?: (string | null)[];
  };
  const at = map.sources.findIndex((s) => s.endsWith('src/dm/devnum.ts'));
  const text = map.sourcesContent?.[at]?.split('\n')[line - 1];
  assert.is(text, readFileSync(join(repo, 'src', 'dm', 'devnum.ts'), 'utf8').split('\n')[line - 1]);
  assert.match(text ?? '', /^\s*if \(!m\) throw new InvalidArgumentError\('device number'/);
});

test('the bin is linked and runs', () => {
  assert.is(run(join(app, 'node_modules', '.bin', 'devmapper'), ['--version'], app).trim(), pkg.version);
});

test.run();
