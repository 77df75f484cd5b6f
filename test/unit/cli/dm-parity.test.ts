// SPDX-License-Identifier: MIT
// The dmsetup-parity commands (issue 17): dm clear / deps / mknodes / remove_all / remove --force,
// dm ls --tree / --target, dm info -c, through run() on the FakeKernel's real DmControl
// (test/privileged/cli-dmsetup.test.ts compares them with dmsetup on a real kernel).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Value } from '@sinclair/typebox/value';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { SCHEMAS } from '../../../src/cli/schemas.js';
import type { Deps } from '../../../src/cli/context.js';
import { cli } from './harness.js';

async function onFake(fn: (deps: Partial<Deps>, fake: FakeKernel) => Promise<void>): Promise<void> {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const w = fakeDeviceSetInit(fake, '/fakedev');
  try {
    await fn({ dm: () => w.dm as never, loop: () => w.loops as never }, fake);
  } finally {
    fake.dispose();
  }
}

/** lower (253:0, zero), upper (253:1, linear onto lower, uuid U-upper), other (253:2, zero). */
async function threeDevices(deps: Partial<Deps>): Promise<void> {
  for (const argv of [
    ['dm', 'create', 'lower', '--table', '0 8 zero'],
    ['dm', 'create', 'upper', '--table', '0 8 linear 253:0 0', '--uuid', 'U-upper'],
    ['dm', 'create', 'other', '--table', '0 16 zero'],
  ]) {
    const r = await cli(argv, deps);
    assert.is(r.code, 0, r.stderr);
  }
}

async function ok(argv: string[], deps: Partial<Deps>): Promise<string> {
  const r = await cli(argv, deps);
  assert.equal([r.code, r.stderr], [0, ''], argv.join(' '));
  return r.stdout;
}

function schemaErrors(command: keyof typeof SCHEMAS, out: unknown): string[] {
  return [...Value.Errors(SCHEMAS[command], out)].map((e) => `${e.path}: ${e.message}`);
}

test('dm deps: text as dmsetup prints it, --json matches its schema', async () => {
  await onFake(async (deps) => {
    await threeDevices(deps);
    assert.is(await ok(['dm', 'deps', 'upper'], deps), '1 dependencies\t: (253, 0)\n');
    assert.is(await ok(['dm', 'deps', 'lower'], deps), '0 dependencies\t:\n');
    const json = JSON.parse(await ok(['dm', 'deps', '--uuid', 'U-upper', '--json'], deps)) as unknown;
    assert.equal(json, [{ major: 253, minor: 0 }]);
    assert.equal(schemaErrors('dm deps', json), []);
    const none = await cli(['dm', 'deps', 'ghost'], deps);
    assert.is(none.code, 3);
  });
});

test('dm ls --tree and --target', async () => {
  await onFake(async (deps) => {
    await threeDevices(deps);
    assert.is(await ok(['dm', 'ls', '--tree'], deps), 'other (253:2)\nupper (253:1)\n `-lower (253:0)\n', 'the harness has no LANG');
    const utf8 = await cli(['dm', 'ls', '--tree'], deps, { env: { LANG: 'C.UTF-8' } });
    assert.is(utf8.stdout, 'other (253:2)\nupper (253:1)\n └─lower (253:0)\n');
    assert.is(await ok(['dm', 'ls', '--target', 'linear'], deps), 'NAME   MAJ:MIN  EVENT  UUID\nupper  253:1    0      U-upper\n');
    const z = JSON.parse(await ok(['dm', 'ls', '--target', 'zero', '--json'], deps)) as { name: string }[];
    assert.equal(z.map((d) => d.name), ['lower', 'other']);
    assert.equal(schemaErrors('dm ls', z), []);
    assert.is(await ok(['dm', 'ls', '--target', 'thin'], deps), 'No devices found\n');
    const r = await cli(['dm', 'ls', '--tree', '--json'], deps);
    assert.is(r.code, 2);
    assert.match(r.stderr, "--tree has no --json form");
  });
});

