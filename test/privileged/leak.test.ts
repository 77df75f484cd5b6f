// SPDX-License-Identifier: MIT
// Leak check on the real kernel (issue 10): 1,000 create/remove cycles leave the open-fd count
// unchanged, no dm or loop device behind, and memory flat within a stated bound.
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { DmControl, zeroTarget } from '../../src/dm/index.js';
import { LoopControl, ensureSparseFile, listBoundLoops } from '../../src/loop/index.js';
import { TEST_MARKER, privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('leaks (real kernel)'));

const CYCLES = 1000;
/**
 * Allowed RSS growth between the warm-up sample and the end. A leak of one 16 KiB ioctl buffer,
 * or of a Buffer per cycle, would exceed this; V8's heap settling between two gc() calls does not.
 */
const RSS_BOUND_BYTES = 8 * 1024 * 1024;

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

// The runner does not pass --expose-gc; turning the flag on at run time gives a fresh context a
// gc() to call, so the RSS samples are taken after full collections, not at random heap states.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function rssAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}

test(`${CYCLES} dm create+load+resume+remove cycles: same fd count, no device left, RSS flat`, async () => {
  const dm = new DmControl();
  try {
    const base = testName('leak');
    const cycle = async (i: number) => {
      const name = `${base}-${i}`;
      await dm.createDevice(name, [zeroTarget(0n, 8n)], { uuid: `${name}-uuid` });
      await dm.deviceRemove(name);
    };
    for (let i = 0; i < 50; i++) await cycle(i); // warm up: open the control fd, JIT, buffers
    const fds = openFds();
    const rss = rssAfterGc();
    for (let i = 50; i < CYCLES; i++) await cycle(i);
    const rssEnd = rssAfterGc();
    console.log(`  dm: ${CYCLES} cycles; fds ${fds} → ${openFds()}; rss ${(rss / 2 ** 20).toFixed(1)} → ${(rssEnd / 2 ** 20).toFixed(1)} MiB`);
    assert.is(openFds(), fds, 'open fds changed');
    assert.equal((await dm.listDevices()).filter((d) => d.name.startsWith(base)), [], 'devices left behind');
    assert.ok(rssEnd - rss < RSS_BOUND_BYTES, `RSS grew by ${rssEnd - rss} bytes (bound ${RSS_BOUND_BYTES})`);
  } finally {
    dm.close();
  }
});

test(`${CYCLES} loop attach+detach cycles: same fd count, no loop left bound, RSS flat`, async () => {
  const loops = new LoopControl();
  const file = join(testTmpDir(), `leak-${TEST_MARKER}.img`);
  await ensureSparseFile(file, 1024 * 1024);
  const cycle = async () => {
    const a = await loops.attach(file, { autoclear: false });
    a.close();
    assert.is(await loops.detach(a.path), 'detached');
  };
  for (let i = 0; i < 50; i++) await cycle();
  const fds = openFds();
  const rss = rssAfterGc();
  for (let i = 50; i < CYCLES; i++) await cycle();
  const rssEnd = rssAfterGc();
  console.log(`  loop: ${CYCLES} cycles; fds ${fds} → ${openFds()}; rss ${(rss / 2 ** 20).toFixed(1)} → ${(rssEnd / 2 ** 20).toFixed(1)} MiB`);
  assert.is(openFds(), fds, 'open fds changed');
  assert.equal((await listBoundLoops()).filter((l) => l.binding.backingFile === file), [], 'loop devices left bound');
  assert.ok(rssEnd - rss < RSS_BOUND_BYTES, `RSS grew by ${rssEnd - rss} bytes (bound ${RSS_BOUND_BYTES})`);
});

test.run();
