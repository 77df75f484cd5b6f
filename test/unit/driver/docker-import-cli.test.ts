// SPDX-License-Identifier: MIT
// `devmapper docker import|restore` in-process on the FakeKernel's hand-built Docker root, and
// `ds status --root ROOT` on the imported root (it needs only the cli-options.json the import saved).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { SCHEMAS } from '../../../src/cli/schemas.js';
import type { CliDeviceSet, CliDm, CliLoop } from '../../../src/cli/context.js';
import { DeviceSet } from '../../../src/deviceset/index.js';
import { FAKE_FILESYSTEM_UUID, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { cli } from '../cli/harness.js';
import { CONTAINER, DEV, IMAGE, INIT, buildDockerRoot, treeDigest, type DockerFixture } from './docker-fixture.js';

const t = suite('cli: docker import/restore');
let f: DockerFixture;
t.before.each(async () => {
  f = await buildDockerRoot({ baseUuid: FAKE_FILESYSTEM_UUID });
});
t.after.each(() => {
  f.fake.dispose();
  rmSync(f.root, { recursive: true, force: true });
  rmSync(f.target, { recursive: true, force: true });
});
const deps = () => ({
  dm: () => f.deps.dm as unknown as CliDm,
  loop: () => f.deps.loops as unknown as CliLoop,
  mounts: () => [],
  openDeviceSet: async (root: string, options: readonly string[], log: (l: 'debug' | 'info' | 'warn' | 'error', m: string) => void, signal?: AbortSignal) =>
    (await DeviceSet.init(root, { ...fakeDeviceSetInit(f.fake, DEV), options: [...options], log, ...(signal ? { signal } : {}) })) as unknown as CliDeviceSet,
});

t('docker import --json: the report (schema-valid), cli-options.json saved; ds status --root opens the set', async () => {
  const r = await cli(['docker', 'import', '--json', f.root], deps());
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
  const j = JSON.parse(r.stdout) as { outcome: string; options: string[]; optionsSaved: boolean; devices: { id: string; deviceId: number }[]; dockerMetadata: string };
  assert.equal([...Value.Errors(SCHEMAS['docker import'], j)].map((e) => `${e.path}: ${e.message}`), []);
  assert.is(j.outcome, 'imported');
  assert.is(j.optionsSaved, true);
  assert.equal(j.devices.map((d) => [d.id, d.deviceId]), [['base', 1], [IMAGE, 2], [CONTAINER, 4], [INIT, 3]]);
  assert.equal(JSON.parse(readFileSync(join(f.root, 'cli-options.json'), 'utf8')), { formatVersion: 1, options: j.options });

  const s = await cli(['ds', 'status', '--json', '--root', f.root], deps());
  assert.is(s.code, 0, s.stderr);
  const st = JSON.parse(s.stdout) as { poolName: string };
  assert.is(st.poolName, `${f.prefix}-pool`);

  // Again: already imported, the options file kept.
  const again = await cli(['docker', 'import', f.root], deps());
  assert.is(again.code, 0);
  assert.is(again.stdout.split('\n')[0], `already imported: ${f.root}`);
});

t('docker import of a broken root: EDOCKERIMPORT, exit 1, nothing written; docker restore of a Docker root refused', async () => {
  rmSync(join(f.root, 'metadata', 'deviceset-metadata'));
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(f.root, 'metadata', 'x y'), '{}');
  const before = treeDigest(f.root);
  const r = await cli(['docker', 'import', f.root], deps());
  assert.is(r.code, 1);
  assert.ok(r.stderr.startsWith(`devmapper: EDOCKERIMPORT: Docker root ${f.root} cannot be imported or restored (11 problems); nothing was written: ${f.root}/metadata/x y#/device_id: Expected required property;`), r.stderr);
  assert.equal(treeDigest(f.root), before);
  const x = await cli(['docker', 'restore', f.root], deps());
  assert.is(x.code, 1);
  assert.match(x.stderr, /nothing to restore/);
});

t('docker restore: Docker records back, message names where ours went', async () => {
  const meta = JSON.stringify(treeDigest(join(f.root, 'metadata')));
  assert.is((await cli(['docker', 'import', f.root], deps())).code, 0);
  const r = await cli(['docker', 'restore', f.root], deps());
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^restored Docker's records of .* from metadata\.docker-\d{8}T\d{6}Z; the DeviceSet's records are kept in metadata\.devmapper-\d{8}T\d{6}Z\n$/);
  assert.is(JSON.stringify(treeDigest(join(f.root, 'metadata'))), meta);
});

t.run();