test('dm ls --tree: a loop device below a dm device is (MAJ:MIN), branches drawn', async () => {
  const { depsTree } = await import('../../../src/cli/commands/dm-report.js');
  const tree = depsTree([
    { name: 'thin', dev: { major: 253, minor: 3 }, deps: [{ major: 253, minor: 2 }] },
    { name: 'pool', dev: { major: 253, minor: 2 }, deps: [{ major: 253, minor: 1 }, { major: 7, minor: 0 }] },
    { name: 'meta', dev: { major: 253, minor: 1 }, deps: [{ major: 7, minor: 1 }] },
  ]);
  assert.is(tree, 'thin (253:3)\n └─pool (253:2)\n    ├─meta (253:1)\n    │  └─ (7:1)\n    └─ (7:0)\n');
  // Outside a UTF-8 locale, dmsetup's ASCII branches.
  const ascii = depsTree([
    { name: 'pool', dev: { major: 253, minor: 2 }, deps: [{ major: 253, minor: 1 }, { major: 7, minor: 0 }] },
    { name: 'meta', dev: { major: 253, minor: 1 }, deps: [{ major: 7, minor: 1 }] },
  ], false);
  assert.is(ascii, 'pool (253:2)\n |-meta (253:1)\n |  `- (7:1)\n `- (7:0)\n');
});

test('dm info -c: dmsetup columns, -o with aliases, --noheadings, --separator; bad uses refused', async () => {
  await onFake(async (deps) => {
    await threeDevices(deps);
    assert.is(
      await ok(['dm', 'info', '-c'], deps),
      'Name             Maj Min Stat Open Targ Event  UUID\n' +
        'lower            253   0 L--w    1    1      0\n' +
        'other            253   2 L--w    0    1      0\n' +
        'upper            253   1 L--w    0    1      0 U-upper\n',
    );
    assert.is(await ok(['dm', 'info', '-c', 'upper', '-o', 'name,attr,open,maj,min', '--noheadings', '--separator', ':'], deps), 'upper:L--w:0:253:1\n');
    assert.is(await ok(['dm', 'info', '--columns', '--dev', '253:2', '-o', 'NAME,segments,events', '--separator', ','], deps), 'Name,Targ,Event\nother,1,0\n');
    assert.is(await ok(['dm', 'info', '-c', '--noheadings', '-o', 'name,attr'], deps), 'lower:L--w\nother:L--w\nupper:L--w\n', "--noheadings: ':', unaligned");
    // A loaded inactive table shows as I; after dm clear it is gone again.
    await ok(['dm', 'load', 'other', '--table', '0 8 zero'], deps);
    assert.is(await ok(['dm', 'info', '-c', 'other', '-o', 'attr', '--noheadings'], deps), 'LI-w\n');
    assert.is(await ok(['dm', 'clear', 'other'], deps), '');
    assert.is(await ok(['dm', 'info', '-c', 'other', '-o', 'attr', '--noheadings'], deps), 'L--w\n');
    const infoJson = JSON.parse(await ok(['dm', 'info', 'other', '--json'], deps)) as { inactiveTable: boolean };
    assert.is(infoJson.inactiveTable, false);
    for (const [argv, text] of [
      [['dm', 'info', '-c', '-o', 'name,bogus'], "-o: unknown field 'bogus'"],
      [['dm', 'info', 'upper', '-o', 'name'], '-o, --noheadings and --separator go with -c'],
      [['dm', 'info', '-c', 'upper', '--json'], '-c is a text view'],
    ] as const) {
      const r = await cli([...argv], deps);
      assert.is(r.code, 2, argv.join(' '));
      assert.match(r.stderr, text);
    }
  });
});

test('dm remove --force: error table of the same size, resumed, then removed; with --deferred an open device stays, failing I/O', async () => {
  await onFake(async (deps, fake) => {
    await threeDevices(deps);
    const n0 = fake.calls.length;
    await ok(['dm', 'remove', '--force', 'other'], deps);
    assert.equal(
      fake.calls.slice(n0).filter((c) => c.syscall === 'ioctl').map((c) => c.request),
      ['DM_TABLE_STATUS', 'DM_TABLE_LOAD', 'DM_DEV_SUSPEND', 'DM_DEV_REMOVE'],
    );
    assert.is((await cli(['dm', 'info', 'other'], deps)).code, 3);
    // lower is held open by upper's table: remove --force --deferred leaves it failing I/O.
    const r = await cli(['dm', 'remove', '-f', '--deferred', 'lower'], deps);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr, 'devmapper: device is busy; removal deferred until its last close\n');
    assert.is(await ok(['dm', 'table', 'lower'], deps), '0 8 error\n');
    assert.is(JSON.parse(await ok(['dm', 'info', 'lower', '--json'], deps)).deferredRemove, true);
  });
});

