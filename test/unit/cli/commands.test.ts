// SPDX-License-Identifier: MIT
// Command handlers against fakes: --json output validated against the published schemas, human
// output, exit codes for bad input, and that refused commands make no mutating call.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { SCHEMAS } from '../../../src/cli/schemas.js';
import { parseMountInfo } from '../../../src/cli/context.js';
import { mergeOptions } from '../../../src/cli/commands/ds.js';
import { toJson } from '../../../src/cli/output.js';
import { GROUPS } from '../../../src/cli/main.js';
import { cli, fakeDeviceSet, fakeDm, fakeLoop, info, type Calls } from './harness.js';

function checkJson(schema: TSchema, text: string): unknown {
  const v = JSON.parse(text) as unknown;
  const errors = [...Value.Errors(schema, v)].map((e) => `${e.path}: ${e.message}`);
  assert.equal(errors, [], text);
  return v;
}

test('every command with --json has a published schema, and every schema a command', () => {
  const withJson = GROUPS.flatMap((g) => g.commands.filter((c) => c.json).map((c) => `${g.name} ${c.name}`)).sort();
  assert.equal(withJson, Object.keys(SCHEMAS).sort());
});

test('toJson writes bigints as exact JSON integers', () => {
  assert.is(toJson({ a: 1n << 60n, b: [2n] }), '{\n  "a": 1152921504606846976,\n  "b": [\n    2\n  ]\n}\n');
});

