// SPDX-License-Identifier: MIT
// The CLI's messages for the mistakes users make (issue 17): `devmapper` alone, hints that name
// the command, negative numbers, a path that is no loop device, `dm version` without the driver.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { release } from 'node:os';
import { Value } from '@sinclair/typebox/value';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { DmUnavailableError, IoctlError, LoopControl } from '../../../src/index.js';
import { topHelp } from '../../../src/cli/main.js';
import { SCHEMAS } from '../../../src/cli/schemas.js';
import { libraryVersion } from '../../../src/cli/version.js';
import type { Deps } from '../../../src/cli/context.js';
import { cli, fakeLoop, type Calls } from './harness.js';

function onFake<T>(fn: (deps: Partial<Deps>, fake: FakeKernel) => Promise<T>): Promise<T> {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const w = fakeDeviceSetInit(fake, '/fakedev');
  return fn({ dm: () => w.dm as never, loop: () => w.loops as never }, fake).finally(() => fake.dispose());
}

test('devmapper with no arguments: the usage on stderr, then a usage error; exit 2, nothing on stdout', async () => {
  const r = await cli([]);
  assert.is(r.code, 2);
  assert.is(r.stdout, '');
  assert.is(r.stderr, `${topHelp()}\ndevmapper: EUSAGE: no command given\nhint: see 'devmapper --help'\n`);
  // --help still prints it on stdout with exit 0.
  const h = await cli(['--help']);
  assert.equal([h.code, h.stdout, h.stderr], [0, topHelp(), '']);
});

test('hints name the command: unknown command, unknown subcommand, a bad option, an invalid argument', async () => {
  const hint = (r: { stderr: string }) => r.stderr.split('\n').find((l) => l.startsWith('hint: '));
  assert.is(hint(await cli(['frobnicate'])), "hint: see 'devmapper --help'");
  assert.is(hint(await cli(['loop', 'frob'])), "hint: see 'devmapper loop --help'");
  assert.is(hint(await cli(['loop', 'attach', '--bogus', 'f'])), "hint: see 'devmapper loop attach --help'");
  // An InvalidArgumentError from the handler (parseDevNum), not a UsageError: same rule.
  const calls: Calls = [];
  const r = await cli(['dm', 'info', '--dev', 'x:y'], { dm: () => ({}) as never });
  assert.is(r.code, 2);
  assert.match(r.stderr, /^devmapper: EINVALIDARG: /);
  assert.is(hint(r), "hint: see 'devmapper dm info --help'");
  assert.equal(calls, []);
  for (const argv of [['frobnicate'], ['loop', 'attach', '--bogus', 'f'], ['dm', 'info', '--dev', 'x:y']]) {
    assert.not.match((await cli(argv, { dm: () => ({}) as never })).stderr, 'COMMAND', argv.join(' '));
  }
});

test('negative numbers are explained, not "ambiguous"; nothing is attached', async () => {
  const calls: Calls = [];
  const loop = () => fakeLoop(calls);
  let r = await cli(['loop', 'attach', '--offset', '-512', '/tmp/a.img'], { loop });
  assert.is(r.code, 2);
  assert.is(
    r.stderr,
    "devmapper: EUSAGE: option '--offset' was given '-512': negative numbers are not valid for any devmapper option or argument (sizes, offsets, ids and counts are >= 0)\n" +
      "hint: see 'devmapper loop attach --help'\n",
  );
  // A negative number where a positional goes: parseArgs sees short options -5, -1, -2.
  r = await cli(['loop', 'detach', '-512'], { loop });
  assert.is(r.code, 2);
  assert.is(r.stderr.split('\n')[0], "devmapper: EUSAGE: '-512' is a negative number, not an option: negative numbers are not valid for any devmapper option or argument (sizes, offsets, ids and counts are >= 0)");
  // Another option where a value was expected: how to pass a value that starts with '-'.
  r = await cli(['loop', 'attach', '--offset', '--partscan', '/tmp/a.img'], { loop });
  assert.is(r.stderr.split('\n')[0], "devmapper: EUSAGE: option '--offset' needs a value, and '--partscan' looks like an option; a value that starts with '-' is written '--offset=--partscan'");
  r = await cli(['loop', 'attach', '--size-limit', '-4k', '/tmp/a.img'], { loop });
  assert.is(r.stderr.split('\n')[0], "devmapper: EUSAGE: option '--size-limit' was given '-4k': negative numbers are not valid for any devmapper option or argument (sizes, offsets, ids and counts are >= 0)");
  assert.equal(calls, []);
});

test("loop detach /dev/null: 'not a loop device', exit 2, before any ioctl (real libc and FakeKernel)", async () => {
  // The real LoopControl: open(2) + fstat(2) of /dev/null, then the refusal; no LOOP_CLR_FD.
  const real = await cli(['loop', 'detach', '/dev/null'], { loop: () => new LoopControl() });
  assert.is(real.code, 2);
  assert.is(real.stderr, "devmapper: ENOTLOOPDEVICE: /dev/null is not a loop device (it is a character device 1:3)\nhint: see 'devmapper loop detach --help'\n");
  await onFake(async (deps, fake) => {
    // A dm device's node is a block device of another major: refused, the dm device untouched.
    const out = await cli(['dm', 'create', 'vol', '--table', '0 8 zero'], deps);
    assert.is(out.code, 0, out.stderr);
    const before = fake.device('vol');
    const r = await cli(['loop', 'detach', '/fakedev/dm-0'], deps);
    assert.is(r.code, 2);
    assert.is(r.stderr.split('\n')[0], `devmapper: ENOTLOOPDEVICE: /fakedev/dm-0 is not a loop device (it is a block device 253:0)`);
    assert.equal(fake.device('vol'), before);
  });
});

test('dm version without the driver: the library version on stdout, then the error (exit 6)', async () => {
  const unavailable = () => {
    throw new DmUnavailableError('/dev/mapper/control', 'no such file', { cause: new IoctlError({ syscall: 'open', errno: 2, path: '/dev/mapper/control' }) });
  };
  const text = await cli(['dm', 'version'], { dm: unavailable });
  assert.is(text.code, 6);
  assert.is(text.stdout, `Library version:   ${libraryVersion()}\nKernel:            ${release()}\n`);
  assert.match(text.stderr, /^devmapper: EDMUNAVAILABLE: device-mapper is not available \(\/dev\/mapper\/control\): no such file\n/);
  const json = await cli(['dm', 'version', '--json'], { dm: unavailable });
  assert.is(json.code, 6);
  const out = JSON.parse(json.stdout) as unknown;
  assert.equal(out, { library: libraryVersion(), driver: null, kernel: release() });
  assert.equal([...Value.Errors(SCHEMAS['dm version'], out)], []);
  assert.is((JSON.parse(json.stderr) as { error: { code: string } }).error.code, 'EDMUNAVAILABLE');
  // With the driver: all three lines, exit 0.
  const ok = await cli(['dm', 'version'], { dm: () => ({ version: async () => [4, 48, 0], close: () => undefined }) as never });
  assert.equal([ok.code, ok.stdout], [0, `Library version:   ${libraryVersion()}\nDriver version:    4.48.0\nKernel:            ${release()}\n`]);
});

test.run();
