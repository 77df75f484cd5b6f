// SPDX-License-Identifier: MIT
// The CLI starts like a C tool: `--help`, `--version` and a command's `--help` load only the
// command tables (src/cli/specs), and `loop ls` / `dm ls` load their own handlers and their own
// layer (loop ls: src/loop, dm ls: src/dm, not the other one) over src/ioctl, never the DeviceSet,
// the Driver, the VM code, TypeBox or the JSON schemas, nor node:crypto or node:worker_threads.
// Each case runs tsc's dist/src/cli/main.js in a child `node --import load-recorder.js`, whose load
// hook lists every module loaded (issue 21, item 4): the lazy-import structure that the bundle
// bin/devmapper.js runs (dist/cli) is split along; bundle.test.ts checks the bundle itself.
// No timing is asserted: the module lists are exact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadedBy } from './loaded-by.js';

/** What every invocation loads: the entry, main, its helpers and the command tables. */
const STARTUP = [
  'dist/src/cli/args.js',
  'dist/src/cli/context.js',
  'dist/src/cli/errors.js',
  'dist/src/cli/main.js',
  'dist/src/cli/package-root.js',
  'dist/src/cli/real-deps.js',
  'dist/src/cli/specs/completion.js',
  'dist/src/cli/specs/constants.js',
  'dist/src/cli/specs/demo.js',
  'dist/src/cli/specs/dm.js',
  'dist/src/cli/specs/docker.js',
  'dist/src/cli/specs/driver.js',
  'dist/src/cli/specs/ds.js',
  'dist/src/cli/specs/loop.js',
  'dist/src/cli/specs/thin.js',
  'dist/src/cli/specs/vm.js',
  'dist/src/cli/version.js',
  'dist/src/errors.js',
];

for (const args of [['--version'], ['--help'], ['loop', 'ls', '--help'], ['dm', 'ls', '--help'], ['ds', 'create', '--help'], ['vm', '--help']]) {
  test(`devmapper ${args.join(' ')} loads the command tables and nothing else`, () => {
    const r = loadedBy(args);
    assert.is(r.status, 0, r.stdout);
    assert.equal(r.files, STARTUP);
  });
}

/** What a run loaded besides the startup set: the library's folders (or leaf files) of dist/src/, the CLI's modules, packages. */
function split(files: readonly string[]): { layers: string[]; cli: string[]; other: string[] } {
  const src = files.filter((f) => f.startsWith('dist/src/'));
  return {
    layers: [...new Set(src.filter((f) => !f.startsWith('dist/src/cli/')).map((f) => f.split('/')[2]!))].sort(),
    cli: src.filter((f) => f.startsWith('dist/src/cli/')),
    other: files.filter((f) => !f.startsWith('dist/src/') && f !== 'bin/devmapper.js'),
  };
}

// The exit status depends on the machine (no device-mapper here, no loop driver there); the
// modules a command loads do not: they are imported before its first kernel call.
for (const [group, handlers, layer, other] of [
  ['loop', 'dist/src/cli/commands/loop.js', 'loop', 'dm'],
  ['dm', 'dist/src/cli/commands/dm.js', 'dm', 'loop'],
] as const) {
  test(`devmapper ${group} ls loads its handlers and the ${layer} and ioctl layers, not the ${other} layer nor the DeviceSet`, () => {
    const loaded = loadedBy([group, 'ls']);
    const r = split(loaded.files);
    // The CLI: the startup set, this group's handlers, output.js and the one control it calls
    // (real-deps.ts loads lazy/dm.ts or lazy/loop.ts on the first call); no other group's
    // handlers, no schemas.js (TypeBox), no size-args.js.
    assert.equal(r.cli, [...STARTUP.filter((f) => f.startsWith('dist/src/cli/')), handlers, 'dist/src/cli/output.js', `dist/src/cli/lazy/${layer}.js`].sort());
    // The library: what DmControl or LoopControl needs (their files may change), and none of the
    // other control's layer, the package root (index.js), thin, deviceset, driver, vm or testing.
    for (const l of [layer, 'errors.js', 'ioctl']) assert.ok(r.layers.includes(l), `${l} in ${r.layers.join(' ')}`);
    assert.equal(r.layers.filter((l) => [other, 'index.js', 'thin', 'deviceset', 'driver', 'vm', 'testing'].includes(l)), []);
    // Packages: ioctl's struct layouts only; no TypeBox.
    assert.equal(r.other.filter((f) => !f.startsWith('node_modules/@solana/buffer-layout/')), []);
    // Builtins fetched on first use only (udev cookies, the batch thread), as the bundle's.
    for (const via of ['src', 'bin'] as const) {
      const b = via === 'src' ? loaded.builtins : loadedBy([group, 'ls'], 'bin').builtins;
      assert.equal(b.filter((m) => m === 'node:crypto' || m === 'node:worker_threads'), [], `${via}: ${b.join(' ')}`);
    }
  });
}

test('the help of a command whose text needs the DeviceSet loads it for that help only', () => {
  // `ds init --help` lists the DeviceSet's dm.* options (DM_OPTION_KEYS): lazyDetails in specs/ds.ts.
  const r = loadedBy(['ds', 'init', '--help']);
  assert.is(r.status, 0);
  assert.match(r.stdout, 'Supported options:\n  dm.');
  assert.match(r.stdout, '\n  dm.basesize ');
  const s = split(r.files);
  assert.ok(s.layers.includes('deviceset'), s.layers.join(' '));
  assert.not.ok(s.layers.includes('vm'), s.layers.join(' '));
  assert.not.ok(s.cli.includes('dist/src/cli/schemas.js'));
});

test.run();
