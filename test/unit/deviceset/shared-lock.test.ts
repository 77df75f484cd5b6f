// SPDX-License-Identifier: MIT
// The shared device lock addDevice holds on its parent (mutex.ts SharedMutex, KeyedMutex.lockMany's
// `shared` keys): shared holders run together, an exclusive holder alone, in arrival order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KeyedMutex, SharedMutex } from '../../../src/deviceset/mutex.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('SharedMutex: shared holders together, exclusive alone, FIFO (a shared request waits behind a waiting exclusive one)', async () => {
  const m = new SharedMutex();
  const log: string[] = [];
  const hold = async (name: string, shared: boolean): Promise<void> => {
    const release = await m.lock(shared);
    log.push(`${name}+`);
    await tick();
    await tick();
    log.push(`${name}-`);
    release();
  };
  await Promise.all([hold('s1', true), hold('s2', true), hold('x', false), hold('s3', true)]);
  assert.equal(log, ['s1+', 's2+', 's1-', 's2-', 'x+', 'x-', 's3+', 's3-']);
});

test('KeyedMutex.lockMany: the shared key is shared, the others exclusive; a key asked both ways is exclusive', async () => {
  const k = new KeyedMutex();
  const a = await k.lockMany(['c1'], ['parent']);
  const b = await k.lockMany(['c2'], ['parent']);
  let deleted = false;
  const del = k.lockMany(['parent']).then((r) => {
    deleted = true;
    return r;
  });
  await tick();
  assert.is(deleted, false);
  a();
  await tick();
  assert.is(deleted, false);
  b();
  const r = await del;
  assert.is(deleted, true);
  let second = false;
  const both = k.lockMany(['parent'], ['parent']).then((rel) => {
    second = true;
    return rel;
  });
  await tick();
  assert.is(second, false);
  r();
  (await both)();
  assert.equal(k.activeKeys, []);
});

test.run();
