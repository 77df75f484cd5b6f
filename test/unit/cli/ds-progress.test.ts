// SPDX-License-Identifier: MIT
// The progress line of `ds resize` (the resizePool onProgress events) and `ds init` (the
// devmapper:deviceset channel's progress events): shown on a terminal only, never under --quiet.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { channel } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICESET_CHANNEL, type DeviceSetProgressMessage, type ProgressEvent, type ResizePoolOptions } from '../../../src/deviceset/index.js';
import type { CliDeviceSet } from '../../../src/cli/context.js';
import { cli, fakeDeviceSet, type Calls } from './harness.js';

const RESIZE_EVENTS: ProgressEvent[] = [
  { step: 'grow-data', done: 0, total: 3 },
  { step: 'sparse-file', done: 0, total: 3 },
  { step: 'sparse-file', done: 1, total: 3 },
  { step: 'sparse-file', done: 2, total: 3 },
  { step: 'sparse-file', done: 3, total: 3 },
  { step: 'grow-data', done: 1, total: 3 },
  { step: 'grow-data', done: 2, total: 3 },
  { step: 'grow-data', done: 3, total: 3 },
];

function dsRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'cli-ds-progress-'));
  writeFileSync(join(root, 'cli-options.json'), JSON.stringify({ formatVersion: 1, options: ['dm.basesize=64M'] }));
  return root;
}

/** A fake set whose resizePool reports RESIZE_EVENTS and records whether it was given a callback. */
function resizingSet(calls: Calls): CliDeviceSet {
  const ds = fakeDeviceSet(calls);
  return Object.assign(ds, {
    resizePool: async (size: bigint, o: ResizePoolOptions = {}) => {
      calls.push(`resizePool(${size},${o.onProgress ? 'onProgress' : 'none'})`);
      for (const e of RESIZE_EVENTS) o.onProgress?.(e);
    },
  });
}

const progressLines = (stderr: string): string[] => stderr.split('\n').filter((l) => /\d+\/\d+\.\.\.$/.test(l));

test('ds resize on a terminal: one line per stage done; the sparse file only at its end', async () => {
  const root = dsRoot();
  try {
    const calls: Calls = [];
    const r = await cli(['ds', 'resize', '1G', '--root', root], { openDeviceSet: async () => resizingSet(calls) }, { tty: true });
    assert.is(r.code, 0, r.stderr);
    assert.equal(calls, ['resizePool(1073741824,onProgress)']);
    assert.equal(progressLines(r.stderr), [
      'devmapper: loopback file 3/3...',
      'devmapper: growing the pool 1/3...',
      'devmapper: growing the pool 2/3...',
      'devmapper: growing the pool 3/3...',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ds resize: no callback and no progress line when stderr is no terminal, or with --quiet', async () => {
  const root = dsRoot();
  try {
    for (const [argv, tty] of [[[], false], [['--quiet'], true]] as const) {
      const calls: Calls = [];
      const r = await cli(['ds', 'resize', '1G', '--root', root, ...argv], { openDeviceSet: async () => resizingSet(calls) }, { tty });
      assert.is(r.code, 0, r.stderr);
      assert.equal(calls, ['resizePool(1073741824,none)']);
      assert.is(r.stderr, '');
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ds init on a terminal: the channel progress events while the set opens; none after', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cli-ds-progress-'));
  const ch = channel(DEVICESET_CHANNEL);
  const publish = (step: DeviceSetProgressMessage['step'], done: number, total: number): void => {
    const m: DeviceSetProgressMessage = { kind: 'progress', step, hash: null, done, total };
    ch.publish(m);
  };
  try {
    const openDeviceSet = async (): Promise<CliDeviceSet> => {
      for (let d = 0; d <= 3; d++) publish('sparse-file', d, 3);
      return fakeDeviceSet([]);
    };
    const r = await cli(['ds', 'init', '--root', root], { openDeviceSet }, { tty: true });
    assert.is(r.code, 0, r.stderr);
    assert.equal(progressLines(r.stderr), ['devmapper: loopback file 3/3...']);
    assert.is(ch.hasSubscribers, false, 'the CLI unsubscribed');
    const quiet = await cli(['ds', 'init', '--root', root, '--quiet'], { openDeviceSet }, { tty: true });
    assert.equal(progressLines(quiet.stderr), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
