// SPDX-License-Identifier: MIT
// The udev node policy against a real systemd-udevd started in the guest (when the host root has
// one): udev makes /dev/mapper/NAME symlinks; DmControl waits for them instead of mknod-ing.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { DmControl, zeroTarget } from '../../src/dm/index.js';
import { privilegedSuite, testName, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('dm udev'));
const UDEVD = ['/lib/systemd/systemd-udevd', '/usr/lib/systemd/systemd-udevd'].find((p) => existsSync(p));

/** True when this file started udevd (and so stops it); false in the matrix's udev cell, where it already runs. */
let started = false;
test.before(async () => {
  if (!UDEVD || existsSync('/run/udev/control')) return;
  execFileSync(UDEVD, ['--daemon'], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync('/run/udev/control'); i++) await new Promise((r) => setTimeout(r, 50));
  started = existsSync('/run/udev/control');
});

/** Pids of running systemd-udevd processes (the daemon and its workers), from /proc. */
function udevdPids(): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'systemd-udevd') pids.push(Number(e));
    } catch {
      // the process went away while we looked
    }
  }
  return pids;
}

test.after(async () => {
  if (!started) return;
  spawnSync('udevadm', ['control', '--exit'], { stdio: 'ignore', timeout: 10_000 });
  // udevd's workers open every block device that changes (blkid probing); one still alive makes
  // later suites see phantom openers (a loop detach turns into a deferred one). Make sure none is.
  for (let i = 0; i < 100 && udevdPids().length > 0; i++) {
    for (const pid of udevdPids()) {
      try {
        process.kill(pid, i < 20 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(udevdPids(), [], 'systemd-udevd is still running after the udev suite');
  // Leave no trace that would make later suites think udev is running.
  rmSync('/run/udev', { recursive: true, force: true });
});

test('udev-managed nodes: symlinks appear, follow a rename and disappear', async () => {
  if (!UDEVD) {
    console.log('  [skip] no systemd-udevd on this root; udev path not exercised');
    return;
  }
  assert.ok(started || existsSync('/run/udev/control'), 'systemd-udevd did not come up (/run/udev/control missing)');
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
