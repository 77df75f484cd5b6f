// SPDX-License-Identifier: MIT
// Under --json, an error is one JSON document on stderr, {"error": {code, message, hint, errno,
// causes}}, with the exit code the text form has (docs/cli.md, "Errors and exit codes"). Driven
// through run() against the FakeKernel's DmControl / LoopControl, so errnos are the kernel's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { DmUnavailableError, IoctlError } from '../../../src/index.js';
import type { CliDm, Deps } from '../../../src/cli/context.js';
import { cli, type CliResult } from './harness.js';
import { Value } from '@sinclair/typebox/value';
import { CliErrorJson } from '../../../src/cli/schemas.js';

// CliErrorJson is what schemas/error.schema.json is generated from (json-schemas.test.ts pins the file).
const valid = (v: unknown): string[] => [...Value.Errors(CliErrorJson, v)].map((e) => `${e.path}: ${e.message}`);

function fakeDeps(): { deps: Partial<Deps>; dispose(): void } {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const wiring = fakeDeviceSetInit(fake, '/fakedev');
  return { deps: { dm: () => wiring.dm as never, loop: () => wiring.loops as never }, dispose: () => fake.dispose() };
}

/** Runs argv with --json and without; both exit alike; returns the JSON one's parsed stderr. */
async function both(argv: string[], deps: Partial<Deps>): Promise<{ json: CliResult; text: CliResult; error: unknown }> {
  const json = await cli([...argv, '--json'], deps);
  const text = await cli(argv, deps);
  assert.is(json.code, text.code, `${argv.join(' ')}: same exit code`);
  assert.is(json.stdout, '');
  assert.ok(json.stderr.endsWith('}\n'), json.stderr);
  assert.is(json.stderr.split('\n').length, 2, 'one line');
  const error = JSON.parse(json.stderr) as unknown;
  assert.equal(valid(error), [], json.stderr);
  return { json, text, error };
}

test('a usage error: EUSAGE, the command-line message and the command\'s --help hint, exit 2', async () => {
  const { json, text, error } = await both(['dm', 'ls', '--bogus'], {});
  assert.is(json.code, 2);
  assert.equal(error, { error: { code: 'EUSAGE', message: "unknown option '--bogus'", hint: "see 'devmapper dm ls --help'", errno: null, causes: [] } });
  assert.is(text.stderr, "devmapper: EUSAGE: unknown option '--bogus'\nhint: see 'devmapper dm ls --help'\n");
});

test('an unknown command with --json is a JSON usage error too', async () => {
  const r = await cli(['nope', '--json']);
  assert.is(r.code, 2);
  assert.equal(JSON.parse(r.stderr), { error: { code: 'EUSAGE', message: "unknown command 'nope'", hint: "see 'devmapper --help'", errno: null, causes: [] } });
});

test('a missing device on the FakeKernel: EDEVICENOTFOUND, exit 3, errno ENXIO from the ioctl under it', async () => {
  const w = fakeDeps();
  try {
    const { json, error } = await both(['dm', 'info', 'nope'], w.deps);
    assert.is(json.code, 3);
    const e = (error as { error: Record<string, unknown> }).error;
    assert.equal(Object.keys(e), ['code', 'message', 'hint', 'errno', 'causes']);
    assert.is(e['code'], 'EDEVICENOTFOUND');
    assert.is(e['message'], "device-mapper device 'nope' does not exist");
    assert.is(e['hint'], "check the name: 'devmapper dm ls', 'devmapper loop ls' or 'devmapper ds list --root DIR' show what exists");
    assert.is(e['errno'], 'ENXIO');
    assert.equal((e['causes'] as string[]).length, 1);
    assert.match((e['causes'] as string[])[0]!, /^ENXIO: .* \[DM_DEV_STATUS\]$/);
  } finally {
    w.dispose();
  }
});

test('--json on a command that has no --json output: a JSON usage error naming the option (exit 2)', async () => {
  const w = fakeDeps();
  try {
    const r = await cli(['loop', 'detach', '/fakedev/loop42', '--json'], w.deps);
    assert.is(r.code, 2);
    assert.equal(JSON.parse(r.stderr), { error: { code: 'EUSAGE', message: "unknown option '--json'", hint: "see 'devmapper loop detach --help'", errno: null, causes: [] } });
    // Without it, the missing device is reported (exit 3).
    assert.is((await cli(['loop', 'detach', '/fakedev/loop42'], w.deps)).code, 3);
  } finally {
    w.dispose();
  }
});

test('a kernel refusal: the errno name is both code and errno; a wrapped one keeps its domain code', async () => {
  const refusing = (err: unknown) => () => ({ listDevices: async () => Promise.reject(err), close: () => undefined }) as unknown as CliDm;
  const eperm = new IoctlError({ syscall: 'ioctl', errno: 1, request: 'DM_LIST_DEVICES' });
  let r = await both(['dm', 'ls'], { dm: refusing(eperm) });
  assert.is(r.json.code, 6);
  assert.equal(r.error, {
    error: {
      code: 'EPERM',
      message: eperm.message,
      hint: 'device-mapper and loop control need root (CAP_SYS_ADMIN); use sudo, or the VM: devmapper vm -- ...',
      errno: 'EPERM',
      causes: [],
    },
  });
  const unavailable = new DmUnavailableError('/dev/mapper/control', 'no such file', { cause: new IoctlError({ syscall: 'open', errno: 2, path: '/dev/mapper/control' }) });
  r = await both(['dm', 'ls'], { dm: refusing(unavailable) });
  assert.is(r.json.code, 6);
  const e = (r.error as { error: { code: string; errno: string; causes: string[] } }).error;
  assert.equal([e.code, e.errno, e.causes.length], ['EDMUNAVAILABLE', 'ENOENT', 1]);
});

test('the error schema rejects what is not the shape', () => {
  const ok = { error: { code: 'EUSAGE', message: 'm', hint: 'h', errno: null, causes: [] } };
  assert.equal(valid(ok), []);
  assert.is.not(valid({ error: { ...ok.error, extra: 1 } }).length, 0);
  assert.is.not(valid({ error: { ...ok.error, errno: 16 } }).length, 0);
  assert.is.not(valid({ error: { code: 'EUSAGE', message: 'm', hint: 'h', errno: null } }).length, 0);
});

test('--json after -- belongs to the guest command: the error stays text', async () => {
  const r = await cli(['vm', '--bogus', '--', 'devmapper', 'dm', 'ls', '--json']);
  assert.is(r.code, 2);
  assert.is(r.stderr, "devmapper: EUSAGE: unknown option '--bogus'\nhint: see 'devmapper vm --help'\n");
});

test.run();
