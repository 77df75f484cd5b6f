// SPDX-License-Identifier: MIT
// The detach path (issue 21 §2): LOOP_CLR_FD on the calling thread only on kernels where it
// returns at once (≥ 6.11), on the worker before; the 'deferred' check is one stat of
// loop/backing_file, not a full sysfs read.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopControl, indexFromPath, loopClrFdReturnsAtOnce } from '../../../src/loop/control.js';
import { isLoopBound } from '../../../src/loop/sysfs.js';
import { LoopNotBoundError } from '../../../src/loop/errors.js';
import { FakeSyscalls, regular } from './fake-syscalls.js';
import { rejects } from '../../helpers/rejects.js';

const FILE = '/fake/pool/data';
const OLD = '6.1.0-28-amd64';
const NEW = '6.12.57+deb13-amd64';

function setup(kernelRelease: string, sysfsRoot = '/nonexistent-sysfs'): { sys: FakeSyscalls; loops: LoopControl } {
  const sys = new FakeSyscalls();
  sys.files.set(FILE, regular());
  const loops = new LoopControl({ syscalls: sys, sysfsRoot, kernelRelease, sleep: async () => undefined, random: () => 0.5 });
  return { sys, loops };
}

test('loopClrFdReturnsAtOnce: 6.11 and later only; unparsable → the worker', () => {
  const cases: [string, boolean][] = [
    ['6.1.0-28-amd64', false],
    ['6.10.14', false],
    ['5.19.0', false],
    ['6.11.0', true],
    ['6.11', true],
    [NEW, true],
    ['6.18.44-fc-v1272', true],
    ['7.0.0-rc1', true],
    ['10.2.0', true],
    ['', false],
    ['linux', false],
  ];
  assert.equal(
    cases.map(([r]) => [r, loopClrFdReturnsAtOnce(r)]),
    cases,
  );
});

test('LoopControl.detach: LOOP_CLR_FD synchronous on ≥ 6.11, through ioctlAsync before', async () => {
  for (const [release, hops] of [
    [NEW, []],
    [OLD, ['LOOP_CLR_FD']],
  ] as const) {
    const { sys, loops } = setup(release);
    const dev = await loops.attach(FILE, { autoclear: false, hold: false });
    assert.equal(sys.asyncIoctls, [], `${release}: attach makes no worker hop`);
    assert.is(await loops.detach(dev.path), 'detached');
    assert.equal(sys.asyncIoctls, [...hops], release);
    assert.is(sys.ioctls.at(-1)?.name, 'LOOP_CLR_FD');
    assert.is(sys.bound.size, 0);
    assert.equal(sys.openFds(), []);
  }
});

test('LoopAttachment.detach and the clear after a failed setup follow the same rule', async () => {
  for (const [release, hops] of [
    [NEW, []],
    [OLD, ['LOOP_CLR_FD']],
  ] as const) {
    const a = setup(release);
    const dev = await a.loops.attach(FILE);
    await dev.detach();
    assert.equal(a.sys.asyncIoctls, [...hops], `${release}: handle.detach()`);
    assert.is(a.sys.bound.size, 0);

    // LOOP_GET_STATUS64 fails after a successful LOOP_CONFIGURE: attach clears the device.
    const b = setup(release);
    b.sys.script.set('LOOP_GET_STATUS64', ['EIO']);
    await rejects(b.loops.attach(FILE), Error);
    assert.equal(b.sys.asyncIoctls, [...hops], `${release}: clear after a failed setup`);
    assert.is(b.sys.bound.size, 0);
    assert.equal(b.sys.openFds(), []);
  }
});

test('detach of an unbound device is LoopNotBoundError on both paths', async () => {
  for (const release of [NEW, OLD]) {
    const { loops } = setup(release);
    await rejects(loops.detach(3), LoopNotBoundError);
  }
});

test("isLoopBound: loop/backing_file exists ⇔ bound; 'deferred' looks at nothing else", async () => {
  const root = mkdtempSync(join(tmpdir(), 'devmapper-sysfs-'));
  try {
    const dev = (i: number): string => join(root, 'block', `loop${i}`);
    mkdirSync(join(dev(0), 'loop'), { recursive: true });
    writeFileSync(join(dev(0), 'loop', 'backing_file'), '/fake/pool/data\n');
    // A `dev` attribute readLoopSysfs would refuse (KernelOutputError): detach must not read it.
    writeFileSync(join(dev(0), 'dev'), 'garbage\n');
    mkdirSync(dev(1), { recursive: true });
    writeFileSync(join(dev(1), 'dev'), '7:1\n');
    assert.equal([isLoopBound(0, root), isLoopBound(1, root), isLoopBound(2, root)], [true, false, false]);
    // The path is concatenated, not joined: a trailing or doubled '/' in sysfsRoot reads the same.
    assert.equal([isLoopBound(0, `${root}/`), isLoopBound(0, `${root}//`), isLoopBound(1, `${root}/`)], [true, true, false]);

    const { sys, loops } = setup(NEW, root);
    sys.freeIndexes = [0];
    const a = await loops.attach(FILE, { autoclear: false, hold: false });
    // The fake unbinds at LOOP_CLR_FD, but the sysfs tree still shows loop0 bound: someone else
    // holds it, so the kernel only set autoclear.
    assert.is(await loops.detach(a.path), 'deferred');
    sys.freeIndexes = [1];
    const b = await loops.attach(FILE, { autoclear: false, hold: false });
    assert.is(await loops.detach(b.path), 'detached');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('indexFromPath (scanned by hand) = /loop(\\d+)$/ on paths and non-paths', () => {
  const regex = (p: string): number | undefined => {
    const m = /loop(\d+)$/.exec(p);
    return m ? Number(m[1]) : undefined;
  };
  const cases = ['/dev/loop0', '/dev/loop12', 'loop7', '/dev/loop', '/dev/loopx1', '/dev/lop1', '/dev/sda1', '', '7', 'oop3', 'lo1',
    '/dev/loop007', '/dev/loop1048575', '/x/loop3/loop4', '/dev/loop1/', '/dev/LOOP1', 'loop٣', '/dev/loop12a', 'aloop5'];
  for (const c of cases) assert.is(indexFromPath(c), regex(c), c);
});

test.run();
