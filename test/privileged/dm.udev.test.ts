// SPDX-License-Identifier: MIT
// The udev node policy against a real systemd-udevd started in the guest (when the host root has
// one): udev makes /dev/mapper/NAME symlinks; DmControl waits for them instead of mknod-ing.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { DmControl, zeroTarget } from '../../src/dm/index.js';
import { privilegedSuite, testName, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('dm udev'));
const UDEVD = ['/lib/systemd/systemd-udevd', '/usr/lib/systemd/systemd-udevd'].find((p) => existsSync(p));

let started = false;
test.before(async () => {
  if (!UDEVD || existsSync('/run/udev/control')) return;
  execFileSync(UDEVD, ['--daemon'], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync('/run/udev/control'); i++) await new Promise((r) => setTimeout(r, 50));
  started = existsSync('/run/udev/control');
});

test.after(() => {
  if (!started) return;
  spawnSync('udevadm', ['control', '--exit'], { stdio: 'ignore', timeout: 10_000 });
  // Leave no trace that would make later suites think udev is running.
  rmSync('/run/udev', { recursive: true, force: true });
});

test('udev-managed nodes: symlinks appear, follow a rename and disappear', async () => {
  if (!UDEVD) {
    console.log('  [skip] no systemd-udevd on this root; udev path not exercised');
    return;
  }
  assert.ok(started, 'systemd-udevd did not come up (/run/udev/control missing)');
  const dm = new DmControl({ udevTimeoutMs: 5000 });
  const name = testName('udev');
  const name2 = testName('udev-renamed');
  try {
    const info = await dm.createDevice(name, [zeroTarget(0n, 16n)]);
    const path = `/dev/mapper/${name}`;
    assert.ok(lstatSync(path).isSymbolicLink(), 'udev made a symlink (not our mknod fallback)');
    assert.is(readlinkSync(path), `../dm-${info.dev.minor}`);
    assert.ok(statSync(path).isBlockDevice());
    await dm.deviceRename(name, { name: name2 });
    assert.ok(lstatSync(`/dev/mapper/${name2}`).isSymbolicLink());
    assert.not.ok(existsSync(path));
    await dm.deviceRemove(name2);
    assert.not.ok(existsSync(`/dev/mapper/${name2}`));
  } finally {
    dm.close();
  }
});

test.run();
