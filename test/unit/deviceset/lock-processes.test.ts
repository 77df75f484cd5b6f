// SPDX-License-Identifier: MIT
// The root lock across real processes (flock(2) on this host's kernel): two children race for one
// root, exactly one wins every round; a kill -9'd owner never blocks the next init. DeviceSet runs
// over a FakeKernel in each child; the lock is the real one on the real root directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { join } from 'node:path';
import { DeviceSet, DeviceSetLockedError, LOCK_FILE, RootLock } from '../../../src/deviceset/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { LockChild } from '../../helpers/lock-child-driver.js';

/** /dev/shm when there is one: DeviceSet fsyncs its metadata, which costs nothing on tmpfs. */
const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];

/** One round: both ask at once; exactly one wins, the loser names the winner (or, racing its pid write, nobody). */
async function race(a: LockChild, b: LockChild, take: string, give: string, round: number): Promise<void> {
  const [ra, rb] = await Promise.all([a.ask(take), b.ask(take)]);
  const winner = ra === 'won' ? a : rb === 'won' ? b : undefined;
  if (winner === undefined) return assert.unreachable(`round ${round}: nobody won (${ra} / ${rb})`);
  const loserAnswer = winner === a ? rb : ra;
  assert.ok(loserAnswer === `lost ${winner.pid}` || loserAnswer === 'lost null', `round ${round}: ${ra} / ${rb}`);
  assert.is(await winner.ask(give), 'released', `round ${round}`);
}

test('two processes race RootLock.acquire on a fresh root 200 times: exactly one wins each time', async () => {
  const tmp = mkdtempSync(join(TMP, 'dm-lock-race-'));
  const a = new LockChild('fake', OPTIONS);
  const b = new LockChild('fake', OPTIONS);
  try {
    for (let i = 0; i < 200; i++) {
      const root = join(tmp, `r${i}`);
      mkdirSync(root);
      await race(a, b, `lock ${root}`, 'unlock', i);
    }
    assert.is(await a.end(), 0);
    assert.is(await b.end(), 0);
  } finally {
    await a.stop();
    await b.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('two processes race DeviceSet.init on one root 20 times: one wins, the other gets DeviceSetLockedError', async () => {
  const tmp = mkdtempSync(join(TMP, 'dm-lock-init-'));
  const a = new LockChild('fake', OPTIONS);
  const b = new LockChild('fake', OPTIONS);
  try {
    for (let i = 0; i < 20; i++) await race(a, b, `init ${join(tmp, 'root')}`, 'shutdown', i);
    assert.is(await a.end(), 0);
    assert.is(await b.end(), 0);
  } finally {
    await a.stop();
    await b.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("a kill -9'd owner never blocks the next init", async () => {
  const root = join(mkdtempSync(join(TMP, 'dm-lock-kill-')), 'root');
  const owner = new LockChild('fake', OPTIONS);
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const init = { ...fakeDeviceSetInit(fake, '/fakedev'), options: OPTIONS, log: () => undefined };
  try {
    assert.is(await owner.ask(`init ${root}`), 'won');
    await DeviceSet.init(root, init).then(
      () => assert.unreachable('a second DeviceSet got the root'),
      (err: unknown) => {
        assert.instance(err, DeviceSetLockedError);
        assert.is((err as DeviceSetLockedError).pid, owner.pid);
      },
    );
    await owner.kill9();
    assert.is(readFileSync(join(root, LOCK_FILE), 'utf8'), `${owner.pid}\n`, 'the dead owner is still named in the file');
    const set = await DeviceSet.init(root, init);
    await set.shutdown();
    RootLock.acquire(root).release();
  } finally {
    await owner.stop();
    fake.dispose();
    rmSync(join(root, '..'), { recursive: true, force: true });
  }
});

test.run();
