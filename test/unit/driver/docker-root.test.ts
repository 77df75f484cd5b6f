// SPDX-License-Identifier: MIT
// Reading a Docker devicemapper root: Docker's records and names, every problem listed at once,
// nothing written, no link followed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerRootInvalidError, dockerPrefixFor, openTransactionOf, readDockerRoot } from '../../../src/driver/index.js';
import { BASE_UUID, CONTAINER, IMAGE, INIT, MiB, buildDockerRoot, deviceJson, treeDigest, type DockerFixture } from './docker-fixture.js';

const t = suite('driver/docker-root: read');
let f: DockerFixture;
t.before.each(async () => {
  f = await buildDockerRoot();
});
t.after.each(() => {
  f.fake.dispose();
  rmSync(f.root, { recursive: true, force: true });
  rmSync(f.target, { recursive: true, force: true });
});

t("Docker's records, names and superblock, base first", () => {
  const before = treeDigest(f.root);
  const r = readDockerRoot(f.root);
  assert.is(r.prefix, f.prefix);
  assert.ok(/^docker-\d+:\d+-\d+$/.test(r.prefix));
  assert.is(r.poolName, `${f.prefix}-pool`);
  assert.is(r.externalPool, false);
  assert.is(r.dataFile, join(f.root, 'devicemapper', 'data'));
  assert.is(r.metadataFile, join(f.root, 'devicemapper', 'metadata'));
  assert.equal(r.superblock, { kind: 'thin', dataBlockSize: 128, transactionId: 4 });
  assert.equal(r.deviceSet, { nextDeviceId: 4, baseDeviceUuid: BASE_UUID, baseDeviceFilesystem: 'ext4' });
  assert.equal(r.transaction, { openTransactionId: 4, deviceHash: CONTAINER, deviceId: 4 });
  const size = 16 * MiB;
  assert.equal(
    r.devices.map((d) => [d.id, d.hash, d.deviceId, d.size, d.transactionId, d.initialized, d.deleted, d.dmName]),
    [
      ['base', '', 1, size, 1, true, false, `${f.prefix}-base`],
      [IMAGE, IMAGE, 2, size, 2, false, false, `${f.prefix}-${IMAGE}`],
      [CONTAINER, CONTAINER, 4, size, 4, false, false, `${f.prefix}-${CONTAINER}`],
      [INIT, INIT, 3, size, 3, false, false, `${f.prefix}-${INIT}`],
    ],
  );
  assert.equal(openTransactionOf(r, 4, 'superblock'), undefined, 'open == pool: committed');
  assert.equal(treeDigest(f.root), before, 'nothing under the root changed');
});

t("Docker's prefix split of st_dev (deviceset.go major()/minor())", () => {
  assert.is(dockerPrefixFor({ dev: (8n << 8n) | 1n, ino: 131073n }), 'docker-8:1-131073');
  // minor 300 = low byte 0x2c + bits 8.. in dev bits 20..: (300 & 0xff) | ((300 & ~0xff) << 12)
  assert.is(dockerPrefixFor({ dev: (259n << 8n) | 44n | (256n << 12n), ino: 2n }), 'docker-259:300-2');
});

t('skips what Docker skips (.tmp files, *.migrated)', () => {
  writeFileSync(join(f.root, 'metadata', '.tmp123456'), '{half');
  writeFileSync(join(f.root, 'metadata', 'json.migrated'), 'old');
  const r = readDockerRoot(f.root);
  assert.equal(r.skipped, ['.tmp123456', 'json.migrated']);
  assert.is(r.devices.length, 4);
});

t('every problem in one typed error', () => {
  const md = join(f.root, 'metadata');
  writeFileSync(join(md, 'broken'), '{"device_id":5,');
  writeFileSync(join(md, 'nosize'), '{"device_id":6,"transaction_id":5,"initialized":false,"deleted":false}');
  writeFileSync(join(md, 'dup'), deviceJson(2, 16 * MiB, 5, false));
  writeFileSync(join(md, 'bigid'), deviceJson(0x1000000, 16 * MiB, 5, false));
  symlinkSync('/etc/passwd', join(md, 'linked'));
  mkdirSync(join(md, 'subdir'));
  writeFileSync(join(md, 'transaction-metadata'), '{"open_transaction_id":"4","device_hash":"x","device_id":4}');
  unlinkSync(join(f.root, 'devicemapper', 'metadata'));
  let err: unknown;
  try {
    readDockerRoot(f.root);
  } catch (e) {
    err = e;
  }
  assert.instance(err, DockerRootInvalidError);
  const e = err as DockerRootInvalidError;
  assert.is(e.code, 'EDOCKERROOT');
  const rel = (p: string): string => p.replace(`${f.root}/`, '');
  assert.equal(
    e.problems.map((p) => `${rel(p.path)}: ${p.message}`),
    [
      'devicemapper: has data but no metadata file',
      'metadata/bigid#/device_id: Expected integer to be less or equal to 16777215',
      'metadata/broken: is not JSON: ' + (() => { try { JSON.parse('{"device_id":5,'); } catch (x) { return (x as Error).message; } return ''; })(),
      `metadata/linked: unsafe path ${md}/linked: found a symbolic link, expected a real file (links are not followed)`,
      "metadata/nosize#/size: Expected required property",
      'metadata/nosize#/size: Expected integer',
      'metadata/subdir: is a directory; metadata/ holds only record files',
      'metadata/transaction-metadata#/open_transaction_id: Expected integer',
      `metadata/dup: has thin id 2, as has ${IMAGE}`,
    ],
  );
});

t('a symbolic link as the loop directory is refused, not followed', () => {
  rmSync(join(f.root, 'devicemapper'), { recursive: true });
  symlinkSync('/tmp', join(f.root, 'devicemapper'));
  try {
    readDockerRoot(f.root);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DockerRootInvalidError);
    assert.equal((e as DockerRootInvalidError).problems.map((p) => p.message), ['is a symbolic link (links are not followed)']);
  }
});

t("Docker's open transaction above the pool's is reported, not rolled back", () => {
  writeFileSync(join(f.root, 'metadata', 'transaction-metadata'), `{"open_transaction_id":5,"device_hash":"${CONTAINER}","device_id":4}`);
  const before = treeDigest(f.root);
  const r = readDockerRoot(f.root);
  const open = openTransactionOf(r, 4, 'superblock');
  assert.equal(open, {
    openTransactionId: 5,
    deviceHash: CONTAINER,
    deviceId: 4,
    poolTransactionId: 4,
    poolTransactionFrom: 'superblock',
    rolledBack: false,
    note: `Docker's transaction 5 is open (the pool's is 4): dockerd rolls it back at its next start (deletes thin id 4 and metadata/${CONTAINER}); read-only mode did not roll it back`,
  });
  assert.equal(treeDigest(f.root), before);
});

t('an external pool (dm.thinpooldev) root has no loop files', () => {
  rmSync(join(f.root, 'devicemapper'), { recursive: true });
  const r = readDockerRoot(f.root, { thinPoolDev: '/dev/mapper/docker-thinpool' });
  assert.is(r.poolName, 'docker-thinpool');
  assert.is(r.externalPool, true);
  assert.is(r.dataFile, null);
  assert.is(r.superblock, null);
  try {
    readDockerRoot(f.root);
    assert.unreachable();
  } catch (e) {
    assert.equal((e as DockerRootInvalidError).problems.map((p) => p.message), ['has no data and metadata loop files: for a root made with dm.thinpooldev, name the pool']);
  }
});

t.run();
