// SPDX-License-Identifier: MIT
// Enforces the layering rule mechanically: imports in src/ only flow downward
// (cli → index → deviceset → thin, loop, dm → ioctl), another layer is imported only through its
// index.ts, there are no import cycles, and only src/ioctl/libc.ts touches koffi (and libc).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const srcRoot = join(repo, 'src');

/** Which top-level folders (or leaf files) of src/ each folder may import from. */
const ALLOWED: Record<string, readonly string[]> = {
  'errors.ts': [],
  'units.ts': ['errors.ts'],
  ioctl: ['errors.ts', 'units.ts'],
  dm: ['ioctl', 'errors.ts', 'units.ts'],
  loop: ['ioctl', 'errors.ts', 'units.ts'],
  thin: ['dm', 'errors.ts', 'units.ts'],
  deviceset: ['thin', 'loop', 'dm', 'ioctl', 'errors.ts', 'units.ts'],
  // The seed's Driver and the Docker-root tools: above the DeviceSet; a Docker root's pool is
  // opened with the thin/loop/dm layers directly.
  driver: ['deviceset', 'thin', 'loop', 'dm', 'ioctl', 'errors.ts', 'units.ts'],
  // testing sits beside the public API: it wires every layer, DeviceSet included, to FakeKernel.
  testing: ['ioctl', 'dm', 'loop', 'thin', 'deviceset', 'errors.ts', 'units.ts'],
  vm: ['errors.ts'],
  'index.ts': ['ioctl', 'dm', 'loop', 'thin', 'deviceset', 'driver', 'errors.ts', 'units.ts', 'vm', 'testing'],
  // The CLI imports each layer's entry directly (not the package root, which loads every layer):
  // a command loads only the layers it uses (test/unit/cli/startup.test.ts).
  cli: ['index.ts', 'ioctl', 'dm', 'loop', 'thin', 'deviceset', 'driver', 'vm', 'errors.ts'],
};

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The top-level unit of src/ a path belongs to: a folder name or a leaf file name. */
function unitOf(absPath: string): string {
  return relative(srcRoot, absPath).split(sep)[0] ?? '';
}

const files = walk(srcRoot);
const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

test('src/ has files to check', () => {
  assert.ok(files.length > 0);
});

test('imports in src/ flow downward only', () => {
  const violations: string[] = [];
  for (const file of files) {
    const from = unitOf(file);
    const allowed = ALLOWED[from];
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(importRe)) {
      const spec = m[1] ?? m[2] ?? '';
      if (!spec.startsWith('.')) continue;
      const target = unitOf(resolve(dirname(file), spec));
      if (target === from) continue;
      if (allowed === undefined) violations.push(`${relative(repo, file)}: folder '${from}' has no rule`);
      else if (!allowed.includes(target.replace(/\.js$/, '.ts')))
        violations.push(`${relative(repo, file)} imports ${spec} (${from} → ${target})`);
    }
  }
  assert.equal(violations, []);
});

test('another layer is imported only through its index.ts', () => {
  const violations: string[] = [];
  for (const file of files) {
    const from = unitOf(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(importRe)) {
      const spec = m[1] ?? m[2] ?? '';
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      const unit = unitOf(target);
      if (unit === from || !statSync(join(srcRoot, unit), { throwIfNoEntry: false })?.isDirectory()) continue;
      if (target !== join(srcRoot, unit, 'index.js')) violations.push(`${relative(repo, file)} imports ${spec}`);
    }
  }
  assert.equal(violations, []);
});

/** Relative imports of one src/ file, resolved to the .ts files they name (type-only imports included). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const m of readFileSync(file, 'utf8').matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? '';
    if (!spec.startsWith('.')) continue;
    out.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
  }
  return out;
}

/** Every import cycle among src/ files, each as the list of files along it (depth-first search). */
function importCycles(): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t !== f)] as const));
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative(repo, f)));
      else if (state.get(next) === undefined && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (state.get(file) === undefined) visit(file);
  return cycles;
}

test('no import cycles among src/ files', () => {
  assert.equal(importCycles(), []);
});

test('nothing above src/ioctl calls libc: the layers above go through Syscalls or node:fs', () => {
  // The DeviceSet still imports src/ioctl (the Syscalls seam, realSyscalls and flag constants:
  // LOCK_*, MS_*, MNT_*, O_CLOEXEC), so 'ioctl' stays in its ALLOWED list; libc itself does not.
  const importsLibc = /(?:import|export)\s*(?:type\s*)?\{[^}]*\blibc(?:Loaded)?\b[^}]*\}\s*from\s*['"][^'"]*ioctl\//;
  const offenders = files
    .filter((f) => unitOf(f) !== 'ioctl' && importsLibc.test(readFileSync(f, 'utf8')))
    .map((f) => relative(repo, f));
  assert.equal(offenders, []);
});

test("DEVELOPERS.md's layer map is this test's ALLOWED table", () => {
  const text = readFileSync(join(repo, 'DEVELOPERS.md'), 'utf8');
  const start = text.indexOf('<!-- layer-map:start -->');
  const end = text.indexOf('<!-- layer-map:end -->');
  assert.ok(start >= 0 && end > start, 'DEVELOPERS.md has the layer-map markers');
  const map: Record<string, string[]> = {};
  for (const line of text.slice(start, end).split('\n')) {
    const m = /^\| `([^`]+)` \| (.*) \|$/.exec(line.trim());
    if (!m) continue;
    map[m[1] ?? ''] = [...(m[2] ?? '').matchAll(/`([^`]+)`/g)].map((x) => x[1] ?? '');
  }
  assert.equal(map, Object.fromEntries(Object.entries(ALLOWED).map(([k, v]) => [k, [...v]])));
});

test('only src/ioctl/libc.ts imports koffi', () => {
  const offenders = files
    .filter((f) => /['"]koffi['"]/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(repo, f))
    .filter((f) => f !== join('src', 'ioctl', 'libc.ts'));
  assert.equal(offenders, []);
});

test.run();
