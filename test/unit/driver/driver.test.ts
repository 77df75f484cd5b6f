// SPDX-License-Identifier: MIT
// The seed's Driver over a DeviceSet on a FakeKernel: the verbs with Docker's semantics, reference
// counting (in one process and across "processes" through the fake's mount table), the per-id
// locker, doInit false, and input refused before anything changes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../../src/errors.js';
import { DeviceAlreadyExistsError, OperationAbortedError, UnknownDeviceError, type FsTools } from '../../../src/deviceset/index.js';
import {
  Driver,
  DriverClosedError,
  DriverNotInitializedError,
  LayerInUseError,
  LayerNotMountedError,
  Locker,
  RefCounter,
  dockerHumanSize,
  mountPointsOf,
  type DriverInit,
} from '../../../src/driver/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import { rejects } from '../../helpers/rejects.js';

const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const MiB = 1024 * 1024;
const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A gate: `wait()` blocks until `open()`. */
function gate(): { wait: () => Promise<void>; open: () => void; reached: Promise<void> } {
  let open!: () => void;
  let reach!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const reached = new Promise<void>((r) => (reach = r));
  return {
    wait: () => {
      reach();
      return opened;
    },
    open,
    reached,
  };
}

/**
 * A home on a FakeKernel. `open()` is one process's Driver.init; `die()` ends that process the
 * way the kernel would (its fds closed, its lock file naming a dead pid), leaving pool, active
 * devices and mounts behind.
 */
function world() {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const tmp = mkdtempSync(join(TMP, 'driver-'));
  const home = join(tmp, 'home');
  let wiring = fakeDeviceSetInit(fake, '/fakedev');
  const isMounted = (p: string): boolean => fake.mounts().some((m) => m.target === p);
  let probeGate: ((device: string) => Promise<void>) | undefined;
  const tools = (): FsTools => {
    const base = wiring.tools!;
    return {
      ...base,
      probe: async (device: string) => {
        if (probeGate) await probeGate(device);
        return base.probe!(device);
      },
    };
  };
  const open = (extra: Partial<DriverInit> = {}): Promise<Driver> =>
    Driver.init(home, { ...wiring, tools: tools(), options: OPTIONS, isMounted, log: () => undefined, ...extra });
  const die = (): void => {
    fake.revive();
    wiring = fakeDeviceSetInit(fake, '/fakedev');
    const lock = join(home, 'devmapper.lock');
    if (existsSync(lock)) writeFileSync(lock, '2147483646 1\n');
  };
  const mountTargets = (): string[] => fake.mounts().map((m) => m.target);
  const dispose = (): void => {
    fake.dispose();
    rmSync(tmp, { recursive: true, force: true });
  };
  return {
    fake,
    home,
    open,
    die,
    mountTargets,
    setProbeGate: (g: ((device: string) => Promise<void>) | undefined) => (probeGate = g),
    dispose,
  };
}

type World = ReturnType<typeof world>;

async function withDriver(fn: (w: World, d: Driver) => Promise<void>): Promise<void> {
  const w = world();
  let d: Driver | undefined;
  try {
    d = await w.open();
    await fn(w, d);
  } finally {
    await d?.cleanup().catch(() => undefined);
    w.dispose();
  }
}

// ------------------------------------------------------------------------------- pieces

const pieces = suite('driver pieces');

pieces("dockerHumanSize is go-units' HumanSize: decimal units, 4 significant digits, no space", () => {
  const cases: [bigint | number, string][] = [
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [65536, '65.54kB'],
    [999_999, '1000kB'],
    [16 * MiB, '16.78MB'],
    [2147483648n, '2.147GB'],
    [10737418240n, '10.74GB'],
    [107374182400n, '107.4GB'],
  ];
  for (const [bytes, text] of cases) assert.is(dockerHumanSize(bytes), text, String(bytes));
});

pieces('mountPointsOf decodes the octal escapes of /proc/self/mountinfo field 5', () => {
  const text = '36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n37 35 253:3 / /x\\011y rw - ext4 /dev/dm-3 rw\n';
  assert.equal(mountPointsOf(text), ['/mnt/a b', '/x\ty']);
});

