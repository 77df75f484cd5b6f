// SPDX-License-Identifier: MIT
// `devmapper driver ...` on a FakeKernel, one "process" per command: each run opens the Driver
// (init: doInit true; the rest doInit false), exits without cleanup, and the next run sees the
// mounts it left through the fake's mount table.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { Driver } from '../../../src/driver/index.js';
import { SCHEMAS } from '../../../src/cli/schemas.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import type { Deps } from '../../../src/cli/context.js';
import { cli, type CliResult } from './harness.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const INIT_OPTS = ['--opt', 'dm.loopdatasize=64M', '--opt', 'dm.loopmetadatasize=2M', '--opt', 'dm.basesize=16M', '--opt', 'dm.min_free_space=0%'];

function checkJson(schema: TSchema, text: string): unknown {
  const v = JSON.parse(text) as unknown;
  assert.equal([...Value.Errors(schema, v)].map((e) => `${e.path}: ${e.message}`), [], text);
  return v;
}

function world() {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const tmp = fs.mkdtempSync(join(fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'cli-driver-'));
  const home = join(tmp, 'home');
  let wiring = fakeDeviceSetInit(fake, '/fakedev');
  const opened: boolean[] = [];
  const deps: Partial<Deps> = {
    openDriver: (h, options, log, signal, doInit) => {
      opened.push(doInit);
      return Driver.init(h, { ...wiring, options, log, doInit, isMounted: (p) => fake.mounts().some((m) => m.target === p), ...(signal ? { signal } : {}) });
    },
  };
  const run = async (argv: string[]): Promise<CliResult> => {
    const r = await cli(['driver', ...argv, '--home', home], deps);
    // The process died: the kernel closed its fds; its lock file names a dead pid.
    fake.revive();
    wiring = fakeDeviceSetInit(fake, '/fakedev');
    const lock = join(home, 'devmapper.lock');
    if (fs.existsSync(lock)) fs.writeFileSync(lock, '2147483646 1\n');
    return r;
  };
  const dispose = (): void => {
    fake.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  return { fake, home, run, opened, dispose };
}

test('driver: init, create, create-rw, exists, metadata, get/put across processes, remove, status, cleanup', async () => {
  const w = world();
  try {
    const early = await w.run(['get', A]);
    assert.is(early.code, 2, early.stderr);
    assert.match(early.stderr, "has no driver made by 'devmapper driver init'");
    assert.equal(w.opened, []);
    assert.is(fs.existsSync(w.home), false);

    const init = await w.run(['init', ...INIT_OPTS]);
    assert.is(init.code, 0, init.stderr);
    assert.equal(w.opened, [true]);
    assert.is((await w.run(['create', A])).code, 0);
    const rw = await w.run(['create-rw', B, '--parent', A, '--size', '32M']);
    assert.is(rw.code, 0, rw.stderr);
    assert.equal(w.opened, [true, false, false]);

    const ex = await w.run(['exists', B, '--json']);
    assert.equal(checkJson(SCHEMAS['driver exists'], ex.stdout), { id: B, exists: true });
    assert.is((await w.run(['exists', 'c'])).stdout, 'false\n');
    const md = await w.run(['metadata', B, '--json']);
    const meta = checkJson(SCHEMAS['driver metadata'], md.stdout) as { DeviceId: string; DeviceSize: string; DeviceName: string };
    assert.equal({ DeviceId: meta.DeviceId, DeviceSize: meta.DeviceSize }, { DeviceId: '3', DeviceSize: String(32 * 1024 * 1024) });
    assert.ok(meta.DeviceName.endsWith(`-${B}`));

    const mp = join(fs.realpathSync(w.home), 'mnt', B);
    const g1 = await w.run(['get', B]);
    assert.is(g1.code, 0, g1.stderr);
    assert.is(g1.stdout, `${mp}/rootfs\n`);
    const g2 = await w.run(['get', B]);
    assert.is(g2.stdout, `${mp}/rootfs\n`);
    assert.equal(w.fake.mounts().map((m) => m.target), [mp], 'the second get only counted');

    const busy = await w.run(['remove', B]);
    assert.is(busy.code, 4, busy.stderr);
    assert.match(busy.stderr, 'ELAYERINUSE');

    // Across processes a mount is one reference: one put releases it.
    assert.is((await w.run(['put', B])).code, 0);
    assert.equal(w.fake.mounts(), []);
    const again = await w.run(['put', B]);
    assert.is(again.code, 3, again.stderr);
    assert.match(again.stderr, 'ELAYERNOTMOUNTED');

    assert.is((await w.run(['remove', B])).code, 0);
    assert.is((await w.run(['remove', B])).code, 0, 'a missing id is no error');
    assert.is((await w.run(['exists', B])).stdout, 'false\n');

    const st = await w.run(['status', '--json']);
    const pairs = checkJson(SCHEMAS['driver status'], st.stdout) as [string, string][];
    assert.equal(pairs[0]![0], 'Pool Name');
    assert.equal(new Map(pairs).get('Base Device Size'), '16.78MB');
    const text = await w.run(['status']);
    assert.match(text.stdout, /^Pool Name: devmapper-\d+:\d+-\d+-pool\nPool Blocksize: 65\.54kB\n/);

    await w.run(['get', A]);
    assert.is((await w.run(['cleanup'])).code, 0);
    assert.equal(w.fake.mounts(), []);
    assert.equal(w.fake.devices(), []);
  } finally {
    w.dispose();
  }
});

test('driver: bad input is a usage error before the driver is opened', async () => {
  const w = world();
  try {
    assert.is((await w.run(['init', ...INIT_OPTS])).code, 0);
    const bad = await w.run(['create', A, '--size', 'lots']);
    assert.is(bad.code, 2, bad.stderr);
    const noHome = await cli(['driver', 'status']);
    assert.is(noHome.code, 2);
    assert.match(noHome.stderr, '--home DIR is required');
    assert.equal(w.opened, [true]);
  } finally {
    w.dispose();
  }
});

test.run();
