// SPDX-License-Identifier: MIT
// Fuzzing the public DeviceSet methods' arguments on FakeKernel (issue #14 item 6, d10): random
// option sets (strings and typed objects) for init, random JS values for every argument of every
// public method. Everything thrown is a DevmapperError with a code, and a refused call changes
// nothing: dm devices, mounts, loop bindings, the pool's thins, the files under the root and
// ds.list() are the same before and after.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { DeviceSet } from '../../../src/deviceset/index.js';
import { DevmapperError, InvalidArgumentError } from '../../../src/errors.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { counts, report } from './common.js';

const t0 = performance.now();
const OPTS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
// tmpfs when there is one: init fsyncs its records and loop files, which is slow on a loaded disk.
const tmp = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'dm-fuzz-args-'));

/** Runs `fn`; a throw must be a DevmapperError with a string code. Returns it, or undefined. */
async function thrown(label: string, fn: () => unknown): Promise<DevmapperError | undefined> {
  counts.set(label, (counts.get(label) ?? 0) + 1);
  try {
    await fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof DevmapperError) || typeof (err as { code?: unknown }).code !== 'string') {
      assert.unreachable(`${label}: untyped exception ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
    return err as DevmapperError;
  }
}

/** Every file under `dir` with its size and mtime (a rewritten record shows). */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) {
        out.push(`${p}/`);
        walk(p);
      } else out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

const json = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Map ? [...x.entries()] : x));

function snapshot(fake: FakeKernel, dir: string, ds?: DeviceSet): string {
  const pool = ds ? fake.pool(ds.poolName) : undefined;
  return json({
    devices: fake.devices(),
    mounts: fake.mounts(),
    loops: fake.loops().map((l) => [l.index, l.bound, l.backingFile ?? null]),
    pool: pool ? { tx: pool.transactionId, thins: pool.thins, used: pool.usedDataBlocks } : null,
    files: files(dir),
    list: ds?.list() ?? null,
  });
}

// ------------------------------------------------------------------------------- generators

const KEYS = [
  'dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize', 'dm.fs', 'dm.mkfsarg', 'dm.mountopt', 'dm.datadev', 'dm.metadatadev',
  'dm.thinpooldev', 'dm.blocksize', 'dm.blkdiscard', 'dm.use_deferred_removal', 'dm.use_deferred_deletion', 'dm.min_free_space',
  'dm.xfs_nospace_max_retries', 'dm.thinp_percent', 'dm.nope',
];
const sizeText = fc.oneof(
  fc.constantFrom('16M', '64M', '2M', '9P', '8P', '8191T', '0', '-1', '1.5G', '1.0000000001G', '', ' 1G', '1e9', 'NaN'),
  fc.constant('1.' + '0'.repeat(5000) + 'G'),
  fc.tuple(fc.nat(1 << 20), fc.constantFrom('', 'k', 'M', 'G', 'T', 'P', 'KiB', '%')).map(([n, u]) => `${n}${u}`),
);
const optionString = fc.oneof(
  fc.tuple(fc.constantFrom(...KEYS), sizeText).map(([k, v]) => `${k}=${v}`),
  fc.tuple(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })).map(([k, v]) => `${k}=${v}`),
  fc.string({ maxLength: 16 }),
  fc.anything({ maxDepth: 1 }),
);
const PROPS = [
  'baseSize', 'loopDataSize', 'loopMetadataSize', 'fs', 'mkfsArgs', 'mountOptions', 'dataDevice', 'metadataDevice', 'thinPoolDevice',
  'blockSize', 'blkDiscard', 'useDeferredRemoval', 'useDeferredDeletion', 'minFreeSpacePercent', 'xfsNoSpaceMaxRetries', 'basesize',
];
const jsValue = fc.oneof(
  fc.constantFrom(undefined, null, 0, -1, 1.5, NaN, Infinity, 2 ** 53, 9007199254740480n, 2n ** 63n, -512n, '', 'x', '16M', '9P', true, false, [], {}),
  fc.anything({ maxDepth: 1 }),
  sizeText,
);
const typedOptions = fc.dictionary(fc.constantFrom(...PROPS), jsValue, { maxKeys: 4 });
/** A working option set with one size replaced: reaches the code after validation. */
const nearValid = fc
  .tuple(fc.constantFrom('dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize', 'dm.blocksize'), sizeText)
  .map(([k, v]) => [...OPTS.filter((o) => !o.startsWith(`${k}=`)), `${k}=${v}`]);
const initOptions = fc.oneof(nearValid, fc.array(optionString, { maxLength: 5 }), typedOptions, jsValue);
const INIT_KEYS = ['options', 'deferredDeleteIntervalMs', 'log', 'crashPoint', 'kernelLog', 'signal', 'optoins', 'dm', 'tools'];
const initExtra = fc.dictionary(fc.constantFrom(...INIT_KEYS), fc.oneof(jsValue, fc.constant(() => {}), fc.constant(new AbortController().signal)), { maxKeys: 3 });

test('DeviceSet.init: random option sets and init fields give a DeviceSet or a typed error; a refusal creates nothing', async () => {
  let n = 0;
  // One fake for every run: a successful init is shut down again, which leaves the fake as it was.
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  await fc.assert(
    fc.asyncProperty(initOptions, initExtra, async (options, extra) => {
      const dir = join(tmp, `init-${n++}`);
      mkdirSync(dir);
      const root = join(dir, 'root');
      try {
        const before = snapshot(fake, dir);
        const seams = fakeDeviceSetInit(fake, '/fakedev');
        // The seams stay valid (a DmControl that is not one is the caller's own TypeError to find);
        // options and the user-facing fields are random.
        const init = { ...seams, log: () => {}, options, ...extra, dm: seams.dm, tools: seams.tools };
        let ds: DeviceSet | undefined;
        const err = await thrown('init', async () => {
          ds = await DeviceSet.init(root, init as never);
        });
        if (!err) counts.set('init (accepted)', (counts.get('init (accepted)') ?? 0) + 1);
        if (err instanceof InvalidArgumentError) {
          assert.is(snapshot(fake, dir), before, `init refused ${json(options)} ${json(extra)} but changed state`);
        } else if (err) {
          // Failed later (a dm.thinpooldev that does not exist, a loop file the host cannot
          // hold…): the root may stay, but nothing is left in the kernel.
          assert.equal(fake.devices(), [], `init failed with ${err.code} and left dm devices`);
          assert.equal(fake.loops().filter((l) => l.bound), [], `init failed with ${err.code} and left loops bound`);
        }
        await ds?.shutdown();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 80 },
  ).finally(() => fake.dispose());
});

const hashArg = fc.oneof(fc.constantFrom('img', '', 'c1', 'nope', 'base', 'a/b', '..', '-x', 'x'.repeat(80)), jsValue);
const optsArg = (keys: readonly string[]) =>
  fc.oneof(
    fc.constantFrom(undefined, null, 5, 'x', [], {}),
    fc.dictionary(fc.constantFrom(...keys, 'signal', 'sise', 'lable'), fc.oneof(jsValue, fc.constant(new AbortController().signal)), { maxKeys: 3 }),
  );

test('every public DeviceSet method: random JS arguments give a result or a typed error; a refusal changes nothing', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const dir = join(tmp, 'methods');
  mkdirSync(dir);
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const ds = await DeviceSet.init(join(dir, 'root'), { ...fakeDeviceSetInit(fake, '/fakedev'), log: () => {}, options: OPTS });
  await ds.addDevice('img', '');
  const pathArg = fc.oneof(fc.constantFrom(mnt, 'rel', `${mnt}\0x`, '/'), jsValue);
  const resizeArg = fc.oneof(fc.constantFrom('64M', '9P', '8P', 0, -512, 1.5, '1.' + '0'.repeat(5000) + 'G', 64n * 1024n * 1024n), jsValue);
  const call = fc.oneof(
    fc.tuple(fc.constant('addDevice'), hashArg, hashArg, optsArg(['size'])),
    fc.tuple(fc.constant('deleteDevice'), hashArg, optsArg(['sync'])),
    fc.tuple(fc.constant('activateDevice'), hashArg),
    fc.tuple(fc.constant('deactivateDevice'), hashArg),
    fc.tuple(fc.constant('mountDevice'), hashArg, pathArg, optsArg(['options', 'label'])),
    fc.tuple(fc.constant('unmountDevice'), hashArg, pathArg),
    fc.tuple(fc.constant('hasDevice'), hashArg),
    fc.tuple(fc.constant('deviceInfo'), hashArg),
    fc.tuple(fc.constant('deviceStatus'), hashArg),
    fc.tuple(fc.constant('resizePool'), resizeArg),
  );
  try {
    await fc.assert(
      fc.asyncProperty(call, async ([method, ...args]) => {
        const before = snapshot(fake, dir, ds);
        const err = await thrown(method, () => (ds as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args));
        if (err) assert.is(snapshot(fake, dir, ds), before, `${method}(${args.map(json).join(', ')}) was refused but changed state`);
      }),
      { numRuns: 300 },
    );
  } finally {
    await ds.shutdown();
    fake.dispose();
  }
});

test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
  report('deviceset-args.fuzz', t0);
});

test.run();