pieces('RefCounter: a path mounted before its first use starts at one; the mount table is asked again once the count is gone', () => {
  const asked: string[] = [];
  let mounted = true;
  const c = new RefCounter((p) => (asked.push(p), mounted));
  assert.is(c.count('/m'), 1);
  assert.is(c.increment('/m'), 2);
  assert.is(c.decrement('/m'), 1);
  assert.is(c.decrement('/m'), 0);
  mounted = false;
  assert.is(c.decrement('/m'), -1);
  assert.is(c.increment('/m'), 1);
  assert.equal(asked, ['/m', '/m', '/m', '/m']);
});

pieces('Locker: one name is FIFO and exclusive, other names are free meanwhile, unused names are dropped', async () => {
  const l = new Locker();
  const order: string[] = [];
  const r1 = await l.lock('x');
  const second = l.lock('x').then((r) => (order.push('x2'), r));
  const third = l.lock('x').then((r) => (order.push('x3'), r));
  const other = await l.lock('y'); // not blocked by x
  order.push('y');
  await tick();
  assert.equal(order, ['y']);
  assert.is(l.size, 2);
  r1();
  r1(); // idempotent
  const r2 = await second;
  await tick();
  assert.equal(order, ['y', 'x2']);
  r2();
  (await third)();
  other();
  assert.equal(order, ['y', 'x2', 'x3']);
  assert.is(l.size, 0);
  assert.is(l.isLocked('x'), false);
  await rejects(l.run('z', () => Promise.reject(new Error('boom'))), Error);
  assert.is(l.size, 0);
});

// -------------------------------------------------------------------------------- verbs

const verbs = suite('driver verbs');

verbs('init creates the set and the base; create, createReadWrite, exists and getMetadata', () =>
  withDriver(async (w, d) => {
    assert.is(String(d), 'devicemapper');
    assert.is(d.exists(''), true);
    assert.is(d.exists(A), false);
    await d.create(A, '');
    await d.createReadWrite(B, A, { mountLabel: '', storageOpt: { Size: '32M' } });
    assert.is(d.exists(A), true);
    assert.is(d.exists(B), true);
    const prefix = d.deviceSet.prefix;
    assert.equal(d.getMetadata(''), { DeviceId: '1', DeviceSize: String(16 * MiB), DeviceName: `${prefix}-base` });
    assert.equal(d.getMetadata(A), { DeviceId: '2', DeviceSize: String(16 * MiB), DeviceName: `${prefix}-${A}` });
    assert.equal(d.getMetadata(B), { DeviceId: '3', DeviceSize: String(32 * MiB), DeviceName: `${prefix}-${B}` });
    await rejects(d.create(A, ''), DeviceAlreadyExistsError);
    await rejects(d.create(C, 'nope'), UnknownDeviceError);
    assert.throws(() => d.getMetadata(C), (e: unknown) => e instanceof UnknownDeviceError);
    assert.equal(w.mountTargets(), []);
  }),
);

verbs('status: Docker\'s keys in Docker\'s order, values from the DeviceSet', () =>
  withDriver(async (_w, d) => {
    const st = await d.status();
    const ds = await d.deviceSet.status();
    assert.equal(
      st.map(([k]) => k),
      [
        'Pool Name', 'Pool Blocksize', 'Base Device Size', 'Backing Filesystem', 'Udev Sync Supported', 'Data file', 'Metadata file',
        'Data loop file', 'Metadata loop file', 'Data Space Used', 'Data Space Total', 'Data Space Available', 'Metadata Space Used',
        'Metadata Space Total', 'Metadata Space Available', 'Thin Pool Minimum Free Space', 'Deferred Removal Enabled',
        'Deferred Deletion Enabled', 'Deferred Deleted Device Count',
      ],
    );
    const m = new Map(st);
    assert.is(m.get('Pool Name'), `${d.deviceSet.prefix}-pool`);
    assert.is(m.get('Pool Blocksize'), '65.54kB');
    assert.is(m.get('Base Device Size'), '16.78MB');
    assert.is(m.get('Backing Filesystem'), 'ext4');
    assert.is(m.get('Data loop file'), join(d.home, 'devicemapper', 'data'));
    assert.is(m.get('Metadata loop file'), join(d.home, 'devicemapper', 'metadata'));
    assert.is(m.get('Data file'), ds.dataFile!);
    assert.is(m.get('Data Space Total'), '67.11MB');
    assert.is(m.get('Metadata Space Total'), dockerHumanSize(ds.metadata.total));
    assert.is(m.get('Data Space Used'), dockerHumanSize(ds.data.used));
    assert.is(m.get('Thin Pool Minimum Free Space'), '0B');
    assert.is(m.get('Deferred Removal Enabled'), String(ds.deferredRemoveEnabled));
    assert.is(m.get('Deferred Deleted Device Count'), '0');
  }),
);

