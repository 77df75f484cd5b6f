// SPDX-License-Identifier: MIT
// hdreg.h: HDIO_GETGEO and struct hd_geometry (LP64 layout).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelOutputError } from '../../../src/errors.js';
import * as io from '../../../src/ioctl/index.js';

test('HDIO_GETGEO is the plain number 0x0301; struct hd_geometry is 16 bytes', () => {
  assert.is(io.HDIO_GETGEO, 0x0301);
  assert.is(io.HD_GEOMETRY_SIZE, 16);
});

test('decodeHdGeometry: heads, sectors (u8), cylinders (u16 LE at 2), start (unsigned long at 8)', () => {
  const b = Buffer.from('10 3f 08 02 ff ff ff ff 00 08 00 00 00 00 00 80'.replace(/ /g, ''), 'hex');
  assert.equal(io.decodeHdGeometry(b), { heads: 16, sectors: 63, cylinders: 520, start: 0x8000000000000800n });
  assert.equal(io.decodeHdGeometry(new Uint8Array(16)), { heads: 0, sectors: 0, cylinders: 0, start: 0n });
  // A view into a larger buffer decodes its own bytes.
  const big = Buffer.alloc(32, 0xee);
  big.fill(0, 8, 24);
  big[8] = 255;
  assert.equal(io.decodeHdGeometry(big.subarray(8, 24)), { heads: 255, sectors: 0, cylinders: 0, start: 0n });
  assert.throws(() => io.decodeHdGeometry(Buffer.alloc(15)), (e: unknown) => e instanceof KernelOutputError);
});

test.run();