test('dm version / ls / info / table / status / targets / wait / message --json match their schemas', async () => {
  const calls: Calls = [];
  const dm = () => fakeDm(calls);
  const run = async (argv: string[], key: keyof typeof SCHEMAS) => {
    const r = await cli(argv, { dm });
    assert.is(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    return checkJson(SCHEMAS[key], r.stdout);
  };
  const v = (await run(['dm', 'version', '--json'], 'dm version')) as { driver: string; library: string };
  assert.is(v.driver, '4.48.0');
  const ls = (await run(['dm', 'ls', '--json'], 'dm ls')) as { name: string; uuid: string | null; eventNr: number }[];
  assert.equal(ls.map((d) => [d.name, d.uuid, d.eventNr]), [['alpha', 'U-alpha', 3], ['beta', null, 0]]);
  await run(['dm', 'info', 'alpha', '--json'], 'dm info');
  await run(['dm', 'info', '--uuid', 'U-alpha', '--json'], 'dm info');
  await run(['dm', 'info', '--dev', '253:1', '--json'], 'dm info');
  const t = await cli(['dm', 'table', 'alpha', '--json'], { dm });
  assert.match(t.stdout, '"length": 1152921504606846976'); // exact above 2^53
  checkJson(SCHEMAS['dm table'], t.stdout);
  await run(['dm', 'status', 'alpha', '--json'], 'dm status');
  await run(['dm', 'targets', '--json'], 'dm targets');
  await run(['dm', 'wait', 'alpha', '--json'], 'dm wait');
  assert.equal(calls, ['deviceWait("alpha",3)'], 'wait defaults to the current event number');
  const m = (await run(['dm', 'message', 'alpha', '0', 'stats', '--json'], 'dm message')) as { reply: string };
  assert.is(m.reply, 'reply text');
});

test('dm human output', async () => {
  const dm = () => fakeDm([]);
  assert.match((await cli(['dm', 'ls'], { dm })).stdout, /^NAME +MAJ:MIN +EVENT +UUID\nalpha +253:0 +3 +U-alpha\n/);
  assert.is((await cli(['dm', 'ls'], { dm: () => fakeDm([], []) })).stdout, 'No devices found\n');
  assert.is((await cli(['dm', 'table', 'alpha'], { dm })).stdout, '0 1152921504606846976 linear 7:0 0\n');
  assert.match((await cli(['dm', 'info', 'beta'], { dm })).stdout, 'Major, minor:      253, 1');
});

test('dm create / load / suspend / resume / remove / rename / message call the library with parsed input', async () => {
  const calls: Calls = [];
  const dm = () => fakeDm(calls);
  const ok = async (argv: string[]) => {
    const r = await cli(argv, { dm });
    assert.is(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '');
  };
  await ok(['dm', 'create', 'z', '--table', '0 2048 zero', '--table', '2048 8 error', '--uuid', 'Z-1', '--read-only']);
  await ok(['dm', 'create', 'n', '--notable']);
  await ok(['dm', 'load', 'alpha', '--table', '0 10 zero\n10 10 zero']);
  await ok(['dm', 'suspend', 'alpha', '--noflush']);
  await ok(['dm', 'resume', 'alpha']);
  await ok(['dm', 'rename', 'alpha', 'gamma']);
  await ok(['dm', 'rename', 'beta', '--set-uuid', 'B-1']);
  await ok(['dm', 'remove', '--uuid', 'U-alpha']);
  await ok(['dm', 'message', 'alpha', '0', 'create_thin', '1']);
  assert.equal(calls, [
    'createDevice(z,[{"start":"0n","length":"2048n","type":"zero","params":""},{"start":"2048n","length":"8n","type":"error","params":""}],{"uuid":"Z-1","readOnly":true})',
    'deviceCreate(n,{})',
    'tableLoad({"name":"alpha"},[{"start":"0n","length":"10n","type":"zero","params":""},{"start":"10n","length":"10n","type":"zero","params":""}])',
    'deviceSuspend({"name":"alpha"},{"noflush":true,"skipLockfs":false})',
    'deviceResume({"name":"alpha"})',
    'deviceRename("alpha",{"name":"gamma"})',
    'deviceRename("beta",{"uuid":"B-1"})',
    'deviceRemove({"uuid":"U-alpha"},{"deferred":false})',
    'targetMessage("alpha",0,create_thin 1)',
  ]);
});

test('dm: bad input exits 2 and an unknown device 3, with no mutating call', async () => {
  const calls: Calls = [];
  const dm = () => fakeDm(calls);
  const cases: [string[], number, string][] = [
    [['dm', 'create', 'z'], 2, 'missing --table'],
    [['dm', 'create', 'z', '--table', 'garbage'], 2, 'EINVALIDARG'],
    [['dm', 'create', 'z', '--table', '0 10 zero', '--notable'], 2, 'contradicts'],
    [['dm', 'info'], 2, 'missing DEVICE'],
    [['dm', 'info', 'a', '--uuid', 'u'], 2, 'only one'],
    [['dm', 'info', '--dev', '253'], 2, 'EINVALIDARG'],
    [['dm', 'rename', 'alpha'], 2, 'NEW_NAME or --set-uuid'],
    [['dm', 'message', 'alpha', '-1', 'x'], 2, "'-1' is a negative number"],
    [['dm', 'message', 'alpha', 'x', 'y'], 2, 'SECTOR'],
    [['dm', 'wait', 'alpha', 'soon'], 2, 'EVENT_NR'],
    [['dm', 'info', 'ghost'], 3, 'EDEVICENOTFOUND'],
    [['dm', 'remove', 'ghost'], 3, 'EDEVICENOTFOUND'],
    [['dm', 'load', 'ghost', '--table', '0 1 zero'], 3, 'EDEVICENOTFOUND'],
    [['dm', 'ls', '--bogus'], 2, "unknown option '--bogus'"],
  ];
  for (const [argv, code, text] of cases) {
    const r = await cli(argv, { dm });
    assert.is(r.code, code, argv.join(' '));
    assert.match(r.stderr, /^devmapper: E[A-Z]+: .+\nhint: .+\n$/, r.stderr);
    assert.match(r.stderr, text);
    assert.is(r.stdout, '');
  }
  assert.equal(calls, []);
});

test('loop attach / ls / find --json match their schemas; attach is autoclear-off and unheld', async () => {
  const calls: Calls = [];
  const loop = () => fakeLoop(calls);
  const a = await cli(['loop', 'attach', '/tmp/a.img', '--json', '--read-only', '--direct-io', '--offset', '1M'], { loop });
  assert.is(a.code, 0, a.stderr);
  checkJson(SCHEMAS['loop attach'], a.stdout);
  assert.equal(calls, ['attach(/tmp/a.img,{"readOnly":true,"directIo":true,"partscan":false,"autoclear":false,"hold":false,"offset":"1048576n"})']);
  assert.is((await cli(['loop', 'attach', '/tmp/a.img'], { loop })).stdout, '/dev/loop3\n');
  const ls = await cli(['loop', 'ls', '--json'], { loop });
  const entries = checkJson(SCHEMAS['loop ls'], ls.stdout) as { sizeBytes: number }[];
  assert.is(entries[0]!.sizeBytes, 2048 * 512);
  assert.match((await cli(['loop', 'ls'], { loop })).stdout, /\/dev\/loop3 +1\.0M +0 +0 +0 +\/tmp\/a\.img/);
  checkJson(SCHEMAS['loop find'], (await cli(['loop', 'find', '/tmp/a.img', '--json'], { loop })).stdout);
  assert.is((await cli(['loop', 'find', '/tmp/b.img'], { loop })).stdout, '');
  calls.length = 0;
  // loopN and N are indexes: LoopControl makes the path under its devDir (a FakeKernel's too).
  for (const d of ['/dev/loop3', 'loop3', '3']) assert.is((await cli(['loop', 'detach', d], { loop })).code, 0);
  assert.equal(calls, ['detach("/dev/loop3")', 'detach(3)', 'detach(3)']);
});

test('loop attach: bad sizes are usage errors before any attach', async () => {
  const calls: Calls = [];
  const loop = () => fakeLoop(calls);
  for (const bad of [['--size', '12Q'], ['--size', '-1'], ['--offset', 'lots'], ['--block-size', 'big']]) {
    const r = await cli(['loop', 'attach', '/tmp/none.img', ...bad], { loop });
    assert.is(r.code, 2, bad.join(' '));
  }
  assert.equal(calls, []);
});

test('pool / thin: bad ids, sizes and features exit 2 before the kernel is asked', async () => {
  const calls: Calls = [];
  const dm = () => fakeDm(calls);
  const cases: string[][] = [
    ['pool', 'create', 'p', '--metadata', '/dev/loop0'],
    ['pool', 'create', 'p', '--metadata', '/dev/loop0', '--data', '/dev/loop1', '--feature', 'turbo'],
    ['pool', 'create', 'p', '--metadata', '/dev/loop0', '--data', '/dev/loop1', '--block-size', 'x'],
    ['pool', 'create', 'p', '--metadata', '/dev/loop0', '--data', '/dev/loop1', '--zero-metadata', '--reuse-metadata'],
    ['thin', 'activate', 'p', '1', 't'],
    ['thin', 'activate', 'p', '1', 't', '--size', '1000'],
    ['thin', 'create', 'p'],
  ];
  for (const argv of cases) {
    const r = await cli(argv, { dm });
    assert.is(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
  }
  assert.equal(calls, []);
});

function dsRoot(options: string[] = ['dm.basesize=64M']): string {
  const root = mkdtempSync(join(tmpdir(), 'cli-ds-'));
  writeFileSync(join(root, 'cli-options.json'), JSON.stringify({ formatVersion: 1, options }));
  return root;
}

test('ds: options saved by init are reused and --opt overrides them', async () => {
  assert.equal(mergeOptions(['dm.basesize=64M', 'dm.mkfsarg=-q', 'dm.mkfsarg=-E x'], ['dm.BASESIZE=128M', 'dm.fs=xfs']), [
    'dm.mkfsarg=-q',
    'dm.mkfsarg=-E x',
    'dm.BASESIZE=128M',
    'dm.fs=xfs',
  ]);
  const root = mkdtempSync(join(tmpdir(), 'cli-ds-'));
  let seen: readonly string[] = [];
  const openDeviceSet = async (_r: string, o: readonly string[]) => ((seen = o), fakeDeviceSet([]));
  const r = await cli(['ds', 'init', '--root', root, '--opt', 'dm.loopdatasize=512M', '--opt', 'dm.basesize=64M'], { openDeviceSet });
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(root, 'cli-options.json'), 'utf8')).options, ['dm.loopdatasize=512M', 'dm.basesize=64M']);
  assert.is((await cli(['ds', 'status', '--root', root, '--opt', 'dm.min_free_space=5%'], { openDeviceSet })).code, 0);
  assert.equal(seen, ['dm.loopdatasize=512M', 'dm.basesize=64M', 'dm.min_free_space=5%']);
  const bad = await cli(['ds', 'init', '--root', root, '--opt', 'dm.basesize=lots'], { openDeviceSet });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, 'dm.basesize');
  rmSync(root, { recursive: true });
});