verbs('get mounts once at home/mnt/<id>, writes rootfs/ and id, counts; put unmounts on the last reference', () =>
  withDriver(async (w, d) => {
    await d.create(A, '');
    const mp = join(d.home, 'mnt', A);
    assert.is(await d.get(A), join(mp, 'rootfs'));
    assert.equal(w.mountTargets(), [mp]);
    assert.is(readFileSync(join(mp, 'id'), 'utf8'), A);
    assert.ok(existsSync(join(mp, 'rootfs')));
    assert.is(await d.get(A), join(mp, 'rootfs'));
    assert.is(d.references(A), 2);
    assert.equal(w.mountTargets(), [mp]);
    await d.put(A);
    assert.is(d.references(A), 1);
    assert.equal(w.mountTargets(), [mp]);
    await d.put(A);
    assert.is(d.references(A), 0);
    assert.equal(w.mountTargets(), []);
    assert.is(w.fake.device(d.getMetadata(A).DeviceName), undefined, 'deactivated');
    await rejects(d.put(A), LayerNotMountedError);
    await rejects(d.put(C), UnknownDeviceError);
    await rejects(d.get(C), UnknownDeviceError);
    assert.is(d.references(C), 0, 'a failed get leaves no reference');
  }),
);

verbs('an existing id file is kept; a second mount after put reuses the layer', () =>
  withDriver(async (_w, d) => {
    await d.create(A, '');
    const mp = join(d.home, 'mnt', A);
    await d.get(A);
    writeFileSync(join(mp, 'id'), 'kept');
    await d.put(A);
    await d.get(A);
    assert.is(readFileSync(join(mp, 'id'), 'utf8'), 'kept');
    await d.put(A);
  }),
);

verbs('remove: a missing id is no error; a referenced layer is refused and kept; after put it is deleted', () =>
  withDriver(async (w, d) => {
    await d.remove(C);
    await d.create(A, '');
    await d.get(A);
    const err = await d.remove(A).then(() => undefined, (e: unknown) => e);
    assert.instance(err, LayerInUseError);
    assert.is((err as LayerInUseError).code, 'ELAYERINUSE');
    assert.is((err as LayerInUseError).references, 1);
    assert.is(d.exists(A), true);
    assert.equal(w.mountTargets(), [join(d.home, 'mnt', A)]);
    await d.put(A);
    await d.remove(A);
    assert.is(d.exists(A), false);
    assert.is(w.fake.pool(d.deviceSet.poolName)!.thins.has(2), false);
  }),
);

verbs('bad input is refused before anything changes', () =>
  withDriver(async (w, d) => {
    const bad: [string, () => Promise<unknown>][] = [
      ['create base id', () => d.create('', '')],
      ['create id with a slash', () => d.create('../x', '')],
      ['create numeric parent', () => d.create(A, 5 as unknown as string)],
      ['create unknown storage option', () => d.create(A, '', { storageOpt: { foo: '1' } })],
      ['create size twice', () => d.create(A, '', { size: '32M', storageOpt: { size: '32M' } })],
      ['create bad size', () => d.create(A, '', { size: '1x' })],
      ['create unknown option', () => d.create(A, '', { mountLabel: 'x' } as never)],
      ['createReadWrite label with a quote', () => d.createReadWrite(A, '', { mountLabel: 'a"b' })],
      ['get empty id', () => d.get('')],
      ['get bad signal', () => d.get(A, { signal: 'x' as never })],
      ['put id "."', () => d.put('.')],
      ['remove options array', () => d.remove(A, [] as never)],
    ];
    for (const [what, call] of bad) assert.instance(await call().then(() => undefined, (e: unknown) => e), InvalidArgumentError, what);
    assert.throws(() => d.exists(1 as unknown as string), (e: unknown) => e instanceof InvalidArgumentError);
    assert.is(d.exists(A), false);
    assert.equal(d.deviceSet.list(), []);
    assert.equal(w.mountTargets(), []);
    assert.is(existsSync(join(d.home, 'mnt')), false);
  }),
);

