// SPDX-License-Identifier: MIT
// The dmsetup/losetup-parity commands of issue 17 against dmsetup and losetup on a real kernel:
// dm deps, ls --tree, ls --target, info -c, clear, mknodes, remove --force --deferred,
// remove_all; loop ls -O. The devmapper commands run in this process through run() with the real
// DmControl/LoopControl (a node start in the TCG guest costs about a second); dmsetup and losetup
// are the independent witnesses. Few spawns: each test batches its assertions.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/cli/main.js';
import { TEST_MARKER, UDEV_CELL, privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';

const MiB = 1024 * 1024;
const test = privilegedSuite('cli parity with dmsetup and losetup -O');
withSweep(test);

async function dmx(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY: false, env: process.env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

async function ok(...args: string[]): Promise<string> {
  const r = await dmx(...args);
  assert.equal([r.code, r.stderr], [0, ''], args.join(' '));
  return r.stdout;
}

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** Lines split on runs of blanks: aligned outputs compared cell by cell. */
const cells = (text: string): string[][] => text.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/));

let n = 0;
function backing(bytes: number): string {
  const f = join(testTmpDir(), `dmsetup-${++n}.img`);
  writeFileSync(f, '');
  truncateSync(f, bytes);
  return f;
}

test('dm deps, ls --tree, ls --target, info -c, clear, mknodes, remove --force --deferred, remove_all agree with dmsetup', async () => {
  // remove_all takes every device: refuse to run over one this test did not make.
  const foreign = sh('dmsetup', ['ls']).split('\n').filter((l) => l !== '' && l !== 'No devices found' && !l.includes(TEST_MARKER));
  assert.equal(foreign, [], 'dm devices not made by the tests exist; remove_all would remove them');
  const loopDev = sh('losetup', ['--find', '--show', backing(MiB)]).trim();
  const loopNum = sh('stat', ['-c', '%t:%T', loopDev]).trim().split(':').map((h) => parseInt(h, 16)).join(':');
  const [lower, upper, other] = [testName('lower'), testName('upper'), testName('other')];
  try {
    await ok('dm', 'create', lower, '--table', `0 2048 linear ${loopNum} 0`);
    const lowerNum = JSON.parse(await ok('dm', 'info', lower, '--json')) as { major: number; minor: number };
    await ok('dm', 'create', upper, '--table', `0 2048 linear ${lowerNum.major}:${lowerNum.minor} 0`, '--uuid', `U-${upper}`);
    await ok('dm', 'create', other, '--table', '0 4096 zero');

    // deps: byte for byte.
    for (const name of [upper, lower, other]) assert.is(await ok('dm', 'deps', name), sh('dmsetup', ['deps', name]), `deps ${name}`);
    // ls --tree: byte for byte (only the test's devices exist).
    const tree = await ok('dm', 'ls', '--tree');
    assert.is(tree, sh('dmsetup', ['ls', '--tree']), `ours:\n${tree}`);
    // ls --target: the same names.
    const targetNames = (JSON.parse(await ok('dm', 'ls', '--target', 'linear', '--json')) as { name: string }[]).map((d) => d.name);
    const dmsetupTarget = sh('dmsetup', ['ls', '--target', 'linear']).split('\n').filter((l) => l !== '').map((l) => l.split(/\s+/)[0]!);
    assert.equal(targetNames.sort(), dmsetupTarget.sort());
    // info -c: unaligned with a separator byte for byte; the aligned default cell by cell.
    const fields = ['-o', 'name,major,minor,attr,open,segments,events,uuid', '--noheadings', '--separator', ':'];
    const ours = (await ok('dm', 'info', '-c', ...fields)).split('\n').sort();
    assert.equal(ours, sh('dmsetup', ['info', '-c', ...fields]).split('\n').sort());
    const alignedOurs = cells(await ok('dm', 'info', '-c'));
    const alignedTheirs = cells(sh('dmsetup', ['info', '-c']));
    assert.equal(alignedOurs[0], alignedTheirs[0], 'headings');
    assert.equal(alignedOurs.slice(1).sort(), alignedTheirs.slice(1).sort());
    assert.is(await ok('dm', 'info', '-c', upper, '-o', 'name,attr', '--noheadings'), sh('dmsetup', ['info', '-c', upper, '-o', 'name,attr', '--noheadings']));

    // clear: the inactive table dmsetup sees goes away.
    await ok('dm', 'load', other, '--table', '0 2048 zero');
    assert.is(sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'attr', other]).trim(), 'LI-w');
    assert.is(await ok('dm', 'clear', other), '');
    assert.is(sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'attr', other]).trim(), 'L--w');

    // mknodes: a missing node (ours: there is no udev in this cell) is made again, for the right device.
    if (!UDEV_CELL) {
      rmSync(`/dev/mapper/${upper}`);
      assert.is(await ok('dm', 'mknodes', '-q'), '');
      assert.ok(lstatSync(`/dev/mapper/${upper}`).isBlockDevice());
      assert.is(statSync(`/dev/mapper/${upper}`).rdev, statSync(`/dev/dm-${JSON.parse(await ok('dm', 'info', upper, '--json')).minor}`).rdev);
    }

    // remove --force --deferred on lower, held open by upper: dmsetup sees the error table, and
    // lower goes when upper does.
    const forced = await dmx('dm', 'remove', '--force', '--deferred', lower);
    assert.equal([forced.code, forced.stderr], [0, 'devmapper: device is busy; removal deferred until its last close\n']);
    assert.is(sh('dmsetup', ['table', lower]), '0 2048 error \n');
    await ok('dm', 'remove', upper);
    assert.is.not(spawnSync('dmsetup', ['info', lower]).status, 0, 'lower removed on its last close');

    // remove_all: without --yes only a listing (what dmsetup ls lists); with it, nothing is left.
    const listed = sh('dmsetup', ['ls']).split('\n').filter((l) => l !== '').map((l) => l.split(/\s+/)[0]!).sort();
    assert.equal(listed, [other]);
    const dry = await dmx('dm', 'remove_all');
    assert.is(dry.code, 2);
    assert.is(dry.stderr.split('\n').slice(0, 2).join('\n'), `devmapper: would remove 1 device(s), every one on this host:\n  ${other}`);
    assert.equal(sh('dmsetup', ['ls']).split('\n')[0]!.split(/\s+/)[0], other, 'still there');
    assert.equal(JSON.parse(await ok('dm', 'remove_all', '--yes', '--json')), { removed: [other], remaining: [] });
    assert.is(sh('dmsetup', ['ls']), 'No devices found\n');
  } finally {
    for (const name of [upper, lower, other]) spawnSync('dmsetup', ['remove', '--force', name]);
    spawnSync('losetup', ['--detach', loopDev]);
  }
});

