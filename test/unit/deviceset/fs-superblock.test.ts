// SPDX-License-Identifier: MIT
// The base device's filesystem UUID read from the superblock equals what `blkid -p` prints, for
// ext4 and xfs images made by the real mkfs on this host; realFsTools.uuid gets it without a child
// process (it works with an empty PATH) and asks blkid for anything else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { superblockUuid, readDeviceHead, SUPERBLOCK_HEAD_BYTES } from '../../../src/deviceset/fs-superblock.js';
import { realFsTools } from '../../../src/deviceset/fs-tools.js';

const dir = mkdtempSync(join(tmpdir(), 'devmapper-sb-'));
const PATH = process.env['PATH'] ?? '';

function image(name: string, mb: number, mkfs: string[]): string {
  const f = join(dir, name);
  execFileSync('truncate', ['-s', `${mb}M`, f]);
  execFileSync(mkfs[0]!, [...mkfs.slice(1), f], { stdio: 'ignore' });
  return f;
}

function blkid(f: string): string {
  return execFileSync('blkid', ['-p', '-s', 'UUID', '-o', 'value', f], { encoding: 'utf8', env: { ...process.env, PATH: `${PATH}:/usr/sbin:/sbin` } }).trim();
}

async function withoutPath<T>(fn: () => Promise<T>): Promise<T> {
  process.env['PATH'] = '/nonexistent-devmapper-test';
  try {
    return await fn();
  } finally {
    process.env['PATH'] = PATH;
  }
}

const sbin = (t: string): string => execFileSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${t}`], { encoding: 'utf8' }).trim();

test('ext4: the superblock UUID is blkid -p\'s, and realFsTools.uuid needs no child process', async () => {
  const f = image('e.img', 16, [sbin('mkfs.ext4'), '-q', '-F']);
  const want = blkid(f);
  assert.match(want, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const head = await readDeviceHead(f);
  assert.is(head.length, SUPERBLOCK_HEAD_BYTES);
  assert.is(superblockUuid(head), want);
  assert.is(await withoutPath(() => realFsTools.uuid(f)), want);
});

test('xfs: the superblock UUID is blkid -p\'s', async () => {
  const f = image('x.img', 320, [sbin('mkfs.xfs'), '-q', '-f']);
  const want = blkid(f);
  assert.is(superblockUuid(await readDeviceHead(f)), want);
  assert.is(await withoutPath(() => realFsTools.uuid(f)), want);
});

test('neither superblock, a short head or an all-zero UUID: null, and realFsTools.uuid asks blkid', async () => {
  assert.is(superblockUuid(Buffer.alloc(4096)), null);
  assert.is(superblockUuid(Buffer.alloc(100)), null);
  const ext4NoUuid = Buffer.alloc(4096);
  ext4NoUuid.writeUInt16LE(0xef53, 1024 + 0x38);
  assert.is(superblockUuid(ext4NoUuid), null);
  ext4NoUuid[1024 + 0x68] = 0xab;
  assert.is(superblockUuid(ext4NoUuid), 'ab000000-0000-0000-0000-000000000000');
  // A file with no filesystem: with no blkid on PATH the call fails (it tried the child process).
  const f = join(dir, 'zero.img');
  const fd = openSync(f, 'w');
  writeSync(fd, Buffer.alloc(8192));
  closeSync(fd);
  let err: unknown;
  await withoutPath(() => realFsTools.uuid(f)).catch((e: unknown) => (err = e));
  assert.ok(err instanceof Error, 'blkid was not asked');
  assert.match(String((err as Error & { code?: string }).code ?? err), /ENOENT|EEXTERNALTOOL/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
