// SPDX-License-Identifier: MIT
// Mounting a Docker layer read-only on the FakeKernel: what is activated (and under which names),
// that it is all released on unmount and on failure, a crashed dockerd's live pool adopted, and
// nothing of the root written.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DOCKER_RO_UUID_PREFIX,
  DockerLayerNotFoundError,
  DockerLayerNotMountedError,
  DockerPoolConflictError,
  inspectDockerRoot,
  mountDockerLayer,
  unmountDockerLayer,
} from '../../../src/driver/index.js';
import { MS_RDONLY } from '../../../src/ioctl/index.js';
import { rejects } from '../../helpers/rejects.js';
import { IoctlError } from '../../../src/ioctl/index.js';
import { CONTAINER, DEV, IMAGE, INIT, buildDockerRoot, treeDigest, type DockerFixture, type FixtureOptions } from './docker-fixture.js';

const t = suite('driver/docker-mount');
let f: DockerFixture;
const setup = async (o: FixtureOptions = {}): Promise<void> => {
  f = await buildDockerRoot(o);
};
t.after.each(() => {
  f.fake.dispose();
  rmSync(f.root, { recursive: true, force: true });
  rmSync(f.target, { recursive: true, force: true });
});

const live = (): string[] => f.fake.devices().map((d) => d.name);
const boundLoops = (): number => f.fake.loops().filter((l) => l.backingFile).length;

t('mount: read-only pool and layer under Docker names, ro mount; unmount releases all; nothing written', async () => {
  await setup();
  const before = treeDigest(f.root);
  assert.equal(live(), [], 'no pool live (dockerd stopped cleanly)');
  const r = await mountDockerLayer(f.root, CONTAINER, f.target, f.deps);
  const pool = `${f.prefix}-pool`;
  const dev = `${f.prefix}-${CONTAINER}`;
  assert.equal(live(), [pool, dev].sort());
  assert.equal(r.activated, { pool: true, device: true });
  assert.is(r.filesystem, 'ext4');
  assert.is(r.mountData, '');
  assert.is(r.deviceId, 4);
  assert.is(r.device, `${DEV}/mapper/${dev}`);
  const p = f.fake.device(pool)!;
  assert.is(p.uuid, `${DOCKER_RO_UUID_PREFIX}${f.prefix}-pool`);
  // Docker's table (block size from the superblock, low water 32768, skip_block_zeroing) + read_only.
  assert.is(p.live![0]!.params.trimEnd(), '7:1 7:0 128 32768 2 skip_block_zeroing read_only'); // the fake's normal form ends in a space
  const d = f.fake.device(dev)!;
  assert.is(d.readOnly, true);
  assert.is(d.uuid, `${DOCKER_RO_UUID_PREFIX}${f.prefix}-4`);
  assert.is(d.live![0]!.params, `${p.major}:${p.minor} 4`);
  const m = f.fake.mounts();
  assert.equal(m.map((x) => [x.source, x.target, x.fstype, x.flags, x.data]), [[`${DEV}/mapper/${dev}`, f.target, 'ext4', MS_RDONLY, null]]);
  assert.is(boundLoops(), 2);

  const ls = await inspectDockerRoot(f.root, f.deps);
  assert.is(ls.poolLive, true);
  assert.is(ls.poolTransactionId, 4);
  assert.equal(ls.devices.map((x) => [x.id, x.active, x.mountedAt, x.uncommitted]), [
    ['base', false, [], false],
    [IMAGE, false, [], false],
    [CONTAINER, true, [f.target], false],
    [INIT, false, [], false],
  ]);

  assert.equal(await unmountDockerLayer(f.root, CONTAINER, f.target, f.deps), { target: f.target, removedDevice: true, removedPool: true });
  assert.equal(live(), []);
  assert.equal(f.fake.mounts(), []);
  assert.is(boundLoops(), 0, 'the loop devices detached (autoclear)');
  assert.equal(treeDigest(f.root), before, 'no file of the Docker root changed');
});

t('two layers share the pool; the pool goes with the last unmount', async () => {
  await setup();
  const second = `${f.target}-2`;
  (await import('node:fs')).mkdirSync(second);
  try {
    await mountDockerLayer(f.root, 'base', f.target, f.deps);
    const r = await mountDockerLayer(f.root, IMAGE, second, f.deps);
    assert.equal(r.activated, { pool: false, device: true });
    assert.equal((await unmountDockerLayer(f.root, 'base', f.target, f.deps)).removedPool, false);
    assert.equal(await unmountDockerLayer(f.root, IMAGE, second, f.deps), { target: second, removedDevice: true, removedPool: true });
    assert.equal(live(), []);
  } finally {
    rmSync(second, { recursive: true, force: true });
  }
});