test('loop ls -O / --noheadings agree with losetup --list -O', async () => {
  const a = sh('losetup', ['--find', '--show', '--offset', '512', '--sizelimit', String(MiB), backing(2 * MiB)]).trim();
  const b = sh('losetup', ['--find', '--show', '--read-only', backing(MiB)]).trim();
  try {
    // The heading, then the test's two devices by name (losetup's order is not the index order).
    const mine = (text: string): string[][] => {
      const [head = [], ...rows] = cells(text);
      return [head, ...rows.filter((row) => row[0] === a || row[0] === b).sort((x, y) => (x[0]! < y[0]! ? -1 : 1))];
    };
    for (const cols of ['NAME,SIZELIMIT,OFFSET,AUTOCLEAR,RO,BACK-FILE,DIO,LOG-SEC', 'NAME,MAJ:MIN,PARTSCAN,RO']) {
      const ours = mine(await ok('loop', 'ls', '-O', cols));
      const theirs = mine(sh('losetup', ['--list', '-O', cols]));
      assert.equal(ours, theirs, cols);
    }
    const noHead = (await ok('loop', 'ls', '--noheadings')).split('\n').filter((l) => l.startsWith(`${a} `) || l.startsWith(`${b} `));
    const theirs = sh('losetup', ['--list', '--noheadings']).split('\n').filter((l) => l.startsWith(`${a} `) || l.startsWith(`${b} `));
    assert.equal(cells(noHead.join('\n')).sort(), cells(theirs.join('\n')).sort());
  } finally {
    for (const d of [a, b]) spawnSync('losetup', ['--detach', d]);
  }
});

test.run();
