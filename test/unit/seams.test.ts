// SPDX-License-Identifier: MIT
// The seams of DmControl and LoopControl refuse a key given as undefined (`{ syscalls: fake }`
// with the fake not set up yet fell back to the real libc, /dev and /sys), unknown keys and wrong
// types, every problem in one InvalidArgumentError, before anything is opened.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../src/errors.js';
import { DmControl } from '../../src/dm/index.js';
import { LoopControl } from '../../src/loop/index.js';
import { FakeKernel } from '../../src/testing/index.js';

function problems(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    assert.instance(err, InvalidArgumentError);
    return (err as InvalidArgumentError).problems.map(({ path, message }) => ({ path, message }));
  }
  return assert.unreachable('expected an InvalidArgumentError') as never;
}

const GIVEN_UNDEFINED = (key: string): string => `"${key}" is given as undefined: leave the key out to mean the default`;

test('DmControl: a seam given as undefined is refused, not replaced by the real libc', () => {
  assert.equal(problems(() => new DmControl({ syscalls: undefined as never })), [{ path: '/syscalls', message: GIVEN_UNDEFINED('syscalls') }]);
  const all = problems(() => new DmControl({ syscalls: undefined, devDir: 7, sleep: 'soon', nodes: 'always', procMiscPath: 1, extra: true } as never));
  assert.equal(all, [
    { path: '/syscalls', message: GIVEN_UNDEFINED('syscalls') },
    { path: '/devDir', message: 'expected a string' },
    { path: '/sleep', message: 'expected a function' },
    { path: '/nodes', message: "expected 'auto', 'manage', 'udev' or 'none'" },
    { path: '/procMiscPath', message: 'expected a path or null' },
    { path: '/extra', message: 'unknown option "extra" (known: syscalls, devDir, nodes, udevControlPath, udevTimeoutMs, udevRecheckMs, removeRetry, sleep, clock, procMiscPath, batch)' },
  ]);
  assert.equal(problems(() => new DmControl([] as never)), [{ path: '', message: 'expected an options object' }]);
  assert.equal(problems(() => new DmControl(new (class Opts {})() as never)), [{ path: '', message: 'expected an options object' }]);
});

test('LoopControl: sysfsRoot of a FakeKernel without sysfs (undefined) is refused instead of reading the real /sys', () => {
  const fake = new FakeKernel();
  try {
    assert.is(fake.sysfsRoot, undefined);
    assert.equal(problems(() => new LoopControl({ syscalls: fake, sysfsRoot: fake.sysfsRoot as never })), [{ path: '/sysfsRoot', message: GIVEN_UNDEFINED('sysfsRoot') }]);
    assert.equal(problems(() => new LoopControl({ syscalls: null, random: 4 } as never)), [
      { path: '/syscalls', message: 'expected an object' },
      { path: '/random', message: 'expected a function' },
    ]);
  } finally {
    fake.dispose();
  }
});

test('valid options, an empty object and no options at all are accepted', () => {
  const fake = new FakeKernel({ sysfs: true });
  try {
    new DmControl({ syscalls: fake, devDir: '/fakedev', nodes: 'manage', procMiscPath: null, sleep: async () => {}, clock: () => 0 }).close();
    new LoopControl({ syscalls: fake, sysfsRoot: fake.sysfsRoot!, sleep: async () => {}, random: () => 0.5 });
    new DmControl({}).close();
    new DmControl().close();
    new LoopControl();
  } finally {
    fake.dispose();
  }
});

test.run();
