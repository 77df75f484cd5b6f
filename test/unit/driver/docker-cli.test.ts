// SPDX-License-Identifier: MIT
// `devmapper docker ls|mount|unmount` in-process on the FakeKernel's hand-built Docker root.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { SCHEMAS } from '../../../src/cli/schemas.js';
import type { CliDm, CliLoop } from '../../../src/cli/context.js';
import { cli } from '../cli/harness.js';
import { CONTAINER, IMAGE, INIT, buildDockerRoot, treeDigest, type DockerFixture } from './docker-fixture.js';

const t = suite('cli: docker');
let f: DockerFixture;
t.before.each(async () => {
  f = await buildDockerRoot();
});
t.after.each(() => {
  f.fake.dispose();
  rmSync(f.root, { recursive: true, force: true });
  rmSync(f.target, { recursive: true, force: true });
});
const deps = () => ({ dm: () => f.deps.dm as unknown as CliDm, loop: () => f.deps.loops as unknown as CliLoop, mounts: () => [] });

t('docker ls: the records, the pool and its transaction id (from the superblock)', async () => {
  const before = treeDigest(f.root);
  const r = await cli(['docker', 'ls', f.root], deps());
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
  assert.is(
    r.stdout,
    [
      `Root:            ${f.root}`,
      `Pool:            ${f.prefix}-pool (not live)`,
      'Transaction Id:  4',
      'Base Device:     ext4 5b1f3e6c-3a52-4d2a-9a0e-2f0b9c1d7e11',
      '',
      'ID                                                                     THIN ID  SIZE  TXID  STATE',
      'base                                                                   1        16M   1     -',
      `${IMAGE}       2        16M   2     -`,
      `${CONTAINER}       4        16M   4     -`,
      `${INIT}  3        16M   3     -`,
      '',
    ].join('\n'),
  );
  const j = await cli(['docker', 'ls', '--json', f.root], deps());
  const v = JSON.parse(j.stdout) as { devices: { id: string; deviceId: number }[] };
  assert.equal([...Value.Errors(SCHEMAS['docker ls'], v)].map((e) => `${e.path}: ${e.message}`), []);
  assert.equal(v.devices.map((d) => [d.id, d.deviceId]), [['base', 1], [IMAGE, 2], [CONTAINER, 4], [INIT, 3]]);
  assert.equal(treeDigest(f.root), before);
});

t('docker ls of a broken root: every problem, EDOCKERROOT, exit 1', async () => {
  writeFileSync(join(f.root, 'metadata', 'x'), '{}');
  const r = await cli(['docker', 'ls', f.root], deps());
  assert.is(r.code, 1);
  assert.is(r.stdout, '');
  assert.ok(r.stderr.startsWith(`devmapper: EDOCKERROOT: ${f.root} is not a readable Docker devicemapper root (10 problems): ${f.root}/metadata/x#/device_id: Expected required property;`), r.stderr);
});

t('docker mount of an unknown layer: EDOCKERLAYER, exit 3, nothing activated', async () => {
  const r = await cli(['docker', 'mount', f.root, 'nope', f.target], deps());
  assert.is(r.code, 3);
  assert.is(r.stderr.split('\n')[0], `devmapper: EDOCKERLAYER: Docker layer 'nope' of ${f.root} has no record under metadata/`);
  assert.equal(f.fake.devices(), []);
});

t.run();
