// SPDX-License-Identifier: MIT
// The Docker-root tools against the real Docker (issue #15 part 3), the variants docker.test.ts
// does not cover, in two dockerd cycles (test/helpers/dockerd.ts):
//
// Cycle A: an xfs root (dm.fs=xfs, dm.basesize=300M: mkfs.xfs refuses smaller) with deferred
// removal and deferred deletion on. A container is `docker rm`ed while the test holds its device
// open (the test activates it under Docker's own name and keeps an fd on /dev/mapper/<name>):
// dockerd's deferred remove leaves the device to the last close, the pool's `delete` answers EBUSY
// (dm-thin __delete_device: td->open_count), so dockerd writes `"deleted":true` into the record
// (deviceset.go markForDeferredDeletion) and counts it. A brand-new loop-lvm root does not start
// the deletion worker before the next daemon start, so the device stays in the pool. Then:
// - `docker info`'s DriverStatus against our Driver.status() on our own loop-lvm home built with
//   the same dm.* options, field by field (see compareStatus for what must agree and why the rest
//   differs);
// - with dockerd stopped, `docker ls` = thin_dump's thin ids, the removed container listed
//   `deleted`, `docker mount` of it refused with EDOCKERLAYER (exit 3) and nothing activated;
//   the image and the kept container layer mount read-only (xfs, nouuid) with the known files.
// Cycle B: a dm.thinpooldev root: the test builds a thin-pool with dmsetup over two loop devices,
// dockerd takes it over (ext4), and `docker ls --pool` / `docker mount --pool` work on it while the
// pool stays live (Docker never removes an external pool); thin_dump after the test removed it.
// In both: every file of Docker's data root hashes the same before and after our tools ran.
// Docker must be installed (scripts/setup.sh): a missing docker fails this suite, never skips it.
import * as assert from 'uvu/assert';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Driver, type DriverStatusPair } from '../../src/driver/index.js';
import { devmapperCli, knownFiles, missingDockerTools, removeDmDevices, rootDigest, sh, sha256, startDockerd, sum, thinDumpIds, udevSettleIfRunning, type Dockerd, type KnownFiles } from '../helpers/dockerd.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('docker roots: xfs, deferred deletion, thinpooldev, docker info (real dockerd 20.10)'));