test('ds: a root without ds init is refused (exit 2) without opening anything', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cli-ds-'));
  const r = await cli(['ds', 'list', '--root', root]);
  assert.is(r.code, 2);
  assert.match(r.stderr, 'ds init');
  assert.is((await cli(['ds', 'list'])).code, 2);
  rmSync(root, { recursive: true });
});

test('ds list / status --json match their schemas; mounts come from the mount table', async () => {
  const root = dsRoot();
  const calls: Calls = [];
  const deps = {
    openDeviceSet: async () => fakeDeviceSet(calls, ['c1', 'c2']),
    dm: () => fakeDm(calls, [info('devmapper-0:1-2-c1', 7)]),
    mounts: () => [{ major: 253, minor: 7, path: '/mnt/c1' }],
  };
  const l = await cli(['ds', 'list', '--root', root, '--json'], deps);
  assert.is(l.code, 0, l.stderr);
  const list = checkJson(SCHEMAS['ds list'], l.stdout) as { id: string; initialized: boolean; mountPoint: string | null; active: boolean }[];
  assert.equal(list.map((d) => [d.id, d.initialized, d.active, d.mountPoint]), [['', true, false, null], ['c1', false, true, '/mnt/c1'], ['c2', false, false, null]]);
  assert.match((await cli(['ds', 'list', '--root', root], deps)).stdout, /\(base\) +1 +64M/);
  const s = await cli(['ds', 'status', '--root', root, '--json'], deps);
  checkJson(SCHEMAS['ds status'], s.stdout);
  assert.match((await cli(['ds', 'status', '--root', root], deps)).stdout, 'Pool Name:');
  assert.equal(calls, []);
  rmSync(root, { recursive: true });
});

