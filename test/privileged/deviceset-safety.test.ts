// SPDX-License-Identifier: MIT
// Issue #14 on the real kernel (npm run test:vm): the DeviceSet never deletes, deactivates or
// writes what it cannot prove is its own. Oracles: dmsetup, the kernel's /proc/mounts, and the
// sha256 of a foreign thin device's data read back through its own dm device.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BackingFileInUseError,
  BackingFilesLostError,
  DeviceSet,
  ThinPoolOwnershipError,
  prefixFor,
} from '../../src/deviceset/index.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';
import { rejects } from '../helpers/rejects.js';

const test = withSweep(privilegedSuite('deviceset safety (real kernel)'));
const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'deviceset-child.js');
const OPTS = ['dm.loopdatasize=256M', 'dm.loopmetadatasize=16M', 'dm.basesize=32M'];
const quiet = { log: () => undefined };
let n = 0;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function dmNames(args: string[] = []): string[] {
  const out = sh('dmsetup', ['ls', ...args]);
  if (/No devices found/i.test(out)) return [];
  return out.split('\n').map((l) => l.split('\t')[0]?.trim() ?? '').filter((s) => s !== '').sort();
}
/** /dev/dm-N of a dm device (devtmpfs makes those; /dev/mapper/NAME needs udev). */
function dmNode(name: string): string {
  return `/dev/dm-${sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'minor', name]).trim()}`;
}
function prefixOf(root: string): string {
  const st = statSync(root, { bigint: true });
  return prefixFor({ dev: st.dev, ino: st.ino });
}
/** Unmounts what is under `dir` and removes every dm device of `prefix` (pool last). */
function cleanup(dir: string, prefix: string): void {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const mp = line.split(' ')[1];
    if (mp && mp.startsWith(dir + '/')) spawnSync('umount', ['-l', mp]);
  }
  const mine = dmNames().filter((d) => d.startsWith(`${prefix}-`));
  for (const d of [...mine.filter((x) => !x.endsWith('-pool')), ...mine.filter((x) => x.endsWith('-pool'))]) spawnSync('dmsetup', ['remove', '--retry', d]);
}
function runChild(root: string, options: string[], steps: (string | undefined)[][], crashAt?: string): { status: number | null; signal: string | null; out: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['DEVMAPPER_CRASH_AT'];
  if (crashAt) env['DEVMAPPER_CRASH_AT'] = crashAt;
  const r = spawnSync(process.execPath, [CHILD, JSON.stringify({ root, options, steps })], { env, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}
/** A root whose pool a killed child left live, with `steps` done before the kill. */
function liveRoot(tag: string, steps: (root: string) => (string | undefined)[][]): { root: string; prefix: string } {
  const root = join(testTmpDir(), `safety-${tag}-${++n}`);
  const r = runChild(root, OPTS, [...steps(root), ['kill']]);
  assert.is(r.signal, 'SIGKILL', r.out);
  return { root, prefix: prefixOf(root) };
}

test('d6: a live pool whose backing files were deleted is refused; no empty file is made; the pool stays live', async () => {
  const { root, prefix } = liveRoot('d6', () => [['add', 'img', '']]);
  try {
    const before = dmNames();
    rmSync(join(root, 'devicemapper/data'));
    rmSync(join(root, 'devicemapper/metadata'));
    const err = await rejects(DeviceSet.init(root, { options: OPTS, ...quiet }), BackingFilesLostError);
    assert.match(err.message, /still reachable through \/dev\/loop\d+/);
    assert.is(existsSync(join(root, 'devicemapper/data')), false);
    assert.equal(dmNames(), before);
    assert.ok(dmNames(['--target', 'thin-pool']).includes(`${prefix}-pool`));
  } finally {
    cleanup(root, prefix);
  }
});

test('d7: a failed init leaves an adopted pool, its active and its mounted devices as they were', async () => {
  const { root, prefix } = liveRoot('d7', (r) => [['add', 'ctr1', ''], ['add', 'ctr2', ''], ['mount', 'ctr2', join(r, 'mnt', 'ctr2')]]);
  try {
    const mounted = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(`${root}/`));
    const before = dmNames();
    assert.equal(before, [`${prefix}-ctr2`, `${prefix}-pool`]);
    // A new data file renamed over the old one: the live pool no longer uses the file at this path.
    writeFileSync(join(root, 'devicemapper/data.new'), '');
    renameSync(join(root, 'devicemapper/data.new'), join(root, 'devicemapper/data'));
    await rejects(DeviceSet.init(root, { options: OPTS, ...quiet }), ThinPoolOwnershipError);
    assert.equal(dmNames(), before);
    const info = sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'name,open', `${prefix}-ctr2`]).trim();
    assert.is(info, `${prefix}-ctr2:1`, 'still open by its mount');
    assert.equal(readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(`${root}/`)), mounted);
  } finally {
    cleanup(root, prefix);
  }
});

