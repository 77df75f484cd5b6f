// SPDX-License-Identifier: MIT
// ensureSparseFile beyond what the host file system can hold (d10): a typed error, not Node's raw
// EFBIG, and a file the call created is not left behind. Needs an ext2/3/4 directory, where
// s_maxbytes with 4K blocks is 16T (fs/ext4/super.c ext4_max_size); /tmp on the build host is one,
// and so is the package directory usually.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSparseFile } from '../../../src/loop/sparse.js';
import { SparseFileTooLargeError } from '../../../src/loop/errors.js';

/** EXT4_SUPER_MAGIC (include/uapi/linux/magic.h; ext2 and ext3 share it). */
const EXT4_SUPER_MAGIC = 0xef53;
const candidates = [tmpdir(), process.cwd()];
const base = candidates.find((d) => statfsSync(d).type === EXT4_SUPER_MAGIC);
const TOO_LARGE = 2n ** 53n - 512n; // 8P − 512: past ext4's 16T, within Node's safe integers

test('EFBIG from ftruncate is SparseFileTooLargeError; a file the call made is removed, an existing one kept', async () => {
  if (base === undefined) {
    console.log(`  (skipped: none of ${candidates.join(', ')} is on ext2/3/4)`);
    return;
  }
  const dir = mkdtempSync(join(base, 'devmapper-sparse-big-'));
  try {
    const fresh = join(dir, 'data');
    const err = await ensureSparseFile(fresh, TOO_LARGE).then(
      () => assert.unreachable('ext4 cannot hold an 8P file'),
      (e: unknown) => e,
    );
    assert.instance(err, SparseFileTooLargeError);
    const e = err as SparseFileTooLargeError;
    assert.is(e.code, 'ESPARSETOOLARGE');
    assert.is(e.path, fresh);
    assert.is(e.requestedSize, TOO_LARGE);
    assert.is((e.cause as { code?: string }).code, 'EFBIG');
    assert.is(existsSync(fresh), false);

    const existing = join(dir, 'old');
    writeFileSync(existing, 'x');
    await ensureSparseFile(existing, TOO_LARGE).then(
      () => assert.unreachable(),
      (x: unknown) => assert.instance(x, SparseFileTooLargeError),
    );
    assert.is(statSync(existing).size, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
