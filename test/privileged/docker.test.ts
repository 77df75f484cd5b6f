// SPDX-License-Identifier: MIT
// The Docker-root tools against the real Docker (issue #15 part 2), in one dockerd cycle:
// Debian's dockerd 20.10 (devicemapper graph driver over libdevmapper, udev sync on) builds a
// loop-lvm root, imports a tarball with known files (the image layer), creates a container (its
// -init and container layers) and `docker cp` writes a known file into the container layer;
// dockerd stops (it removes its pool). Then, with nothing of Docker running:
// - `devmapper docker ls --json ROOT` lists exactly the thin ids thin_dump finds in the pool's
//   metadata (an independent oracle), under the names dockerd itself reported (GraphDriver.Data);
// - `devmapper docker mount` of the image and the container layer shows the known files with
//   identical sha256 (and the image layer does not have the file copied into the container);
// - `devmapper docker unmount` releases everything (no dm device, no loop device left);
// - every file of Docker's data root hashes the same before and after.
// Docker must be installed (scripts/setup.sh): a missing docker fails this suite, never skips it.
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { devmapperCli, knownFiles, missingDockerTools, removeDmDevices, rootDigest, sh, sha256, startDockerd, sum, udevSettleIfRunning, type Dockerd } from '../helpers/dockerd.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('docker roots (real dockerd 20.10)'));

/** sha256 of a (small) file: the known files as they show in a mounted layer. */

/** The CLI in-process (real deps), its output captured. */

