// SPDX-License-Identifier: MIT
// Issue #20 on the real kernel, the two cases besides the writer the pool grows under
// (deviceset-autoextend.test.ts):
// - autoextend off: a writer fills an 8 MiB loop pool; the pool enters out_of_data_space
//   (queue_if_no_space, the default, holds the writes), a PoolMonitor reports it, a manual
//   resizePool resumes the queued writes: dd exits 0, the sha256 read back matches, thin_check is
//   clean.
// - metadata growth: the metadata file (2 MiB, the smallest the options take: 512 blocks) crosses
//   the kernel's metadata threshold, the PoolMonitor reports `metadataLow` and the Autoextender
//   grows the metadata file by its step; the pool takes the new size (dm-thin.c
//   maybe_resize_metadata_dev() on the reload's resume); thin_check is clean; the extension,
//   kept in the deviceset record, is what status() shows after a restart.
//   What eats the metadata: the data space map's bitmaps. dm-space-map-common.c sm_ll_extend()
//   allocates one 4 KiB metadata block per 16320 data blocks ((4096 − 16-byte header) × 4 two-bit
//   entries) when the data device grows, so one resizePool crosses the threshold. Many small thin
//   snapshots do the same only slowly: a snapshot costs ~1/100 block until it is written, and one
//   written block of a snapshot copies one btree leaf, so crossing 384 of 512 blocks would take
//   ~370 snapshot-activate-write-remove rounds (minutes under TCG); the FakeKernel test covers
//   the Autoextender's side of a metadataLow from any cause.
// Both run in this process (the writer is one dd child).
import * as assert from 'uvu/assert';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceSet } from '../../src/deviceset/index.js';
import type { AutoextendExtension } from '../../src/deviceset/autoextend.js';
import { PoolMonitor } from '../../src/thin/index.js';
import { ddAsync, randomFile, sha256, thinCheck } from '../helpers/autoextend-io.js';
import { autoextendRoots, json, poolStatus, tableSectors, within } from '../helpers/autoextend-roots.js';
import { privilegedSuite, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('deviceset autoextend off, metadata growth (real kernel)'));
const MiB = 1024 * 1024;
// The smallest sizes that show every claim: the file runs in two CI cells under TCG, where
// writing, hashing and reading back each MiB costs about a second under load.
const BASE = ['dm.loopdatasize=8M', 'dm.loopmetadatasize=4M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
const { newRoot, it } = autoextendRoots(test, 'autoextend-off', 'aeo');

it('autoextend off: out_of_data_space queues the writes, the monitor reports it, a manual resizePool resumes them, data intact', async () => {
  const root = newRoot('off');
  const set = await DeviceSet.init(root, { options: BASE, log: () => undefined });
  let monitor: PoolMonitor | undefined;
  let down = false;
  try {
    const pool = set.poolName;
    const t0 = Date.now();
    const phase = (what: string): void => console.log(`  [autoextend-off]   +${Date.now() - t0} ms ${what}`);
    assert.is(set.autoextender.status().state, 'off');
    await set.addDevice('box', '');
    const mp = join(root, 'mnt-box');
    mkdirSync(mp, { recursive: true });
    await set.mountDevice('box', mp);
    // 10 MiB through an 8 MiB pool (128 blocks of 64 KiB, some of them the base's ext4).
    const src = randomFile(10);
    const want = await sha256(src);
    phase('mounted, source ready');

    monitor = new PoolMonitor([pool]);
    const events: string[] = [];
    monitor.on('modeChange', (e) => events.push(`modeChange ${e.from}->${e.to}`));
    monitor.on('error', (e, p) => events.push(`error ${p} ${e.message}`));
    monitor.on('readingSkipped', (e) => events.push(`readingSkipped table ${e.tableDataBlocks}/status ${e.statusDataBlocks}`));
    const dry = new Promise<string>((resolve) => monitor!.once('outOfDataSpace', (e) => resolve(`${e.status.mode} ${e.status.noSpacePolicy} ${e.status.usedDataBlocks}/${e.status.totalDataBlocks}`)));
    await monitor.ready;
    const dd = ddAsync(src, join(mp, 'data.bin'));
    // Guards as in the metadata test below (a run in the udev cell hung here once, before 'dry').
    const diag = (): string =>
      `monitor: ${events.join('; ') || 'nothing'} (${monitor?.mechanism}, closed ${monitor?.closed}, last state ${json(monitor?.state(pool) ?? null)}); pool: ${poolStatus(pool).words.join(' ')}`;
    assert.is(await within(dry, 180_000, "the monitor's outOfDataSpace", diag), 'out_of_data_space queue_if_no_space 128/128');
    phase('dry');
    assert.is(poolStatus(pool).mode, 'out_of_data_space');
    const back = new Promise<void>((resolve) => monitor!.on('modeChange', (e) => e.to === 'rw' && resolve()));
    await within(set.resizePool('16M'), 180_000, 'resizePool', diag);
    await within(back, 180_000, "the monitor's modeChange to rw", diag);
    const r = await within(dd.done, 180_000, 'dd', diag);
    phase('resumed, dd done');
    assert.is(r.status, 0, `dd: ${r.stderr}`);
    assert.is(r.stderr, '', 'no ENOSPC: the writes were queued, then completed');
    assert.is(tableSectors(pool), (16 * MiB) / 512);
    assert.is(poolStatus(pool).mode, 'rw');
    assert.equal(events.filter((e) => e.startsWith('modeChange')).slice(0, 2), ['modeChange rw->out_of_data_space', 'modeChange out_of_data_space->rw']);
    assert.equal((await set.status()).autoextend.lastExtension, null, 'a manual resize is no extension');
    await monitor.close();
    monitor = undefined;
    // Read back from the device, not the page cache: unmount and mount again.
    await set.unmountDevice('box', mp);
    await set.mountDevice('box', mp);
    assert.is(await sha256(join(mp, 'data.bin')), want);
    await set.unmountDevice('box', mp);
    phase('read back');
    await set.shutdown();
    down = true;
    thinCheck(root);
    phase('thin_check');
  } finally {
    if (monitor) await within(monitor.close(), 60_000, 'monitor.close after a failure', () => '').catch((e: unknown) => console.log(`  [autoextend-off] ${String(e)}`));
    if (!down) await within(set.shutdown(), 60_000, 'shutdown after a failure', () => '').catch((e: unknown) => console.log(`  [autoextend-off] ${String(e)}`));
  }
});

/** Data blocks one metadata bitmap block of the data space map covers (dm-space-map-common.c: (4096 − 16) × 4). */
const ENTRIES_PER_BITMAP = 16320;

it('metadata growth: the metadata file crosses the kernel threshold, metadataLow, the Autoextender grows it; thin_check clean; status() shows it after a restart', async () => {
  const root = newRoot('meta');
  const opts = ['dm.loopdatasize=32M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%', 'dm.autoextend_threshold=80%', 'dm.autoextend_percent=50%'];
  const logs: string[] = [];
  let set = await DeviceSet.init(root, { options: opts, log: (l, m) => void logs.push(`${l}: ${m}`) });
  let down = false;
  try {
    const pool = set.poolName;
    assert.is(set.autoextender.status().state, 'watching');
    const before = poolStatus(pool);
    assert.is(before.meta[1], 512, '2 MiB of 4 KiB metadata blocks');
    // calc_metadata_threshold(): min(1024, 512 / 4) = 128 free blocks (status field 9 where printed).
    const threshold = 128;
    const grown = new Promise<AutoextendExtension>((resolve) => set.autoextender.once('extended', resolve));
    const lows: string[] = [];
    const seen: string[] = [];
    const m = set.autoextender.monitor!;
    m.on('metadataLow', (e) => {
      lows.push(`${e.freeMetadataBlocks}<=${e.threshold}`);
      seen.push(`metadataLow ${e.status.kind === 'working' ? `meta ${e.status.usedMetadataBlocks}/${e.status.totalMetadataBlocks} data ${e.status.usedDataBlocks}/${e.status.totalDataBlocks}` : e.status.kind}`);
    });
    m.on('lowWater', (e) => seen.push(`lowWater free ${e.freeDataBlocks} <= mark ${e.lowWaterMark}`));
    const skips: string[] = [];
    m.on('readingSkipped', (e) => skips.push(`table ${e.tableDataBlocks}/status ${e.statusDataBlocks}`));
    // Enough new bitmaps to leave 16 blocks fewer free than the threshold.
    const bitmapsNow = Math.ceil(before.data[1] / ENTRIES_PER_BITMAP);
    const extra = before.meta[1] - before.meta[0] - threshold + 16;
    const dataBlocks = (bitmapsNow + extra) * ENTRIES_PER_BITMAP;
    // Guards (3 min against seconds): a run in the udev cell of 2026-12-07 hung in this test
    // (once in three runs; the cell held its VM until killed), with no output to tell where.
    const diag = (): string => `monitor: ${seen.join('; ') || 'nothing'} (skipped readings: ${skips.join(', ') || 'none'}); autoextender: ${json(set.autoextender.status())}; pool: ${poolStatus(pool).words.join(' ')}; log: ${logs.join(' | ')}`;
    await within(set.resizePool(BigInt(dataBlocks) * set.options.blockSize), 180_000, 'resizePool', diag);
    const ext = await within(grown, 180_000, "the Autoextender's 'extended'", diag);
    const after = poolStatus(pool);
    console.log(`  [autoextend-off] metadata ${before.meta[0]}/${before.meta[1]} -> ${after.meta[0]}/${after.meta[1]} blocks (data ${before.data[1]} -> ${after.data[1]} blocks); monitor: ${seen.join('; ')}; skipped readings: ${skips.length}; grown on ${ext.trigger}`);
    assert.equal([ext.what, ext.from, ext.to], ['metadata', 2n * BigInt(MiB), 3n * BigInt(MiB)], logs.join(' | '));
    // The grow answers whichever condition the monitor judged first: metadataLow (most runs), or
    // once seen on 6.1, a lowWater from a reading taken while the resize's reload was in flight
    // (the new table's mark, 20 % of 5.5 M blocks, against the free count of the pool before its
    // data space map grew). Either check finds the metadata over the threshold. The kernel raises
    // no event for this crossing: the guest's log of every run we read has no "reached low water
    // mark for metadata device" line (dm-thin.c metadata_low_callback()), and the pool's event
    // counter stayed 0. What finds it is the reading woken by the reload's table swap
    // (dm_swap_table() → dm_issue_global_event()) or, when that reading was mixed and skipped, the
    // monitor's re-read 100 ms later: without the re-read this test hung (1 run in 9–11 in a loop
    // under load, 2026-12-07).
    assert.ok(ext.trigger === 'metadataLow' || ext.trigger === 'lowWater', ext.trigger);
    assert.is(lows.length, 1, `one metadataLow: ${lows.join(', ')}`);
    assert.is(after.meta[1], 768, 'the pool took 3 MiB of metadata');
    assert.is(after.data[1], dataBlocks);
    assert.ok(after.meta[0] >= 512 - threshold, `${after.meta[0]} used: over the old threshold`);
    assert.is(after.mode, 'rw');
    assert.is(statSync(join(root, 'devicemapper', 'metadata')).size, 3 * MiB);
    const st = (await set.status()).autoextend;
    assert.equal([st.state, st.message, st.extensions, st.lastExtension], ['watching', null, 1, ext]);
    await set.shutdown();
    down = true;
    thinCheck(root);

    // A new process: the pool is built again from the files (3 MiB of metadata), and status()
    // shows the extension the deviceset record kept.
    set = await DeviceSet.init(root, { options: opts, autoextend: { watch: false }, log: (l, m) => void logs.push(`${l}: ${m}`) });
    down = false;
    assert.is(poolStatus(set.poolName).meta[1], 768);
    const again = (await set.status()).autoextend;
    assert.equal([again.lastExtension, again.extensions], [ext, 0]);
    await set.shutdown();
    down = true;
  } finally {
    if (!down) await within(set.shutdown(), 60_000, 'shutdown after a failure', () => logs.join(' | ')).catch((e: unknown) => console.log(`  [autoextend-off] ${String(e)}`));
  }
});

test.run();
