// SPDX-License-Identifier: MIT
// AbortSignal and onProgress in the loop layer: LoopControl.attach's retry loop (an abort before an
// attempt binds nothing; one after our bind clears the device), ensureSparseFile (stops between
// its stages, removes the file it created, shrinks back the file it grew) and the chunked discard.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopControl } from '../../../src/loop/control.js';
import { LoopAbortedError } from '../../../src/loop/errors.js';
import { discardBlockDevice, ensureSparseFile, type LoopProgressEvent } from '../../../src/loop/index.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import type { IoctlArg, Syscalls } from '../../../src/ioctl/index.js';
import { FakeSyscalls, regular } from './fake-syscalls.js';
import { rejects } from '../../helpers/rejects.js';

const FILE = '/fake/pool/data';

function setup(onSleep: () => void = () => {}): { sys: FakeSyscalls; loops: LoopControl } {
  const sys = new FakeSyscalls();
  sys.files.set(FILE, regular());
  const loops = new LoopControl({ syscalls: sys, sysfsRoot: '/nonexistent-sysfs', sleep: async () => onSleep(), random: () => 0.5 });
  return { sys, loops };
}
const names = (sys: FakeSyscalls): string[] => sys.ioctls.map((c) => c.name);

test('attach: an abort during the race back-off stops before the next GET_FREE; nothing bound, every fd closed', async () => {
  const ac = new AbortController();
  const { sys, loops } = setup(() => ac.abort(new Error('stop')));
  sys.freeIndexes = [0, 1, 2];
  sys.script.set('LOOP_CONFIGURE', ['EBUSY', 'EBUSY']);
  const err = await rejects(loops.attach(FILE, { signal: ac.signal }), LoopAbortedError);
  assert.is(err.code, 'ELOOPABORTED');
  assert.is((err.cause as Error).message, 'stop');
  assert.equal(names(sys), ['LOOP_CTL_GET_FREE', 'LOOP_CONFIGURE']);
  assert.equal(sys.openFds(), []);
});

test('attach: an abort that fires while our bind runs clears the device again', async () => {
  const ac = new AbortController();
  const { sys, loops } = setup();
  sys.freeIndexes = [4];
  const ioctl = sys.ioctl.bind(sys);
  sys.ioctl = (fd: number, request: number, arg: IoctlArg, name: string): number => {
    const r = ioctl(fd, request, arg, name);
    if (name === 'LOOP_CONFIGURE') ac.abort();
    return r;
  };
  await rejects(loops.attach(FILE, { signal: ac.signal }), LoopAbortedError);
  assert.equal(names(sys), ['LOOP_CTL_GET_FREE', 'LOOP_CONFIGURE', 'LOOP_CLR_FD']);
  assert.equal(sys.openFds(), []);
});

test('attach: an aborted signal makes no ioctl; a signal that is no AbortSignal is refused', async () => {
  const { sys, loops } = setup();
  await rejects(loops.attach(FILE, { signal: AbortSignal.abort() }), LoopAbortedError);
  assert.equal(names(sys), []);
  assert.equal(sys.openFds(), []);
  await rejects(loops.attach(FILE, { signal: 'soon' as unknown as AbortSignal }), InvalidArgumentError);
});

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'loop-abort-'));
}

test('ensureSparseFile: progress by stage, 0..3 of 3', async () => {
  const dir = tempDir();
  try {
    const seen: LoopProgressEvent[] = [];
    await ensureSparseFile(join(dir, 'f'), 1 << 20, { onProgress: (e) => void seen.push(e) });
    assert.equal(seen, [0, 1, 2, 3].map((done) => ({ step: 'sparse-file', done, total: 3 })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ensureSparseFile: an abort after the create removes the file it created', async () => {
  const dir = tempDir();
  const path = join(dir, 'f');
  try {
    const ac = new AbortController();
    const err = await rejects(
      ensureSparseFile(path, 1 << 20, { signal: ac.signal, onProgress: (e) => (e.done === 1 ? ac.abort() : undefined) }),
      LoopAbortedError,
    );
    assert.is(err.operation, 'ensureSparseFile');
    assert.is(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ensureSparseFile: an abort after growing an existing file shrinks it back; an aborted signal touches nothing', async () => {
  const dir = tempDir();
  const path = join(dir, 'f');
  try {
    writeFileSync(path, Buffer.alloc(4096, 1));
    const ac = new AbortController();
    await rejects(ensureSparseFile(path, 1 << 20, { signal: ac.signal, onProgress: (e) => (e.done === 2 ? ac.abort() : undefined) }), LoopAbortedError);
    assert.is(statSync(path).size, 4096);
    const fresh = join(dir, 'g');
    await rejects(ensureSparseFile(fresh, 4096, { signal: AbortSignal.abort() }), LoopAbortedError);
    assert.is(existsSync(fresh), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function recorder(): { sys: Syscalls; calls: string[] } {
  const calls: string[] = [];
  const sys = {
    open: () => (calls.push('open'), 7),
    ioctlAsync: async (_fd: number, _request: number, arg: IoctlArg) => {
      const b = arg as Buffer;
      calls.push(`BLKDISCARD ${b.readBigUInt64LE(0)} ${b.readBigUInt64LE(8)}`);
      return 0;
    },
    fsync: () => void calls.push('fsync'),
    close: () => void calls.push('close'),
  };
  return { sys: sys as unknown as Syscalls, calls };
}

test('discardBlockDevice: one BLKDISCARD per chunk, progress per chunk', async () => {
  const { sys, calls } = recorder();
  const seen: LoopProgressEvent[] = [];
  await discardBlockDevice(sys, '/dev/mapper/x', 2560n, { chunkBytes: 1024n, onProgress: (e) => void seen.push(e) });
  assert.equal(calls, ['open', 'BLKDISCARD 0 1024', 'BLKDISCARD 1024 1024', 'BLKDISCARD 2048 512', 'fsync', 'close']);
  assert.equal(seen, [0, 1, 2, 3].map((done) => ({ step: 'discard', done, total: 3 })));
});

test('discardBlockDevice: an abort stops between chunks (fd closed); bad chunk sizes are refused', async () => {
  const { sys, calls } = recorder();
  const ac = new AbortController();
  await rejects(
    discardBlockDevice(sys, '/dev/mapper/x', 4096n, { chunkBytes: 1024n, signal: ac.signal, onProgress: (e) => (e.done === 1 ? ac.abort() : undefined) }),
    LoopAbortedError,
  );
  assert.equal(calls, ['open', 'BLKDISCARD 0 1024', 'close']);
  await rejects(discardBlockDevice(sys, '/dev/mapper/x', 4096n, { chunkBytes: 1000n }), InvalidArgumentError);
});

test.run();
