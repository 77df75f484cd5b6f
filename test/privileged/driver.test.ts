// SPDX-License-Identifier: MIT
// The seed's Driver on the real kernel (issue #15 part 1): Driver.init on a loop-backed home,
// base-derived layers, get/put with files written and read back by sha256, the mount point
// removed by the last put, remove, Driver.status checked against dmsetup, and after cleanup
// thin_check clean with thin_dump's thin ids equal to the layers left. Reference counts across
// processes through the kernel's mount table, with the CLI (one process per command).
// Oracles are independent: dmsetup, losetup, thin_check/thin_dump, blockdev, /proc/self/mountinfo.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prefixFor } from '../../src/deviceset/index.js';
import { Driver, dockerHumanSize, mountPointsOf } from '../../src/driver/index.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('driver (real kernel)'));
const OPTS = ['dm.loopdatasize=256M', 'dm.loopmetadatasize=16M', 'dm.basesize=64M'];
const IMG = 'f'.repeat(64);
const CTR = `${'e'.repeat(64)}-init`;
const MiB = 1024 * 1024;
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/devmapper.js');

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const mountPoints = (): string[] => mountPointsOf(readFileSync('/proc/self/mountinfo', 'utf8'));
const dmNames = (prefix: string): string[] =>
  sh('dmsetup', ['ls'])
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));

/** Removes what a failed test left of `prefix` (thin devices first, then the pool); our names carry no sweep marker. */
function forceClean(prefix: string): void {
  for (const m of mountPoints().filter((p) => p.includes('/driver-'))) spawnSync('umount', ['-l', m]);
  const names = dmNames(prefix);
  for (const n of [...names.filter((x) => !x.endsWith('-pool')), ...names.filter((x) => x.endsWith('-pool'))]) spawnSync('dmsetup', ['remove', '--force', '--retry', n]);
}

