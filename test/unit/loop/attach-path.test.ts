// SPDX-License-Identifier: MIT
// The attach path's buffers (issue 21 §2): LOOP_CONFIGURE's request comes from Node's slab and
// LOOP_GET_STATUS64's output buffer is reused, instead of a zeroed ArrayBuffer per call (~1–5 µs
// each natively); the bytes the kernel sees stay exactly those of a zeroed encoding.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import {
  LOOP_ATTACH_RETRY_MIN_DELAY_MS,
  LOOP_EAGAIN_DELAY_MS,
  LOOP_EAGAIN_MAX_TRIES,
  LOOP_OPEN_MAX_TRIES,
  LOOP_OPEN_RETRY_DELAY_MS,
  LoopControl,
  truncateUtf8,
} from '../../../src/loop/control.js';
import { LoopDeviceNotFoundError } from '../../../src/loop/errors.js';
import { IoctlError, LOOP_CONFIG_SIZE, LOOP_INFO64_SIZE, encodeLoopConfig } from '../../../src/ioctl/index.js';
import { FakeSyscalls, regular } from './fake-syscalls.js';
import { rejects } from '../../helpers/rejects.js';

const FILE = '/fake/pool/data';

function setup(sleeps: number[] = []): { sys: FakeSyscalls; loops: LoopControl } {
  const sys = new FakeSyscalls();
  sys.files.set(FILE, regular());
  const sleep = async (ms: number): Promise<void> => void sleeps.push(ms);
  return { sys, loops: new LoopControl({ syscalls: sys, sysfsRoot: '/nonexistent-sysfs', kernelRelease: '6.12.0', sleep, random: () => 0 }) };
}

/**
 * Records the seam's calls in order, with 'tick' where a microtask queued at LOOP_CTL_GET_FREE
 * ran: what came before it ran in the same synchronous stretch as GET_FREE.
 */
function traceTicks(sys: FakeSyscalls): string[] {
  const trace: string[] = [];
  const open = sys.open.bind(sys);
  const ioctl = sys.ioctl.bind(sys);
  sys.open = (path, flags) => {
    trace.push(`open ${path}`);
    return open(path, flags);
  };
  sys.ioctl = (fd, request, arg, name) => {
    trace.push(name);
    if (name === 'LOOP_CTL_GET_FREE') queueMicrotask(() => trace.push('tick'));
    return ioctl(fd, request, arg, name);
  };
  return trace;
}

/** Sizes passed to Buffer.alloc while `fn` runs. */
async function allocSizes(fn: () => Promise<unknown>): Promise<number[]> {
  const sizes: number[] = [];
  const original = Buffer.alloc;
  Buffer.alloc = ((size: number, ...rest: unknown[]) => {
    sizes.push(size);
    return (original as (...a: unknown[]) => Buffer)(size, ...rest);
  }) as typeof Buffer.alloc;
  try {
    await fn();
  } finally {
    Buffer.alloc = original;
  }
  return sizes;
}

test('attach and statusSync allocate no zeroed loop_config / loop_info64 buffer', async () => {
  const { loops } = setup();
  // (The asynchronous status allocates its own: other calls run while its ioctl waits.)
  const sizes = await allocSizes(async () => {
    const a = await loops.attach(FILE, { autoclear: false, hold: false, offset: 4096 });
    loops.statusSync(a.path);
    loops.statusSync(a.path);
  });
  assert.equal(sizes.filter((n) => n === LOOP_CONFIG_SIZE || n === LOOP_INFO64_SIZE), []);
});

