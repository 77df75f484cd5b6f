// SPDX-License-Identifier: MIT
// Importing a Docker root into a DeviceSet root on the FakeKernel (src/driver/docker-import.ts):
// the set opens with Docker's thin ids and names; refusals list every problem and write nothing;
// Docker's open transaction is rolled back by the first open; deferred-deleted devices are
// deleted by the deletion pass; a crash at every file-system step and every named step leaves
// Docker's root byte for byte or a complete import, and the next import/restore/init completes;
// restore gives Docker's records back byte for byte.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DOCKER_IMPORT_STEPS,
  DockerImportRefusedError,
  importDockerRoot,
  nodeDockerImportFs,
  restoreDockerRoot,
  type DockerImportFs,
  type DockerImportOptions,
  type DockerImportStep,
} from '../../../src/driver/index.js';
import { DeviceSet, DeviceSetLockedError, MetadataCorruptError, OperationAbortedError, RootLock } from '../../../src/deviceset/index.js';
import { FAKE_FILESYSTEM_UUID, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { ThinDevice, ThinPool } from '../../../src/thin/index.js';
import { rejects } from '../../helpers/rejects.js';
import { CONTAINER, DELETED, DEV, IMAGE, INIT, buildDockerRoot, treeDigest, type DockerFixture, type FixtureOptions } from './docker-fixture.js';

const t = suite('driver/docker-import');
let f: DockerFixture;
const setup = async (o: FixtureOptions = {}): Promise<void> => {
  f = await buildDockerRoot({ baseUuid: FAKE_FILESYSTEM_UUID, ...o });
};
t.after.each(() => {
  f.fake.dispose();
  rmSync(f.root, { recursive: true, force: true });
  rmSync(f.target, { recursive: true, force: true });
});

class DeadFs extends Error {}

const NOW = new Date('2026-12-06T23:10:00.000Z');
const STAMP = 'metadata.docker-20261206T231000Z';
const opts = (o: DockerImportOptions = {}): DockerImportOptions => ({ syscalls: f.fake, now: () => NOW, ...o });
const openSet = (options: readonly string[]): Promise<DeviceSet> => DeviceSet.init(f.root, { ...fakeDeviceSetInit(f.fake, DEV), options: [...options] });
/**
 * The digest of what Docker owns under the root: a metadata directory, and devicemapper/ (by
 * content in the main tests; by size, inode and mtime in the sweeps, which run it hundreds of
 * times over a 64 MiB file that the import never opens).
 */
const metaTree = (metaDir = 'metadata'): string => JSON.stringify(treeDigest(join(f.root, metaDir)));
const loopTree = (full = true): string =>
  JSON.stringify(
    treeDigest(join(f.root, 'devicemapper'), full ? undefined : (p) => {
      const st = statSync(p, { bigint: true });
      return `${st.size}:${st.ino}:${st.mtimeNs}`;
    }),
  );
const dockerTree = (metaDir = 'metadata', full = true): { meta: string; loop: string } => ({ meta: metaTree(metaDir), loop: loopTree(full) });
const rootNames = (): string[] => readdirSync(f.root).sort();

t('import: the DeviceSet opens it with Docker thin ids, names and base UUID; Docker records kept byte for byte', async () => {
  await setup();
  const before = dockerTree();
  const r = await importDockerRoot(f.root, f.deps, opts());
  assert.is(r.outcome, 'imported');
  assert.is(r.prefix, f.prefix);
  assert.is(r.poolName, `${f.prefix}-pool`);
  assert.is(r.dockerMetadata, STAMP);
  assert.is(r.openTransaction, null);
  assert.equal(r.options, ['dm.fs=ext4', 'dm.basesize=16M', 'dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.blocksize=64K', 'dm.blkdiscard=true', 'dm.min_free_space=10%']);
  assert.equal(
    r.devices.map((d) => [d.id, d.deviceId, d.state]),
    [['base', 1, 'ready'], [IMAGE, 2, 'ready'], [CONTAINER, 4, 'ready'], [INIT, 3, 'ready']],
  );
  assert.equal(rootNames(), ['devicemapper', 'devmapper.lock', 'metadata', STAMP]);
  assert.equal(dockerTree(STAMP).meta, before.meta, "Docker's metadata/ kept byte for byte");
  assert.equal(dockerTree().loop, before.loop, 'loop files untouched by the import');
  assert.equal(f.fake.devices(), [], 'the import activates nothing');

  const set = await openSet(r.options);
  try {
    assert.is(set.prefix, f.prefix);
    assert.is(set.poolName, `${f.prefix}-pool`);
    assert.equal(set.list().sort(), [CONTAINER, INIT, IMAGE].sort());
    assert.ok(set.hasDevice(''));
    assert.equal([IMAGE, INIT, CONTAINER, ''].map((h) => set.deviceInfo(h).deviceId), [2, 3, 4, 1]);
    assert.is(set.deviceInfo(CONTAINER).dmName, `${f.prefix}-${CONTAINER}`);
    assert.equal([...f.fake.pool(`${f.prefix}-pool`)!.thins.keys()].sort(), [1, 2, 3, 4]);
    // The container layer maps Docker's data: the base's 4 written blocks, shared by snapshots.
    const path = await set.activateDevice(CONTAINER);
    assert.is(path, `${DEV}/mapper/${f.prefix}-${CONTAINER}`);
    assert.is(f.fake.filesystemOf(path), 'ext4');
    await set.deactivateDevice(CONTAINER);
    // A new layer on top gets a fresh id.
    const d = await set.addDevice('new1', CONTAINER);
    assert.is(d.deviceId, 5);
  } finally {
    await set.shutdown();
  }
  // Opened again, the recorded prefix still rules.
  const again = await openSet(r.options);
  assert.is(again.prefix, f.prefix);
  assert.ok(again.hasDevice('new1'));
  await again.shutdown();
  // Importing again: nothing to do, the first report.
  const r2 = await importDockerRoot(f.root, f.deps, opts({ now: () => new Date('2027-01-01T00:00:00Z') }));
  assert.is(r2.outcome, 'already-imported');
  assert.is(r2.dockerMetadata, STAMP);
  assert.equal(r2.options, r.options);
});

t('refusal: every problem listed, nothing written (bad hash, corrupt record, lock held, pool live with openers)', async () => {
  await setup({ leaveLive: true });
  // A dockerd still running: the pool is live and a layer is active on it.
  const pool = await ThinPool.open(f.deps.dm as never, `${f.prefix}-pool`, { blockDevices: f.deps.blockDevices! });
  await ThinDevice.of(pool, 2).activate(`${f.prefix}-${IMAGE}`, BigInt(16 * 1024 * 1024 / 512));
  writeFileSync(join(f.root, 'metadata', 'bad name'), '{"device_id":9,"size":16777216,"transaction_id":1,"initialized":false,"deleted":false}', { mode: 0o600 });
  writeFileSync(join(f.root, 'metadata', 'e'.repeat(64)), '{"device_id":"x"}', { mode: 0o600 });
  const lock = RootLock.acquire(f.root, f.fake);
  try {
    const before = treeDigest(f.root);
    const err = await rejects(importDockerRoot(f.root, f.deps, opts()), DockerImportRefusedError);
    assert.is(err.code, 'EDOCKERIMPORT');
    const list = err.problems.map((p) => `${p.path.replace(f.root, 'ROOT')}: ${p.message}`);
    const e = `ROOT/metadata/${'e'.repeat(64)}#`;
    assert.equal(list, [
      `${e}/size: Expected required property`,
      `${e}/transaction_id: Expected required property`,
      `${e}/initialized: Expected required property`,
      `${e}/deleted: Expected required property`,
      `${e}/device_id: Expected integer`,
      `${e}/size: Expected integer`,
      `${e}/transaction_id: Expected integer`,
      `${e}/initialized: Expected boolean`,
      `${e}/deleted: Expected boolean`,
      `ROOT/devmapper.lock: is held by pid ${process.pid}: a DeviceSet has this root open`,
      'ROOT/metadata/bad name: cannot be a DeviceSet record: a device hash must start with a letter or digit and contain only letters, digits, "_", "." and "-"',
      `${f.prefix}-pool: is live with 1 opener(s): stop dockerd (or release its devices) first`,
    ]);
    assert.equal(treeDigest(f.root), before, 'nothing written');
  } finally {
    lock.release();
  }
  // The schema problems alone, without the others: the hash the DeviceSet refuses is listed too.
  rmSync(join(f.root, 'metadata', 'e'.repeat(64)));
  await f.deps.dm.deviceRemove(`${f.prefix}-${IMAGE}`);
  const before = treeDigest(f.root);
  const err = await rejects(importDockerRoot(f.root, f.deps, opts()), DockerImportRefusedError);
  assert.equal(
    err.problems.map((p) => `${p.path.replace(f.root, 'ROOT')}: ${p.message}`),
    [
      'ROOT/metadata/bad name: cannot be a DeviceSet record: a device hash must start with a letter or digit and contain only letters, digits, "_", "." and "-"',
    ],
  );
  assert.equal(treeDigest(f.root), before, 'nothing written');
});

t("open transaction: Docker's half-created device is left out and rolled back by the first open (delete, record gone)", async () => {
  await setup({ poolTransactionId: 3, openTransactionId: 4 });
  const r = await importDockerRoot(f.root, f.deps, opts());
  assert.equal(r.openTransaction, {
    openTransactionId: 4,
    deviceHash: CONTAINER,
    deviceId: 4,
    poolTransactionId: 3,
    recordLeftOut: true,
    note: `Docker's transaction 4 was open (the pool's is 3): it is rolled back as Docker's processPendingTransaction would (pool message "delete 4", ENODATA tolerated) by the first open of the set; ${CONTAINER}'s record was left out`,
  });
  assert.equal(r.devices.map((d) => d.id), ['base', IMAGE, INIT]);
  assert.ok(existsSync(join(f.root, 'metadata', 'transaction-metadata')));
  const set = await openSet(r.options);
  try {
    assert.equal(set.list().sort(), [INIT, IMAGE].sort());
    assert.not.ok(set.hasDevice(CONTAINER));
    assert.equal([...f.fake.pool(`${f.prefix}-pool`)!.thins.keys()].sort(), [1, 2, 3], 'thin 4 deleted from the pool');
    assert.not.ok(existsSync(join(f.root, 'metadata', 'transaction-metadata')));
  } finally {
    await set.shutdown();
  }
});

t("deferred-deleted device: carried as pending deletion (its thin id reserved) and deleted by the deletion pass", async () => {
  await setup({ deletedLayer: true });
  const r = await importDockerRoot(f.root, f.deps, opts());
  assert.equal(r.pendingDeletion, [DELETED]);
  assert.equal(r.devices.find((d) => d.id === DELETED)?.state, 'deleting');
  const set = await openSet(r.options);
  try {
    assert.is(set.deviceInfo(DELETED).deleted, true);
    assert.is(set.deviceInfo(DELETED).deviceId, 5);
    const d = await set.addDevice('other', IMAGE);
    assert.is(d.deviceId, 6, 'the pending thin id 5 is not reused');
    assert.equal(await set.cleanupDeleted(), []);
    assert.not.ok(set.hasDevice(DELETED));
    assert.not.ok(f.fake.pool(`${f.prefix}-pool`)!.thins.has(5), 'thin 5 deleted');
  } finally {
    await set.shutdown();
  }
});

t('restore: Docker records back byte for byte; ours kept aside; refused while a DeviceSet holds the root', async () => {
  await setup();
  const before = dockerTree();
  const r = await importDockerRoot(f.root, f.deps, opts());
  const set = await openSet(r.options);
  await rejects(Promise.resolve().then(() => restoreDockerRoot(f.root, { syscalls: f.fake })), DeviceSetLockedError);
  await set.shutdown();
  const back = restoreDockerRoot(f.root, { syscalls: f.fake, now: () => new Date('2026-12-07T00:00:00Z') });
  assert.equal(back, { root: f.root, dockerMetadata: STAMP, ourMetadata: 'metadata.devmapper-20261207T000000Z' });
  assert.equal(dockerTree().meta, before.meta, "Docker's metadata/ byte for byte");
  assert.equal(rootNames(), ['devicemapper', 'devmapper.lock', 'metadata', 'metadata.devmapper-20261207T000000Z']);
  // Not an imported root any more: restore refuses; the DeviceSet refuses Docker's records.
  const err = await rejects(Promise.resolve().then(() => restoreDockerRoot(f.root, { syscalls: f.fake })), DockerImportRefusedError);
  assert.match(err.message, /nothing to restore/);
  await rejects(openSet(r.options), MetadataCorruptError);
  // And it imports again.
  const r2 = await importDockerRoot(f.root, f.deps, opts({ now: () => new Date('2026-12-07T01:00:00Z') }));
  assert.is(r2.outcome, 'imported');
});

t('restore stopped between its renames: DeviceSet.init refuses (run restore again); restore again finishes', async () => {
  await setup();
  const before = dockerTree();
  const r = await importDockerRoot(f.root, f.deps, opts());
  let died = false;
  try {
    restoreDockerRoot(f.root, {
      syscalls: f.fake,
      now: () => NOW,
      crashPoint: (s) => {
        if (s === 'restore:before-rename-docker') throw new DeadFs(s);
      },
    });
  } catch (err) {
    if (!(err instanceof DeadFs)) throw err;
    died = true;
  }
  assert.ok(died);
  assert.not.ok(existsSync(join(f.root, 'metadata')));
  const err = await rejects(openSet(r.options), MetadataCorruptError);
  assert.match(err.message, /a 'devmapper docker restore' \(or import\) was interrupted; run 'devmapper docker restore /);
  assert.not.ok(existsSync(join(f.root, 'metadata')), 'DeviceSet.init created nothing');
  const back = restoreDockerRoot(f.root, { syscalls: f.fake });
  assert.equal(back, { root: f.root, dockerMetadata: STAMP, ourMetadata: 'metadata.devmapper-20261206T231000Z' });
  assert.equal(dockerTree(), before, "Docker's root byte for byte");
});

t('abort: an aborted signal stops the import before its renames; the staging dir is removed, Docker root as it was', async () => {
  await setup();
  const before = dockerTree();
  const pre = new AbortController();
  pre.abort();
  await rejects(importDockerRoot(f.root, f.deps, opts({ signal: pre.signal })), OperationAbortedError);
  assert.equal(rootNames(), ['devicemapper', 'metadata'], 'nothing created');
  for (const at of ['import:before-remove-stray', 'import:before-marker'] as const) {
    const ac = new AbortController();
    const err = await rejects(importDockerRoot(f.root, f.deps, opts({ signal: ac.signal, crashPoint: (s) => (s === at ? ac.abort() : undefined) })), OperationAbortedError);
    assert.is(err.code, 'EABORTED');
    assert.equal(rootNames(), ['devicemapper', 'devmapper.lock', 'metadata'], at);
    assert.equal(dockerTree(), before, at);
  }
});

t('a moved root: the recorded Docker prefix no longer matches and DeviceSet.init refuses', async () => {
  await setup();
  const r = await importDockerRoot(f.root, f.deps, opts());
  const file = join(f.root, 'metadata', 'deviceset-metadata');
  const rec = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...rec, namePrefix: 'docker-0:1-2' }));
  const err = await rejects(openSet(r.options), MetadataCorruptError);
  assert.match(err.message, /records the Docker name prefix "docker-0:1-2", but this root's is docker-/);
});