const t0 = Date.now();
/** A progress line on the console (the VM run shows where a slow TCG guest is). */
const step = (what: string): void => console.log(`  docker.test: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

test('dockerd builds a root; docker ls = thin_dump; read-only mounts show the files; nothing changed', async () => {
  const missing = missingDockerTools();
  assert.equal(missing, [], `Docker's tools are missing (scripts/setup.sh installs docker.io, containerd, runc): ${missing.join(', ')}`);

  const dir = join(testTmpDir(), 'docker');
  const dataRoot = join(dir, 'data');
  const root = join(dataRoot, 'devicemapper');
  mkdirSync(dir, { recursive: true });

  const { files, tar, added, addedPath } = knownFiles(dir);

  let d: Dockerd | undefined;
  let passed = false;
  try {
    d = await startDockerd({ dataRoot, execRoot: '/run/dmtest-delme-docker', storageOpts: ['dm.loopdatasize=1G', 'dm.basesize=512M'] });
    const docker = d.docker;
    step('dockerd is up');
    const info = d.info();
    assert.equal(info.filter(([k]) => k === 'Udev Sync Supported'), [['Udev Sync Supported', 'true']], JSON.stringify(info));
    docker('import', tar, 'dmtest-delme:1');
    const ctr = docker('create', '--name', 'dmtest-delme', 'dmtest-delme:1', '/nonexistent');
    docker('cp', addedPath, `${ctr}:/added.bin`);
    const imageData = JSON.parse(docker('image', 'inspect', '--format', '{{json .GraphDriver.Data}}', 'dmtest-delme:1')) as Record<string, string>;
    const ctrData = JSON.parse(docker('container', 'inspect', '--format', '{{json .GraphDriver.Data}}', ctr)) as Record<string, string>;
    step('image, container and docker cp done; stopping dockerd');
    const code = await d.stop();
    assert.is(code, 0, `dockerd stopped with ${code}:\n${d.log()}`);

    // Docker's names, as dockerd reported them: `<prefix>-<hash>`.
    const ls0 = await devmapperCli(['docker', 'ls', '--json', root]);
    assert.is(ls0.stderr, '');
    assert.is(ls0.code, 0);
    const report = JSON.parse(ls0.stdout) as { prefix: string; poolLive: boolean; openTransaction: unknown; devices: { id: string; deviceId: number; dmName: string; deleted: boolean; mountedAt: string[] }[] };
    const byName = new Map(report.devices.map((d) => [d.dmName, d]));
    const image = byName.get(imageData['DeviceName']!);
    const container = byName.get(ctrData['DeviceName']!);
    assert.ok(image, `docker ls has no ${imageData['DeviceName']}: ${ls0.stdout}`);
    assert.ok(container, `docker ls has no ${ctrData['DeviceName']}: ${ls0.stdout}`);
    assert.is(String(image.deviceId), imageData['DeviceId']);
    assert.is(String(container.deviceId), ctrData['DeviceId']);
    assert.is(report.poolLive, false, 'dockerd removed its pool');
    assert.is(report.openTransaction, null);
    assert.equal(report.devices.map((d) => d.id).sort(), ['base', image.id, container.id, `${container.id}-init`].sort());

    // docker ls lists exactly the thin ids in the pool's metadata (thin_dump reads the file).
    // thin_dump opens with O_DIRECT, which tmpfs (the guest's /tmp) refuses: give it a read-only
    // loop device over the file (losetup, not our LoopControl: an independent path).
    const metaLoop = sh('losetup', ['--find', '--show', '--read-only', join(root, 'devicemapper', 'metadata')]).trim();
    let dump: string;
    try {
      dump = sh('thin_dump', [metaLoop]);
    } finally {
      sh('losetup', ['--detach', metaLoop]);
      // udev may still hold the loop device it probed, which would defer the detach: wait for it.
      udevSettleIfRunning();
    }
    assert.is(sh('losetup', ['-j', join(root, 'devicemapper', 'metadata')]).trim(), '', 'the read-only loop device is gone');
    const thinIds = [...dump.matchAll(/<device dev_id="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    assert.equal(report.devices.map((d) => d.deviceId).sort((a, b) => a - b), thinIds, dump.slice(0, 2000));

    step('docker ls matches thin_dump; hashing the data root');
    const before = rootDigest(dataRoot);
    step('mounting');
    const mntImage = join(dir, 'mnt-image');
    const mntCtr = join(dir, 'mnt-ctr');
    mkdirSync(mntImage);
    mkdirSync(mntCtr);
    const m1 = await devmapperCli(['docker', 'mount', root, image.id, mntImage]);
    assert.is(m1.code, 0, m1.stderr);
    const m2 = await devmapperCli(['docker', 'mount', root, container.id, mntCtr]);
    assert.is(m2.code, 0, m2.stderr);
    try {
      const ls1 = JSON.parse((await devmapperCli(['docker', 'ls', '--json', root])).stdout) as typeof report;
      assert.equal(ls1.devices.filter((d) => d.mountedAt.length > 0).map((d) => [d.id, d.mountedAt]).sort(), [[image.id, [mntImage]], [container.id, [mntCtr]]].sort());
      // Docker's layer layout: <fs>/rootfs/ holds the layer's tree (driver.go Get).
      for (const [name, data] of Object.entries(files)) {
        assert.is(sha256(join(mntImage, 'rootfs', name)), sum(data), `image layer ${name}`);
        assert.is(sha256(join(mntCtr, 'rootfs', name)), sum(data), `container layer ${name}`);
      }
      assert.is(sha256(join(mntCtr, 'rootfs', 'added.bin')), sum(added), 'docker cp wrote the container layer');
      assert.is(existsSync(join(mntImage, 'rootfs', 'added.bin')), false, 'the image layer does not see it');
      // Read-only all the way down.
      assert.throws(() => writeFileSync(join(mntCtr, 'rootfs', 'x'), 'x'), /EROFS/);
    } finally {
      const u1 = await devmapperCli(['docker', 'unmount', root, image.id, mntImage]);
      const u2 = await devmapperCli(['docker', 'unmount', root, container.id, mntCtr]);
      assert.is(u1.code, 0, u1.stderr);
      assert.is(u2.code, 0, u2.stderr);
    }
    assert.is(isMounted(mntImage) || isMounted(mntCtr), false);
    assert.is(sh('dmsetup', ['ls']).split('\n').filter((l) => l.startsWith(`${report.prefix}-`)).join('\n'), '', 'no device of the root left');
    assert.is(sh('losetup', ['-j', join(root, 'devicemapper', 'data')]).trim(), '', 'no loop device left on the data file');
    step('unmounted; hashing the data root again');
    assert.equal(rootDigest(dataRoot), before, "no file of Docker's data root changed");
    passed = true;
  } finally {
    if (!passed && d !== undefined) console.log(`dockerd's log:\n${d.log().slice(-6000)}`);
    await d?.close();
    // A failed run may leave the root's devices: remove them (never anything else).
    try {
      removeDmDevices('docker-');
    } catch {
      // the sweep reports what is left
    }
  }
});

test.run();
