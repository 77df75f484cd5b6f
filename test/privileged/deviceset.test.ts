// SPDX-License-Identifier: MIT
// DeviceSet against the real kernel (run in the VM: npm run test:vm). Lifecycle, restart, unclean
// stop, snapshot isolation, concurrency, crash injection at every crash point (kill -9 of a
// child), and the dm.* options. Oracles are independent tools: thin_check, thin_dump, e2fsck.
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, unlinkSync, watch, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CRASH_POINTS,
  DeviceAlreadyExistsError,
  DeviceInUseError,
  DeviceSet,
  DeviceSetLockedError,
  DeviceSizeError,
  PoolFreeSpaceError,
  ThinPoolOwnershipError,
  UnknownDeviceError,
  MountFailedError,
  prefixFor,
  type CrashPointName,
} from '../../src/deviceset/index.js';
import { IOCTL_CHANNEL, type IoctlChannelMessage } from '../../src/ioctl/index.js';
import { privilegedSuite, testTmpDir, UDEV_CELL, udevSettle, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('deviceset (real kernel)'));
let t0 = 0;
test.before.each((ctx) => {
  t0 = Date.now();
  void ctx;
});
test.after.each((ctx) => {
  console.log(`  [deviceset] ${(ctx as { __test__?: string }).__test__ ?? ''}: ${Date.now() - t0} ms`);
});
const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'deviceset-child.js');
const OPTS = ['dm.loopdatasize=512M', 'dm.loopmetadatasize=16M', 'dm.basesize=64M'];
const quiet = { log: () => undefined };
const roots: string[] = [];

/** uvu/assert has no async throws: resolves when `p` rejects with an error `ok` accepts. */
async function rejects(p: Promise<unknown>, ok: (e: unknown) => boolean): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(ok(err), `unexpected error: ${String(err)}`);
    return;
  }
  assert.unreachable('expected a rejection');
}
let n = 0;

function newRoot(tag: string): string {
  const root = join(testTmpDir(), `ds-${tag}-${++n}`);
  roots.push(root);
  return root;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function prefixOf(root: string): string {
  const st = statSync(root, { bigint: true });
  return prefixFor({ dev: st.dev, ino: st.ino });
}

function dmNames(): string[] {
  const out = sh('dmsetup', ['ls']);
  if (/No devices found/i.test(out)) return [];
  return out.split('\n').map((l) => l.split('\t')[0]?.trim() ?? '').filter((s) => s !== '');
}

/** Unmounts anything under root and removes every dm device of its prefix (pool last). */
function cleanupRoot(root: string): void {
  if (!existsSync(root)) return;
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const mp = line.split(' ')[1];
    if (mp && mp.startsWith(root + '/')) spawnSync('umount', ['-l', mp]);
  }
  const prefix = prefixOf(root);
  const mine = dmNames().filter((d) => d.startsWith(`${prefix}-`));
  for (const d of [...mine.filter((x) => !x.endsWith('-pool')), ...mine.filter((x) => x.endsWith('-pool'))]) {
    spawnSync('dmsetup', ['remove', '--force', '--retry', d]);
  }
}