t("a pool left live by a crashed dockerd is adopted, never duplicated, and left live", async () => {
  await setup({ leaveLive: true });
  const pool = `${f.prefix}-pool`;
  assert.equal(live(), [pool]);
  const r = await mountDockerLayer(f.root, IMAGE, f.target, f.deps);
  assert.equal(r.activated, { pool: false, device: true });
  assert.equal(live(), [pool, `${f.prefix}-${IMAGE}`].sort());
  assert.is(f.fake.devices().filter((d) => d.live?.[0]?.type === 'thin-pool').length, 1, 'one pool over the metadata');
  assert.is(boundLoops(), 2);
  assert.equal(await unmountDockerLayer(f.root, IMAGE, f.target, f.deps), { target: f.target, removedDevice: true, removedPool: false });
  assert.equal(live(), [pool], "dockerd's pool stays");
});

t("a layer device dockerd left live is used as it is (noload: no journal replayed) and left live", async () => {
  await setup({ leaveLive: true });
  const { ThinPool, ThinDevice } = await import('../../../src/thin/index.js');
  const pool = await ThinPool.open(f.deps.dm as never, `${f.prefix}-pool`, { blockDevices: f.deps.blockDevices! });
  await ThinDevice.of(pool, 2).activate(`${f.prefix}-${IMAGE}`, 32768n);
  const r = await mountDockerLayer(f.root, IMAGE, f.target, f.deps);
  assert.equal(r.activated, { pool: false, device: false });
  assert.is(r.mountData, 'noload');
  assert.equal(await unmountDockerLayer(f.root, IMAGE, f.target, f.deps), { target: f.target, removedDevice: false, removedPool: false });
  assert.equal(live(), [`${f.prefix}-${IMAGE}`, `${f.prefix}-pool`].sort());
});

t('xfs: nouuid', async () => {
  await setup({ fs: 'xfs' });
  const r = await mountDockerLayer(f.root, IMAGE, f.target, f.deps);
  assert.is(r.filesystem, 'xfs');
  assert.equal(f.fake.mounts().map((m) => m.data), ['nouuid']);
  await unmountDockerLayer(f.root, IMAGE, f.target, f.deps);
});

t('a failed mount(2) releases the layer device, the pool and the loops', async () => {
  await setup();
  f.fake.failNext({ syscall: 'mount', errno: 'EINVAL' });
  const e = await rejects(mountDockerLayer(f.root, IMAGE, f.target, f.deps), IoctlError);
  assert.is(e.code, 'EINVAL');
  assert.equal(live(), []);
  assert.is(boundLoops(), 0);
});

t('an abort after the pool was created releases it before rejecting with the reason', async () => {
  await setup();
  const ac = new AbortController();
  const reason = new Error('stop');
  const off = f.fake.onCall((c) => {
    if (c.request === 'DM_DEV_SUSPEND') ac.abort(reason); // the pool's resume
  });
  try {
    await mountDockerLayer(f.root, IMAGE, f.target, f.deps, { signal: ac.signal });
    assert.unreachable();
  } catch (e) {
    assert.is(e, reason);
  } finally {
    off();
  }
  assert.equal(live(), []);
  assert.is(boundLoops(), 0);
});

t('refusals before anything is activated: unknown, deleted, uncommitted layer; loop files held by something else', async () => {
  await setup();
  const code = async (id: string): Promise<string> => {
    try {
      await mountDockerLayer(f.root, id, f.target, f.deps);
      return 'mounted';
    } catch (e) {
      return `${(e as { code: string }).code}:${(e as DockerLayerNotFoundError).reason ?? ''}`;
    }
  };
  assert.is(await code('nope'), 'EDOCKERLAYER:unknown');
  writeFileSync(join(f.root, 'metadata', IMAGE), '{"device_id":2,"size":16777216,"transaction_id":2,"initialized":false,"deleted":true}');
  assert.is(await code(IMAGE), 'EDOCKERLAYER:deleted');
  writeFileSync(join(f.root, 'metadata', 'transaction-metadata'), `{"open_transaction_id":5,"device_hash":"${CONTAINER}","device_id":4}`);
  assert.is(await code(CONTAINER), 'EDOCKERLAYER:uncommitted');
  const ls = await inspectDockerRoot(f.root, f.deps);
  assert.is(ls.openTransaction?.openTransactionId, 5);
  assert.is(ls.openTransaction?.rolledBack, false);
  assert.equal(ls.devices.filter((d) => d.uncommitted).map((d) => d.id), [CONTAINER]);
  assert.equal(live(), []);
  const held = await f.deps.loops.attach(join(f.root, 'devicemapper', 'metadata'), { autoclear: false, hold: false });
  try {
    await mountDockerLayer(f.root, 'base', f.target, f.deps);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DockerPoolConflictError);
  }
  assert.equal(live(), []);
  assert.is(boundLoops(), 1, 'only the foreign binding');
  void held;
});

t('unmount of a layer not mounted there: typed error, nothing touched', async () => {
  await setup();
  const e = await rejects(unmountDockerLayer(f.root, IMAGE, f.target, f.deps), DockerLayerNotMountedError);
  assert.is(e.code, 'EDOCKERNOTMOUNTED');
});

t.run();
