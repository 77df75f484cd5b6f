// SPDX-License-Identifier: MIT
// Importing a root built by the real Docker (issue #15 part 2), in one dockerd cycle: Debian's
// dockerd 20.10 (devicemapper graph driver over libdevmapper) builds a loop-lvm root, imports a
// tarball with known files, creates a container, `docker cp` writes a known file into the
// container layer, and stops (removing its pool). Then, with nothing of Docker running:
// - `devmapper docker import --json ROOT` converts it in place (Docker's metadata/ kept byte for
//   byte as metadata.docker-<time>; the loop files untouched by the import itself);
// - `devmapper ds status --json --root ROOT` opens it (cli-options.json saved by the import), the
//   pool under Docker's own name;
// - `Driver.init(ROOT, {doInit: false})` opens it; `get` of the container layer shows the known
//   files with identical sha256; `create` of a new layer on top, `get` + write + `put` of it;
//   `cleanup` releases everything;
// - `thin_check` of the pool metadata is clean and `thin_dump` shows Docker's thin ids plus the
//   new one;
// - `docker info`'s devicemapper fields, read just before dockerd stopped, and our
//   `Driver.status()` on the imported root (the same pool, the same files, the same kernel names)
//   agree field by field (sameStatus says which fields and why the rest cannot).
// Docker must be installed (scripts/setup.sh): a missing docker fails this suite, never skips it.
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Driver } from '../../src/driver/index.js';
import { devmapperCli, knownFiles, missingDockerTools, removeDmDevices, sh, sha256, startDockerd, sum, thinDumpIds, type Dockerd } from '../helpers/dockerd.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';
import { treeDigest } from '../helpers/tree-digest.js';

const test = withSweep(privilegedSuite('docker import (real dockerd 20.10)'));

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = join(repo, 'bin/devmapper.js');

/** The CLI in-process (real deps), its output captured. */

