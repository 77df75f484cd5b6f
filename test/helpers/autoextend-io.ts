// SPDX-License-Identifier: MIT
// The I/O of the autoextend privileged tests (deviceset-autoextend*.test.ts): random source files,
// an asynchronous dd writer, a streamed sha256 and thin_check of a root's metadata file.
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { run } from './loop-files.js';
import { testTmpDir } from './privileged.js';

let n = 0;

/** sha256 of a file or block device, streamed. */
export async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** `dd` as an asynchronous child (this process must stay free to grow the pool); resolves with its exit status and stderr. */
export function ddAsync(src: string, dst: string): { done: Promise<{ status: number | null; stderr: string }> } {
  const child = spawn('dd', [`if=${src}`, `of=${dst}`, 'bs=1M', 'oflag=direct', 'conv=fsync', 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    done: new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stderr }));
    }),
  };
}

/** thin_check of the metadata file through a read-only loop (thin-provisioning-tools open with O_DIRECT, which tmpfs refuses). */
export function thinCheck(root: string): void {
  const meta = run('losetup', ['--find', '--show', '--read-only', join(root, 'devicemapper', 'metadata')]).trim();
  try {
    const r = spawnSync('thin_check', [meta], { encoding: 'utf8' });
    assert.is(r.status, 0, `thin_check: ${r.stdout}${r.stderr}`);
  } finally {
    spawnSync('losetup', ['-d', meta]);
  }
}

/** A file of `mb` MiB of random bytes under the run's temp dir. */
export function randomFile(mb: number): string {
  const f = join(testTmpDir(), `random-${mb}M-${++n}.bin`);
  run('dd', ['if=/dev/urandom', `of=${f}`, 'bs=1M', `count=${mb}`, 'status=none']);
  return f;
}