// ------------------------------------------------------------------------------ crash sweep

/** Counts every mutating file-system call; from step `stopAt` on, every call throws (a dead process). */
class CountingFs implements DockerImportFs {
  steps = 0;
  dead = false;
  constructor(readonly stopAt: number | undefined) {}
  #step(): void {
    if (this.dead || (this.stopAt !== undefined && this.steps >= this.stopAt)) {
      this.dead = true;
      throw new DeadFs('dead');
    }
    this.steps++;
  }
  mkdirSync(p: string, m: number): void { this.#step(); nodeDockerImportFs.mkdirSync(p, m); }
  openSync(p: string, fl: number, m?: number): number { this.#step(); return nodeDockerImportFs.openSync(p, fl, m); }
  writeSync(fd: number, d: Uint8Array, o: number, l: number): number { this.#step(); return nodeDockerImportFs.writeSync(fd, d, o, l); }
  fsyncSync(fd: number): void { this.#step(); nodeDockerImportFs.fsyncSync(fd); }
  closeSync(fd: number): void {
    try {
      this.#step();
    } finally {
      nodeDockerImportFs.closeSync(fd); // a dead process's fds are closed by the kernel
    }
  }
  renameSync(a: string, b: string): void { this.#step(); nodeDockerImportFs.renameSync(a, b); }
  unlinkSync(p: string): void { this.#step(); nodeDockerImportFs.unlinkSync(p); }
  rmdirSync(p: string): void { this.#step(); nodeDockerImportFs.rmdirSync(p); }
}

/** After a crash: Docker's root untouched, or a complete import; never anything else. */
function crashState(original: { meta: string; loop: string }): 'untouched' | 'between' | 'imported' {
  const names = rootNames();
  assert.equal(loopTree(false), original.loop, 'loop files untouched');
  if (names.includes('metadata') && !names.includes(STAMP)) {
    assert.equal(metaTree(), original.meta, "untouched: Docker's metadata/ byte for byte");
    assert.ok(names.every((n) => ['devicemapper', 'metadata', 'devmapper.lock', 'metadata.importing'].includes(n)), names.join(','));
    return 'untouched';
  }
  assert.equal(metaTree(STAMP), original.meta, "Docker's records kept byte for byte");
  if (!names.includes('metadata')) {
    assert.ok(existsSync(join(f.root, 'metadata.importing', '.docker-import.json')), 'between the renames: the staging dir is complete');
    return 'between';
  }
  assert.ok(existsSync(join(f.root, 'metadata', '.docker-import.json')));
  return 'imported';
}

async function checkOpens(options: readonly string[]): Promise<void> {
  const set = await openSet(options);
  try {
    assert.equal([IMAGE, INIT, CONTAINER, ''].map((h) => set.deviceInfo(h).deviceId), [2, 3, 4, 1]);
    assert.is(set.prefix, f.prefix);
  } finally {
    await set.shutdown();
  }
}

const measure = async (): Promise<number> => {
  await setup();
  const c = new CountingFs(undefined);
  await importDockerRoot(f.root, f.deps, opts({ fs: c }));
  f.fake.dispose();
  rmSync(f.root, { recursive: true, force: true });
  rmSync(f.target, { recursive: true, force: true });
  return c.steps;
};

for (const then of ['import', 'restore', 'init'] as const) {
  t(`crash sweep: a crash at every file-system step of the import, then ${then}`, async () => {
    const steps = await measure();
    assert.ok(steps > 20, `${steps} steps`);
    const seen = new Set<string>();
    for (let n = 0; n <= steps; n++) {
      await setup();
      try {
        // A stray staging dir of an even earlier crash, for the next import to remove.
        const original = dockerTree('metadata', false);
        let crashed = false;
        try {
          await importDockerRoot(f.root, f.deps, opts({ fs: new CountingFs(n) }));
        } catch (err) {
          if (!(err instanceof DeadFs)) throw err;
          crashed = true;
        }
        assert.is(crashed, n < steps, `step ${n}`);
        const state = crashState(original);
        seen.add(state);
        if (then === 'import') {
          const r = await importDockerRoot(f.root, f.deps, opts({ now: () => new Date('2026-12-06T23:20:00Z') }));
          assert.is(r.outcome, state === 'untouched' ? 'imported' : state === 'between' ? 'finished' : 'already-imported', `step ${n} (${state})`);
          await checkOpens(r.options);
        } else if (then === 'restore') {
          if (state === 'untouched') {
            await rejects(Promise.resolve().then(() => restoreDockerRoot(f.root, { syscalls: f.fake })), DockerImportRefusedError);
          } else {
            restoreDockerRoot(f.root, { syscalls: f.fake });
          }
          assert.equal(dockerTree('metadata', false), original, `step ${n} (${state}): restored byte for byte`);
          assert.not.ok(existsSync(join(f.root, 'metadata.importing')) && state === 'between', 'the unused staging dir is removed');
        } else if (state !== 'untouched') {
          // DeviceSet.init (every ds command, Driver.init) itself finishes an import stopped between the renames.
          const dir = state === 'between' ? 'metadata.importing' : 'metadata';
          const marker = JSON.parse(readFileSync(join(f.root, dir, '.docker-import.json'), 'utf8')) as { report: { options: string[] } };
          await checkOpens(marker.report.options);
          assert.ok(existsSync(join(f.root, 'metadata', '.docker-import.json')), 'rename 2 done');
        }
      } finally {
        f.fake.dispose();
        rmSync(f.root, { recursive: true, force: true });
        rmSync(f.target, { recursive: true, force: true });
      }
    }
    assert.equal([...seen].sort(), ['between', 'imported', 'untouched']);
    await setup(); // for after.each
  });
}

t('crash sweep: a crash hook at every named step; DeviceSet.init finishes an import stopped between the renames', async () => {
  for (const step of DOCKER_IMPORT_STEPS.filter((s) => s.startsWith('import:'))) {
    await setup();
    try {
      const original = dockerTree('metadata', false);
      const die = (s: DockerImportStep): void => {
        if (s === step) throw new DeadFs(s);
      };
      let crashed = false;
      let options: readonly string[] = [];
      try {
        options = (await importDockerRoot(f.root, f.deps, opts({ fs: new CountingFs(undefined), crashPoint: die }))).options;
      } catch (err) {
        if (!(err instanceof DeadFs)) throw err;
        crashed = true;
      }
      assert.ok(crashed, step);
      const state = crashState(original);
      assert.is(state, step === 'import:before-rename-ours' ? 'between' : step === 'import:before-unlock' ? 'imported' : 'untouched', step);
      if (state === 'between') {
        const marker = JSON.parse(readFileSync(join(f.root, 'metadata.importing', '.docker-import.json'), 'utf8')) as { report: { options: string[] } };
        options = marker.report.options;
        await checkOpens(options); // DeviceSet.init does rename 2
        assert.ok(existsSync(join(f.root, 'metadata', '.docker-import.json')), 'rename 2 done by DeviceSet.init');
      }
    } finally {
      f.fake.dispose();
      rmSync(f.root, { recursive: true, force: true });
      rmSync(f.target, { recursive: true, force: true });
    }
  }
  await setup();
});

t.run();
