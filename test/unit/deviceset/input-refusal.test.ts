// SPDX-License-Identifier: MIT
// Issue #14 item 6 (d10): bad input is refused before anything is created. Sizes beyond what the
// records hold, pathological size texts, wrong-typed JS arguments of the public DeviceSet methods,
// and a kernel without device-mapper, each give a typed error and change nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, RootLock } from '../../../src/deviceset/index.js';
import { parseDmOptions, parseSize, resolveDeviceSetOptions } from '../../../src/deviceset/options.js';

/** options.ts MAX_SIZE: 2^53 − 512, the largest multiple of 512 that is a safe integer. */
const MAX_SIZE = 9007199254740480n;
import { DmControl, DmUnavailableError, miscListsDeviceMapper } from '../../../src/dm/index.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';

const OPTS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
const quiet = { log: () => {} };

interface World {
  fake: FakeKernel;
  tmp: string;
  root: string;
}
function world(): World {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const tmp = mkdtempSync(join(tmpdir(), 'ds-refusal-'));
  return { fake, tmp, root: join(tmp, 'root') };
}
function dispose(w: World): void {
  w.fake.dispose();
  rmSync(w.tmp, { recursive: true, force: true });
}
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.unreachable('expected a rejection'),
    (err: unknown) => err,
  );
}
function problemsOf(err: unknown): { path: string; message: string }[] {
  assert.instance(err, InvalidArgumentError, String(err));
  return (err as InvalidArgumentError).problems.map((p) => ({ path: p.path, message: p.message }));
}

// ---------------------------------------------------------------------------------- sizes

const sizes = suite('d10 sizes');