test('the LOOP_CONFIGURE request is byte for byte the zeroed encoding, whatever the slab held', async () => {
  const { sys, loops } = setup();
  // Dirty the slab: allocUnsafe hands out recycled pool memory.
  for (let i = 0; i < 64; i++) Buffer.allocUnsafe(LOOP_CONFIG_SIZE).fill(0xa5);
  const a = await loops.attach(FILE, { autoclear: false, hold: false, offset: 4096, sizeLimit: 1 << 20, partscan: true });
  const sent = sys.ioctls.find((c) => c.name === 'LOOP_CONFIGURE')?.arg as Buffer;
  const backingFd = sent.readUInt32LE(0);
  const expected = encodeLoopConfig({
    fd: backingFd,
    block_size: 0,
    info: { lo_offset: 4096n, lo_sizelimit: 1n << 20n, lo_flags: 8, lo_file_name: FILE },
  });
  assert.equal([...sent], [...expected]);
  // Two status reads in a row through the reused buffer decode alike.
  assert.equal(loops.statusSync(a.path), loops.statusSync(a.path));
  assert.is(loops.statusSync(a.path).fileName, FILE);
  assert.equal(await loops.status(a.path), loops.statusSync(a.path));
});

test('truncateUtf8 fast path (length × 3 ≤ max) agrees with the byte-exact cut', () => {
  assert.is(truncateUtf8('€'.repeat(21), 63), '€'.repeat(21)); // 63 bytes: fits
  assert.is(truncateUtf8('€'.repeat(22), 63), '€'.repeat(21)); // 66 bytes: one € dropped
  assert.is(truncateUtf8('😀'.repeat(10), 63), '😀'.repeat(10)); // 20 units, 40 bytes
  assert.is(truncateUtf8('😀'.repeat(16), 63), '😀'.repeat(15)); // 64 bytes → 60
  assert.is(truncateUtf8('a'.repeat(21), 63), 'a'.repeat(21));
});

test('attach: node open and LOOP_CONFIGURE run in the same synchronous stretch as GET_FREE (no promise hop between)', async () => {
  const { sys, loops } = setup();
  const trace = traceTicks(sys);
  await loops.attach(FILE, { autoclear: false, hold: false });
  // Before: `await this.#openNode(path)` let the microtask run between the open and LOOP_CONFIGURE.
  assert.equal(trace.slice(trace.indexOf('LOOP_CTL_GET_FREE')), ['LOOP_CTL_GET_FREE', 'open /dev/loop0', 'LOOP_CONFIGURE', 'tick', 'LOOP_GET_STATUS64']);
});

test('a node open that waits for udev keeps its tries and sleeps: ENOENT/EACCES up to LOOP_OPEN_MAX_TRIES', async () => {
  // Succeeds on the last try.
  const sleeps: number[] = [];
  const a = setup(sleeps);
  a.sys.script.set('open:/dev/loop0', [...Array<string>(LOOP_OPEN_MAX_TRIES - 1).fill('ENOENT')]);
  a.sys.script.get('open:/dev/loop0')![3] = 'EACCES';
  const trace = traceTicks(a.sys);
  (await a.loops.attach(FILE)).close();
  assert.is(trace.filter((t) => t === 'open /dev/loop0').length, LOOP_OPEN_MAX_TRIES);
  assert.equal(sleeps, Array<number>(LOOP_OPEN_MAX_TRIES - 1).fill(LOOP_OPEN_RETRY_DELAY_MS));
  // The retry is the asynchronous path: the microtask ran before the second open.
  assert.ok(trace.indexOf('tick') < trace.lastIndexOf('open /dev/loop0'));

  // One more failure: LoopDeviceNotFoundError after exactly LOOP_OPEN_MAX_TRIES opens, nothing bound.
  const sleepsB: number[] = [];
  const b = setup(sleepsB);
  b.sys.script.set('open:/dev/loop0', [...Array<string>(LOOP_OPEN_MAX_TRIES).fill('ENOENT')]);
  await rejects(b.loops.attach(FILE), LoopDeviceNotFoundError);
  assert.is(b.sys.opens.filter((o) => o.path === '/dev/loop0').length, LOOP_OPEN_MAX_TRIES);
  assert.is(sleepsB.length, LOOP_OPEN_MAX_TRIES - 1);
  assert.equal(b.sys.ioctls.map((c) => c.name), ['LOOP_CTL_GET_FREE']);
  assert.equal(b.sys.openFds(), []);

  // Any other errno is not retried: the first failure is final.
  const c = setup();
  c.sys.script.set('open:/dev/loop0', ['EPERM']);
  const err = await rejects(c.loops.attach(FILE), IoctlError);
  assert.is(err.code, 'EPERM');
  assert.is(c.sys.opens.filter((o) => o.path === '/dev/loop0').length, 1);
});

