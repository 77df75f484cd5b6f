// SPDX-License-Identifier: MIT
// SIGINT/SIGTERM during a `ds` command: the command's AbortSignal fires, the DeviceSet kills the
// filesystem tool it runs and closes its step, no new step starts, the lock is released and the
// CLI exits 130 / 143; a second signal exits at once. The signals are delivered by the fake tools
// themselves at the moment the "child" runs, so nothing here depends on timing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { RootLock, type FsTools } from '../../../src/index.js';
import type { CliSignal, SignalSource } from '../../../src/cli/context.js';
import { cli, fakeDeviceSet, type Calls } from './harness.js';
import { INIT_OPTS, MiB, SAVED, world } from './ds-world.js';

/** A SignalSource a test fires by hand; records what exitNow was asked to do. */
function testSignals() {
  const handlers = new Set<(s: CliSignal) => void>();
  const exits: number[] = [];
  const source: SignalSource = {
    listen(h) {
      handlers.add(h);
      return () => handlers.delete(h);
    },
    exitNow: (code) => void exits.push(code),
  };
  return { source, exits, send: (s: CliSignal) => [...handlers].forEach((h) => h(s)), listening: () => handlers.size };
}

/** A tool call that runs until its signal kills it (as execFile's `signal` kills the child). */
function untilKilled(signal: AbortSignal | undefined, onStart: () => void, killed: string[], what: string): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (!signal) return reject(new Error(`test: ${what} got no AbortSignal`));
    signal.addEventListener('abort', () => {
      killed.push(what);
      reject(Object.assign(new Error(`${what} killed by SIGTERM`), { code: 'ABORT_ERR' }));
    });
    onStart();
    // The CLI aborts synchronously in its signal handler; otherwise this "child" would run forever.
    if (!signal.aborted) reject(new Error(`test: the signal did not abort ${what}`));
  });
}

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} while ds init runs mkfs: mkfs is killed, exit ${code}, the lock is released, the root opens cleanly`, async () => {
    const sigs = testSignals();
    const killed: string[] = [];
    let slow = true;
    const w = world({
      tools: (base: FsTools): FsTools => ({
        ...base,
        mkfs: (fsType, device, args, call) => (slow ? untilKilled(call?.signal, () => sigs.send(sig), killed, 'mkfs') : base.mkfs(fsType, device, args, call)),
      }),
    });
    try {
      const r = await cli(['ds', 'init', '--root', w.root, ...INIT_OPTS], w.deps, { signals: sigs.source });
      assert.is(r.code, code, r.stderr);
      assert.equal(killed, ['mkfs']);
      assert.is(
        r.stderr,
        `devmapper: ${sig}: stopping: closing the step in progress (send it again to exit at once)\n` +
          'devmapper: EABORTED: DeviceSet.init was aborted\n' +
          `hint: stopped by ${sig}: the step in progress was undone or closed and no new one started; run the command again\n`,
      );
      assert.is(sigs.listening(), 0, 'the handlers are removed when the command ends');
      assert.equal(sigs.exits, []);
      RootLock.acquire(w.root).release(); // throws DeviceSetLockedError while the flock is held
      assert.equal(w.fake.devices(), [], 'the aborted init tore down the pool it created');
      w.die();
      // The next init (no die() needed for the lock) finishes the job with the saved options.
      slow = false;
      const again = await cli(['ds', 'init', '--root', w.root], w.deps);
      assert.is(again.code, 0, again.stderr);
      assert.equal(w.opened.at(-1), SAVED);
      w.die();
      const l = await w.run(['list', '--json']);
      assert.is(l.code, 0, l.stderr);
      assert.equal(
        (JSON.parse(l.stdout) as { id: string; size: number; state: string; initialized: boolean }[]).map((d) => [d.id, d.size, d.state, d.initialized]),
        [['', 16 * MiB, 'ready', true]],
      );
    } finally {
      w.dispose();
    }
  });
}

test('SIGTERM while ds create --size grows the filesystem: the grow is killed, exit 143; later commands work', async () => {
  const sigs = testSignals();
  const killed: string[] = [];
  let slow = false;
  const w = world({
    tools: (base: FsTools): FsTools => ({
      ...base,
      grow: (fsType, device, mnt, call) => (slow ? untilKilled(call?.signal, () => sigs.send('SIGTERM'), killed, 'resize2fs') : base.grow(fsType, device, mnt, call)),
    }),
  });
  try {
    assert.is((await w.run(['init', ...INIT_OPTS])).code, 0);
    slow = true;
    const r = await w.run(['create', 'a', '--size', '32M'], {}, { signals: sigs.source });
    assert.is(r.code, 143, r.stderr);
    assert.equal(killed, ['resize2fs']);
    assert.match(r.stderr, /^devmapper: SIGTERM: stopping: .*\ndevmapper: EABORTED: addDevice was aborted\nhint: stopped by SIGTERM: /);
    slow = false;
    const l = await w.run(['list', '--json']);
    assert.is(l.code, 0, l.stderr);
    assert.equal((JSON.parse(l.stdout) as { id: string }[]).map((d) => d.id), [''], 'the aborted create was undone');
    assert.is((await w.run(['create', 'a', '--size', '32M'])).code, 0);
    assert.is((await w.run(['create', 'b'])).code, 0);
  } finally {
    w.dispose();
  }
});

test('a signal before a step starts: no new step (ds remove does not delete); a second signal exits at once', async () => {
  const sigs = testSignals();
  const calls: Calls = [];
  const root = fs.mkdtempSync(join('/tmp', 'cli-ds-sig-'));
  fs.writeFileSync(join(root, 'cli-options.json'), JSON.stringify({ formatVersion: 1, options: ['dm.basesize=64M'] }));
  try {
    const deps = {
      openDeviceSet: async () => {
        sigs.send('SIGINT'); // arrives while the DeviceSet opens
        sigs.send('SIGTERM'); // a second one: exit at once
        return fakeDeviceSet(calls, ['c1']);
      },
      dm: () => ({ deviceInfo: async () => Promise.reject(new Error('not active')) }) as never,
    };
    const r = await cli(['ds', 'remove', 'c1', '--root', root], deps, { signals: sigs.source });
    assert.is(r.code, 130);
    assert.equal(calls, [], 'deleteDevice never started');
    assert.equal(sigs.exits, [143]);
    assert.match(r.stderr, /\ndevmapper: EINTERRUPTED: interrupted by SIGINT\nhint: stopped by SIGINT: /);
    // Not a ds command: no handlers at all.
    const v = await cli(['--version'], {}, { signals: sigs.source });
    assert.is(v.code, 0);
    assert.is(sigs.listening(), 0);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a signal that comes too late to stop anything: the command completes, the exit status still says the signal', async () => {
  const sigs = testSignals();
  const calls: Calls = [];
  const root = fs.mkdtempSync(join('/tmp', 'cli-ds-sig-'));
  fs.writeFileSync(join(root, 'cli-options.json'), JSON.stringify({ formatVersion: 1, options: ['dm.basesize=64M'] }));
  try {
    const ds = fakeDeviceSet(calls, []);
    const addDevice = ds.addDevice.bind(ds);
    const deps = {
      openDeviceSet: async () => ({
        ...ds,
        addDevice: async (...a: Parameters<typeof ds.addDevice>) => {
          const d = await addDevice(...a);
          sigs.send('SIGTERM'); // after the last step finished
          return d;
        },
      }),
    };
    const r = await cli(['ds', 'create', 'c1', '--root', root], deps, { signals: sigs.source });
    assert.is(r.code, 143);
    assert.equal(calls, ['addDevice(c1,,{"signal":"AbortSignal"})']);
    assert.is(
      r.stderr,
      'devmapper: SIGTERM: stopping: closing the step in progress (send it again to exit at once)\n' +
        'devmapper: EINTERRUPTED: interrupted by SIGTERM after the command had finished\n' +
        'hint: the command completed before SIGTERM could stop it; nothing is left to do\n',
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
