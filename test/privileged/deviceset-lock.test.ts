// SPDX-License-Identifier: MIT
// The DeviceSet root lock (flock(2) on <root>/devmapper.lock) against the real kernel, in the VM:
// two processes race a real DeviceSet.init on one root and exactly one wins each round; a
// kill -9'd owner (pool left active) never blocks the next init. Children: test/helpers/lock-child.ts.
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceSet, DeviceSetLockedError, LOCK_FILE, prefixFor } from '../../src/deviceset/index.js';
import { LockChild } from '../helpers/lock-child-driver.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('deviceset root lock (real kernel)'));
const OPTS = ['dm.loopdatasize=512M', 'dm.loopmetadatasize=16M', 'dm.basesize=64M'];
let n = 0;
const newRoot = (tag: string): string => join(testTmpDir(), `ds-lock-${tag}-${process.pid}-${++n}`);

/** Unmounts nothing (these tests mount nothing); removes every dm device of the root's prefix, pool last. */
function cleanupRoot(root: string): void {
  if (!existsSync(root)) return;
  const st = statSync(root, { bigint: true });
  const prefix = prefixFor({ dev: st.dev, ino: st.ino });
  const out = spawnSync('dmsetup', ['ls'], { encoding: 'utf8' }).stdout ?? '';
  const mine = out
    .split('\n')
    .map((l) => l.split('\t')[0]?.trim() ?? '')
    .filter((d) => d.startsWith(`${prefix}-`));
  for (const d of [...mine.filter((x) => !x.endsWith('-pool')), ...mine.filter((x) => x.endsWith('-pool'))]) {
    spawnSync('dmsetup', ['remove', '--force', '--retry', d]);
  }
}

test('two processes race a real DeviceSet.init on one root: exactly one wins each round', async () => {
  const root = newRoot('race');
  const a = new LockChild('real', OPTS);
  const b = new LockChild('real', OPTS);
  try {
    for (let round = 0; round < 4; round++) {
      const [ra, rb] = await Promise.all([a.ask(`init ${root}`), b.ask(`init ${root}`)]);
      const winner = ra === 'won' ? a : rb === 'won' ? b : undefined;
      if (winner === undefined) return assert.unreachable(`round ${round}: nobody won (${ra} / ${rb})`);
      const loser = winner === a ? rb : ra;
      assert.ok(loser === `lost ${winner.pid}` || loser === 'lost null', `round ${round}: ${ra} / ${rb}`);
      assert.is(await winner.ask('shutdown'), 'released', `round ${round}`);
    }
    assert.is(await a.end(), 0);
    assert.is(await b.end(), 0);
  } finally {
    await a.stop();
    await b.stop();
    cleanupRoot(root);
  }
});

test("a kill -9'd owner (its pool still active) never blocks the next init", async () => {
  const root = newRoot('kill');
  const owner = new LockChild('real', OPTS);
  try {
    assert.is(await owner.ask(`init ${root}`), 'won');
    await DeviceSet.init(root, { options: OPTS, log: () => undefined }).then(
      () => assert.unreachable('a second DeviceSet got the root'),
      (err: unknown) => {
        assert.instance(err, DeviceSetLockedError);
        assert.is((err as DeviceSetLockedError).pid, owner.pid);
      },
    );
    await owner.kill9();
    assert.is(readFileSync(join(root, LOCK_FILE), 'utf8'), `${owner.pid}\n`);
    const set = await DeviceSet.init(root, { options: OPTS, log: () => undefined });
    assert.equal(set.list(), []);
    await set.shutdown();
  } finally {
    await owner.stop();
    cleanupRoot(root);
  }
});

test.run();