test('EAGAIN on LOOP_CONFIGURE keeps its bound: LOOP_EAGAIN_MAX_TRIES tries, then the device counts as a lost race', async () => {
  const sleeps: number[] = [];
  const { sys, loops } = setup(sleeps);
  sys.freeIndexes = [0, 1];
  sys.script.set('LOOP_CONFIGURE', [...Array<string>(LOOP_EAGAIN_MAX_TRIES).fill('EAGAIN')]);
  const a = await loops.attach(FILE, { autoclear: false, hold: false });
  assert.is(a.index, 1);
  assert.is(a.attempts, 2);
  const configures = sys.ioctls.filter((c) => c.name === 'LOOP_CONFIGURE').map((c) => c.path);
  assert.equal(configures, [...Array<string>(LOOP_EAGAIN_MAX_TRIES).fill('/dev/loop0'), '/dev/loop1']);
  assert.equal(sleeps, [...Array<number>(LOOP_EAGAIN_MAX_TRIES - 1).fill(LOOP_EAGAIN_DELAY_MS), LOOP_ATTACH_RETRY_MIN_DELAY_MS]);
  assert.ok(!sys.ioctls.some((c) => c.name === 'LOOP_CLR_FD'), 'a device we never bound is not cleared');

  // setCapacity (the same helper, awaited): EAGAIN on every try is the IoctlError of the last one.
  const sleepsB: number[] = [];
  const b = setup(sleepsB);
  const dev = await b.loops.attach(FILE, { autoclear: false, hold: false });
  b.sys.script.set('LOOP_SET_CAPACITY', [...Array<string>(LOOP_EAGAIN_MAX_TRIES).fill('EAGAIN')]);
  const err = await rejects(b.loops.setCapacity(dev), IoctlError);
  assert.is(err.code, 'EAGAIN');
  assert.is(b.sys.ioctls.filter((c) => c.name === 'LOOP_SET_CAPACITY').length, LOOP_EAGAIN_MAX_TRIES);
  assert.equal(sleepsB, Array<number>(LOOP_EAGAIN_MAX_TRIES - 1).fill(LOOP_EAGAIN_DELAY_MS));
});

test('devicePath (a prefix joined once) = path.join(devDir, loopN) for every devDir', () => {
  for (const devDir of ['/dev', '/dev/', 'dev', '', '.', '/a/../b/./', '//x//y', '/dev/loop']) {
    const loops = new LoopControl({ syscalls: new FakeSyscalls(), devDir });
    for (const i of [0, 7, 10, 1048575]) assert.is(loops.devicePath(i), join(devDir, `loop${i}`), `${devDir} ${i}`);
  }
});

test('truncateUtf8: counted, not copied, when the UTF-16 length test is not enough', () => {
  const copies: string[] = [];
  const original = Buffer.from;
  Buffer.from = ((...a: unknown[]) => {
    if (typeof a[0] === 'string') copies.push(a[0]);
    return (original as (...x: unknown[]) => Buffer)(...a);
  }) as typeof Buffer.from;
  let out: string[];
  try {
    out = ['/tmp/devmapper-bench-loop-abcdef/backing.img', 'é'.repeat(31), 'é'.repeat(32)].map((s) => truncateUtf8(s, 63));
  } finally {
    Buffer.from = original;
  }
  assert.equal(out, ['/tmp/devmapper-bench-loop-abcdef/backing.img', 'é'.repeat(31), 'é'.repeat(31)]);
  assert.equal(copies, ['é'.repeat(32)]); // only the string that has to be cut
});

test.run();
