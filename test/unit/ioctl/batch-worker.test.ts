// The batched-ioctl worker (src/ioctl/batch-worker.ts) against the real kernel of this host, with
// requests any user may make: FIONREAD on a regular file (fs/ioctl.c do_vfs_ioctl(): writes
// i_size - f_pos as an int, no I/O) and TCGETS on /dev/null (no tty: ENOTTY). Linux only.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as io from '../../../src/ioctl/index.js';

const linux = process.platform === 'linux';
const it = (name: string, fn: () => void | Promise<void>) => (linux ? test(name, fn) : test.skip(`${name} (Linux only)`, fn));

/** include/uapi/asm-generic/ioctls.h */
const FIONREAD = 0x541b;
const TCGETS = 0x5401;
const ENOTTY = 25;

const dir = mkdtempSync(join(tmpdir(), 'dm-batch-'));
const FILE_SIZE = 1234;
const file = join(dir, 'f');
writeFileSync(file, Buffer.alloc(FILE_SIZE, 1));
let fileFd = -1;
let nullFd = -1;

test.before(() => {
  if (!linux) return;
  fileFd = openSync(file, 'r');
  nullFd = openSync('/dev/null', 'r');
});
test.after(() => {
  if (fileFd >= 0) closeSync(fileFd);
  if (nullFd >= 0) closeSync(nullFd);
  rmSync(dir, { recursive: true, force: true });
});

const fionread = (buf: Buffer, stopIf?: io.StopIfFlag): io.IoctlStep => ({ fd: fileFd, request: FIONREAD, arg: buf, requestName: 'FIONREAD', ...(stopIf ? { stopIf } : {}) });

it('runs every step in order and writes each buffer back', async () => {
  const w = new io.BatchWorker();
  try {
    const bufs = [Buffer.alloc(4, 0xaa), Buffer.alloc(4, 0xbb), Buffer.alloc(4, 0xcc)];
    const out = await w.run(bufs.map((b) => fionread(b)));
    assert.equal(out, { results: [0, 0, 0] });
    assert.equal(bufs.map((b) => b.readInt32LE(0)), [FILE_SIZE, FILE_SIZE, FILE_SIZE]);
  } finally {
    w.close();
  }
});

it('a failed step stops the sequence and is reported with its index and errno', async () => {
  const w = new io.BatchWorker();
  try {
    const first = Buffer.alloc(4, 0xaa);
    const third = Buffer.alloc(4, 0xcc);
    const out = await w.run([fionread(first), { fd: nullFd, request: TCGETS, arg: Buffer.alloc(64), requestName: 'TCGETS' }, fionread(third)]);
    assert.equal(out.results, [0]); // step 1 failed: results.length is its index
    assert.instance(out.error, io.IoctlError);
    assert.is(out.error?.errno, ENOTTY);
    assert.is(out.error?.code, 'ENOTTY');
    assert.is(out.error?.request, 'TCGETS');
    assert.is(out.error?.fd, nullFd);
    assert.is(out.stopped, undefined);
    assert.is(first.readInt32LE(0), FILE_SIZE);
    assert.is(third.readUInt32LE(0), 0xcccccccc); // never sent
  } finally {
    w.close();
  }
});

it('stopIf: a step whose flag is set in its reply ends the batch after it (buffer growth)', async () => {
  const w = new io.BatchWorker();
  try {
    // FIONREAD writes 1234 = 0x4d2: bit 0x400 is set, bit 0x1 is not.
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4, 0xcc);
    const notSet = await w.run([fionread(a, { offset: 0, mask: 0x1 }), fionread(b)]);
    assert.equal(notSet, { results: [0, 0] });
    b.fill(0xcc);
    const set = await w.run([fionread(a, { offset: 0, mask: 0x400 }), fionread(b)]);
    assert.equal(set, { results: [0], stopped: true });
    assert.is(b.readUInt32LE(0), 0xcccccccc);
    // The caller grows the stopped step and sends it again with the rest.
    const grown = Buffer.alloc(16);
    assert.equal(await w.run([fionread(grown), fionread(b)]), { results: [0, 0] });
    assert.is(grown.readInt32LE(0), FILE_SIZE);
    assert.is(b.readInt32LE(0), FILE_SIZE);
  } finally {
    w.close();
  }
});