const t0 = Date.now();
/** A progress line on the console (the VM run shows where a slow TCG guest is). */
const step = (what: string): void => console.log(`  docker-variants.test: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

/** The CLI in-process (real deps), its output captured. */

interface LsJson {
  prefix: string;
  poolName: string;
  poolLive: boolean;
  baseDeviceFilesystem: string | null;
  openTransaction: unknown;
  devices: { id: string; deviceId: number; dmName: string; deleted: boolean; active: boolean; mountedAt: string[] }[];
}

async function dockerLs(root: string, extra: string[] = []): Promise<LsJson> {
  const r = await devmapperCli(['docker', 'ls', '--json', ...extra, root]);
  assert.is(r.stderr, '');
  assert.is(r.code, 0);
  return JSON.parse(r.stdout) as LsJson;
}

const dmNames = (): string[] => sh('dmsetup', ['ls']).split('\n').map((l) => l.split('\t')[0] ?? '').filter((n) => n !== '' && n !== 'No devices found');
const byNumber = (a: number, b: number): number => a - b;
const isMountPoint = (path: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);

/** thin_dump's thin ids of a metadata block device (or file, through a read-only loop: tmpfs refuses O_DIRECT). */


/**
 * Mounts the image layer and a container layer read-only with our CLI, checks the known files by
 * sha256 (and that the image lacks the copied file), unmounts both.
 */
async function mountAndCheck(
  root: string,
  dir: string,
  extra: string[],
  layers: { image: LsJson['devices'][number]; container: LsJson['devices'][number] },
  known: KnownFiles,
  fs: 'xfs' | 'ext4',
): Promise<void> {
  const mntImage = join(dir, 'mnt-image');
  const mntCtr = join(dir, 'mnt-ctr');
  mkdirSync(mntImage);
  mkdirSync(mntCtr);
  const opts = fs === 'xfs' ? 'nouuid' : '';
  const m1 = await devmapperCli(['docker', 'mount', ...extra, root, layers.image.id, mntImage]);
  assert.is(m1.stderr, `mounted ${layers.image.dmName} (${fs}, read-only${opts ? `, ${opts}` : ''}) at ${mntImage}\n`);
  assert.is(m1.code, 0);
  try {
    const m2 = await devmapperCli(['docker', 'mount', ...extra, root, layers.container.id, mntCtr]);
    assert.is(m2.stderr, `mounted ${layers.container.dmName} (${fs}, read-only${opts ? `, ${opts}` : ''}) at ${mntCtr}\n`);
    assert.is(m2.code, 0);
    try {
      const mounted = (await dockerLs(root, extra)).devices.filter((d) => d.mountedAt.length > 0).map((d) => [d.id, d.mountedAt]);
      assert.equal(mounted.sort(), [[layers.image.id, [mntImage]], [layers.container.id, [mntCtr]]].sort());
      // Docker's layer layout: <fs>/rootfs/ holds the layer's tree (driver.go Get).
      for (const [name, data] of Object.entries(known.files)) {
        assert.is(sha256(join(mntImage, 'rootfs', name)), sum(data), `image layer ${name}`);
        assert.is(sha256(join(mntCtr, 'rootfs', name)), sum(data), `container layer ${name}`);
      }
      assert.is(sha256(join(mntCtr, 'rootfs', 'added.bin')), sum(known.added), 'docker cp wrote the container layer');
      assert.is(existsSync(join(mntImage, 'rootfs', 'added.bin')), false, 'the image layer does not see it');
      assert.throws(() => writeFileSync(join(mntCtr, 'rootfs', 'x'), 'x'), /EROFS/);
    } finally {
      const u2 = await devmapperCli(['docker', 'unmount', ...extra, root, layers.container.id, mntCtr]);
      assert.is(u2.code, 0, u2.stderr);
    }
  } finally {
    const u1 = await devmapperCli(['docker', 'unmount', ...extra, root, layers.image.id, mntImage]);
    assert.is(u1.code, 0, u1.stderr);
  }
}

const OPTS_A = ['dm.fs=xfs', 'dm.basesize=300M', 'dm.loopdatasize=1G', 'dm.use_deferred_removal=true', 'dm.use_deferred_deletion=true'];

/**
 * docker info's DriverStatus against our statusPairs, built from the same dm.* options on homes
 * of the same layout (`<home>/devicemapper/{data,metadata}`), compared key by key:
 * - the keys and their order are the same; Docker appends `Library Version` (libdevmapper's
 *   dm_get_library_version), which we leave out: there is no libdevmapper here;
 * - equal by construction: Pool Blocksize (dm.blocksize default 64K), Base Device Size
 *   (dm.basesize), Backing Filesystem (dm.fs), Udev Sync Supported (udev runs), Data Space Total
 *   (dm.loopdatasize), Metadata Space Total (default dm.loopmetadatasize 2G), Thin Pool Minimum
 *   Free Space (10% of the data blocks), Deferred Removal/Deletion Enabled (the options);
 * - the same pattern, different values: Pool Name (`<prefix>-pool`; Docker's prefix is
 *   `docker-MAJ:MIN-INO` of its root, ours `devmapper-MAJ:MIN-INO` of our home: another inode and
 *   our own prefix word), Data/Metadata file (each set's /dev/loopN), Data/Metadata loop file
 *   (`<home>/devicemapper/data|metadata` of each home);
 * - different by content: Data/Metadata Space Used and Available (Docker holds an image and two
 *   containers; our home only its base; Available is also capped by the free space of the file
 *   system of the loop files, which changes between the two reads), Deferred Deleted Device
 *   Count (Docker's 1, the held-open container; ours 0).
 */
function compareStatus(docker: [string, string][], ours: DriverStatusPair[], dockerHome: string, ourHome: string, dockerPrefix: string, ourPrefix: string): void {
  assert.equal(docker.map(([k]) => k), [...ours.map(([k]) => k), 'Library Version'], 'the keys and their order');
  const d = new Map(docker);
  const o = new Map(ours);
  for (const k of ['Pool Blocksize', 'Base Device Size', 'Backing Filesystem', 'Udev Sync Supported', 'Data Space Total', 'Metadata Space Total', 'Thin Pool Minimum Free Space', 'Deferred Removal Enabled', 'Deferred Deletion Enabled']) {
    assert.is(o.get(k), d.get(k), k);
  }
  assert.equal(
    ['Pool Blocksize', 'Base Device Size', 'Backing Filesystem', 'Udev Sync Supported', 'Data Space Total', 'Metadata Space Total', 'Thin Pool Minimum Free Space', 'Deferred Removal Enabled', 'Deferred Deletion Enabled'].map((k) => d.get(k)),
    ['65.54kB', '314.6MB', 'xfs', 'true', '1.074GB', '2.147GB', '107.3MB', 'true', 'true'],
  );
  assert.is(d.get('Pool Name'), `${dockerPrefix}-pool`);
  assert.is(o.get('Pool Name'), `${ourPrefix}-pool`);
  // Each prefix is `<word>-MAJ:MIN-INO` of its home; both homes are on the guest's /tmp.
  assert.is(dockerPrefix, `docker-${ourPrefix.replace(/^devmapper-/, '').replace(/-\d+$/, '')}-${statSync(dockerHome).ino}`);
  assert.is(ourPrefix.replace(/-\d+$/, `-${statSync(ourHome).ino}`), ourPrefix);
  for (const [m, home] of [
    [d, dockerHome],
    [o, ourHome],
  ] as const) {
    assert.match(m.get('Data file') ?? '', /^\/dev\/loop\d+$/);
    assert.match(m.get('Metadata file') ?? '', /^\/dev\/loop\d+$/);
    assert.is(m.get('Data loop file'), join(home, 'devicemapper', 'data'));
    assert.is(m.get('Metadata loop file'), join(home, 'devicemapper', 'metadata'));
  }
  assert.is(d.get('Deferred Deleted Device Count'), '1');
  assert.is(o.get('Deferred Deleted Device Count'), '0');
}

test('cycle A: xfs root, a deferred-deleted container, docker info against Driver.status()', async () => {
  const missing = missingDockerTools();
  assert.equal(missing, [], `Docker's tools are missing (scripts/setup.sh installs docker.io, containerd, runc): ${missing.join(', ')}`);
  const dir = join(testTmpDir(), 'docker-xfs');
  const dataRoot = join(dir, 'data');
  const root = join(dataRoot, 'devicemapper');
  mkdirSync(dir, { recursive: true });
  const known = knownFiles(dir);

  // Our side of the docker info comparison: a Driver on our own loop-lvm home, same options.
  const ourHome = join(dir, 'our-home');
  const ours = await Driver.init(ourHome, { options: OPTS_A, log: () => undefined });
  let ourPairs: DriverStatusPair[];
  try {
    ourPairs = await ours.status();
  } finally {
    await ours.cleanup();
  }
  step('our Driver on the same options: status read, cleaned up');

  let d: Dockerd | undefined;
  let held: number | undefined;
  let passed = false;
  try {
    d = await startDockerd({ dataRoot, execRoot: '/run/dmtest-delme-docker-a', storageOpts: OPTS_A });
    const docker = d.docker;
    step('dockerd is up');
    docker('import', known.tar, 'dmtest-delme:1');
    const kept = docker('create', '--name', 'dmtest-delme-kept', 'dmtest-delme:1', '/nonexistent');
    docker('cp', known.addedPath, `${kept}:/added.bin`);
    const gone = docker('create', '--name', 'dmtest-delme-gone', 'dmtest-delme:1', '/nonexistent');
    const graph = (kind: 'image' | 'container', ref: string): Record<string, string> =>
      JSON.parse(docker(kind, 'inspect', '--format', '{{json .GraphDriver.Data}}', ref)) as Record<string, string>;
    const imageData = graph('image', 'dmtest-delme:1');
    const keptData = graph('container', kept);
    const goneData = graph('container', gone);
    const poolName = new Map(d.info()).get('Pool Name')!;

    // Hold the container's device open: activate it under Docker's name, as Docker would
    // (thin <pool> <thin id>), and keep an fd on it.
    const goneName = goneData['DeviceName']!;
    sh('dmsetup', ['create', goneName, '--table', `0 ${Number(goneData['DeviceSize']) / 512} thin /dev/mapper/${poolName} ${goneData['DeviceId']}`]);
    udevSettleIfRunning();
    held = openSync(`/dev/mapper/${goneName}`, 'r');
    docker('rm', gone);
    const info = d.info();
    const goneHash = goneName.slice(-64);
    assert.match(goneHash, /^[0-9a-f]{64}$/);
    const record = JSON.parse(readFileSync(join(root, 'metadata', goneHash), 'utf8')) as Record<string, unknown>;
    console.log(`  docker-variants.test: docker.io 20.10 wrote metadata/${goneHash} = ${JSON.stringify(record)}`);
    assert.is(record['deleted'], true, 'dockerd marked the held device deleted');
    assert.is(record['device_id'], Number(goneData['DeviceId']));
    assert.is(existsSync(join(root, 'metadata', `${goneHash}-init`)), false, 'its -init layer (not held) is really deleted');
    compareStatus(info, ourPairs, root, ours.home, (await dockerLs(root)).prefix, ours.deviceSet.prefix);
    step('docker rm of the held container: deleted:true; docker info compared');

    // Release the device: the kernel completes Docker's deferred remove on the last close
    // (dm_blk_close → dm_deferred_remove); wait for it, so that dockerd can remove its pool.
    closeSync(held);
    held = undefined;
    const giveUp = Date.now() + 60_000; // a bound on a hung removal, no timing assertion
    while (dmNames().includes(goneName)) {
      if (Date.now() > giveUp) assert.unreachable(`${goneName} is still live after its last close`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const code = await d.stop();
    assert.is(code, 0, `dockerd stopped with ${code}:\n${d.log()}`);
    step('dockerd stopped');

    const report = await dockerLs(root);
    assert.is(report.poolLive, false, 'dockerd removed its pool');
    assert.is(report.openTransaction, null);
    assert.is(report.baseDeviceFilesystem, 'xfs');
    const byName = new Map(report.devices.map((x) => [x.dmName, x]));
    const image = byName.get(imageData['DeviceName']!);
    const container = byName.get(keptData['DeviceName']!);
    const deleted = byName.get(goneName);
    assert.ok(image && container && deleted, JSON.stringify(report.devices));
    assert.equal(
      report.devices.map((x) => [x.id, x.deleted]).sort(),
      [['base', false], [image.id, false], [container.id, false], [`${container.id}-init`, false], [deleted.id, true]].sort(),
    );
    assert.is(deleted.id, goneHash);
    assert.is(String(deleted.deviceId), goneData['DeviceId']);
    // The deleted device is still in the pool (the worker that retries the delete never ran).
    assert.equal(report.devices.map((x) => x.deviceId).sort(byNumber), thinDumpIds(join(root, 'devicemapper', 'metadata')));

    const before = rootDigest(dataRoot);
    step('docker ls = thin_dump; hashed the data root');
    const never = join(dir, 'mnt-deleted');
    mkdirSync(never);
    const refused = await devmapperCli(['docker', 'mount', root, deleted.id, never]);
    assert.is(refused.code, 3, refused.stderr);
    assert.is(refused.stderr.split('\n')[0], `devmapper: EDOCKERLAYER: Docker layer '${deleted.id}' of ${root} is marked deleted (deferred deletion): Docker removes it`);
    assert.equal(dmNames().filter((n) => n.startsWith(`${report.prefix}-`)), [], 'the refusal activated nothing');
    assert.is(isMountPoint(never), false, 'and mounted nothing');
    await mountAndCheck(root, dir, [], { image, container }, known, 'xfs');
    assert.equal(dmNames().filter((n) => n.startsWith(`${report.prefix}-`)), [], 'no device of the root left');
    assert.is(sh('losetup', ['-j', join(root, 'devicemapper', 'data')]).trim(), '', 'no loop device left on the data file');
    assert.equal(rootDigest(dataRoot), before, "no file of Docker's data root changed");
    step('xfs layers mounted, checked, unmounted; data root unchanged');
    passed = true;
  } finally {
    if (held !== undefined) closeSync(held);
    if (!passed && d !== undefined) console.log(`dockerd's log:\n${d.log().slice(-6000)}`);
    await d?.close();
    try {
      removeDmDevices('docker-');
    } catch {
      // the sweep reports what is left
    }
  }
});

test('cycle B: a dm.thinpooldev root: docker ls --pool, docker mount --pool', async () => {
  const dir = join(testTmpDir(), 'docker-tp');
  const dataRoot = join(dir, 'data');
  const root = join(dataRoot, 'devicemapper');
  mkdirSync(dir, { recursive: true });
  const known = knownFiles(dir);
  const POOL = 'dmtest-delme-docker-tp';

  const OUR_POOL = 'dmtest-delme-our-tp';
  const opts = (pool: string): string[] => [`dm.thinpooldev=/dev/mapper/${pool}`, 'dm.fs=ext4', 'dm.basesize=512M', 'dm.use_deferred_removal=true', 'dm.use_deferred_deletion=true'];
  const loops: string[] = [];
  /** An external pool as an admin makes one: 1 GiB of data, 64 MiB of zeroed metadata, 64 KiB blocks; returns its metadata device. */
  const makePool = (name: string): string => {
    const dataFile = join(dir, `${name}-data`);
    const metaFile = join(dir, `${name}-meta`);
    sh('truncate', ['-s', '1G', dataFile]);
    sh('truncate', ['-s', '64M', metaFile]);
    const meta = sh('losetup', ['--find', '--show', metaFile]).trim();
    loops.push(meta);
    const data = sh('losetup', ['--find', '--show', dataFile]).trim();
    loops.push(data);
    sh('dmsetup', ['create', name, '--table', `0 ${(1 << 30) / 512} thin-pool ${meta} ${data} 128 32768 1 skip_block_zeroing`]);
    udevSettleIfRunning();
    return meta;
  };
  let d: Dockerd | undefined;
  let passed = false;
  try {
    // Our side of the docker info comparison: our Driver on its own external pool, same options.
    makePool(OUR_POOL);
    const ours = await Driver.init(join(dir, 'our-home'), { options: opts(OUR_POOL), log: () => undefined });
    let ourPairs: DriverStatusPair[];
    try {
      ourPairs = await ours.status();
    } finally {
      await ours.cleanup();
    }
    sh('dmsetup', ['remove', OUR_POOL]);
    step('our Driver on an external pool: status read, cleaned up');

    const poolMeta = makePool(POOL);
    d = await startDockerd({ dataRoot, execRoot: '/run/dmtest-delme-docker-b', storageOpts: opts(POOL) });
    const docker = d.docker;
    step('dockerd is up on the external pool');
    docker('import', known.tar, 'dmtest-delme:2');
    const ctr = docker('create', '--name', 'dmtest-delme-tp', 'dmtest-delme:2', '/nonexistent');
    docker('cp', known.addedPath, `${ctr}:/added.bin`);
    const imageData = JSON.parse(docker('image', 'inspect', '--format', '{{json .GraphDriver.Data}}', 'dmtest-delme:2')) as Record<string, string>;
    const ctrData = JSON.parse(docker('container', 'inspect', '--format', '{{json .GraphDriver.Data}}', ctr)) as Record<string, string>;
    // docker info on an external pool against ours: no Data/Metadata file or loop file lines in
    // either; the values fixed by the options and the pool's geometry agree; Pool Name is each
    // one's pool; Used/Available differ by content (Available has no file system cap here).
    const info = d.info();
    assert.equal(info.map(([k]) => k), [...ourPairs.map(([k]) => k), 'Library Version'], JSON.stringify(info));
    const di = new Map(info);
    const oi = new Map(ourPairs);
    assert.is(di.get('Pool Name'), POOL);
    assert.is(oi.get('Pool Name'), OUR_POOL);
    const same = ['Pool Blocksize', 'Base Device Size', 'Backing Filesystem', 'Udev Sync Supported', 'Data Space Total', 'Metadata Space Total', 'Thin Pool Minimum Free Space', 'Deferred Removal Enabled', 'Deferred Deletion Enabled', 'Deferred Deleted Device Count'];
    assert.equal(same.map((k) => oi.get(k)), same.map((k) => di.get(k)));
    assert.equal(same.map((k) => di.get(k)), ['65.54kB', '536.9MB', 'ext4', 'true', '1.074GB', '67.11MB', '107.3MB', 'true', 'true', '0']);
    const code = await d.stop();
    assert.is(code, 0, `dockerd stopped with ${code}:\n${d.log()}`);
    assert.equal(dmNames().filter((n) => n.startsWith('docker-')), [], 'dockerd deactivated its layers');
    assert.ok(dmNames().includes(POOL), 'Docker leaves an external pool live');
    step('dockerd stopped; the pool stays');

    const pool = ['--pool', POOL];
    const poolState = (): string[] => sh('dmsetup', ['status', POOL]).trim().split(/\s+/).slice(3, 6); // <txid> <meta used/total> <data used/total>
    const report = await dockerLs(root, pool);
    assert.is(report.poolName, POOL);
    assert.is(report.poolLive, true);
    assert.is(report.baseDeviceFilesystem, 'ext4');
    const byName = new Map(report.devices.map((x) => [x.dmName, x]));
    const image = byName.get(imageData['DeviceName']!);
    const container = byName.get(ctrData['DeviceName']!);
    assert.ok(image && container, JSON.stringify(report.devices));
    assert.is(String(image.deviceId), imageData['DeviceId']);
    assert.is(String(container.deviceId), ctrData['DeviceId']);
    assert.equal(report.devices.map((x) => [x.id, x.deleted]).sort(), [['base', false], [image.id, false], [container.id, false], [`${container.id}-init`, false]].sort());
    assert.is(existsSync(join(root, 'devicemapper')), false, 'a thinpooldev root has no loop files');

    const before = rootDigest(dataRoot);
    const poolBefore = poolState();
    await mountAndCheck(root, dir, pool, { image, container }, known, 'ext4');
    assert.equal(dmNames().filter((n) => n.startsWith(`${report.prefix}-`)), [], 'no layer device left');
    assert.ok(dmNames().includes(POOL), 'the external pool is never removed by our unmount');
    assert.equal(poolState(), poolBefore, "the pool's transaction id and usage did not change");
    assert.equal(rootDigest(dataRoot), before, "no file of Docker's data root changed");

    // thin_dump (the pool removed: its metadata is then quiescent) lists exactly docker ls's ids.
    sh('dmsetup', ['remove', POOL]);
    assert.equal(report.devices.map((x) => x.deviceId).sort(byNumber), thinDumpIds(poolMeta));
    step('thinpooldev layers mounted, checked, unmounted; docker ls = thin_dump');
    passed = true;
  } finally {
    if (!passed && d !== undefined) console.log(`dockerd's log:\n${d.log().slice(-6000)}`);
    await d?.close();
    try {
      removeDmDevices('docker-');
      for (const p of [POOL, OUR_POOL]) if (dmNames().includes(p)) sh('dmsetup', ['remove', '--retry', p]);
    } catch {
      // the sweep reports what is left
    }
    for (const l of loops) {
      try {
        sh('losetup', ['--detach', l]);
      } catch {
        // already gone
      }
    }
    udevSettleIfRunning();
  }
});

test.run();
