// SPDX-License-Identifier: MIT
// Block-device primitives of the thin layer: superblock classification and the real node:fs
// implementation's refusals (files are never accepted as devices).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../../src/errors.js';
import { THIN_SUPERBLOCK_MAGIC, classifyMetadataHead, realBlockDevices } from '../../../src/thin/index.js';
import { thinSuperblockHead } from './fake-dm.js';

test('classifyMetadataHead: blank, thin superblock (with block size), anything else', () => {
  assert.equal(classifyMetadataHead(Buffer.alloc(4096)), { kind: 'blank' });
  assert.equal(classifyMetadataHead(thinSuperblockHead(256)), { kind: 'thin', dataBlockSize: 256 });
  const ext4ish = Buffer.alloc(4096);
  ext4ish.writeUInt16LE(0xef53, 1024 + 56);
  assert.equal(classifyMetadataHead(ext4ish), { kind: 'other' });
  assert.is(THIN_SUPERBLOCK_MAGIC, 27022010n);
});

test('inspect refuses regular files, character devices, relative paths and unknown maj:min', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-bd-'));
  try {
    const file = join(dir, 'data.img');
    writeFileSync(file, Buffer.alloc(8192));
    for (const ref of [file, '/dev/null', 'relative/dev', join(dir, 'missing'), '4095:1048575']) {
      try {
        await realBlockDevices.inspect(ref);
        assert.unreachable(`accepted ${ref}`);
      } catch (err) {
        assert.instance(err, InvalidArgumentError, `${ref}: ${String(err)}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readHead / zeroHead read and zero exactly the first bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'thin-bd-'));
  try {
    const file = join(dir, 'meta.img');
    writeFileSync(file, Buffer.alloc(8192, 0xab));
    assert.ok((await realBlockDevices.readHead(file, 4096)).every((b) => b === 0xab));
    await realBlockDevices.zeroHead(file, 4096);
    const after = readFileSync(file);
    assert.ok(after.subarray(0, 4096).every((b) => b === 0));
    assert.ok(after.subarray(4096).every((b) => b === 0xab));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