it('buffers larger than the arena: it grows, every byte outside the reply is kept', async () => {
  const w = new io.BatchWorker();
  try {
    const big = [Buffer.alloc(40 * 1024, 0x11), Buffer.alloc(50 * 1024, 0x22), Buffer.alloc(70 * 1024, 0x33)];
    const out = await w.run(big.map((b) => fionread(b)));
    assert.equal(out, { results: [0, 0, 0] });
    for (const [i, b] of big.entries()) {
      assert.is(b.readInt32LE(0), FILE_SIZE);
      const fill = [0x11, 0x22, 0x33][i]!;
      assert.ok(b.subarray(4).every((x) => x === fill), `buffer ${i} kept its bytes after the reply`);
    }
    // And the next, small batch still works on the new arena.
    const small = Buffer.alloc(4);
    assert.equal(await w.run([fionread(small)]), { results: [0] });
    assert.is(small.readInt32LE(0), FILE_SIZE);
  } finally {
    w.close();
  }
});

it('busy while a batch is in flight; concurrent runs are answered in order', async () => {
  const w = new io.BatchWorker();
  try {
    assert.is(w.busy, false);
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    const p1 = w.run([fionread(a)]);
    const p2 = w.run([{ fd: nullFd, request: TCGETS, arg: Buffer.alloc(64), requestName: 'TCGETS' }, fionread(b)]);
    assert.is(w.busy, true);
    const [o1, o2] = await Promise.all([p1, p2]);
    assert.equal(o1, { results: [0] });
    assert.equal(o2.results, []);
    assert.is(o2.error?.code, 'ENOTTY');
    assert.is(b.readInt32LE(0), 0);
    assert.is(w.busy, false);
  } finally {
    w.close();
  }
});

it('close: the thread exits, later runs fail with BatchWorkerError; never started → nothing to stop', async () => {
  const idle = new io.BatchWorker();
  idle.close();
  await idle.exited;
  assert.is(idle.running, false);

  const w = new io.BatchWorker();
  assert.equal(await w.run([fionread(Buffer.alloc(4))]), { results: [0] });
  assert.is(w.running, true);
  w.close();
  w.close(); // idempotent
  await w.exited;
  assert.is(w.running, false);
  try {
    await w.run([fionread(Buffer.alloc(4))]);
    assert.unreachable('ran after close');
  } catch (e) {
    assert.instance(e, io.BatchWorkerError);
    assert.is((e as io.BatchWorkerError).code, 'EBATCHWORKER');
  }
});

it('close during a batch: the batch is answered, then the thread exits', async () => {
  const w = new io.BatchWorker();
  const buf = Buffer.alloc(4);
  const p = w.run([fionread(buf)]);
  w.close();
  assert.equal(await p, { results: [0] });
  assert.is(buf.readInt32LE(0), FILE_SIZE);
  await w.exited;
  assert.is(w.running, false);
});

it('bad steps are refused before anything is sent', async () => {
  const w = new io.BatchWorker();
  try {
    for (const steps of [[], Array.from({ length: io.MAX_BATCH_STEPS + 1 }, () => fionread(Buffer.alloc(4))), [{ ...fionread(Buffer.alloc(4)), fd: -1 }], [{ ...fionread(Buffer.alloc(4)), arg: 1n << 40n }]]) {
      try {
        await w.run(steps);
        assert.unreachable(`accepted ${steps.length} steps`);
      } catch (e) {
        assert.instance(e, RangeError);
      }
    }
    assert.is(w.running, false); // nothing was sent: the thread was never started
  } finally {
    w.close();
  }
});

it('the idle worker keeps no process alive, and a batch in flight is not cut short at exit', () => {
  // A fresh process whose only work is one top-level awaited batch, then nothing: it must print
  // the result (the worker is ref()'d while the batch is in flight) and then exit by itself
  // (unref()'d when idle; no close() call). execFileSync returns only when the child exited.
  const index = new URL('../../../src/ioctl/index.js', import.meta.url).href;
  const script =
    `const io = await import(${JSON.stringify(index)});` +
    `const fs = await import('node:fs');` +
    `const fd = fs.openSync(${JSON.stringify(file)}, 'r');` +
    `const b = Buffer.alloc(4);` +
    `const w = new io.BatchWorker();` +
    `const out = await w.run([{ fd, request: ${FIONREAD}, arg: b, requestName: 'FIONREAD' }]);` +
    `console.log(JSON.stringify({ out, n: b.readInt32LE(0) }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(JSON.parse(out), { out: { results: [0] }, n: FILE_SIZE });
});

test.run();