test('ds mount / unmount / remove / create / resize / shutdown', async () => {
  const root = dsRoot();
  const calls: Calls = [];
  let mounts = [{ major: 253, minor: 7, path: '/mnt/c1' }];
  const deps = {
    openDeviceSet: async () => fakeDeviceSet(calls, ['c1', 'c2']),
    dm: () => fakeDm(calls, [info('devmapper-0:1-2-c1', 7)]),
    mounts: () => mounts,
    umount: async (p: string) => void calls.push(`umount(${p})`),
  };
  const code = async (argv: string[]) => (await cli(['ds', ...argv, '--root', root], deps)).code;
  assert.is(await code(['mount', 'c1', '/mnt/c1']), 0, 'already mounted there: no-op');
  assert.is(await code(['mount', 'c1', '/mnt/other']), 4, 'mounted elsewhere');
  assert.is(await code(['remove', 'c1']), 4, 'mounted: refused');
  assert.is(await code(['unmount', 'c1', '/mnt/other']), 2);
  assert.is(await code(['unmount', 'ghost', '/mnt/c1']), 3);
  assert.is(await code(['create', 'c3', '--size', 'big']), 2);
  assert.is(await code(['create', 'c3', '--parent', 'ghost']), 3);
  assert.equal(calls, [], 'refusals make no mutating call');
  assert.is(await code(['mount', 'c2', '/mnt/c2']), 0);
  assert.is(await code(['create', 'c3', '--parent', 'c1', '--size', '128M']), 0);
  assert.is(await code(['resize', '1G']), 0);
  assert.is(await code(['unmount', 'c1', '/mnt/c1']), 0);
  mounts = [];
  assert.is(await code(['remove', 'c1']), 0);
  mounts = [{ major: 253, minor: 7, path: '/mnt/c1' }];
  assert.is(await code(['shutdown']), 0);
  assert.equal(calls, [
    'mountDevice(c2,/mnt/c2)',
    'addDevice(c3,c1,{"size":"134217728n","signal":"AbortSignal"})',
    'resizePool(1073741824)',
    'umount(/mnt/c1)',
    'deactivateDevice(c1)',
    'deleteDevice(c1,{"sync":true,"signal":"AbortSignal"})',
    'umount(/mnt/c1)',
    'shutdown()',
  ]);
  rmSync(root, { recursive: true });
});

