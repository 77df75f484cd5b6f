// SPDX-License-Identifier: MIT
// Autoextend on the real kernel (issue #20 part 2). A DeviceSet on a 32 MiB loop pool with
// dm.autoextend_threshold: a device's mounted ext4 takes 96 MiB of random data written with
// `dd oflag=direct conv=fsync`; dd exits 0, the sha256 read back matches, the pool grew in steps
// (each step's `dmsetup table` length is the grown file's), thin_check is clean. dd runs as an
// asynchronous child: the monitor and the grow run in this process, whose event-loop lag during
// the write is measured and printed (bench/lib/lag.ts), not asserted: timed assertions are not
// allowed in tests; the bench's "low-water event → resumed pool" row carries the figures. The
// pool without autoextend (out_of_data_space, a manual resizePool) and the metadata growth are in
// deviceset-autoextend-off.test.ts.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceSet } from '../../src/deviceset/index.js';
import type { AutoextendExtension } from '../../src/deviceset/autoextend.js';
import { prefixFor } from '../../src/deviceset/hash.js';
import { startLagProbe } from '../../bench/lib/lag.js';
import { ddAsync, randomFile, sha256, thinCheck } from '../helpers/autoextend-io.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('deviceset autoextend (real kernel)'));
const MiB = 1024 * 1024;
// Sizes: the smallest that still show every claim (three grows at least, a dry pool), since the
// file runs in three CI cells under TCG (a 64 MiB pool and 192 MiB of data took ~5 min per cell).
const BASE = ['dm.loopdatasize=32M', 'dm.loopmetadatasize=16M', 'dm.basesize=128M', 'dm.min_free_space=0%'];
const AUTO = [...BASE, 'dm.autoextend_threshold=70%', 'dm.autoextend_percent=50%'];
const roots: string[] = [];
let n = 0;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

function newRoot(tag: string): string {
  const root = join(testTmpDir(), `ae-${tag}-${++n}`);
  roots.push(root);
  return root;
}

/** Unmounts anything under root and removes every dm device of its prefix (pool last): our dm names carry no test marker. */
function cleanupRoot(root: string): void {
  if (!existsSync(root)) return;
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const mp = line.split(' ')[1];
    if (mp && mp.startsWith(root + '/')) spawnSync('umount', ['-l', mp]);
  }
  const st = statSync(root, { bigint: true });
  const prefix = prefixFor({ dev: st.dev, ino: st.ino });
  const out = sh('dmsetup', ['ls']);
  const mine = /No devices found/i.test(out) ? [] : out.split('\n').map((l) => l.split('\t')[0]?.trim() ?? '').filter((d) => d.startsWith(`${prefix}-`));
  for (const d of [...mine.filter((x) => !x.endsWith('-pool')), ...mine.filter((x) => x.endsWith('-pool'))]) spawnSync('dmsetup', ['remove', '--force', '--retry', d]);
}

const it = (name: string, fn: () => Promise<void>): void => {
  test(name, async () => {
    const mine = roots.length;
    try {
      await fn();
    } catch (err) {
      console.log(`  [autoextend] FAILED ${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      throw err;
    } finally {
      for (const r of roots.slice(mine)) cleanupRoot(r);
    }
  });
};

/** `dmsetup table NAME`'s length in sectors (field 2). */
function tableSectors(name: string): number {
  return Number(sh('dmsetup', ['table', name]).trim().split(/\s+/)[1]);
}

/** `dmsetup status NAME`'s thin-pool mode (field 8: after `<start> <length> thin-pool <txid> <meta> <data> <held>`). */
function poolMode(name: string): string {
  return sh('dmsetup', ['status', name]).trim().split(/\s+/)[7] ?? '';
}

it('autoextend on: 96 MiB through a 32 MiB pool; dd exits 0, sha256 matches, the pool grew in steps, thin_check clean', async () => {
  const root = newRoot('on');
  const logs: string[] = [];
  const set = await DeviceSet.init(root, { options: AUTO, log: (l, m) => void logs.push(`${l}: ${m}`) });
  let down = false;
  try {
    const pool = set.poolName;
    assert.is(tableSectors(pool), (32 * MiB) / 512);
    // floor(512 × 30 / 100) = 153: the kernel's own table says so.
    assert.is(sh('dmsetup', ['table', pool]).trim().split(/\s+/)[6], '153');
    assert.is(set.autoextender.status().state, 'watching');
    const steps: { ext: AutoextendExtension; table: number }[] = [];
    set.autoextender.on('extended', (ext) => steps.push({ ext, table: tableSectors(pool) }));
    const failures: string[] = [];
    set.autoextender.on('extendFailed', (e) => failures.push(e.message));
    set.autoextender.on('hostFull', (e) => failures.push(e.message));
    set.autoextender.on('ceiling', (e) => failures.push(e.message));

    await set.addDevice('box', '');
    const mp = join(root, 'mnt-box');
    mkdirSync(mp, { recursive: true });
    await set.mountDevice('box', mp);
    const src = randomFile(96);
    const want = await sha256(src);
    const probe = startLagProbe();
    const r = await ddAsync(src, join(mp, 'data.bin')).done;
    const lag = probe.stop();
    console.log(`  [autoextend] event-loop lag during the write (${steps.length} grows): worst ${lag.worstMs.toFixed(1)} ms, p99 ${lag.p99Ms.toFixed(1)} ms, median ${lag.medianMs.toFixed(2)} ms over ${lag.ticks} ticks`);
    assert.is(r.status, 0, `dd: ${r.stderr}`);
    assert.is(r.stderr, '', 'no ENOSPC or other complaint from dd');
    assert.equal(failures, []);
    // Read back from the device, not the page cache: unmount and mount again.
    await set.unmountDevice('box', mp);
    await set.mountDevice('box', mp);
    assert.is(await sha256(join(mp, 'data.bin')), want);
    await set.unmountDevice('box', mp);

    // In steps of 50 %, each one the table's new length when it was announced.
    console.log(`  [autoextend] grew ${steps.map((x) => `${Number(x.ext.from) / MiB}M→${Number(x.ext.to) / MiB}M (${x.ext.trigger})`).join(', ')}`);
    assert.ok(steps.length >= 3, `grew ${steps.length} times: ${logs.join(' | ')}`);
    let size = 32 * MiB;
    for (const s of steps) {
      assert.is(s.ext.what, 'data');
      assert.is(Number(s.ext.from), size);
      assert.is(Number(s.ext.to), size * 1.5);
      assert.is(s.table, (size * 1.5) / 512, 'dmsetup table length at the step');
      size *= 1.5;
    }
    assert.is(statSync(join(root, 'devicemapper', 'data')).size, size);
    assert.is(tableSectors(pool), size / 512);
    assert.is(poolMode(pool), 'rw');
    const st = (await set.status()).autoextend;
    assert.equal([st.state, st.message, st.extensions], ['watching', null, steps.length]);
    await set.shutdown();
    down = true;
    thinCheck(root);
  } finally {
    if (!down) await set.shutdown().catch(() => undefined);
  }
});

test.run();