verbs('an aborted signal stops get and create before anything changes', () =>
  withDriver(async (w, d) => {
    await d.create(A, '');
    const ac = new AbortController();
    ac.abort();
    await rejects(d.get(A, { signal: ac.signal }), OperationAbortedError);
    await rejects(d.create(B, '', { signal: ac.signal }), OperationAbortedError);
    await rejects(d.remove(A, { signal: ac.signal }), OperationAbortedError);
    assert.is(d.references(A), 0);
    assert.equal(w.mountTargets(), []);
    assert.is(d.exists(B), false);
    assert.is(d.exists(A), true);
  }),
);

verbs('cleanup unmounts every layer, shuts the set down, and closes the driver', async () => {
  const w = world();
  try {
    const d1 = await w.open();
    await d1.create(A, '');
    await d1.create(B, '');
    await d1.get(B); // left mounted by the first "process"
    w.die();
    const d = await w.open({ doInit: false });
    await d.get(A);
    assert.equal(w.mountTargets().sort(), [join(d.home, 'mnt', A), join(d.home, 'mnt', B)]);
    await d.cleanup();
    await d.cleanup(); // idempotent
    assert.equal(w.mountTargets(), []);
    assert.is(w.fake.devices().length, 0, 'no dm device left');
    await rejects(d.get(A), DriverClosedError);
    assert.throws(() => d.exists(A), (e: unknown) => e instanceof DriverClosedError);
    await rejects(d.status(), DriverClosedError);
  } finally {
    w.dispose();
  }
});

// ---------------------------------------------------------------------- doInit: false

const noinit = suite('driver doInit false');

noinit('an empty home is refused and nothing is created', async () => {
  const w = world();
  try {
    const err = await w.open({ doInit: false }).then(() => undefined, (e: unknown) => e);
    assert.instance(err, DriverNotInitializedError);
    assert.equal((err as DriverNotInitializedError).missing, ['.']);
    assert.is(existsSync(w.home), false);
    assert.equal(w.fake.devices(), []);
  } finally {
    w.dispose();
  }
});

noinit('a set without its loop files is refused (Docker: "loopback data file not found"), naming each missing file', async () => {
  const w = world();
  try {
    await (await w.open()).cleanup();
    unlinkSync(join(w.home, 'devicemapper', 'data'));
    unlinkSync(join(w.home, 'devicemapper', 'metadata'));
    const err = await w.open({ doInit: false }).then(() => undefined, (e: unknown) => e);
    assert.instance(err, DriverNotInitializedError);
    assert.equal((err as DriverNotInitializedError).missing, ['devicemapper/data', 'devicemapper/metadata']);
    assert.is(existsSync(join(w.home, 'devicemapper', 'data')), false);
    assert.equal(w.fake.devices(), []);
  } finally {
    w.dispose();
  }
});

noinit('a set opens without setupBaseImage: a larger dm.basesize is not applied', async () => {
  const w = world();
  try {
    await (await w.open()).cleanup();
    const d = await w.open({ doInit: false, options: [...OPTIONS.filter((o) => !o.startsWith('dm.basesize')), 'dm.basesize=32M'] });
    assert.is(d.getMetadata('').DeviceSize, String(16 * MiB));
    await d.cleanup();
    const grown = await w.open({ options: [...OPTIONS.filter((o) => !o.startsWith('dm.basesize')), 'dm.basesize=32M'] });
    assert.is(grown.getMetadata('').DeviceSize, String(32 * MiB), 'doInit true does grow it (the test can fail)');
    await grown.cleanup();
  } finally {
    w.dispose();
  }
});

