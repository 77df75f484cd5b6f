// SPDX-License-Identifier: MIT
// PoolMonitor against the real dm-thin target: a pool on small loop devices with a low water
// mark; dd through a thin device crosses the mark (lowWater), then runs the pool dry
// (error_if_no_space: the write fails instead of queueing → outOfDataSpace + modeChange), then the
// data file grows, LOOP_SET_CAPACITY (LoopControl.setCapacity) and a table reload + resume bring
// the pool back (modeChange → rw). Each state is also checked with `dmsetup status`. No timing.
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { DmControl } from '../../src/dm/index.js';
import { LoopControl } from '../../src/loop/index.js';
import { PoolMonitor, ThinDevice, ThinPool, type PoolMonitorEvents } from '../../src/thin/index.js';
import { makeLoop, run } from '../helpers/loop-files.js';
import { privilegedSuite, testName, withSweep } from '../helpers/privileged.js';

const MiB = 1024 * 1024;
const test = withSweep(privilegedSuite('pool-monitor'));



/** `dmsetup status NAME`'s thin-pool words after `<start> <length> thin-pool`. */
function dmsetupStatus(name: string): string[] {
  return run('dmsetup', ['status', name]).trim().split(/\s+/).slice(3);
}

/** dd of `count` MiB of zeros at MiB offset `seek`, direct and synced; its exit status. */
function dd(path: string, seek: number, count: number): number | null {
  const r = spawnSync('dd', ['if=/dev/zero', `of=${path}`, 'bs=1M', `count=${count}`, `seek=${seek}`, 'oflag=direct', 'conv=fsync,notrunc', 'status=none'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return r.status;
}

/** This process's fds open on the dm control node. */
function controlFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === '/dev/mapper/control') n++;
    } catch {
      // the fd of the readdir itself is gone by now
    }
  }
  return n;
}

function next<K extends keyof PoolMonitorEvents>(m: PoolMonitor, name: K): Promise<PoolMonitorEvents[K]> {
  return new Promise((resolve) => m.once(name, ((...args: PoolMonitorEvents[K]) => resolve(args)) as never));
}

test('lowWater on crossing the mark, outOfDataSpace/modeChange when dry, modeChange back to rw after a grow', async () => {
  const dm = new DmControl();
  const loops = new LoopControl();
  const meta = makeLoop('meta', 16 * MiB);
  const data = makeLoop('data', 32 * MiB); // 512 blocks of 64 KiB
  let pool: ThinPool | undefined;
  let thin: ThinDevice | undefined;
  let monitor: PoolMonitor | undefined;
  try {
    pool = await ThinPool.create(dm, {
      name: testName('mpool'),
      metadataDev: meta.dev,
      dataDev: data.dev,
      dataBlockSize: 128,
      lowWaterMark: 64, // 4 MiB
      features: { errorIfNoSpace: true },
      metadata: 'new',
      zeroMetadata: true,
    });
    thin = await ThinDevice.create(pool, 1);
    await thin.activate(testName('mthin'), BigInt((64 * MiB) / 512));
    const path = thin.path as string;

    const fdsBefore = controlFds();
    monitor = new PoolMonitor([pool.name]);
    const events: string[] = [];
    monitor.on('lowWater', (e) => events.push(`lowWater mark=${e.lowWaterMark}`));
    monitor.on('modeChange', (e) => events.push(`modeChange ${e.from}->${e.to}`));
    monitor.on('outOfDataSpace', (e) => events.push(`outOfDataSpace ${e.status.mode}`));
    monitor.on('error', (e, p) => events.push(`error ${p} ${e.message}`));
    await monitor.ready;
    assert.is(monitor.mechanism, 'arm-poll');
    assert.is(controlFds(), fdsBefore + 1, 'the monitor holds its own control fd');
    assert.is(monitor.state(pool.name)?.mode, 'rw');

    // 24 MiB = 384 blocks: 128 free, above the mark.
    assert.is(dd(path, 0, 24), 0);
    assert.equal(dmsetupStatus(pool.name).slice(2, 5), ['384/512', '-', 'rw']);
    // 6 MiB more = 480 used, 32 free <= 64: check_low_water_mark raises the event.
    const low = next(monitor, 'lowWater');
    assert.is(dd(path, 24, 6), 0);
    const [lw] = await low;
    assert.is(lw.pool, pool.name);
    assert.is(lw.lowWaterMark, 64n);
    assert.is(lw.status.totalDataBlocks, 512n);
    assert.is(lw.freeDataBlocks, lw.status.totalDataBlocks - lw.status.usedDataBlocks);
    assert.ok(lw.freeDataBlocks <= 64n, `free ${lw.freeDataBlocks} at the event`);
    assert.equal(dmsetupStatus(pool.name).slice(2, 5), ['480/512', '-', 'rw']);

    // 8 MiB more needs 128 blocks, 32 are left: error_if_no_space fails the write.
    const dry = next(monitor, 'outOfDataSpace');
    const toDry = next(monitor, 'modeChange');
    assert.is.not(dd(path, 30, 8), 0, 'writing past the pool must fail');
    const [ood] = await dry;
    const [mc1] = await toDry;
    assert.is(ood.status.mode, 'out_of_data_space');
    assert.is(ood.status.usedDataBlocks, 512n);
    assert.equal([mc1.from, mc1.to], ['rw', 'out_of_data_space']);
    const dryStatus = dmsetupStatus(pool.name);
    assert.equal(dryStatus.slice(2, 5), ['512/512', '-', 'out_of_data_space']);
    assert.is(dryStatus[6], 'error_if_no_space');

    // Grow: the data file to 64 MiB, LOOP_SET_CAPACITY, table reload with the new length + resume.
    const back = next(monitor, 'modeChange');
    run('truncate', ['-s', String(64 * MiB), data.file]);
    await loops.setCapacity(data.dev);
    await pool.resize();
    const [mc2] = await back;
    assert.equal([mc2.from, mc2.to], ['out_of_data_space', 'rw']);
    assert.is(mc2.status.kind === 'working' && mc2.status.totalDataBlocks, 1024n);
    assert.equal(dmsetupStatus(pool.name).slice(2, 5), ['512/1024', '-', 'rw']);
    assert.is(dd(path, 30, 8), 0, 'writes go through again');

    assert.equal(events.slice(0, 4), ['lowWater mark=64', 'modeChange rw->out_of_data_space', 'outOfDataSpace out_of_data_space', 'modeChange out_of_data_space->rw']);
    assert.equal(events.filter((e) => e.startsWith('error')), []);
    await monitor.close();
    monitor = undefined;
    assert.is(controlFds(), fdsBefore, 'no control fd left after close()');
  } finally {
    await monitor?.close();
    await thin?.deactivate().catch(() => undefined);
    await pool?.remove().catch(() => undefined);
    dm.close();
    run('losetup', ['-d', data.dev]);
    run('losetup', ['-d', meta.dev]);
  }
});

test.run();
