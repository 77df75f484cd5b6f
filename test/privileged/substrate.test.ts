// SPDX-License-Identifier: MIT
// The VM substrate itself: real device-mapper and loop control nodes, no udev, oracle tools.
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { privilegedSuite, withSweep, sweep, testName, TEST_MARKER } from '../helpers/privileged.js';

/** glibc's major()/minor() for a 64-bit dev_t (sys/sysmacros.h). */
function majorMinor(dev: number): [number, number] {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return [major, minor];
}

const test = withSweep(privilegedSuite('substrate'));

test('/dev/mapper/control is the misc char device 10:236', () => {
  const st = statSync('/dev/mapper/control');
  assert.ok(st.isCharacterDevice(), 'not a character device');
  assert.equal(majorMinor(st.rdev), [10, 236]);
});

test('/dev/loop-control is the misc char device 10:237', () => {
  const st = statSync('/dev/loop-control');
  assert.ok(st.isCharacterDevice(), 'not a character device');
  assert.equal(majorMinor(st.rdev), [10, 237]);
});

test('/proc/devices lists device-mapper', () => {
  assert.match(readFileSync('/proc/devices', 'utf8'), /^\s*\d+ device-mapper$/m);
});

test('dmsetup version talks to the kernel driver', () => {
  const out = execFileSync('dmsetup', ['version'], { encoding: 'utf8' });
  assert.match(out, /Library version:/);
  assert.match(out, /Driver version:\s+4\.\d+\.\d+/);
});

test('the guest runs without udev', () => {
  assert.not.ok(existsSync('/run/udev/control'), '/run/udev/control exists');
});

test('the kernel can autoload dm target modules (dm-zero on first use)', () => {
  const name = testName('autoload');
  execFileSync('dmsetup', ['create', name, '--table', '0 8 zero'], { stdio: 'pipe' });
  try {
    assert.match(execFileSync('dmsetup', ['table', name], { encoding: 'utf8' }), /^0 8 zero/);
  } finally {
    execFileSync('dmsetup', ['remove', name], { stdio: 'pipe' });
  }
});

test('the sweeper removes a marked dm device made with dmsetup', () => {
  const name = testName('sweep');
  assert.ok(name.includes(TEST_MARKER));
  execFileSync('dmsetup', ['create', name, '--table', '0 8 error'], { stdio: 'pipe' });
  const report = sweep();
  assert.ok(report.removedDm.includes(name), `not removed: ${JSON.stringify(report)}`);
  assert.equal(report.survivors, []);
});

test.run();
