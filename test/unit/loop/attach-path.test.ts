// SPDX-License-Identifier: MIT
// The attach path's buffers (issue 21 §2): LOOP_CONFIGURE's request comes from Node's slab and
// LOOP_GET_STATUS64's output buffer is reused, instead of a zeroed ArrayBuffer per call (~1–5 µs
// each natively); the bytes the kernel sees stay exactly those of a zeroed encoding.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LoopControl, truncateUtf8 } from '../../../src/loop/control.js';
import { LOOP_CONFIG_SIZE, LOOP_INFO64_SIZE, encodeLoopConfig } from '../../../src/ioctl/index.js';
import { FakeSyscalls, regular } from './fake-syscalls.js';

const FILE = '/fake/pool/data';

function setup(): { sys: FakeSyscalls; loops: LoopControl } {
  const sys = new FakeSyscalls();
  sys.files.set(FILE, regular());
  return { sys, loops: new LoopControl({ syscalls: sys, sysfsRoot: '/nonexistent-sysfs', kernelRelease: '6.12.0', sleep: async () => undefined }) };
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

test.run();