// ------------------------------------------------------------------ across processes

const procs = suite('driver reference counts across processes');

procs('a second process sees the first one\'s mount: get only counts, the last put unmounts and deactivates', async () => {
  const w = world();
  try {
    const first = await w.open();
    await first.create(A, '');
    const mp = join(first.home, 'mnt', A);
    await first.get(A);
    w.die(); // the mount and the active device outlive the process
    const second = await w.open({ doInit: false });
    assert.is(second.references(A), 1);
    await rejects(second.remove(A), LayerInUseError);
    assert.is(await second.get(A), join(mp, 'rootfs'));
    assert.equal(w.mountTargets(), [mp], 'not mounted twice');
    assert.is(second.references(A), 2);
    await second.put(A);
    assert.equal(w.mountTargets(), [mp]);
    await second.put(A);
    assert.equal(w.mountTargets(), []);
    assert.is(w.fake.device(second.getMetadata(A).DeviceName), undefined, 'deactivated');
    await rejects(second.put(A), LayerNotMountedError);
    await second.remove(A);
    assert.is(second.exists(A), false);
    await second.cleanup();
  } finally {
    w.dispose();
  }
});

procs('one put in the next process releases a layer the previous process got (the CLI flow)', async () => {
  const w = world();
  try {
    const first = await w.open();
    await first.create(A, '');
    await first.get(A);
    w.die();
    const second = await w.open({ doInit: false });
    await second.put(A);
    assert.equal(w.mountTargets(), []);
    assert.is(second.references(A), 0);
    await second.cleanup();
  } finally {
    w.dispose();
  }
});

// ------------------------------------------------------------------------- the locker

const locking = suite('driver per-id lock');

locking('a put of one id waits for its get still mounting; both succeed', () =>
  withDriver(async (w, d) => {
    await d.create(A, '');
    const g = gate();
    w.setProbeGate(() => g.wait());
    const events: string[] = [];
    const getting = d.get(A).then(() => events.push('get'));
    await g.reached; // the get holds A's lock, its reference counted, its mount not yet made
    w.setProbeGate(undefined);
    const putting = d.put(A).then(
      () => events.push('put'),
      (e: unknown) => events.push(`put failed: ${String(e)}`),
    );
    await tick();
    const early = [...events];
    g.open(); // before asserting: a failed assertion must not leave the get hanging
    await Promise.all([getting, putting]);
    assert.equal(early, []);
    assert.equal(events, ['get', 'put']);
    assert.equal(w.mountTargets(), []);
    assert.is(d.references(A), 0);
  }),
);

locking('ids are independent: a get of another id completes while one get is held up', () =>
  withDriver(async (w, d) => {
    await d.create(A, '');
    await d.create(B, '');
    const g = gate();
    const nameA = d.getMetadata(A).DeviceName;
    w.setProbeGate((device) => (device.endsWith(nameA) ? g.wait() : Promise.resolve()));
    let aDone = false;
    const getA = d.get(A).then(() => (aDone = true));
    await g.reached;
    const gotB = await d.get(B).finally(() => undefined);
    const aDoneEarly = aDone;
    g.open();
    assert.is(gotB, join(d.home, 'mnt', B, 'rootfs'));
    assert.is(aDoneEarly, false);
    await getA;
    assert.equal(w.mountTargets().sort(), [join(d.home, 'mnt', A), join(d.home, 'mnt', B)]);
    await d.put(A);
    await d.put(B);
  }),
);

locking('concurrent gets of one id mount once', () =>
  withDriver(async (w, d) => {
    await d.create(A, '');
    const paths = await Promise.all([d.get(A), d.get(A), d.get(A)]);
    assert.equal(paths, Array(3).fill(join(d.home, 'mnt', A, 'rootfs')));
    assert.equal(w.mountTargets(), [join(d.home, 'mnt', A)]);
    assert.is(d.references(A), 3);
    await Promise.all([d.put(A), d.put(A), d.put(A)]);
    assert.equal(w.mountTargets(), []);
  }),
);

pieces.run();
verbs.run();
noinit.run();
procs.run();
locking.run();