sizes('dm.basesize=9P is refused by option validation, before the root or a loop file exists', async () => {
  const w = world();
  try {
    const err = await rejection(DeviceSet.init(w.root, { ...fakeDeviceSetInit(w.fake, '/fakedev'), ...quiet, options: ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=9P'] }));
    assert.equal(problemsOf(err), [
      { path: '/2', message: 'dm.basesize=9P: must be at most 9007199254740480 bytes (2^53 − 512, just under 8P): device records store sizes as JSON safe integers' },
    ]);
    assert.is(existsSync(join(w.root, 'devicemapper', 'data')), false);
    assert.is(existsSync(w.root), false);
    assert.equal(w.fake.devices(), []);
    assert.equal(w.fake.loops().filter((l) => l.backingFile), []);
  } finally {
    dispose(w);
  }
});

sizes('the size maxima: 2^53 − 512 is accepted, one sector more is refused, every problem listed', () => {
  assert.is(MAX_SIZE, (1n << 53n) - 512n);
  const ok = resolveDeviceSetOptions({ baseSize: MAX_SIZE, loopDataSize: MAX_SIZE });
  assert.is(ok.baseSize, MAX_SIZE);
  assert.is(ok.loopDataSize, MAX_SIZE);
  const tooLarge = 'must be at most 9007199254740480 bytes (2^53 − 512, just under 8P): device records store sizes as JSON safe integers';
  try {
    resolveDeviceSetOptions({ baseSize: MAX_SIZE + 512n, loopDataSize: '8P' });
    assert.unreachable();
  } catch (err) {
    assert.equal(problemsOf(err), [
      { path: '/baseSize', message: `baseSize=9007199254740992n: ${tooLarge}` },
      { path: '/loopDataSize', message: `loopDataSize="8P": ${tooLarge}` },
    ]);
  }
});

sizes('parseSize refuses a pathological text by its length; 100 characters still parse', () => {
  assert.is(parseSize('1.' + '0'.repeat(200000) + 'G'), 'too long: a size is at most 100 characters');
  assert.is(parseSize('1.' + '0'.repeat(97) + 'G'), 1073741824n);
  assert.is(parseSize('1.' + '0'.repeat(98) + 'G'), 'too long: a size is at most 100 characters');
  assert.is(parseSize('1.0000000001G'), 'not a whole number of bytes');
  assert.equal(problemsOf(catchSync(() => parseDmOptions(['dm.basesize=1.' + '0'.repeat(200000) + 'G']))).map((p) => p.path), ['/0']);
});

function catchSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return assert.unreachable('expected a throw');
}

// ---------------------------------------------------------------------------- JS arguments

const args = suite('d10 JS arguments');

interface Open {
  w: World;
  ds: DeviceSet;
  mnt: string;
}
async function open(): Promise<Open> {
  const w = world();
  const ds = await DeviceSet.init(w.root, { ...fakeDeviceSetInit(w.fake, '/fakedev'), ...quiet, options: OPTS });
  await ds.addDevice('img', '');
  const mnt = join(w.tmp, 'm');
  mkdirSync(mnt);
  return { w, ds, mnt };
}
async function close(o: Open): Promise<void> {
  await o.ds.shutdown();
  dispose(o.w);
}
const imgActive = (o: Open): boolean => o.w.fake.devices().some((d) => d.name === `${o.ds.prefix}-img`);

args('mountDevice(id, path, { options: 5 }) is an InvalidArgumentError and activates nothing', async () => {
  const o = await open();
  try {
    const err = await rejection(o.ds.mountDevice('img', o.mnt, { options: 5 } as never));
    assert.equal(problemsOf(err), [{ path: '/options/options', message: 'expected a string' }]);
    assert.is(imgActive(o), false);
    assert.equal(o.w.fake.mounts(), []);
  } finally {
    await close(o);
  }
});

args('mountDevice: a label with " or , and an unknown key are refused together; signal is accepted', async () => {
  const o = await open();
  try {
    const err = await rejection(o.ds.mountDevice('img', 'rel', { label: 'a,b', lable: 'x' } as never));
    assert.equal(problemsOf(err), [
      { path: '/path', message: 'must be an absolute path' },
      { path: '/options/label', message: 'a mount label cannot contain ", "," or NUL' },
      { path: '/options/lable', message: 'unknown option "lable" (known: options, label, signal)' },
    ]);
    const quote = await rejection(o.ds.mountDevice('img', o.mnt, { label: 'sys"tem' }));
    assert.equal(problemsOf(quote), [{ path: '/options/label', message: 'a mount label cannot contain ", "," or NUL' }]);
    assert.is(imgActive(o), false);
    const signal = await rejection(o.ds.mountDevice('img', o.mnt, { signal: 'stop' } as never));
    assert.equal(problemsOf(signal), [{ path: '/options/signal', message: 'expected an AbortSignal' }]);
    await o.ds.mountDevice('img', o.mnt, { signal: new AbortController().signal } as never);
    assert.is(imgActive(o), true);
    await o.ds.unmountDevice('img', o.mnt);
  } finally {
    await close(o);
  }
});

args('addDevice / deleteDevice / resizePool / lookups refuse wrong types before any kernel call', async () => {
  const o = await open();
  try {
    const calls = o.w.fake.callCount;
    assert.equal(problemsOf(await rejection(o.ds.addDevice('c', 'img', { sise: '20G' } as never))), [
      { path: '/options/sise', message: 'unknown option "sise" (known: size, signal)' },
    ]);
    assert.equal(problemsOf(await rejection(o.ds.addDevice(7 as never, 'img', { size: true } as never))), [
      { path: '/hash', message: 'a device hash must be a string' },
      { path: '/options/size', message: 'must be bytes (bigint or safe integer) or a size string such as 20G' },
    ]);
    assert.equal(problemsOf(await rejection(o.ds.addDevice('c', 'img', { size: '1.' + '0'.repeat(200000) + 'G' }))), [
      { path: '/options/size', message: 'too long: a size is at most 100 characters' },
    ]);
    assert.equal(problemsOf(await rejection(o.ds.deleteDevice('img', { sync: 'yes' } as never))), [
      { path: '/options/sync', message: 'expected a boolean' },
    ]);
    assert.equal(problemsOf(await rejection(o.ds.deleteDevice('img', null as never))), [{ path: '/options', message: 'expected an options object' }]);
    assert.equal(problemsOf(await rejection(o.ds.resizePool(null as never))), [
      { path: '/size', message: 'must be bytes (bigint or safe integer) or a size string such as 20G' },
    ]);
    assert.equal(problemsOf(await rejection(o.ds.resizePool('9P'))), [
      { path: '/size', message: 'must be a positive multiple of 512 bytes, at most 9007199254740480 (2^53 − 512)' },
    ]);
    assert.equal(problemsOf(await rejection(o.ds.activateDevice({} as never))), [{ path: '/hash', message: 'a device hash must be a string' }]);
    assert.equal(problemsOf(await rejection(o.ds.deactivateDevice(undefined as never))), [{ path: '/hash', message: 'a device hash must be a string' }]);
    assert.equal(problemsOf(await rejection(o.ds.deviceStatus(1n as never))), [{ path: '/hash', message: 'a device hash must be a string' }]);
    assert.equal(problemsOf(await rejection(o.ds.unmountDevice('img', 5 as never))), [{ path: '/path', message: 'must be an absolute path' }]);
    assert.equal(problemsOf(catchSync(() => o.ds.hasDevice(null as never))), [{ path: '/hash', message: 'expected a string' }]);
    assert.equal(problemsOf(catchSync(() => o.ds.deviceInfo(['img'] as never))), [{ path: '/hash', message: 'expected a string' }]);
    assert.is(o.w.fake.callCount, calls, 'no syscall was made');
    assert.equal(o.ds.list(), ['img']);
    assert.is(o.ds.hasDevice('no/such'), false, 'a lookup with any string is a fair question');
  } finally {
    await close(o);
  }
});

args('init refuses wrong-typed fields and unknown keys, before creating the root', async () => {
  const w = world();
  try {
    const err = await rejection(
      DeviceSet.init(w.root, { ...fakeDeviceSetInit(w.fake, '/fakedev'), options: 'dm.basesize=16M', deferredDeleteIntervalMs: -1, log: 'stderr', optoins: [] } as never),
    );
    assert.equal(problemsOf(err), [
      { path: '/init/deferredDeleteIntervalMs', message: 'expected milliseconds from 0 (no background worker) to 2147483647' },
      { path: '/init/options', message: 'expected an array of "dm.key=value" strings or an options object' },
      { path: '/init/log', message: 'expected a function' },
      {
        path: '/init/optoins',
        message:
          'unknown option "optoins" (known: options, dm, loops, syscalls, tools, metadataFs, blockDevices, crashPoint, log, kernelLog, discardRecordsOnBlankMetadata, deferredDeleteIntervalMs, signal)',
      },
    ]);
    assert.is(existsSync(w.root), false);
    assert.equal(w.fake.calls, []);
  } finally {
    dispose(w);
  }
});

args('init refuses a seam given as undefined (it would fall back to the real kernel), before creating the root', async () => {
  const w = world();
  try {
    const { dm: _dm, ...rest } = fakeDeviceSetInit(w.fake, '/fakedev');
    const err = await rejection(DeviceSet.init(w.root, { ...rest, dm: undefined, syscalls: undefined, ...quiet, options: OPTS } as never));
    assert.equal(problemsOf(err), [
      { path: '/init/syscalls', message: '"syscalls" is given as undefined: leave the key out to mean the real one' },
      { path: '/init/dm', message: '"dm" is given as undefined: leave the key out to mean the real one' },
    ]);
    assert.is(existsSync(w.root), false);
    assert.equal(w.fake.calls, []);
  } finally {
    dispose(w);
  }
});

// ------------------------------------------------------------------- no device-mapper

const nodm = suite('d10 kernel without device-mapper');

/** A fake whose /dev has no mapper/control node, and a /proc/misc text of our choosing. */
function withoutControl(miscText: string): { w: World; misc: string } {
  const w = world();
  w.fake.unlink('/fakedev/mapper/control');
  const misc = join(w.tmp, 'misc');
  writeFileSync(misc, miscText);
  return { w, misc };
}
const MISC_WITHOUT_DM = '234 btrfs-control\n237 loop-control\n229 fuse\n';

nodm('miscListsDeviceMapper reads the "%3i %s" lines of /proc/misc', () => {
  assert.is(miscListsDeviceMapper(`${MISC_WITHOUT_DM}236 device-mapper\n`), true);
  assert.is(miscListsDeviceMapper(' 63 device-mapper\n'), true);
  assert.is(miscListsDeviceMapper(MISC_WITHOUT_DM), false);
  assert.is(miscListsDeviceMapper('236 device-mapper-old\n236 xdevice-mapper\n'), false);
  assert.is(miscListsDeviceMapper(''), false);
});

nodm('/proc/misc without device-mapper: no mknod, DmUnavailableError', async () => {
  const { w, misc } = withoutControl(MISC_WITHOUT_DM);
  try {
    const dm = new DmControl({ devDir: '/fakedev', syscalls: w.fake, procMiscPath: misc });
    const err = await rejection(dm.version());
    assert.instance(err, DmUnavailableError);
    assert.is((err as DmUnavailableError).code, 'EDMUNAVAILABLE');
    assert.is(
      (err as Error).message,
      `device-mapper is not available (/fakedev/mapper/control): ${misc} lists no device-mapper device, so the kernel has no device-mapper driver loaded (modprobe dm-mod); the control node is not created`,
    );
    assert.equal(w.fake.calls.filter((c) => c.syscall === 'mknod' || c.syscall === 'mkdir' || c.syscall === 'open'), []);
    assert.throws(() => w.fake.stat('/fakedev/mapper/control'));
  } finally {
    dispose(w);
  }
});

nodm('/proc/misc listing device-mapper: the missing node is made as before', async () => {
  const { w, misc } = withoutControl(`${MISC_WITHOUT_DM}236 device-mapper\n`);
  try {
    const dm = new DmControl({ devDir: '/fakedev', syscalls: w.fake, procMiscPath: misc });
    assert.is((await dm.version())[0], 4);
    assert.equal(w.fake.calls.filter((c) => c.syscall === 'mknod').map((c) => c.path), ['/fakedev/mapper/control']);
    dm.close();
  } finally {
    dispose(w);
  }
});

nodm('/proc/misc without device-mapper but an existing node: it is opened (that can autoload dm-mod)', async () => {
  const w = world();
  const misc = join(w.tmp, 'misc');
  writeFileSync(misc, MISC_WITHOUT_DM);
  try {
    const dm = new DmControl({ devDir: '/fakedev', syscalls: w.fake, procMiscPath: misc });
    assert.is((await dm.version())[0], 4);
    assert.equal(w.fake.calls.filter((c) => c.syscall === 'mknod'), []);
    dm.close();
  } finally {
    dispose(w);
  }
});

nodm('DeviceSet.init on a kernel without device-mapper: typed error, no metadata/ left behind', async () => {
  const { w, misc } = withoutControl(MISC_WITHOUT_DM);
  try {
    const dm = new DmControl({ devDir: '/fakedev', syscalls: w.fake, procMiscPath: misc });
    const err = await rejection(DeviceSet.init(w.root, { ...fakeDeviceSetInit(w.fake, '/fakedev'), ...quiet, dm, options: OPTS }));
    assert.instance(err, DmUnavailableError);
    assert.is(existsSync(join(w.root, 'metadata')), false);
    // The flock lock file stays (never unlinked: fs/locks.c ties the lock to the open file, and an
    // unlinked lock file would let a second owner lock a new inode); the lock itself is free.
    assert.equal(readdirSync(w.root), ['devmapper.lock'], 'nothing but the lock file was made');
    const again = RootLock.acquire(w.root, w.fake);
    again.release();
    assert.equal(w.fake.loops().filter((l) => l.backingFile), []);
    assert.throws(() => w.fake.stat('/fakedev/mapper/control'));
  } finally {
    dispose(w);
  }
});

sizes.run();
args.run();
nodm.run();
