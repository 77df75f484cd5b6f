// SPDX-License-Identifier: MIT
// `devmapper loop set-capacity` and `loop detach --all` against losetup -c / losetup -D on the
// real loop driver, and `loop detach /dev/null` against `losetup -d /dev/null`. The devmapper
// commands run in this process through run() with the real LoopControl (a node start in the TCG
// guest costs seconds); losetup and blockdev are the independent witnesses.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/cli/main.js';
import { TEST_TMP_ROOT, privilegedSuite, testLoopDevices, testTmpDir, withSweep } from '../helpers/privileged.js';

const MiB = 1024 * 1024;
const test = privilegedSuite('cli parity with losetup');
withSweep(test);

async function dmx(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY: false, env: process.env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let n = 0;
/** A sparse backing file of `bytes` under the test temp dir (the sweep detaches its loops). */
function backing(bytes: number): string {
  const f = join(testTmpDir(), `parity-${++n}.img`);
  writeFileSync(f, '');
  truncateSync(f, bytes);
  return f;
}

/** losetup's own attach: the device it bound. */
const losetupAttach = (file: string): string => sh('losetup', ['--find', '--show', file]).trim();
const size64 = (dev: string): number => Number(sh('blockdev', ['--getsize64', dev]).trim());
/** Every bound loop device, as losetup lists it: [name, backing file]. */
function losetupList(): [string, string][] {
  return sh('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE'])
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [name = '', ...rest] = l.split(' ');
      return [name, rest.join(' ')];
    });
}

test('loop set-capacity grows the device as losetup -c does (blockdev and loop ls agree)', async () => {
  const [fa, fb] = [backing(MiB), backing(MiB)];
  const [a, b] = [losetupAttach(fa), losetupAttach(fb)];
  try {
    assert.equal([size64(a), size64(b)], [MiB, MiB]);
    truncateSync(fa, 3 * MiB);
    truncateSync(fb, 3 * MiB);
    assert.equal([size64(a), size64(b)], [MiB, MiB], 'a grown file alone does not resize the device');
    sh('losetup', ['--set-capacity', b]);
    const r = await dmx('loop', 'set-capacity', a);
    assert.equal([r.code, r.stdout, r.stderr], [0, '', '']);
    assert.equal([size64(a), size64(b)], [3 * MiB, 3 * MiB]);
    const ls = await dmx('loop', 'ls', '--json');
    assert.is(ls.code, 0, ls.stderr);
    const sizes = (JSON.parse(ls.stdout) as { path: string; sizeBytes: number }[]).filter((l) => l.path === a || l.path === b).map((l) => l.sizeBytes);
    assert.equal(sizes, [3 * MiB, 3 * MiB]);
  } finally {
    for (const d of [a, b]) spawnSync('losetup', ['--detach', d]);
  }
});

test('loop detach --all leaves what losetup -D leaves: no bound loop device', async () => {
  // --all detaches every bound loop device. Refuse to run over one this test did not make (the
  // guest has none; on another machine it would be someone else's).
  const foreign = losetupList().filter(([, back]) => !back.startsWith(`${TEST_TMP_ROOT}/`));
  assert.equal(foreign, [], 'loop devices not made by the tests are bound; detach --all would detach them');
  const files = [backing(MiB), backing(2 * MiB), backing(MiB)];
  const devs = files.map(losetupAttach);
  // Both tools list the same devices first.
  const ls = await dmx('loop', 'ls', '--json');
  assert.is(ls.code, 0, ls.stderr);
  const ours = (JSON.parse(ls.stdout) as { path: string; backingFile: string }[]).map((l) => [l.path, l.backingFile]).sort();
  assert.equal(ours, losetupList().sort());
  assert.equal(testLoopDevices().map(([d]) => d).sort(), [...devs].sort());
  const r = await dmx('loop', 'detach', '--all');
  assert.equal([r.code, r.stdout, r.stderr], [0, '', '']);
  assert.equal(losetupList(), []);
  assert.equal(JSON.parse((await dmx('loop', 'ls', '--json')).stdout), []);
  // With nothing bound, both succeed and print nothing.
  assert.equal((await dmx('loop', 'detach', '--all')).code, 0);
  assert.is(spawnSync('losetup', ['--detach-all']).status, 0);
});

test('loop detach /dev/null: refused as not a loop device (exit 2); losetup -d fails too', async () => {
  const r = await dmx('loop', 'detach', '/dev/null');
  assert.is(r.code, 2);
  assert.is(r.stderr, "devmapper: ENOTLOOPDEVICE: /dev/null is not a loop device (it is a character device 1:3)\nhint: see 'devmapper loop detach --help'\n");
  assert.is.not(spawnSync('losetup', ['--detach', '/dev/null']).status, 0);
});

test.run();