/** thin_check and thin_dump on a metadata file (through a read-only loop: the tools use O_DIRECT, which tmpfs refuses). */
function thinDumpIds(metadataFile: string): number[] {
  const loop = sh('losetup', ['--find', '--show', '--read-only', metadataFile]).trim();
  try {
    const check = spawnSync('thin_check', [loop], { encoding: 'utf8' });
    assert.is(check.status, 0, `thin_check: ${check.stdout}${check.stderr}`);
    const dump = sh('thin_dump', [loop]);
    return [...dump.matchAll(/<device dev_id="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  } finally {
    spawnSync('losetup', ['-d', loop]);
  }
}

test('Driver.init on a loop-backed home: layers, get/put with sha256 read-back, remove, status against dmsetup, thin_dump after cleanup', async () => {
  const dir = join(testTmpDir(), 'driver-verbs');
  mkdirSync(dir, { recursive: true });
  const home = join(dir, 'home');
  const d = await Driver.init(home, { options: OPTS, log: () => undefined });
  const prefix = d.deviceSet.prefix;
  try {
    const realHome = realpathSync(home);
    assert.is(d.home, realHome);

    // An image layer on the base: files written through the mount.
    await d.create(IMG, '');
    const imgMp = join(realHome, 'mnt', IMG);
    const imgRoot = await d.get(IMG);
    assert.is(imgRoot, join(imgMp, 'rootfs'));
    assert.ok(mountPoints().includes(imgMp), 'mounted at home/mnt/<id>');
    assert.is(readFileSync(join(imgMp, 'id'), 'utf8'), IMG);
    assert.is(statSync(join(imgMp, 'id')).mode & 0o777, 0o600);
    const payload = randomBytes(3 * MiB);
    mkdirSync(join(imgRoot, 'etc'));
    writeFileSync(join(imgRoot, 'etc', 'payload'), payload);
    await d.put(IMG);
    assert.not.ok(mountPoints().includes(imgMp), 'unmounted by the last put');
    assert.is(existsSync(imgMp), false, 'the mount point is removed');
    assert.equal(dmNames(prefix).sort(), [`${prefix}-pool`], 'the layer is deactivated');

    // A container layer on the image, larger: the image's file read back, a new file written.
    await d.createReadWrite(CTR, IMG, { size: '128M' });
    assert.is(d.getMetadata(CTR).DeviceSize, String(128 * MiB));
    const ctrMp = join(realHome, 'mnt', CTR);
    const ctrRoot = await d.get(CTR);
    assert.is(sh('blockdev', ['--getsize64', `/dev/mapper/${d.getMetadata(CTR).DeviceName}`]).trim(), String(128 * MiB));
    assert.is(sha256(readFileSync(join(ctrRoot, 'etc', 'payload'))), sha256(payload));
    const written = randomBytes(MiB);
    writeFileSync(join(ctrRoot, 'written'), written);
    assert.is(await d.get(CTR), ctrRoot);
    assert.is(d.references(CTR), 2);
    assert.is(mountPoints().filter((m) => m === ctrMp).length, 1, 'mounted once for two references');
    await d.put(CTR);
    assert.ok(mountPoints().includes(ctrMp), 'one reference left: still mounted');
    await d.put(CTR);
    assert.not.ok(mountPoints().includes(ctrMp));
    assert.is(existsSync(ctrMp), false);

    // The data persisted in the layers, not in the mount point directory.
    const again = await d.get(CTR);
    assert.is(sha256(readFileSync(join(again, 'written'))), sha256(written));
    // Docker writes `id` only when missing: a snapshot inherits its parent's (driver.go Get).
    assert.is(readFileSync(join(ctrMp, 'id'), 'utf8'), IMG);
    await d.put(CTR);
    const imgAgain = await d.get(IMG);
    assert.is(existsSync(join(imgAgain, 'written')), false, "the container's write is not in the image");
    await d.put(IMG);

    // Status, with nothing mounted (nothing changes between the two reads), against dmsetup.
    const st = new Map(await d.status());
    const pool = `${prefix}-pool`;
    const table = sh('dmsetup', ['table', pool]).trim().split(/\s+/);
    const blockBytes = Number(table[5]) * 512; // thin-pool <meta> <data> <block sectors> <low water> …
    const status = sh('dmsetup', ['status', pool]).trim().split(/\s+/);
    // 0 <len> thin-pool <txid> <used meta>/<total meta> <used data>/<total data> … (thin-provisioning.txt)
    const [usedMeta, totalMeta] = status[4]!.split('/').map(Number) as [number, number];
    const [usedData, totalData] = status[5]!.split('/').map(Number) as [number, number];
    assert.is(st.get('Pool Name'), pool);
    assert.is(st.get('Pool Blocksize'), dockerHumanSize(blockBytes));
    assert.is(st.get('Pool Blocksize'), '65.54kB');
    assert.is(st.get('Base Device Size'), '67.11MB');
    assert.is(st.get('Backing Filesystem'), 'ext4');
    assert.is(st.get('Udev Sync Supported'), String(existsSync('/run/udev/control')));
    const dataFile = join(realHome, 'devicemapper', 'data');
    assert.is(st.get('Data loop file'), dataFile);
    assert.is(st.get('Metadata loop file'), join(realHome, 'devicemapper', 'metadata'));
    assert.is(st.get('Data file'), sh('losetup', ['-j', dataFile]).split(':')[0]);
    assert.is(st.get('Data Space Used'), dockerHumanSize(usedData * blockBytes));
    assert.is(st.get('Data Space Total'), dockerHumanSize(totalData * blockBytes));
    assert.is(st.get('Data Space Total'), '268.4MB');
    assert.is(st.get('Metadata Space Used'), dockerHumanSize(usedMeta * 4096));
    assert.is(st.get('Metadata Space Total'), dockerHumanSize(totalMeta * 4096));
    assert.is(st.get('Metadata Space Total'), '16.78MB');
    assert.is(st.get('Deferred Deleted Device Count'), '0');

    // Remove: a missing id is no error; the container layer goes from the pool.
    await d.remove('0'.repeat(64));
    const ctrId = Number(d.getMetadata(CTR).DeviceId);
    await d.remove(CTR);
    assert.is(d.exists(CTR), false);
    const kept = [Number(d.getMetadata('').DeviceId), Number(d.getMetadata(IMG).DeviceId)].sort((a, b) => a - b);
    assert.not.ok(kept.includes(ctrId));
    await d.cleanup();
    assert.equal(dmNames(prefix), [], 'cleanup removed the pool and every device');
    assert.equal(thinDumpIds(join(realHome, 'devicemapper', 'metadata')), kept);
  } finally {
    await d.cleanup().catch(() => undefined);
    forceClean(prefix);
  }
});

test('across processes (the CLI): a layer one command got counts as one reference in the next', () => {
  const dir = join(testTmpDir(), 'driver-cli');
  mkdirSync(dir, { recursive: true });
  const home = join(dir, 'home');
  const cli = (...args: string[]): { status: number | null; out: string } => {
    const r = spawnSync(process.execPath, [BIN, 'driver', ...args, '--home', home], { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  let prefix = '';
  try {
    assert.is(cli('init', ...OPTS.flatMap((o) => ['--opt', o])).status, 0);
    const st = statSync(realpathSync(home), { bigint: true });
    prefix = prefixFor({ dev: st.dev, ino: st.ino });
    assert.is(cli('create', IMG).status, 0);
    const g1 = cli('get', IMG);
    assert.is(g1.status, 0, g1.out);
    const mp = join(realpathSync(home), 'mnt', IMG);
    assert.is(g1.out, `${mp}/rootfs\n`);
    const g2 = cli('get', IMG);
    assert.is(g2.status, 0, g2.out);
    assert.is(mountPoints().filter((m) => m === mp).length, 1, 'the second process only counted');
    const rm = cli('remove', IMG);
    assert.is(rm.status, 4, rm.out);
    assert.match(rm.out, 'ELAYERINUSE');
    const p1 = cli('put', IMG);
    assert.is(p1.status, 0, p1.out);
    assert.not.ok(mountPoints().includes(mp));
    assert.is(existsSync(mp), false);
    assert.is(cli('put', IMG).status, 3);
    assert.is(cli('cleanup').status, 0);
    assert.equal(dmNames(prefix), []);
  } finally {
    spawnSync(process.execPath, [BIN, 'driver', 'cleanup', '--home', home]);
    if (prefix) forceClean(prefix);
  }
});

test.run();
