// SPDX-License-Identifier: MIT
// `loop set-capacity` (losetup -c) and `loop detach --all` (losetup -D) through run(), on the
// FakeKernel's LoopControl with real backing files (test/privileged/cli-parity.test.ts compares
// them with losetup on a real kernel).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { IoctlError, LoopDeviceBusyError, LoopNotBoundError } from '../../../src/index.js';
import type { CliLoop, Deps } from '../../../src/cli/context.js';
import { cli } from './harness.js';

const MiB = 1024 * 1024;

async function onFake(fn: (deps: Partial<Deps>, file: (name: string, bytes: number) => string) => Promise<void>): Promise<void> {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const w = fakeDeviceSetInit(fake, '/fakedev');
  const dir = mkdtempSync(join(tmpdir(), 'cli-loop-'));
  const file = (name: string, bytes: number): string => {
    const p = join(dir, name);
    writeFileSync(p, '');
    truncateSync(p, bytes);
    return p;
  };
  try {
    await fn({ loop: () => w.loops as never }, file);
  } finally {
    fake.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function ls(deps: Partial<Deps>): Promise<{ path: string; sizeBytes: number; backingFile: string }[]> {
  const r = await cli(['loop', 'ls', '--json'], deps);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { path: string; sizeBytes: number; backingFile: string }[];
}

async function attach(deps: Partial<Deps>, file: string): Promise<string> {
  const r = await cli(['loop', 'attach', file], deps);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.trim();
}

test('loop set-capacity: the device takes the grown file\'s size (by path, loopN and N)', async () => {
  await onFake(async (deps, file) => {
    const f = file('a.img', 1 * MiB);
    const dev = await attach(deps, f);
    assert.is(dev, '/fakedev/loop0');
    truncateSync(f, 3 * MiB);
    assert.equal((await ls(deps)).map((l) => l.sizeBytes), [1 * MiB], 'not before set-capacity');
    const r = await cli(['loop', 'set-capacity', dev, '-v'], deps);
    assert.equal([r.code, r.stdout, r.stderr], [0, '', '']);
    assert.equal((await ls(deps)).map((l) => l.sizeBytes), [3 * MiB]);
    truncateSync(f, 4 * MiB);
    const r2 = await cli(['loop', 'set-capacity', 'loop0'], deps);
    assert.is(r2.code, 0, r2.stderr);
    assert.equal((await ls(deps)).map((l) => l.sizeBytes), [4 * MiB]);
    truncateSync(f, 5 * MiB);
    assert.is((await cli(['loop', 'set-capacity', '0'], deps)).code, 0);
    assert.equal((await ls(deps)).map((l) => l.sizeBytes), [5 * MiB]);
  });
});

test('loop set-capacity: unbound → ELOOPNOTBOUND (3); not a loop device → ENOTLOOPDEVICE (2); no DEVICE → usage (2)', async () => {
  await onFake(async (deps, file) => {
    await attach(deps, file('a.img', MiB));
    assert.is((await cli(['loop', 'detach', '/fakedev/loop0'], deps)).code, 0);
    let r = await cli(['loop', 'set-capacity', '/fakedev/loop0'], deps);
    assert.is(r.code, 3);
    assert.is(r.stderr.split('\n')[0], 'devmapper: ELOOPNOTBOUND: loop device /fakedev/loop0 is not bound to a backing file');
    r = await cli(['loop', 'set-capacity', '/dev/null'], deps);
    assert.is(r.code, 2);
    assert.is(r.stderr, "devmapper: ENOTLOOPDEVICE: /dev/null is not a loop device (it is a character device 1:3)\nhint: see 'devmapper loop set-capacity --help'\n");
    r = await cli(['loop', 'set-capacity'], deps);
    assert.equal([r.code, r.stderr.split('\n')[0]], [2, 'devmapper: EUSAGE: missing DEVICE']);
  });
});

test('loop detach --all: every bound device detached; nothing bound is fine; DEVICE and --all exclude each other', async () => {
  await onFake(async (deps, file) => {
    const a = await attach(deps, file('a.img', MiB));
    const b = await attach(deps, file('b.img', 2 * MiB));
    const c = await attach(deps, file('c.img', 2 * MiB));
    assert.equal([a, b, c], ['/fakedev/loop0', '/fakedev/loop1', '/fakedev/loop2']);
    assert.is((await cli(['loop', 'detach', b], deps)).code, 0);
    let r = await cli(['loop', 'detach', '--all'], deps);
    assert.equal([r.code, r.stdout, r.stderr], [0, '', '']);
    assert.equal(await ls(deps), []);
    r = await cli(['loop', 'detach', '--all'], deps);
    assert.equal([r.code, r.stderr], [0, '']);
    r = await cli(['loop', 'detach', a, '--all'], deps);
    assert.equal([r.code, r.stderr], [2, "devmapper: EUSAGE: give DEVICE or --all, not both\nhint: see 'devmapper loop detach --help'\n"]);
    r = await cli(['loop', 'detach'], deps);
    assert.equal([r.code, r.stderr.split('\n')[0]], [2, 'devmapper: EUSAGE: missing DEVICE (or --all)']);
  });
});

test('loop detach --all: a failing device does not stop the others; the first failure sets the exit code', async () => {
  const entry = (i: number) => ({ path: `/dev/loop${i}`, index: i });
  const detached: string[] = [];
  const loop = (): CliLoop =>
    ({
      list: () => [0, 1, 2, 3, 4].map(entry),
      detach: async (path: string) => {
        if (path === '/dev/loop1') throw new LoopDeviceBusyError(1, '/dev/loop1', { cause: new IoctlError({ syscall: 'ioctl', errno: 16, request: 'LOOP_CLR_FD' }) });
        if (path === '/dev/loop2') throw new LoopNotBoundError(path); // detached by someone else meanwhile
        if (path === '/dev/loop3') throw new IoctlError({ syscall: 'ioctl', errno: 5, request: 'LOOP_CLR_FD', path });
        detached.push(path);
        return path === '/dev/loop4' ? 'deferred' : 'detached';
      },
    }) as unknown as CliLoop;
  const r = await cli(['loop', 'detach', '--all'], { loop });
  assert.equal(detached, ['/dev/loop0', '/dev/loop4']);
  assert.is(r.code, 4);
  const lines = r.stderr.split('\n');
  assert.match(lines[0]!, /^devmapper: warn: \/dev\/loop3: .*EIO/);
  assert.is(lines[1], 'devmapper: /dev/loop4 is still open; the kernel detaches it on last close');
  assert.match(lines[2]!, /^devmapper: ELOOPBUSY: /);
  assert.is(lines.length, 5);
});

test.run();
