// SPDX-License-Identifier: MIT
// The loop contract: LoopControl and raw loop ioctls, same assertions on FakeKernel and the real
// loop driver.
import * as assert from 'uvu/assert';
import { constants as fsc, statSync, truncateSync } from 'node:fs';
import { linearTarget } from '../../src/dm/index.js';
import {
  BLKDISCARD,
  BLKGETSIZE64,
  LOOP_CONFIGURE,
  LOOP_GET_STATUS64,
  LOOP_INFO64_SIZE,
  encodeBlkRange,
  encodeLoopConfig,
} from '../../src/ioctl/index.js';
import { LoopDeviceExistsError, LoopDeviceInUseError, LoopDeviceNotFoundError, LoopNotBoundError } from '../../src/loop/index.js';
import { rejects } from '../helpers/rejects.js';
import { errnoOf, type ContractEnv, type EnvFactory, type SuiteFactory } from './env.js';

const MiB = 1024 * 1024;
const O_CLOEXEC = 0o2000000;

export function registerLoopContract(suiteFactory: SuiteFactory, makeEnv: EnvFactory): void {
  const test = suiteFactory('loop contract');
  let env: ContractEnv;
  test.before.each(async () => {
    env = await makeEnv();
  });
  test.after.each(async () => {
    await env.cleanup();
  });

  test('attach → status → size → detach → ENXIO', async () => {
    const loops = env.loops();
    const file = await env.file(8 * MiB);
    const a = await loops.attach(file, { offset: MiB, sizeLimit: 4 * MiB });
    const st = await loops.status(a.path);
    assert.equal(loops.statusSync(a.path), st, 'the Sync twin reads the same');
    assert.is(st.index, a.index);
    assert.is(st.offset, BigInt(MiB));
    assert.is(st.sizeLimit, BigInt(4 * MiB));
    assert.is(st.autoclear, true);
    assert.is(st.readOnly, false);
    assert.is(st.backingInode, statSync(file, { bigint: true }).ino);
    assert.is(await loops.sizeOf(a.path), BigInt(4 * MiB));
    assert.is(loops.sizeOfSync(a.path), BigInt(4 * MiB));
    assert.is(a.major, 7);
    await a.detach();
    await rejects(loops.status(a.path), LoopNotBoundError);
    assert.throws(() => loops.statusSync(a.path), (e: unknown) => e instanceof LoopNotBoundError);
    const fd = env.open(a.path, fsc.O_RDONLY | O_CLOEXEC);
    assert.is(await errnoOf(() => env.sys.ioctl(fd, LOOP_GET_STATUS64, Buffer.alloc(LOOP_INFO64_SIZE), 'LOOP_GET_STATUS64')), 'ENXIO');
    const b = Buffer.alloc(8);
    env.sys.ioctl(fd, BLKGETSIZE64, b, 'BLKGETSIZE64');
    assert.is(b.readBigUInt64LE(0), 0n);
    env.close(fd);
  });

  test('size is (file − offset), rounded down to 512', async () => {
    const loops = env.loops();
    const file = await env.file(MiB + 1000);
    const a = await loops.attach(file, { offset: 4096 });
    assert.is(await loops.sizeOf(a.path), BigInt(Math.floor((MiB + 1000 - 4096) / 512) * 512));
    a.close();
    await a.detach().catch(() => {});
  });

  test('bind onto a bound device → EBUSY', async () => {
    const a = await env.blockDevice(MiB);
    const file = await env.file(MiB);
    const backing = env.open(file, fsc.O_RDWR | O_CLOEXEC);
    const dev = env.open(a.path, fsc.O_RDWR | O_CLOEXEC);
    assert.is(await errnoOf(() => env.sys.ioctl(dev, LOOP_CONFIGURE, encodeLoopConfig({ fd: backing }), 'LOOP_CONFIGURE')), 'EBUSY');
    env.close(dev);
    env.close(backing);
  });

  test('autoclear: closing the only opener detaches', async () => {
    const loops = env.loops();
    const a = await loops.attach(await env.file(MiB));
    assert.ok(await loops.status(a.path));
    a.close();
    assert.ok(await env.eventually(async () => !(await loops.list()).some((l) => l.index === a.index)), 'unbound after close');
    await rejects(loops.status(a.path), LoopNotBoundError);
    assert.throws(() => loops.statusSync(a.path), (e: unknown) => e instanceof LoopNotBoundError);
  });

  test('a dm table holds an autoclear loop; removing the dm device releases it', async () => {
    const loops = env.loops();
    const dm = env.dm();
    const a = await loops.attach(await env.file(MiB));
    const name = env.name('holder');
    await dm.createDevice(name, [linearTarget(0n, 2048n, { device: { major: a.major, minor: a.minor }, offset: 0n })]);
    a.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.ok((await loops.list()).some((l) => l.index === a.index), 'still bound while dm holds it');
    await dm.deviceRemove(name);
    assert.ok(await env.eventually(async () => !(await loops.list()).some((l) => l.index === a.index)), 'unbound after dm remove');
  });

  test('detach while someone else holds it → deferred, then detached on their close', async () => {
    const loops = env.loops();
    const a = await loops.attach(await env.file(MiB), { autoclear: false });
    a.close();
    const fd = env.open(a.path, fsc.O_RDONLY | O_CLOEXEC);
    assert.is(await loops.detach(a.path), 'deferred');
    assert.ok((await loops.status(a.path)).autoclear);
    env.close(fd);
    assert.ok(await env.eventually(async () => !(await loops.list()).some((l) => l.index === a.index)));
  });

  test('sysfs list shows the binding', async () => {
    const loops = env.loops();
    const file = await env.file(2 * MiB);
    const a = await loops.attach(file, { offset: 512 });
    const listed = await loops.list();
    assert.equal(loops.listSync(), listed, 'the Sync twin reads the same');
    const e = listed.find((l) => l.index === a.index);
    assert.ok(e?.binding);
    assert.is(e.binding.offset, 512n);
    assert.is(e.binding.autoclear, true);
    assert.is(e.sizeSectors, BigInt((2 * MiB - 512) / 512));
    const found = await loops.findByBackingFile(file);
    assert.equal(found.map((m) => m.index), [a.index]);
    assert.equal(loops.findByBackingFileSync(file), found, 'the Sync twin finds the same');
    a.close();
  });

  test('loop-control: ADD existing → EEXIST, REMOVE bound → EBUSY, REMOVE missing → ENODEV', async () => {
    const loops = env.loops();
    const a = await env.blockDevice(MiB);
    assert.throws(() => loops.add(a.index), (e: unknown) => e instanceof LoopDeviceExistsError);
    assert.throws(() => loops.remove(a.index), (e: unknown) => e instanceof LoopDeviceInUseError);
    const idx = 900 + (process.pid % 90);
    try {
      loops.remove(idx);
    } catch {
      /* not there: fine */
    }
    assert.is(loops.add(idx), idx);
    loops.remove(idx);
    assert.throws(() => loops.remove(idx), (e: unknown) => e instanceof LoopDeviceNotFoundError);
  });

  test('setCapacity picks up a grown file', async () => {
    const loops = env.loops();
    const file = await env.file(MiB);
    const a = await loops.attach(file);
    truncateSync(file, 2 * MiB);
    assert.is(await loops.sizeOf(a.path), BigInt(MiB));
    await loops.setCapacity(a.path);
    assert.is(await loops.sizeOf(a.path), BigInt(2 * MiB));
    a.close();
  });

  test('BLKDISCARD: read-only fd → EBADF, misaligned → EINVAL, past the end → EINVAL', async () => {
    const a = await env.blockDevice(MiB);
    const ro = env.open(a.path, fsc.O_RDONLY | O_CLOEXEC);
    assert.is(await errnoOf(() => env.sys.ioctl(ro, BLKDISCARD, encodeBlkRange(0n, 4096n), 'BLKDISCARD')), 'EBADF');
    env.close(ro);
    const rw = env.open(a.path, fsc.O_RDWR | O_CLOEXEC);
    assert.is(await errnoOf(() => env.sys.ioctl(rw, BLKDISCARD, encodeBlkRange(100n, 4096n), 'BLKDISCARD')), 'EINVAL');
    assert.is(await errnoOf(() => env.sys.ioctl(rw, BLKDISCARD, encodeBlkRange(0n, BigInt(4 * MiB)), 'BLKDISCARD')), 'EINVAL');
    env.sys.ioctl(rw, BLKDISCARD, encodeBlkRange(0n, 65536n), 'BLKDISCARD');
    env.close(rw);
  });

  test.run();
}
