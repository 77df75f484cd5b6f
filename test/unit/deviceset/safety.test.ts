// Issue #14's data-safety defects, one test each, on the FakeKernel: every test here fails on
// the code before its fix (shared/repro/deviceset/dN-*.mjs shows the old behaviour).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BackingFileInUseError,
  BackingFilesLostError,
  DeviceSet,
  OperationAbortedError,
  ThinPoolOwnershipError,
  type CrashPointName,
  type DeviceSetInit,
  type FsTools,
} from '../../../src/deviceset/index.js';
import { DmControl } from '../../../src/dm/index.js';
import { LoopControl, ensureSparseFile } from '../../../src/loop/index.js';
import { ThinPool } from '../../../src/thin/index.js';
import { FakeKernel, SimulatedCrash, fakeBlockDevices, fakeDeviceSetInit, fakeFsTools } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';

const OPTS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];

interface World {
  fake: FakeKernel;
  tmp: string;
  root: string;
  logs: string[];
  init(extra?: Partial<DeviceSetInit>): Promise<DeviceSet>;
  /** The process died: the kernel keeps its dm devices and mounts, its fds and lock are gone. */
  die(reboot?: boolean): void;
  short(name: string): string;
  dispose(): void;
}

function world(): World {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const tmp = mkdtempSync(join(tmpdir(), 'ds-safety-'));
  const root = join(tmp, 'root');
  const logs: string[] = [];
  return {
    fake,
    tmp,
    root,
    logs,
    init: (extra = {}) =>
      DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), crashPoint: () => {}, log: (l, m) => logs.push(`${l}: ${m}`), options: OPTS, ...extra }),
    die(reboot = false) {
      // revive()/reboot() close the dead process's fds, which drops its flock on the root.
      if (reboot) fake.reboot();
      else fake.revive();
    },
    short: (name) => name.replace(/^devmapper-[^-]+-\d+-/, 'P-'),
    dispose() {
      fake.dispose();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

const crashAt = (w: World, point: CrashPointName) => (name: CrashPointName) => {
  if (name === point) {
    w.fake.crashAfter(0);
    throw new SimulatedCrash(-1, 'before', `kill -9 at ${name}`);
  }
};


test('d1: a crash while the base filesystem grows: the next init unmounts .grow-base, finishes the grow, opens the root', async () => {
  const w = world();
  try {
    await (await w.init()).shutdown();
    const grown = OPTS.map((o) => (o.startsWith('dm.basesize') ? 'dm.basesize=32M' : o));
    const tools = fakeFsTools(w.fake);
    const dying: FsTools = {
      ...tools,
      grow: async () => {
        w.fake.crashAfter(0);
        throw new SimulatedCrash(-1, 'before', 'killed during resize2fs');
      },
    };
    await rejects(w.init({ options: grown, tools: dying }), SimulatedCrash);
    w.die();
    assert.equal(w.fake.mounts().map((m) => m.target), [join(w.root, 'mnt', '.grow-base')]);
    const grows: string[] = [];
    const ds = await w.init({ options: grown, tools: { ...tools, grow: async (_fs, _dev, mnt) => void grows.push(mnt) } });
    assert.equal(w.fake.mounts(), [], 'the leftover grow mount is gone');
    assert.equal(grows, [join(w.root, 'mnt', '.grow-base')], 'the interrupted grow ran once more');
    assert.is(ds.deviceInfo('').size, 32n << 20n);
    assert.equal(readdirSync(join(w.root, 'mnt')), [], 'the grow directory was removed (rmdir)');
    await ds.shutdown();
    // The same options again: nothing to grow, the root opens.
    await (await w.init({ options: grown })).shutdown();
  } finally {
    w.dispose();
  }
});

test('d1: a grow the tool refuses leaves the base record at its old size; the old options open the root', async () => {
  const w = world();
  try {
    await (await w.init()).shutdown();
    const grown = OPTS.map((o) => (o.startsWith('dm.basesize') ? 'dm.basesize=32M' : o));
    const refusing: FsTools = { ...fakeFsTools(w.fake), grow: async () => Promise.reject(new Error('resize2fs: refused')) };
    await w.init({ options: grown, tools: refusing }).then(
      () => assert.unreachable('init should fail'),
      (e: unknown) => assert.match(String(e), /resize2fs: refused/),
    );
    const ds = await w.init();
    assert.is(ds.deviceInfo('').size, 16n << 20n);
    assert.equal(w.fake.mounts(), []);
    await ds.shutdown();
  } finally {
    w.dispose();
  }
});

test('d11: addDevice whose grow fails removes the half-made device; a retry meets the same error, not EDEVICEEXISTS', async () => {
  const w = world();
  try {
    const tools: FsTools = { ...fakeFsTools(w.fake), grow: async () => Promise.reject(new Error('resize2fs: New size too large to be expressed in 32 bits')) };
    const ds = await w.init({ tools });
    const pool = ds.poolName;
    for (let i = 0; i < 2; i++) {
      await ds.addDevice('big', '', { size: '1P' }).then(
        () => assert.unreachable('addDevice should fail'),
        (e: unknown) => assert.match(String(e), /too large/),
      );
      assert.is(ds.hasDevice('big'), false);
      assert.equal([...(w.fake.pool(pool)?.thins.keys() ?? [])], [1], 'only the base thin id is left');
    }
    await ds.shutdown();
  } finally {
    w.dispose();
  }
});

test('d11: a crash while addDevice grows the new device: the next init deletes it and a retry works', async () => {
  const w = world();
  try {
    const ds = await w.init({ crashPoint: crashAt(w, 'grow:before-tool') });
    const pool = ds.poolName;
    await rejects(ds.addDevice('big', '', { size: '32M' }), SimulatedCrash);
    w.die();
    const again = await w.init();
    assert.is(again.hasDevice('big'), false);
    assert.equal([...(w.fake.pool(pool)?.thins.keys() ?? [])], [1]);
    assert.equal(w.fake.mounts(), []);
    const dev = await again.addDevice('big', '', { size: '32M' });
    assert.is(dev.size, 32n << 20n);
    await again.shutdown();
  } finally {
    w.dispose();
  }
});

test('d7: a failed init leaves an adopted pool and its active and mounted devices exactly as found', async () => {
  const w = world();
  try {
    const ds = await w.init();
    await ds.addDevice('ctr1', '');
    await ds.addDevice('ctr2', '');
    await ds.activateDevice('ctr1');
    mkdirSync(join(w.tmp, 'mnt'));
    await ds.mountDevice('ctr2', join(w.tmp, 'mnt'));
    w.die();
    const before = w.fake.devices().map((d) => [w.short(d.name), d.deferredRemove]);
    // The data file gets a new inode: the live pool is no longer provably this root's.
    copyFileSync(join(w.root, 'devicemapper/data'), join(w.root, 'devicemapper/data.new'));
    renameSync(join(w.root, 'devicemapper/data.new'), join(w.root, 'devicemapper/data'));
    await rejects(w.init(), ThinPoolOwnershipError);
    assert.equal(before, [['P-ctr1', false], ['P-ctr2', false], ['P-pool', false]]);
    assert.equal(w.fake.devices().map((d) => [w.short(d.name), d.deferredRemove]), before);
    assert.is(w.fake.mounts().length, 1);
  } finally {
    w.dispose();
  }
});

test('d6: a live pool whose backing files were deleted is refused; nothing new is created over it', async () => {
  const w = world();
  try {
    const ds = await w.init();
    await ds.addDevice('img', '');
    w.die();
    rmSync(join(w.root, 'devicemapper/data'));
    rmSync(join(w.root, 'devicemapper/metadata'));
    const err = await rejects(w.init(), BackingFilesLostError);
    assert.is(err.code, 'EBACKINGLOST');
    assert.match(err.message, /still reachable through \/fakedev\/loop0/);
    assert.is(existsSync(join(w.root, 'devicemapper/data')), false, 'no empty file was created');
    assert.equal(w.fake.devices().map((d) => w.short(d.name)), ['P-pool'], 'the live pool stays');
    // After a reboot the files are still gone and records exist: refused, nothing created.
    w.die(true);
    await rejects(w.init(), BackingFilesLostError);
    assert.is(existsSync(join(w.root, 'devicemapper/data')), false);
    // Only an explicit choice drops the records.
    const fresh = await w.init({ discardRecordsOnBlankMetadata: true });
    assert.equal(fresh.list(), []);
    await fresh.shutdown();
  } finally {
    w.dispose();
  }
});

test('d6: blank pool metadata with existing records is refused, not dropped with a warning', async () => {
  const w = world();
  try {
    const ds = await w.init();
    await ds.addDevice('img', '');
    await ds.shutdown();
    writeFileSync(join(w.root, 'devicemapper/metadata'), Buffer.alloc(8192));
    const err = await rejects(w.init(), BackingFilesLostError);
    assert.match(err.message, /metadata .* is blank but 2 device record\(s\) exist/);
    assert.equal(w.fake.devices(), [], 'no pool was made');
  } finally {
    w.dispose();
  }
});

test('d9: a second pool over files bound to a live pool is refused, naming that pool', async () => {
  const w = world();
  try {
    const ds = await w.init();
    await ds.addDevice('img', '');
    const oldPool = ds.poolName;
    w.die();
    // The operator moves the set into a fresh directory at the same path: a new inode, a new prefix.
    renameSync(w.root, join(w.tmp, 'old'));
    mkdirSync(w.root, { mode: 0o700 });
    for (const f of ['devicemapper', 'metadata']) renameSync(join(w.tmp, 'old', f), join(w.root, f));
    const err = await rejects(w.init(), BackingFileInUseError);
    assert.is(err.code, 'EBACKINGFILEINUSE');
    assert.equal(err.holders, [oldPool]);
    assert.equal(w.fake.devices().filter((d) => d.name.endsWith('-pool')).map((d) => d.name), [oldPool]);
    assert.is(w.fake.loops().filter((l) => l.backingFile).length, 2, 'no new loop binding');
  } finally {
    w.dispose();
  }
});

test("d8: recovery on an external pool never deletes an in-doubt thin id: it is quarantined and never reused", async () => {
  const w = world();
  try {
    const loops = new LoopControl({ devDir: '/fakedev', syscalls: w.fake, sysfsRoot: w.fake.sysfsRoot, sleep: async () => {} });
    const dm = new DmControl({ devDir: '/fakedev', syscalls: w.fake, sleep: async () => {}, udevRecheckMs: 0 });
    const files = ['ext-data', 'ext-meta'].map((f) => join(w.tmp, f));
    await ensureSparseFile(files[0]!, 64n << 20n);
    await ensureSparseFile(files[1]!, 2n << 20n);
    const data = await loops.attach(files[0]!, { autoclear: false });
    const meta = await loops.attach(files[1]!, { autoclear: false });
    const pool = await ThinPool.create(dm, {
      name: 'lvm-pool', dataDev: data.path, metadataDev: meta.path, dataBlockSize: 128, lowWaterMark: 0, metadata: 'new',
      blockDevices: fakeBlockDevices(w.fake, loops),
    });
    const options = ['dm.thinpooldev=lvm-pool', 'dm.basesize=16M', 'dm.min_free_space=0%'];
    const ds = await w.init({ options, crashPoint: crashAt(w, 'snapshot:before-message') });
    await pool.createThin(2); // the pool's other user makes thin 2
    await rejects(ds.addDevice('x', ''), SimulatedCrash);
    w.die();
    const again = await w.init({ options });
    assert.equal([...(w.fake.pool('lvm-pool')?.thins.keys() ?? [])].sort(), [1, 2], "the foreign thin 2 survives");
    const st = await again.status();
    assert.equal(st.quarantinedThinIds.map((q) => q.deviceId), [2]);
    assert.is(again.hasDevice('x'), false);
    const y = await again.addDevice('y', '');
    assert.is(y.deviceId, 3, 'a quarantined id is never reused');
    await again.shutdown();
    assert.equal([...(w.fake.pool('lvm-pool')?.thins.keys() ?? [])].sort(), [1, 2, 3]);
    const reopened = await w.init({ options });
    assert.equal((await reopened.status()).quarantinedThinIds.map((q) => q.deviceId), [2], 'the quarantine is persistent');
    await reopened.shutdown();

  } finally {
    w.dispose();
  }
});

test('abort: a signal during mkfs kills the init, removes the pool it created and releases the lock', async () => {
  const w = world();
  try {
    const ac = new AbortController();
    const tools = fakeFsTools(w.fake);
    let mkfsSignal: AbortSignal | undefined;
    const slow: FsTools = {
      ...tools,
      mkfs: (fs, dev, args, call) => {
        mkfsSignal = call?.signal;
        ac.abort(new Error('SIGTERM'));
        return Promise.reject(new Error('mkfs.ext4 killed by SIGTERM'));
      },
    };
    const err = await rejects(w.init({ tools: slow, signal: ac.signal }), OperationAbortedError);
    assert.is(err.code, 'EABORTED');
    assert.is(mkfsSignal, ac.signal, 'the tool got the signal (it kills the child)');
    assert.equal(w.fake.devices(), [], 'the pool this init created is gone');
    const ds = await w.init();
    assert.is(ds.deviceInfo('').state, 'ready');
    // An already-aborted signal starts nothing.
    await rejects(ds.addDevice('a', '', { signal: AbortSignal.abort() }), OperationAbortedError);
    assert.is(ds.hasDevice('a'), false);
    await ds.shutdown();
  } finally {
    w.dispose();
  }
});

test('abort: a signal while addDevice grows the new device deletes it', async () => {
  const w = world();
  try {
    const ac = new AbortController();
    const tools: FsTools = {
      ...fakeFsTools(w.fake),
      grow: async () => {
        ac.abort();
        throw new Error('resize2fs killed');
      },
    };
    const ds = await w.init({ tools });
    await rejects(ds.addDevice('g', '', { size: '32M', signal: ac.signal }), OperationAbortedError);
    assert.is(ds.hasDevice('g'), false);
    assert.equal([...(w.fake.pool(ds.poolName)?.thins.keys() ?? [])], [1]);
    await ds.shutdown();
  } finally {
    w.dispose();
  }
});

test.run();