test('d9: a root moved to a new directory while its pool is live: a second pool over the same files is refused', async () => {
  const { root, prefix } = liveRoot('d9', () => [['add', 'img', '']]);
  const old = `${root}.old`;
  let newPrefix = '';
  try {
    renameSync(root, old);
    mkdirSync(root, { mode: 0o700 });
    for (const f of ['devicemapper', 'metadata']) renameSync(join(old, f), join(root, f));
    newPrefix = prefixOf(root);
    const err = await rejects(DeviceSet.init(root, { options: OPTS, ...quiet }), BackingFileInUseError);
    assert.equal(err.holders, [`${prefix}-pool`]);
    assert.equal(dmNames(['--target', 'thin-pool']).filter((d) => d.startsWith('devmapper-')), [`${prefix}-pool`]);
    const bound = sh('losetup', ['-j', join(root, 'devicemapper/data')]).trim().split('\n').filter((l) => l !== '');
    assert.is(bound.length, 1, `one loop device on the data file: ${bound.join(' | ')}`);
  } finally {
    cleanup(root, prefix);
    if (newPrefix) cleanup(root, newPrefix);
  }
});

test("d8: kill -9 of addDevice at every crash point never deletes a foreign thin id of an external pool; its data is intact", async () => {
  const dir = join(testTmpDir(), `safety-d8-${++n}`);
  mkdirSync(dir, { recursive: true });
  const pool = testName('ext-pool');
  const files = [join(dir, 'ext-data'), join(dir, 'ext-meta')];
  writeFileSync(files[0]!, '');
  writeFileSync(files[1]!, '');
  sh('truncate', ['-s', '256M', files[0]!]);
  sh('truncate', ['-s', '16M', files[1]!]);
  const data = sh('losetup', ['-f', '--show', files[0]!]).trim();
  const meta = sh('losetup', ['-f', '--show', files[1]!]).trim();
  const root = join(dir, 'root');
  const foreign = testName('foreign');
  const options = [`dm.thinpooldev=${pool}`, 'dm.basesize=32M'];
  try {
    const sectors = 256 * 2048;
    sh('dmsetup', ['create', pool, '--table', `0 ${sectors} thin-pool ${meta} ${data} 128 0 1 skip_block_zeroing`]);
    // No udev in the guest: name the pool by number in the thin tables.
    const poolDev = sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'major,minor', '--separator', ':', pool]).trim();
    // Our first init takes the empty pool (Docker's ownership check) and makes the base, thin 1.
    const first = runChild(root, options, [['shutdown']]);
    assert.is(first.status, 0, first.out);
    // Another user of the pool makes thin 2 (the id the DeviceSet would pick next) and writes to it.
    sh('dmsetup', ['message', pool, '0', 'create_thin 2']);
    sh('dmsetup', ['create', foreign, '--table', `0 2048 thin ${poolDev} 2`]);
    const payload = randomBytes(1 << 20);
    const fdw = openSync(dmNode(foreign), 'w');
    writeFileSync(fdw, payload);
    closeSync(fdw);
    sh('dmsetup', ['remove', foreign]);
    const want = createHash('sha256').update(payload).digest('hex');
    const points = ['snapshot:before-intent', 'snapshot:before-message', 'snapshot:before-commit', 'snapshot:before-ready'];
    for (const [i, point] of points.entries()) {
      const r = runChild(root, options, [['add', `x${i}`, '']], point);
      assert.is(r.signal, 'SIGKILL', `${point}: ${r.out}`);
    }
    const last = runChild(root, options, [['add', 'y', ''], ['shutdown']]);
    assert.is(last.status, 0, last.out);
    // Thin 2 still exists (activation succeeds only for an existing id) and holds its data.
    sh('dmsetup', ['create', foreign, '--table', `0 2048 thin ${poolDev} 2`]);
    const back = Buffer.alloc(1 << 20);
    const fdr = openSync(dmNode(foreign), 'r');
    readSync(fdr, back, 0, back.length, 0);
    closeSync(fdr);
    sh('dmsetup', ['remove', foreign]);
    assert.is(createHash('sha256').update(back).digest('hex'), want);
    const set = await DeviceSet.init(root, { options, ...quiet });
    const q = (await set.status()).quarantinedThinIds.map((x) => x.deviceId);
    assert.ok(q.includes(2), `thin 2 is quarantined: ${JSON.stringify(q)}`);
    assert.not.ok(set.list().some((h) => set.deviceInfo(h).deviceId === 2), 'no record uses thin 2');
    await set.shutdown();
    assert.ok(dmNames(['--target', 'thin-pool']).includes(pool), 'the external pool stays');
  } finally {
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const mp = line.split(' ')[1];
      if (mp && mp.startsWith(dir + '/')) spawnSync('umount', ['-l', mp]);
    }
    if (existsSync(root)) cleanup(root, prefixOf(root));
    spawnSync('dmsetup', ['remove', '--retry', foreign]);
    spawnSync('dmsetup', ['remove', '--retry', pool]);
    spawnSync('losetup', ['-d', data]);
    spawnSync('losetup', ['-d', meta]);
  }
});

test.run();