const t0 = Date.now();
const step = (what: string): void => console.log(`  docker-import.test: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

/** thin_check and thin_dump of the metadata file through a read-only loop device (they open with O_DIRECT, which tmpfs refuses). */

/**
 * docker info's DriverStatus (read before dockerd stopped) against our Driver.status() on the
 * same pool after the import, field by field. Docker appends `Library Version` (libdevmapper's
 * dm_get_library_version; there is no libdevmapper here). Every other value must be equal, Pool
 * Name included (the import keeps Docker's `docker-MAJ:MIN-INO` prefix), Data/Metadata Space Used
 * too (nothing was written to the pool between the two reads), except:
 * - Data file / Metadata file: each one's /dev/loopN, the devices dockerd detached on stop and ours
 *   attached since (the numbers may be reused or not);
 * - Data/Metadata Space Available: Docker (and we, as Docker) cap each one by the free space of
 *   the file system holding its loop file (deviceset.go Status, f_bfree), the guest's tmpfs /tmp,
 *   whose free space changes between the reads (the import's records, the CLI run).
 */
function sameStatus(docker: readonly (readonly [string, string])[], ours: readonly (readonly [string, string])[], root: string): void {
  assert.equal(docker.map(([k]) => k), [...ours.map(([k]) => k), 'Library Version'], `the keys and their order:\n${JSON.stringify(docker)}\n${JSON.stringify(ours)}`);
  const loose = new Set(['Data file', 'Metadata file', 'Data Space Available', 'Metadata Space Available']);
  const strict = ours.filter(([k]) => !loose.has(k));
  assert.equal(strict, docker.filter(([k]) => k !== 'Library Version' && !loose.has(k)), 'every value but the loop device numbers and the capped Available');
  const o = new Map(ours);
  const dk = new Map(docker);
  for (const m of [o, dk]) {
    assert.match(m.get('Data file') ?? '', /^\/dev\/loop\d+$/);
    assert.match(m.get('Metadata file') ?? '', /^\/dev\/loop\d+$/);
  }
  assert.is(o.get('Data loop file'), join(root, 'devicemapper', 'data'));
  assert.is(o.get('Metadata loop file'), join(root, 'devicemapper', 'metadata'));
}

test('dockerd builds a root; import; ds status; Driver get shows the files; create/put a layer; thin_check clean', async () => {
  const missing = missingDockerTools();
  assert.equal(missing, [], `Docker's tools are missing (scripts/setup.sh installs docker.io, containerd, runc): ${missing.join(', ')}`);

  const dir = join(testTmpDir(), 'docker-import');
  const dataRoot = join(dir, 'data');
  const root = join(dataRoot, 'devicemapper');
  mkdirSync(dir, { recursive: true });
  const { files, tar, added, addedPath } = knownFiles(dir);

  let d: Dockerd | undefined;
  let driver: Driver | undefined;
  let passed = false;
  try {
    d = await startDockerd({ dataRoot, execRoot: '/run/dmtest-delme-docker-import', storageOpts: ['dm.loopdatasize=1G', 'dm.basesize=512M'] });
    step('dockerd is up');
    d.docker('import', tar, 'dmtest-delme:1');
    const ctr = d.docker('create', '--name', 'dmtest-delme-import', 'dmtest-delme:1', '/nonexistent');
    d.docker('cp', addedPath, `${ctr}:/added.bin`);
    const imageData = JSON.parse(d.docker('image', 'inspect', '--format', '{{json .GraphDriver.Data}}', 'dmtest-delme:1')) as Record<string, string>;
    const ctrData = JSON.parse(d.docker('container', 'inspect', '--format', '{{json .GraphDriver.Data}}', ctr)) as Record<string, string>;
    const dockerInfo = d.info();
    step('image, container and docker cp done; stopping dockerd');
    const code = await d.stop();
    assert.is(code, 0, `dockerd stopped with ${code}:\n${d.log()}`);

    const ls = JSON.parse((await devmapperCli(['docker', 'ls', '--json', root])).stdout) as { prefix: string; devices: { id: string; deviceId: number; dmName: string }[] };
    const prefix = ls.prefix;
    const image = ls.devices.find((x) => x.dmName === imageData['DeviceName'])!;
    const container = ls.devices.find((x) => x.dmName === ctrData['DeviceName'])!;
    assert.ok(image && container, JSON.stringify(ls));
    const dockerIds = ls.devices.map((x) => [x.id, x.deviceId] as const).sort();
    const dockerMeta = treeDigest(join(root, 'metadata'));

    // The import.
    const imp = await devmapperCli(['docker', 'import', '--json', root]);
    assert.is(imp.code, 0, imp.stderr);
    assert.is(imp.stderr, '');
    const r = JSON.parse(imp.stdout) as { outcome: string; prefix: string; dockerMetadata: string; options: string[]; openTransaction: unknown; devices: { id: string; deviceId: number; state: string }[] };
    assert.is(r.outcome, 'imported');
    assert.is(r.prefix, prefix);
    assert.is(r.openTransaction, null, 'dockerd stopped cleanly: no open transaction');
    assert.equal(r.devices.map((x) => [x.id, x.deviceId] as const).sort(), dockerIds);
    assert.equal(treeDigest(join(root, r.dockerMetadata)), dockerMeta, "Docker's metadata/ kept byte for byte");
    assert.ok(existsSync(join(root, 'cli-options.json')));
    step(`imported (${r.options.join(' ')}); ds status`);

    // A process of its own: a `ds` command never shuts its set down, its exit releases the lock
    // (the pool stays live, and the Driver below adopts it).
    const status = JSON.parse(sh(process.execPath, [BIN, 'ds', 'status', '--json', '--root', root])) as { poolName: string };
    assert.is(status.poolName, `${prefix}-pool`, "the pool keeps Docker's name");

    // The Driver on the imported root.
    driver = await Driver.init(root, { doInit: false, options: r.options });
    assert.is(driver.deviceSet.prefix, prefix);
    sameStatus(dockerInfo, await driver.status(), root);
    const meta = await driver.getMetadata(container.id);
    assert.equal(meta, { DeviceId: String(container.deviceId), DeviceSize: ctrData['DeviceSize'], DeviceName: ctrData['DeviceName'] });
    const rootfs = await driver.get(container.id);
    assert.is(rootfs, join(root, 'mnt', container.id, 'rootfs'));
    for (const [name, data] of Object.entries(files)) assert.is(sha256(join(rootfs, name)), sum(data), `container layer ${name}`);
    assert.is(sha256(join(rootfs, 'added.bin')), sum(added), "docker cp's file");
    await driver.put(container.id);
    const img = await driver.get(image.id);
    assert.is(existsSync(join(img, 'added.bin')), false, 'the image layer does not have it');
    await driver.put(image.id);

    const layer = 'dmtest-delme-layer';
    await driver.create(layer, container.id);
    const fresh = await driver.get(layer);
    assert.is(sha256(join(fresh, 'added.bin')), sum(added), 'the new layer is a snapshot of the container layer');
    const note = randomBytes(64 * 1024);
    writeFileSync(join(fresh, 'note.bin'), note);
    await driver.put(layer);
    const again = await driver.get(layer);
    assert.is(sha256(join(again, 'note.bin')), sum(note));
    await driver.put(layer);
    const newId = (await driver.getMetadata(layer)).DeviceId;
    await driver.cleanup();
    driver = undefined;
    step('driver cleanup done; thin_check');

    assert.is(sh('dmsetup', ['ls']).split('\n').filter((l) => l.startsWith(`${prefix}-`)).join('\n'), '', 'no device of the root left');
    assert.is(sh('losetup', ['-j', join(root, 'devicemapper', 'data')]).trim(), '', 'no loop device left on the data file');
    const thinIds = thinDumpIds(join(root, 'devicemapper', 'metadata'), { check: true });
    assert.equal(thinIds, [...dockerIds.map(([, id]) => id), Number(newId)].sort((a, b) => a - b), 'thin_dump: Docker ids plus the new layer');
    assert.equal(readdirSync(root).sort(), ['cli-options.json', 'devicemapper', 'devmapper.lock', 'metadata', 'mnt', r.dockerMetadata].sort());
    passed = true;
  } finally {
    if (!passed && d !== undefined) console.log(`dockerd's log:\n${d.log().slice(-6000)}`);
    if (driver) await driver.cleanup().catch(() => undefined);
    await d?.close();
    try {
      removeDmDevices('docker-');
    } catch {
      // the sweep reports what is left
    }
  }
});

test.run();