/** DEVMAPPER_DS_ONLY=<substring>: register only the tests whose name contains it (VM debugging). */
const only = process.env['DEVMAPPER_DS_ONLY'];
const it = (name: string, fn: () => Promise<void>): void => {
  if (only && !only.split('|').some((o) => name.includes(o))) return;
  test(name, async () => {
    const mine = roots.length;
    try {
      await fn();
    } catch (err) {
      console.log(`  [deviceset] FAILED ${name}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      throw err;
    } finally {
      // Before the suite's sweep: our dm names carry no test marker, the sweep cannot see them.
      for (const r of roots.slice(mine)) cleanupRoot(r);
    }
  });
};

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

interface DiskRecord {
  hash: string;
  deviceId: number;
  transactionId: number;
  state: string;
  deleted: boolean;
}

function diskRecords(root: string): DiskRecord[] {
  const dir = join(root, 'metadata');
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.') && f !== 'deviceset-metadata' && f !== 'transaction-metadata')
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as DiskRecord);
}

/**
 * After a clean shutdown (pool removed): thin_check is clean, thin_dump's thin ids equal the
 * records' ids, no id is claimed twice, no transaction is open, and no record is ahead of the
 * pool's transaction id.
 */
function checkInvariants(root: string, what: string): void {
  const prefix = prefixOf(root);
  assert.equal(dmNames().filter((d) => d.startsWith(`${prefix}-`)), [], `${what}: dm devices left after shutdown`);
  // thin-provisioning-tools open with O_DIRECT, which tmpfs refuses: go through a read-only loop.
  const meta = sh('losetup', ['--find', '--show', '--read-only', join(root, 'devicemapper', 'metadata')]).trim();
  let dump: string;
  try {
    const check = spawnSync('thin_check', [meta], { encoding: 'utf8' });
    assert.is(check.status, 0, `${what}: thin_check: ${check.stdout}${check.stderr}`);
    dump = sh('thin_dump', [meta]);
  } finally {
    spawnSync('losetup', ['-d', meta]);
  }
  const poolTx = Number(/<superblock[^>]*transaction="(\d+)"/.exec(dump)?.[1] ?? -1);
  const poolIds = [...dump.matchAll(/<device dev_id="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  const recs = diskRecords(root);
  const recIds = recs.map((r) => r.deviceId).sort((a, b) => a - b);
  assert.equal(poolIds, recIds, `${what}: pool thin ids vs record ids`);
  assert.is(new Set(recIds).size, recIds.length, `${what}: an id claimed twice`);
  assert.not.ok(existsSync(join(root, 'metadata', 'transaction-metadata')), `${what}: transaction left open`);
  for (const r of recs) {
    assert.ok(r.transactionId <= poolTx, `${what}: record ${r.hash} txid ${r.transactionId} > pool ${poolTx}`);
    assert.ok(r.state === 'ready' || (r.state === 'deleting' && r.deleted), `${what}: record ${r.hash} is ${r.state}`);
  }
  assert.ok(recs.some((r) => r.hash === ''), `${what}: no base record`);
}

/** e2fsck -fn on the base device: read-only check of the filesystem everything snapshots. */
async function fsckBase(set: DeviceSet): Promise<void> {
  const dev = await set.activateDevice('');
  const r = spawnSync('e2fsck', ['-fn', dev], { encoding: 'utf8' });
  await set.deactivateDevice('');
  assert.is(r.status, 0, `e2fsck -fn base: ${r.stdout}${r.stderr}`);
}

type ChildStep = (string | undefined)[];
function runChild(root: string, options: string[], steps: ChildStep[], crashAt?: string): { status: number | null; signal: string | null; out: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['DEVMAPPER_CRASH_AT'];
  if (crashAt) env['DEVMAPPER_CRASH_AT'] = crashAt;
  const started = Date.now();
  const r = spawnSync(process.execPath, [CHILD, JSON.stringify({ root, options, steps })], { env, encoding: 'utf8', timeout: 300_000 });
  if (Date.now() - started > 20_000) console.log(`  [deviceset] slow child (${Date.now() - started} ms, ${crashAt ?? 'no crash point'}): ${r.error ? String(r.error) : ''}`);
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

async function writeFile(set: DeviceSet, root: string, hash: string, name: string, data: Buffer): Promise<void> {
  const mp = join(root, 'mnt', hash);
  mkdirSync(mp, { recursive: true });
  await set.mountDevice(hash, mp);
  writeFileSync(join(mp, name), data);
  await set.unmountDevice(hash, mp);
}

async function readBack(set: DeviceSet, root: string, hash: string, name: string): Promise<string | null> {
  const mp = join(root, 'mnt', hash);
  mkdirSync(mp, { recursive: true });
  await set.mountDevice(hash, mp);
  try {
    return existsSync(join(mp, name)) ? sha(join(mp, name)) : null;
  } finally {
    await set.unmountDevice(hash, mp);
  }
}

it('lifecycle: init → image → container → mount/write/unmount → delete → shutdown; restart loads it back', async () => {
  const root = newRoot('life');
  const set = await DeviceSet.init(root, { options: OPTS, ...quiet });
  const st = await set.status();
  assert.is(st.poolName, `${set.prefix}-pool`);
  assert.is(st.dataLoopback, join(root, 'devicemapper', 'data'));
  assert.match(st.dataFile ?? '', /^\/dev\/loop\d+$/);
  assert.is(st.data.total, 512n * 1024n * 1024n);
  assert.is(st.baseDeviceSize, 64n * 1024n * 1024n);
  assert.is(st.baseDeviceFS, 'ext4');
  assert.is(st.sectorSize, 65536n);
  assert.is(st.mode, 'rw');
  assert.is(st.needsCheck, false);
  assert.ok(st.deferredRemoveEnabled && st.deferredDeleteEnabled);
  assert.is(st.minFreeSpace, (8192n * 10n / 100n) * 65536n);
  assert.is((statSync(join(root, 'metadata')).mode & 0o777), 0o700);
  await rejects(DeviceSet.init(root, { options: OPTS, ...quiet }), (e: unknown) => e instanceof DeviceSetLockedError);

  await set.addDevice('img', '');
  await set.addDevice('ctr', 'img');
  await rejects(set.addDevice('ctr', 'img'), (e: unknown) => e instanceof DeviceAlreadyExistsError);
  await rejects(set.addDevice('x', 'missing'), (e: unknown) => e instanceof UnknownDeviceError);
  assert.equal(set.list(), ['ctr', 'img']);
  const payload = randomBytes(1 << 20);
  await writeFile(set, root, 'ctr', 'data.bin', payload);
  const ds = await set.deviceStatus('ctr');
  assert.ok(ds.mappedSectors >= 2048n, `mapped ${ds.mappedSectors}`);
  assert.is(ds.sizeInSectors, 131072n);
  assert.is(await readBack(set, root, 'ctr', 'data.bin'), createHash('sha256').update(payload).digest('hex'));
  assert.is(await readBack(set, root, 'img', 'data.bin'), null);
  // A mounted device cannot be deleted.
  const mp = join(root, 'mnt', 'img');
  await set.mountDevice('img', mp);
  await set.mountDevice('img', mp); // second reference
  await rejects(set.deleteDevice('img'), (e: unknown) => e instanceof DeviceInUseError);
  await set.unmountDevice('img', mp);
  await set.unmountDevice('img', mp);
  await fsckBase(set);
  await set.addDevice('gone', 'img');
  // Without udev nobody else opens 'gone': deleted at once. Under udev, its rules open the device
  // after the delete's own discard (blkid on the change event of a closed writer); the delete
  // retries a plain remove for ~1 s first, and only a longer open defers it, by design (unit
  // test: deviceset/delete-busy). Then the deferred delete must finish once udev is done.
  const outcome = await set.deleteDevice('gone');
  if (!UDEV_CELL) assert.is(outcome, 'deleted');
  else if (outcome === 'deferred') {
    console.log("  [deviceset] under udev, 'gone' was held past the retry: deferred, then cleaned up");
    udevSettle();
    assert.equal(await set.cleanupDeleted(), []);
  }
  assert.not.ok(set.hasDevice('gone'));
  await set.shutdown();
  checkInvariants(root, 'after lifecycle');

  const again = await DeviceSet.init(root, { options: OPTS, ...quiet });
  assert.equal(again.list(), ['ctr', 'img']);
  assert.is(await readBack(again, root, 'ctr', 'data.bin'), createHash('sha256').update(payload).digest('hex'));
  await again.deleteDevice('ctr');
  await again.shutdown();
  checkInvariants(root, 'after restart');
});

it('snapshot isolation with checksums; a larger container grows its filesystem; smaller is refused; concurrency', async () => {
  const root = newRoot('iso');
  const set = await DeviceSet.init(root, { options: OPTS, ...quiet });
  await set.addDevice('layer', '');
  const a = randomBytes(512 << 10);
  await writeFile(set, root, 'layer', 'a', a);
  // Snapshot of an ACTIVE, MOUNTED origin: suspended around create_snap.
  const lmp = join(root, 'mnt', 'layer');
  await set.mountDevice('layer', lmp);
  await set.addDevice('c1', 'layer');
  await set.unmountDevice('layer', lmp);
  const b = randomBytes(512 << 10);
  await writeFile(set, root, 'c1', 'a', b);
  assert.is(await readBack(set, root, 'layer', 'a'), createHash('sha256').update(a).digest('hex'));
  assert.is(await readBack(set, root, 'c1', 'a'), createHash('sha256').update(b).digest('hex'));

  await set.addDevice('big', 'layer', { size: '96M' });
  const mp = join(root, 'mnt', 'big');
  mkdirSync(mp, { recursive: true });
  await set.mountDevice('big', mp);
  const df = sh('df', ['-B1', '--output=size', mp]).split('\n')[1]?.trim() ?? '0';
  await set.unmountDevice('big', mp);
  assert.ok(Number(df) > 80 * 1024 * 1024, `df size ${df}`);
  await rejects(set.addDevice('small', 'layer', { size: '32M' }), (e: unknown) => e instanceof DeviceSizeError);

  // Many calls at once on one DeviceSet: snapshots of shared parents and deletes interleave.
  const hashes = Array.from({ length: 8 }, (_, i) => `par${i}`);
  await Promise.all(hashes.map((h, i) => set.addDevice(h, i % 2 ? 'layer' : 'c1')));
  await Promise.all([...hashes.slice(0, 4).map((h) => set.deleteDevice(h)), ...hashes.slice(4).map((h) => set.addDevice(`${h}-child`, h))]);
  assert.equal(set.list(), ['big', 'c1', 'layer', 'par4', 'par4-child', 'par5', 'par5-child', 'par6', 'par6-child', 'par7', 'par7-child']);
  await set.shutdown();
  checkInvariants(root, 'after concurrency');
});

it('unclean stop: a child SIGKILLed while mounted; the next init recovers and the data is intact', async () => {
  const root = newRoot('kill');
  const mp = join(root, 'mnt', 'box');
  const r = runChild(root, OPTS, [['add', 'box', ''], ['mount', 'box', mp], ['write', join(mp, 'f'), 'survives'], ['kill']]);
  assert.is(r.signal, 'SIGKILL', r.out);
  // Docker's Cleanup unmounts everything under home/mnt; the dead process cannot.
  spawnSync('umount', ['-l', mp]);
  const set = await DeviceSet.init(root, { options: OPTS, ...quiet });
  assert.equal(set.list(), ['box']);
  mkdirSync(mp, { recursive: true });
  await set.mountDevice('box', mp);
  assert.is(readFileSync(join(mp, 'f'), 'utf8'), 'survives');
  await set.unmountDevice('box', mp);
  await set.shutdown();
  checkInvariants(root, 'after SIGKILL');
});

/**
 * Watches /dev for `dm-<minor>` nodes, which devtmpfs makes and removes for every dm device
 * (drivers/base/devtmpfs.c: device_add and device_del wait for the node), udev or not.
 */
function watchDmNodes(): { sync(): Promise<string[]>; close(): void } {
  const seen: string[] = [];
  const waiters = new Map<string, () => void>();
  let k = 0;
  const w = watch('/dev', (event, name) => {
    const s = String(name ?? '');
    // 'rename': a node made or removed; 'change' (udev's chmod of a node under udev) is not counted.
    if (event === 'rename' && /^dm-\d+$/.test(s)) seen.push(s);
    waiters.get(s)?.();
  });
  return {
    /** The dm nodes seen since the last sync: inotify keeps one queue in order, so once a sentinel's event is here, every earlier one is. */
    async sync() {
      const name = `.dsopen-sync-${process.pid}-${++k}`;
      const arrived = new Promise<void>((r) => waiters.set(name, r));
      writeFileSync(join('/dev', name), '');
      unlinkSync(join('/dev', name));
      await arrived;
      waiters.delete(name);
      return seen.splice(0);
    },
    close: () => w.close(),
  };
}

it('reopening a healthy set (what every `ds` command does): the base is never activated, no dm device comes or goes', async () => {
  const root = newRoot('reopen');
  const nodes = watchDmNodes();
  try {
    // The control: the first init creates the pool and the base (activated for mkfs): seen.
    const first = runChild(root, OPTS, [['add', 'img', '']]);
    assert.is(first.status, 0, first.out);
    if (UDEV_CELL) udevSettle();
    assert.ok((await nodes.sync()).length >= 3, 'the watch sees the pool and the base come (and the base go)');
    const mark = JSON.parse(readFileSync(join(root, 'metadata', 'deviceset-metadata'), 'utf8')) as { baseVerified?: { uuid: string } };
    assert.ok(mark.baseVerified, 'the base creation recorded its check');
    // A second process (a `ds create`): the snapshot needs no activation and the check is skipped.
    const second = runChild(root, OPTS, [['add', 'ctr', 'img']]);
    assert.is(second.status, 0, second.out);
    assert.equal(await nodes.sync(), [], 'no dm node appeared or went during the second process');
    // A third open, in this process, with every ioctl counted on the devmapper:ioctl channel.
    const requests: string[] = [];
    const onIoctl = (m: unknown): void => void requests.push((m as IoctlChannelMessage).request);
    subscribe(IOCTL_CHANNEL, onIoctl);
    let set: DeviceSet;
    try {
      set = await DeviceSet.init(root, { options: OPTS, ...quiet });
    } finally {
      unsubscribe(IOCTL_CHANNEL, onIoctl);
    }
    assert.equal(await nodes.sync(), [], 'no dm node appeared or went during the in-process open');
    const counts: Record<string, number> = {};
    for (const r of requests) counts[r] = (counts[r] ?? 0) + 1;
    console.log(`  [deviceset] ioctls of a healthy reopen: ${JSON.stringify(counts)}`);
    for (const r of ['DM_DEV_CREATE', 'DM_TABLE_LOAD', 'DM_DEV_SUSPEND', 'DM_DEV_REMOVE', 'DM_TARGET_MSG']) assert.is(counts[r], undefined, `${r} in a healthy reopen`);
    assert.ok((counts['DM_TABLE_STATUS'] ?? 0) >= 1, 'the pool status was read (the channel works)');
    assert.equal(set.list(), ['ctr', 'img']);
    assert.not.ok(dmNames().includes(`${set.prefix}-base`));
    await set.shutdown();
    checkInvariants(root, 'after the reopens');
  } finally {
    nodes.close();
  }
});

/**
 * Every named crash point is killed at by default: with node_modules and dist served through the
 * guest's cached read-only view, a child starts in seconds, and the whole file (13 fresh-root and
 * 24 live-root kills) took 157 s in the idle TCG guest. Before that fix each child spent ~35 s
 * loading modules over 9p, which is why a subset existed; DEVMAPPER_DS_QUICK_CRASH=1 still
 * selects that representative subset for quick local runs.
 */
const FULL_CRASH = !process.env['DEVMAPPER_DS_QUICK_CRASH'];
const SUBSET = new Set(['init:before-loop-close', 'create:before-commit', 'snapshot:before-ready', 'delete:before-remove-record', 'init:before-reconcile-action@2']);
const pick = (p: string): boolean => FULL_CRASH || SUBSET.has(p);
if (!FULL_CRASH && process.env['DEVMAPPER_PRIVILEGED']) {
  console.log(`  [deviceset] crash injection at the subset ${[...SUBSET].join(', ')} only (DEVMAPPER_DS_QUICK_CRASH); every point: DEVMAPPER_CI_FULL_CRASH=1 npm test, or npm run test:vm`);
}

/** Points reached by a first init (pool + base creation): each needs a fresh root. */
const FRESH_POINTS: CrashPointName[] = [
  'init:before-pool-create',
  'init:before-loop-close',
  'init:before-deviceset-save',
  'base:before-activate',
  'base:before-mkfs',
  'base:before-initialized',
  'base:before-uuid-save',
  'create:before-intent',
  'create:before-message',
  'create:before-commit',
  'create:before-ready',
];

it('crash injection, first init: kill -9 at each point; the next init recovers and the invariants hold', async () => {
  const covered: string[] = [];
  for (const point of FRESH_POINTS.filter(pick)) {
    const root = newRoot('crash-fresh');
    const r = runChild(root, OPTS, [['shutdown']], point);
    assert.is(r.signal, 'SIGKILL', `${point}: the child was not killed: ${r.out}`);
    const set = await DeviceSet.init(root, { options: OPTS, ...quiet });
    await fsckBase(set);
    await set.shutdown();
    checkInvariants(root, `after crash at ${point}`);
    cleanupRoot(root);
    covered.push(point);
  }
  console.log(`  crash points covered (fresh root): ${covered.length}`);
});

it('crash injection on a live root: snapshot, grow, delete, shutdown, recovery itself; data survives', async () => {
  const root = newRoot('crash-live');
  const setup = await DeviceSet.init(root, { options: OPTS, ...quiet });
  await setup.addDevice('keep', '');
  const keep = randomBytes(256 << 10);
  await writeFile(setup, root, 'keep', 'k', keep);
  await setup.shutdown();
  const keepSum = createHash('sha256').update(keep).digest('hex');

  const cases: { point: string; steps: (i: number) => ChildStep[] }[] = [];
  for (const p of CRASH_POINTS.filter((x) => x.startsWith('snapshot:'))) cases.push({ point: p, steps: (i) => [['add', `s${i}`, 'keep']] });
  cases.push({ point: 'add:before-grow', steps: (i) => [['add', `g${i}`, 'keep', '80M']] });
  for (const p of CRASH_POINTS.filter((x) => x.startsWith('delete:'))) {
    cases.push({ point: p, steps: (i) => [['add', `d${i}`, 'keep'], ['delete', `d${i}`]] });
  }
  for (const p of CRASH_POINTS.filter((x) => x.startsWith('shutdown:'))) cases.push({ point: p, steps: (i) => [['add', `h${i}`, 'keep'], ['shutdown']] });
  // Crashes during recovery: leave an open snapshot transaction, then die inside the next init.
  for (const p of ['init:before-probe', 'init:before-reconcile-action', 'init:before-reconcile-action@2']) {
    cases.push({ point: p, steps: () => [] });
  }
  let i = 0;
  const covered: string[] = [];
  for (const c of cases.filter((x) => pick(x.point))) {
    i++;
    if (c.point.startsWith('init:')) {
      const pre = runChild(root, OPTS, [['add', `pre${i}`, 'keep']], 'snapshot:before-commit');
      assert.is(pre.signal, 'SIGKILL', pre.out);
    }
    const r = runChild(root, OPTS, c.steps(i), c.point);
    assert.is(r.signal, 'SIGKILL', `${c.point}: the child was not killed: ${r.out}`);
    const set = await DeviceSet.init(root, { options: OPTS, ...quiet });
    assert.ok(set.hasDevice('keep'), `${c.point}: keep lost`);
    await set.shutdown();
    checkInvariants(root, `after crash at ${c.point}`);
    covered.push(c.point);
  }
  // base:before-grow: dm.basesize grew between starts.
  const grown = [...OPTS.filter((o) => !o.startsWith('dm.basesize')), 'dm.basesize=80M'];
  if (FULL_CRASH) {
    const g = runChild(root, grown, [], 'base:before-grow');
    assert.is(g.signal, 'SIGKILL', g.out);
    covered.push('base:before-grow');
  }
  const set = await DeviceSet.init(root, { options: grown, ...quiet });
  assert.is((await set.status()).baseDeviceSize, 80n * 1024n * 1024n);
  assert.is(await readBack(set, root, 'keep', 'k'), keepSum);
  await fsckBase(set);
  await set.shutdown();
  checkInvariants(root, 'after the live-root crashes');
  console.log(`  crash points covered (live root): ${covered.length}: ${covered.join(', ')}`);
});

it('options: basesize grow/shrink, loopdatasize grow, resizePool, mountopt, mkfsarg, blkdiscard, min_free_space, deferred deletion', async () => {
  const root = newRoot('opts');
  const first = [...OPTS, 'dm.mkfsarg=-L', 'dm.mkfsarg=dmtestlbl', 'dm.mountopt=noatime'];
  let set = await DeviceSet.init(root, { options: first, ...quiet });
  const base = await set.activateDevice('');
  assert.is(sh('blkid', ['-p', '-s', 'LABEL', '-o', 'value', base]).trim(), 'dmtestlbl');
  await set.deactivateDevice('');
  await set.addDevice('v', '');
  const mp = join(root, 'mnt', 'v');
  mkdirSync(mp, { recursive: true });
  // A failed mount says why in the kernel's words, not only EINVAL.
  let failed: MountFailedError | undefined;
  await rejects(set.mountDevice('v', mp, { options: 'bogusopt' }), (e: unknown) => (failed = e instanceof MountFailedError ? e : undefined) !== undefined);
  assert.ok(failed?.kernelLog.some((l) => /bogusopt/.test(l)), `kernel log tail: ${JSON.stringify(failed?.kernelLog)}`);
  assert.match(failed?.message ?? '', /EINVAL: .*kernel log: .*bogusopt/);
  await set.mountDevice('v', mp);
  const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mp) ?? '';
  assert.match(line, /noatime/);
  writeFileSync(join(mp, 'big'), randomBytes(24 << 20));
  await set.unmountDevice('v', mp);
  await set.shutdown();

  // min_free_space=99%: 24 MiB of 512 MiB used leaves < 99% free: a snapshot is refused.
  set = await DeviceSet.init(root, { options: [...OPTS, 'dm.min_free_space=99%'], ...quiet });
  await rejects(set.addDevice('w', 'v'), (e: unknown) => e instanceof PoolFreeSpaceError);
  // blkdiscard (on by default for loopback): deleting returns the blocks to the loop file.
  const dataFile = join(root, 'devicemapper', 'data');
  const before = statSync(dataFile).blocks;
  await set.deleteDevice('v');
  const after = statSync(dataFile).blocks;
  assert.ok(before - after >= (16 << 20) / 512, `allocated blocks ${before} → ${after}`);
  await set.shutdown();

  // basesize: shrink refused; grow applies to the base and later snapshots; loopdatasize grows the file.
  await rejects(DeviceSet.init(root, { options: [...OPTS.slice(0, 2), 'dm.basesize=32M'], ...quiet }), (e: unknown) => e instanceof DeviceSizeError);
  set = await DeviceSet.init(root, { options: ['dm.loopdatasize=640M', 'dm.loopmetadatasize=16M', 'dm.basesize=96M'], ...quiet });
  let st = await set.status();
  assert.is(st.baseDeviceSize, 96n * 1024n * 1024n);
  assert.is(st.data.total, 640n * 1024n * 1024n);
  await set.addDevice('after-grow', '');
  assert.is(set.deviceInfo('after-grow').size, 96n * 1024n * 1024n);
  await fsckBase(set);
  await set.resizePool('768M');
  st = await set.status();
  assert.is(st.data.total, 768n * 1024n * 1024n);

  // Deferred deletion: a device held open is marked deleted and finished once released.
  const dev = await set.activateDevice('after-grow');
  const fd = openSync(dev, 'r');
  let fdOpen = true;
  try {
    assert.is(await set.deleteDevice('after-grow'), 'deferred');
    assert.is((await set.status()).deferredDeletedDeviceCount, 1);
    assert.ok(set.hasDevice('after-grow'));
    assert.equal(set.list(), []);
    closeSync(fd);
    fdOpen = false;
    // Under udev, its rules may still hold the device open (blkid on our activation's change
    // event): the delete then stays pending (cleanupDeleted reports it), by design. Let udev
    // finish first (udevadm acts inside the guest's chroot only when told to).
    udevSettle();
    assert.equal(await set.cleanupDeleted(), []);
    assert.not.ok(set.hasDevice('after-grow'));
  } finally {
    if (fdOpen) closeSync(fd);
  }
  await set.shutdown();
  checkInvariants(root, 'after options');
});

it('options: a pool left live by a dead process is grown when dm.loopdatasize/dm.loopmetadatasize grew, even across a crash mid-grow', async () => {
  const root = newRoot('grow-live');
  const dead = runChild(root, OPTS, [['add', 'a', ''], ['kill']]);
  assert.is(dead.signal, 'SIGKILL', dead.out);
  const prefix = prefixOf(root);
  assert.ok(dmNames().includes(`${prefix}-pool`), 'the pool must still be live for this test');
  const bigger = ['dm.loopdatasize=640M', 'dm.loopmetadatasize=24M', 'dm.basesize=64M'];
  // Die after the data loop device's capacity was refreshed, before the metadata one's and
  // before the pool table was reloaded: the next init must finish all of it.
  const mid = runChild(root, bigger, [], 'init:before-pool-grow@2');
  assert.is(mid.signal, 'SIGKILL', mid.out);
  const poolStatus = (): string[] => sh('dmsetup', ['status', `${prefix}-pool`]).trim().split(/\s+/);
  assert.is(poolStatus()[5]?.split('/')[1], '8192', 'the dead grower never reloaded the pool: still 512 MiB of 64 KiB blocks');
  const set = await DeviceSet.init(root, { options: bigger, ...quiet });
  const st = await set.status();
  assert.is(st.data.total, 640n << 20n);
  assert.is(st.metadata.total, 24n << 20n);
  const fields = poolStatus();
  assert.is(fields[5]?.split('/')[1], String((640 << 20) / (64 << 10)), 'kernel data blocks');
  assert.is(fields[4]?.split('/')[1], String((24 << 20) / 4096), 'kernel metadata blocks');
  assert.is(statSync(join(root, 'devicemapper', 'data')).size, 640 << 20);
  assert.is(statSync(join(root, 'devicemapper', 'metadata')).size, 24 << 20);
  assert.ok(set.hasDevice('a'));
  await set.shutdown();
  checkInvariants(root, 'after growing a live pool');
});

it('options: dm.datadev/dm.metadatadev with dm.blocksize; dm.thinpooldev ownership checks', async () => {
  const dir = newRoot('dev');
  mkdirSync(dir, { recursive: true });
  const files = ['data', 'meta', 'pdata', 'pmeta'].map((f) => join(dir, f));
  const sizes = ['512M', '16M', '256M', '8M'];
  files.forEach((f, i) => sh('truncate', ['-s', sizes[i] ?? '0', f]));
  const loops = files.map((f) => sh('losetup', ['--find', '--show', f]).trim());
  try {
    const root = join(dir, 'root-dev');
    const set = await DeviceSet.init(root, {
      options: [`dm.datadev=${loops[0]}`, `dm.metadatadev=${loops[1]}`, 'dm.blocksize=128K', 'dm.basesize=64M'],
      ...quiet,
    });
    const st = await set.status();
    assert.is(st.sectorSize, 131072n);
    assert.is(st.dataLoopback, null);
    assert.is(st.dataFile, loops[0]);
    await set.addDevice('on-raw', '');
    await set.shutdown();
    cleanupRoot(root);

    // An external pool: the DeviceSet uses it and leaves it in place at shutdown.
    const pool = `extpool-dmtest-delme-${process.pid}`;
    sh('dmsetup', ['create', pool, '--table', `0 ${256 * 2048} thin-pool ${loops[3]} ${loops[2]} 128 0`]);
    try {
      const ext = join(dir, 'root-ext');
      const extOpts = [`dm.thinpooldev=/dev/mapper/${pool}`, 'dm.basesize=64M'];
      const e = await DeviceSet.init(ext, { options: extOpts, ...quiet });
      assert.is((await e.status()).poolOwned, false);
      await e.addDevice('x', '');
      await e.addDevice('y', 'x');
      await e.deleteDevice('y');
      await e.shutdown();
      assert.ok(dmNames().includes(pool), 'the external pool must survive shutdown');
      // Its transaction id belongs to its manager (LVM refuses a pool whose id moved: moby#15629):
      // four journalled steps (base, x, y, delete y) committed in our record, none in the pool.
      assert.is(sh('dmsetup', ['status', pool]).trim().split(/\s+/)[3], '0', 'the pool transaction id is untouched');
      const dsRecord = JSON.parse(readFileSync(join(ext, 'metadata', 'deviceset-metadata'), 'utf8')) as { transactionId?: number };
      assert.is(dsRecord.transactionId, 4);
      const again = await DeviceSet.init(ext, { options: extOpts, ...quiet });
      assert.equal(again.list(), ['x']);
      await again.shutdown();
      // A non-empty foreign pool is refused on first use.
      await rejects(
        DeviceSet.init(join(dir, 'root-ext2'), { options: [`dm.thinpooldev=${pool}`, 'dm.basesize=64M'], ...quiet }),
        (err: unknown) => err instanceof ThinPoolOwnershipError,
      );
      await rejects(
        DeviceSet.init(join(dir, 'root-ext3'), { options: [`dm.thinpooldev=${loops[0]?.replace('/dev/', '')}`], ...quiet }),
        (err: unknown) => err instanceof ThinPoolOwnershipError,
      );
    } finally {
      spawnSync('dmsetup', ['remove', '--force', '--retry', pool]);
    }
  } finally {
    for (const l of loops) spawnSync('losetup', ['-d', l]);
  }
});

it('xfs base with dm.xfs_nospace_max_retries (nouuid mounts of parent and child at once)', async () => {
  const root = newRoot('xfs');
  const set = await DeviceSet.init(root, {
    options: ['dm.loopdatasize=1G', 'dm.loopmetadatasize=16M', 'dm.basesize=300M', 'dm.fs=xfs', 'dm.xfs_nospace_max_retries=7'],
    ...quiet,
  });
  assert.is((await set.status()).baseDeviceFS, 'xfs');
  await set.addDevice('p', '');
  await set.addDevice('c', 'p');
  const mp = join(root, 'mnt', 'p');
  const mc = join(root, 'mnt', 'c');
  mkdirSync(mp, { recursive: true });
  mkdirSync(mc, { recursive: true });
  await set.mountDevice('p', mp);
  await set.mountDevice('c', mc);
  const minor = statSync(set.deviceInfo('c').devicePath).rdev & 0xff;
  assert.is(readFileSync(`/sys/fs/xfs/dm-${minor}/error/metadata/ENOSPC/max_retries`, 'utf8').trim(), '7');
  await set.unmountDevice('c', mc);
  await set.unmountDevice('p', mp);
  await set.shutdown();
});

test.run();