test('parseMountInfo decodes octal escapes and device numbers', () => {
  const text =
    '36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n' +
    '40 35 253:7 / /tmp/with\\040space rw - ext4 /dev/mapper/x rw\n';
  assert.equal(parseMountInfo(text), [
    { major: 98, minor: 0, path: '/mnt/parent' },
    { major: 253, minor: 7, path: '/tmp/with space' },
  ]);
});

test('vm: propagates the guest exit status, passes options, refuses bad values', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-vm-'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'qemu-system-x86_64'), '');
  const env = { PATH: join(dir, 'bin'), HOME: dir };
  let got: Record<string, unknown> = {};
  const runInVm = async (o: Record<string, unknown>) => {
    got = o;
    (o['onOutput'] as (t: string) => void)('guest says hi\n');
    return { exitCode: 42, bootMs: 1, totalMs: 2, timedOut: false, kernel: {} as never };
  };
  const r = await cli(['vm', '--mem', '512', '--share', '/srv', '--env', 'A=b=c', '--timeout', '60', '--', 'sh', '-c', 'exit 42'], { runInVm: runInVm as never }, { env });
  assert.is(r.code, 42);
  assert.is(r.stdout, 'guest says hi\n');
  assert.equal(got['command'], ['sh', '-c', 'exit 42']);
  assert.is(got['memMb'], 512);
  assert.is(got['timeoutMs'], 60000);
  assert.equal(got['shares'], ['/srv']);
  assert.equal(got['env'], { A: 'b=c' });
  assert.is(got['cwd'], '/work');
  assert.is(got['cacheDir'], join(dir, '.cache', 'devmapper', 'vm'));
  for (const bad of [['--mem', 'lots'], ['--mem', '16'], ['--timeout', '0'], ['--env', 'novalue']]) {
    assert.is((await cli(['vm', ...bad, '--', 'true'], { runInVm: runInVm as never }, { env })).code, 2, bad.join(' '));
  }
  assert.is((await cli(['vm'], {}, { env })).code, 2, 'no command');
  const noQemu = await cli(['vm', '--', 'true'], {}, { env: { PATH: '/nonexistent' } });
  assert.is(noQemu.code, 6);
  assert.match(noQemu.stderr, 'hint: as root: apt-get install');
  rmSync(dir, { recursive: true });
});

test('progress lines go to stderr only on a TTY and never with --quiet', async () => {
  const root = dsRoot();
  const deps = { openDeviceSet: async () => fakeDeviceSet([]) };
  assert.is((await cli(['ds', 'create', 'c9', '--root', root], deps)).stderr, '');
  assert.match((await cli(['ds', 'create', 'c9', '--root', root], deps, { tty: true })).stderr, /^devmapper: .*\.\.\.\n/);
  assert.is((await cli(['ds', 'create', 'c9', '--root', root, '--quiet'], deps, { tty: true })).stderr, '');
  rmSync(root, { recursive: true });
});

test.run();