test('dm remove_all: without --yes only lists (exit 2, nothing removed); with --yes removes and reports', async () => {
  await onFake(async (deps, fake) => {
    await threeDevices(deps);
    const n0 = fake.calls.length;
    const dry = await cli(['dm', 'remove_all'], deps);
    assert.is(dry.code, 2);
    assert.is(dry.stdout, '');
    assert.is(
      dry.stderr,
      'devmapper: would remove 3 device(s), every one on this host:\n  lower\n  other\n  upper\n' +
        "devmapper: EUSAGE: dm remove_all removes every device-mapper device of the host, not only devmapper's: re-run with --yes to do it\n" +
        "hint: see 'devmapper dm remove_all --help'\n",
    );
    assert.equal(fake.calls.slice(n0).filter((c) => c.syscall === 'ioctl').map((c) => c.request), ['DM_LIST_DEVICES']);
    const json = JSON.parse(await ok(['dm', 'remove_all', '--yes', '--json'], deps)) as unknown;
    assert.equal(json, { removed: ['lower', 'other', 'upper'], remaining: [] });
    assert.equal(schemaErrors('dm remove_all', json), []);
    assert.is(await ok(['dm', 'ls'], deps), 'No devices found\n');
    await threeDevices(deps);
    assert.is(await ok(['dm', 'remove_all', '--yes'], deps), 'removed lower\nremoved other\nremoved upper\n');
  });
});

test('dm mknodes: recreates a missing node for NAME or every device; a correct one is kept', async () => {
  await onFake(async (deps, fake) => {
    await threeDevices(deps);
    fake.unlink('/fakedev/mapper/upper');
    fake.unlink('/fakedev/mapper/lower');
    const one = await cli(['dm', 'mknodes', 'upper'], deps);
    assert.equal([one.code, one.stdout, one.stderr], [0, '', 'devmapper: created node for upper\n']);
    assert.is(fake.stat('/fakedev/mapper/upper').rdev, fake.stat('/fakedev/dm-1').rdev);
    const all = await cli(['dm', 'mknodes', '-q'], deps);
    assert.equal([all.code, all.stdout, all.stderr], [0, '', '']);
    assert.is(fake.stat('/fakedev/mapper/lower').rdev, fake.stat('/fakedev/dm-0').rdev);
    const again = await cli(['dm', 'mknodes'], deps);
    assert.equal([again.code, again.stderr], [0, '']);
  });
});

test('bad names and ids fail with the typed error before the control node is opened', async () => {
  await onFake(async (deps, fake) => {
    const n0 = fake.calls.length;
    for (const argv of [
      ['dm', 'info', '/dev/mapper/vol'],
      ['dm', 'deps', 'a/b'],
      ['dm', 'clear', 'x'.repeat(128)],
      ['dm', 'remove', '--force', 'a/b'],
      ['dm', 'mknodes', 'a/b'],
      ['dm', 'table', ''],
      ['dm', 'info', '--dev', '0:0'],
      ['dm', 'status', '--dev', '253:x'],
      ['dm', 'info', '-c', '--uuid', ''],
      ['dm', 'wait', 'vol', '4294967296'],
    ]) {
      const r = await cli(argv, deps);
      assert.is(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^devmapper: (EINVALIDARG|EUSAGE): /, argv.join(' '));
    }
    assert.is((await cli(['dm', 'info', '/dev/mapper/vol'], deps)).stderr.split('\n')[0],
      "devmapper: EINVALIDARG: invalid device name: name: must not contain '/': no device-mapper device has such a name (give NAME, not /dev/mapper/NAME)");
    // Nothing reached the kernel: not even the open of /fakedev/mapper/control.
    assert.equal(fake.calls.slice(n0).map((c) => `${c.syscall} ${c.path ?? c.request ?? ''}`), []);
  });
});

test.run();
