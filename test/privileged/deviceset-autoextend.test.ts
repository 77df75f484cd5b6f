// SPDX-License-Identifier: MIT
// Autoextend on the real kernel (issue #20 part 2). A DeviceSet on a 64 MiB loop pool with
// dm.autoextend_threshold: a device's mounted ext4 takes 512 MiB of random data written with
// `dd oflag=direct conv=fsync`; dd exits 0, the sha256 read back matches, the pool grew in steps
// (each step's length, read from sysfs when the grow is announced, is the grown file's),
// thin_check is clean. dd runs as an asynchronous child: the monitor and the grow run in this
// process, whose event-loop lag during the write is measured and printed (bench/lib/lag.ts) with
// its late ticks beside the grows, not asserted: timed assertions are not allowed in tests, and
// under TCG the guest's own CPU starvation exceeds the issue's 10 ms with no grow at all
// (bench/autoextend-lag.ts, docs/deviceset.md "Autoextend and the event loop"). The pool without
// autoextend (out_of_data_space, a manual resizePool) and the metadata growth are in
// deviceset-autoextend-off.test.ts.
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceSet } from '../../src/deviceset/index.js';
import type { AutoextendExtension } from '../../src/deviceset/autoextend.js';
import { startLagProbe } from '../../bench/lib/lag.js';
import { ddAsync, randomFile, sha256, thinCheck } from '../helpers/autoextend-io.js';
import { autoextendRoots, json, poolStatus, sh, tableSectors, within } from '../helpers/autoextend-roots.js';
import { privilegedSuite, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('deviceset autoextend (real kernel)'));
const MiB = 1024 * 1024;
// Sizes: the issue's (a 64 MiB pool, 512 MiB written: seven grows, 64 → 1093.5 MiB) with
// DEVMAPPER_TEST_AUTOEXTEND=issue, which CI's first cell sets (scripts/test-all.sh; ~2 min of
// guest time on a lightly loaded host: the source file and its sha256 58 s, the write 19 s, the
// read back 51 s; 634 s once on a host at load 15). Without it, 96 MiB through a 32 MiB pool
// (four grows; ~25 s), the smallest that still shows every claim, for the other cells and ad-hoc
// runs. run-privileged.js passes every DEVMAPPER_TEST_* variable to the guest:
//   DEVMAPPER_TEST_AUTOEXTEND=issue node dist/test/vm/run-privileged.js --files '^deviceset-autoextend\.test\.js$'
const ISSUE_SIZES = process.env['DEVMAPPER_TEST_AUTOEXTEND'] === 'issue';
const POOL_MB = ISSUE_SIZES ? 64 : 32;
const DATA_MB = ISSUE_SIZES ? 512 : 96;
// The filesystem's size: the data plus ext4's own (journal, inode tables, bitmaps) with room to
// spare. `DATA_MB + 32` left 512 MiB of data a few MiB short (dd: ENOSPC from ext4, not the pool).
const FS_MB = DATA_MB + 32 + DATA_MB / 8;
const BASE = [`dm.loopdatasize=${POOL_MB}M`, 'dm.loopmetadatasize=16M', `dm.basesize=${FS_MB}M`, 'dm.min_free_space=0%'];
const AUTO = [...BASE, 'dm.autoextend_threshold=70%', 'dm.autoextend_percent=50%'];
const { newRoot, it } = autoextendRoots(test, 'autoextend', 'ae');

it(`autoextend on: ${DATA_MB} MiB through a ${POOL_MB} MiB pool; dd exits 0, sha256 matches, the pool grew in steps, thin_check clean`, async () => {
  const root = newRoot('on');
  const logs: string[] = [];
  const set = await DeviceSet.init(root, { options: AUTO, log: (l, m) => void logs.push(`${l}: ${m}`) });
  let down = false;
  try {
    const pool = set.poolName;
    assert.is(tableSectors(pool), (POOL_MB * MiB) / 512);
    // floor(blocks × 30 / 100), blocks of 64 KiB: the kernel's own table says so.
    assert.is(sh('dmsetup', ['table', pool]).trim().split(/\s+/)[6], String(Math.floor((POOL_MB * 16 * 30) / 100)));
    assert.is(set.autoextender.status().state, 'watching');
    // The pool device's size in sectors when each grow is announced, read from sysfs (the live
    // table's length: dm.c __bind() → set_capacity()): a read of kernel memory, not a spawn. The
    // `dmsetup table` this test ran here before blocked the event loop 0.5–1.5 s per grow under
    // TCG (execFileSync), and was the lag this file printed (docs/deviceset.md, Autoextend).
    const [major, minor] = sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'major,minor', pool]).trim().split(':');
    const sysfsSize = `/sys/dev/block/${major}:${minor}/size`;
    const steps: { ext: AutoextendExtension; table: number; at: number }[] = [];
    set.autoextender.on('extended', (ext) => steps.push({ ext, table: Number(readFileSync(sysfsSize, 'utf8').trim()), at: performance.now() }));
    const failures: string[] = [];
    set.autoextender.on('extendFailed', (e) => failures.push(e.message));
    set.autoextender.on('hostFull', (e) => failures.push(e.message));
    set.autoextender.on('ceiling', (e) => failures.push(e.message));

    await set.addDevice('box', '');
    const mp = join(root, 'mnt-box');
    mkdirSync(mp, { recursive: true });
    await set.mountDevice('box', mp);
    const t0 = performance.now();
    const src = randomFile(DATA_MB);
    const want = await sha256(src);
    const t1 = performance.now();
    const probe = startLagProbe();
    // A guard, not a speed check (the write took 19 s idle, 634 s once at load 15): a write that
    // never ends fails with the pool's and the Autoextender's state and the hang's evidence.
    const diag = (): string => `grows: ${steps.length}; autoextender: ${json(set.autoextender.status())}; pool: ${poolStatus(pool).words.join(' ')}; log: ${logs.join(' | ')}`;
    const r = await within(ddAsync(src, join(mp, 'data.bin')).done, 25 * 60_000, 'dd through the growing pool', diag);
    const lag = probe.stop();
    const t2 = performance.now();
    console.log(`  [autoextend] event-loop lag during the write (${steps.length} grows): worst ${lag.worstMs.toFixed(1)} ms, p99 ${lag.p99Ms.toFixed(1)} ms, median ${lag.medianMs.toFixed(2)} ms over ${lag.ticks} ticks`);
    // Where the late ticks were, against the grows' ends: bench/autoextend-lag.ts has the control runs.
    const rel = (t: number): string => `+${((t - t1) / 1000).toFixed(2)}s`;
    console.log(`  [autoextend] late ticks: ${lag.spikes.map((x) => `${x.lagMs.toFixed(0)} ms at ${rel(x.atMs)}`).join(', ')}; grows done at ${steps.map((x) => rel(x.at)).join(', ')}`);
    assert.is(r.status, 0, `dd: ${r.stderr}`);
    assert.is(r.stderr, '', 'no ENOSPC or other complaint from dd');
    assert.equal(failures, []);
    // Read back from the device, not the page cache: unmount and mount again.
    await set.unmountDevice('box', mp);
    await set.mountDevice('box', mp);
    assert.is(await sha256(join(mp, 'data.bin')), want);
    await set.unmountDevice('box', mp);
    const t3 = performance.now();

    // In steps of 50 %, each one the table's new length when it was announced.
    console.log(`  [autoextend] grew ${steps.map((x) => `${Number(x.ext.from) / MiB}M→${Number(x.ext.to) / MiB}M (${x.ext.trigger})`).join(', ')}`);
    assert.ok(steps.length >= 3, `grew ${steps.length} times: ${logs.join(' | ')}`);
    let size = POOL_MB * MiB;
    for (const s of steps) {
      assert.is(s.ext.what, 'data');
      assert.is(Number(s.ext.from), size);
      assert.is(Number(s.ext.to), size * 1.5);
      assert.is(s.table, (size * 1.5) / 512, 'dmsetup table length at the step');
      size *= 1.5;
    }
    assert.is(statSync(join(root, 'devicemapper', 'data')).size, size);
    assert.is(tableSectors(pool), size / 512);
    assert.is(poolStatus(pool).mode, 'rw');
    const st = (await set.status()).autoextend;
    assert.equal([st.state, st.message, st.extensions], ['watching', null, steps.length]);
    await set.shutdown();
    down = true;
    thinCheck(root);
    const s = (a: number, b: number): string => ((b - a) / 1000).toFixed(1);
    console.log(`  [autoextend] seconds: source file and its sha256 ${s(t0, t1)}, the write ${s(t1, t2)}, read back ${s(t2, t3)}, checks, shutdown and thin_check ${s(t3, performance.now())}`);
  } finally {
    if (!down) await set.shutdown().catch(() => undefined);
  }
});

test.run();
