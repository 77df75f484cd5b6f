// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  MetadataCorruptError,
  MetadataStore,
  nodeMetadataFs,
  type DeviceRecord,
  type DeviceSetRecord,
  type MetadataFile,
  type MetadataFs,
  type TransactionRecord,
} from '../../../src/deviceset/index.js';

const roots: string[] = [];
function freshRoot(): string {
  const root = fs.mkdtempSync(join(tmpdir(), 'devmapper-meta-'));
  roots.push(root);
  return root;
}

function device(hash: string, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    hash, deviceId: 5, size: 10737418240, transactionId: 3, initialized: false, deleted: false, state: 'ready',
    createdAt: '2024-01-02T03:04:05.678Z', ...over,
  };
}
const deviceSet: DeviceSetRecord = { formatVersion: 1, nextDeviceId: 6, baseFilesystem: 'ext4', options: ['dm.fs=ext4'] };
const transaction: TransactionRecord = { openTransactionId: 4, deviceHash: 'abc', deviceId: 7, op: 'snapshot', originDeviceId: 5, size: 1048576 };

/** Thrown by the crash seam: the process "died" here. */
class Crash extends Error {}

/**
 * node:fs with a kill switch: counts every mutating call and, at step `crashAt`, stops dead (a
 * write at that step first writes half its bytes: a torn write). Once dead, every call throws.
 */
class CrashFs implements MetadataFs {
  steps = 0;
  dead = false;
  readonly trace: string[] = [];
  constructor(readonly crashAt = Infinity) {}
  #step(what: string): boolean {
    if (this.dead) throw new Crash('dead');
    this.steps++;
    this.trace.push(what);
    if (this.steps === this.crashAt) {
      this.dead = true;
      return true;
    }
    return false;
  }
  async mkdir(path: string, options: { recursive: true; mode: number }): Promise<void> {
    if (this.#step('mkdir')) throw new Crash('mkdir');
    await nodeMetadataFs.mkdir(path, options);
  }
  async readdir(path: string): Promise<string[]> {
    if (this.dead) throw new Crash('dead');
    return nodeMetadataFs.readdir(path);
  }
  async readFile(path: string): Promise<string> {
    if (this.dead) throw new Crash('dead');
    return nodeMetadataFs.readFile(path);
  }
  async open(path: string, flags: number, mode?: number): Promise<MetadataFile> {
    const isDir = (flags & fs.constants.O_DIRECTORY) !== 0;
    if (this.#step(isDir ? 'open-dir' : 'open')) throw new Crash('open');
    const file = await nodeMetadataFs.open(path, flags, mode);
    return {
      write: async (data, offset, length) => {
        if (this.#step('write')) {
          await file.write(data, offset, Math.floor(length / 2));
          throw new Crash('write');
        }
        return file.write(data, offset, length);
      },
      sync: async () => {
        if (this.#step('fsync')) throw new Crash('fsync');
        await file.sync();
      },
      close: async () => {
        // Closed either way: the kernel closes a dead process's files.
        let stop: boolean;
        try {
          stop = this.#step('close');
        } finally {
          await file.close();
        }
        if (stop) throw new Crash('close');
      },
    };
  }
  async rename(from: string, to: string): Promise<void> {
    if (this.#step('rename')) throw new Crash('rename');
    await nodeMetadataFs.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    if (this.#step('unlink')) throw new Crash('unlink');
    await nodeMetadataFs.unlink(path);
  }
}

/** Asserts that `p` rejects with an error `ok` accepts. */
async function rejects(p: Promise<unknown>, ok: (e: unknown) => boolean, message?: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(ok(err), `${message ?? 'unexpected error'}: ${String(err)}`);
    return;
  }
  assert.unreachable(message ?? 'expected a rejection');
}

const store = suite('deviceset/metadata: store');

store.after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

store('save and load every record type; directory mode 0700', async () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  assert.equal((await s.loadAll()).devices.size, 0);
  assert.is(fs.statSync(join(root, 'metadata')).mode & 0o777, 0o700);
  const base = device('', { deviceId: 1, initialized: true, filesystem: 'xfs', filesystemUuid: 'u-1' });
  await s.saveDevice(base);
  await s.saveDevice(device('abc'));
  await s.saveDeviceSet(deviceSet);
  await s.saveTransaction(transaction);
  assert.equal(fs.readdirSync(s.dir).sort(), ['abc', 'base', 'deviceset-metadata', 'transaction-metadata']);
  const loaded = await new MetadataStore(root).loadAll();
  assert.equal(loaded.devices.get(''), base);
  assert.equal(loaded.devices.get('abc'), device('abc'));
  assert.equal(loaded.deviceSet, deviceSet);
  assert.equal(loaded.transaction, transaction);
  await s.clearTransaction();
  await s.removeDevice('abc');
  await s.removeDevice('abc');
  const after = await s.loadAll();
  assert.is(after.transaction, undefined);
  assert.equal([...after.devices.keys()], ['']);
});

store('each write is temp, write, fsync, close, rename, then a directory fsync', async () => {
  const root = freshRoot();
  const crashFs = new CrashFs();
  const s = new MetadataStore(root, crashFs);
  await s.saveDevice(device('abc'));
  assert.equal(crashFs.trace, ['mkdir', 'open', 'write', 'fsync', 'close', 'rename', 'open-dir', 'fsync', 'close']);
  crashFs.trace.length = 0;
  await s.removeDevice('abc');
  assert.equal(crashFs.trace, ['unlink', 'open-dir', 'fsync', 'close']);
});

store('refuses to write an invalid record', async () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  await rejects(s.saveDevice(device('abc', { deviceId: 0x1000000 })), (e: unknown) => e instanceof InvalidArgumentError);
  await rejects(s.saveDevice(device('a/b')), (e: unknown) => e instanceof InvalidArgumentError);
  await rejects(s.saveDevice(device('x', { deleted: true })), (e: unknown) => /deleting/.test(String(e)));
  await rejects(s.saveTransaction({ ...transaction, originDeviceId: undefined }), (e: unknown) => /originDeviceId/.test(String(e)));
  await rejects(s.saveTransaction({ ...transaction, op: 'delete' }), (e: unknown) => /no origin/.test(String(e)));
  assert.not.ok(fs.existsSync(s.dir), 'nothing was written, not even the directory');
});

store('corrupt JSON names the file', async () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  await s.saveDevice(device('abc'));
  fs.writeFileSync(join(s.dir, 'abc'), '{"hash":"abc",');
  try {
    await s.loadAll();
    assert.unreachable();
  } catch (err) {
    assert.instance(err, MetadataCorruptError);
    const e = err as MetadataCorruptError;
    assert.is(e.code, 'EMETADATACORRUPT');
    assert.is(e.file, join(s.dir, 'abc'));
    assert.match(e.message, /abc/);
    assert.match(e.problems[0]!.message, /not valid JSON/);
  }
});

store('schema violations list every field', async () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  fs.mkdirSync(s.dir, { recursive: true });
  fs.writeFileSync(join(s.dir, 'abc'), JSON.stringify({ ...device('abc'), deviceId: -1, size: 'big', state: 'weird' }));
  try {
    await s.loadAll();
    assert.unreachable();
  } catch (err) {
    assert.instance(err, MetadataCorruptError);
    const paths = (err as MetadataCorruptError).problems.map((p) => p.path);
    for (const p of ['/deviceId', '/size', '/state']) assert.ok(paths.includes(p), `${p} in ${paths.join(',')}`);
  }
});

store('other load-time refusals', async () => {
  const cases: [string, string, RegExp][] = [
    ['abc', JSON.stringify(device('xyz')), /file is for "abc"/],
    ['base', JSON.stringify(device('abc')), /file is for ""/],
    ['not a hash', '{}', /unexpected file/],
    ['deviceset-metadata', JSON.stringify({ ...deviceSet, formatVersion: 2 }), /newer devmapper/],
    ['transaction-metadata', JSON.stringify({ ...transaction, op: 'grow' }), /op/],
    ['abc', JSON.stringify(device('abc', { size: 1000 })), /multiple of 512/],
  ];
  for (const [name, content, re] of cases) {
    const s = new MetadataStore(freshRoot());
    fs.mkdirSync(s.dir, { recursive: true });
    fs.writeFileSync(join(s.dir, name), content);
    await rejects(s.loadAll(), (e: unknown) => e instanceof MetadataCorruptError && re.test(e.message) && e.file === join(s.dir, name));
  }
});

store('unknown extra fields are accepted and dropped; leftover temp files are deleted; other dot files left alone', async () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  fs.mkdirSync(s.dir, { recursive: true });
  fs.writeFileSync(join(s.dir, 'abc'), JSON.stringify({ ...device('abc'), futureField: { x: 1 } }));
  fs.writeFileSync(join(s.dir, '.tmp-abc-1-1-deadbeef'), '{"hash":');
  fs.writeFileSync(join(s.dir, '.nfs0001'), 'x');
  const loaded = await s.loadAll();
  assert.equal(loaded.devices.get('abc'), device('abc'));
  assert.equal(loaded.removedTempFiles, ['.tmp-abc-1-1-deadbeef']);
  assert.equal(fs.readdirSync(s.dir).sort(), ['.nfs0001', 'abc']);
});

/**
 * nodeMetadataFs that logs each call by base name (temp files as `tmp:<record>`) and makes the
 * first file fsync yield to the event loop before it runs: another write that could start
 * meanwhile does (as it would while a real fsync waits on a slow disk).
 */
class SlowFirstSyncFs implements MetadataFs {
  readonly log: string[] = [];
  #held = false;
  static label(path: string): string {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const m = /^\.tmp-(.+)-\d+-\d+-[0-9a-f]+$/.exec(name);
    return m ? `tmp:${m[1]}` : name;
  }
  readonly mkdir = nodeMetadataFs.mkdir;
  readonly readdir = nodeMetadataFs.readdir;
  readonly readFile = nodeMetadataFs.readFile;
  async open(path: string, flags: number, mode?: number): Promise<MetadataFile> {
    const label = SlowFirstSyncFs.label(path);
    this.log.push(`open ${label}`);
    const file = await nodeMetadataFs.open(path, flags, mode);
    return {
      write: (data, offset, length) => file.write(data, offset, length),
      sync: async () => {
        if (!this.#held && label.startsWith('tmp:')) {
          this.#held = true;
          await new Promise((r) => setImmediate(r));
          await new Promise((r) => setImmediate(r));
        }
        this.log.push(`sync ${label}`);
        await file.sync();
      },
      close: () => file.close(),
    };
  }
  async rename(from: string, to: string): Promise<void> {
    this.log.push(`rename ${SlowFirstSyncFs.label(from)}`);
    await nodeMetadataFs.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    this.log.push(`unlink ${SlowFirstSyncFs.label(path)}`);
    await nodeMetadataFs.unlink(path);
  }
}

store('two writes of one record land in call order, even when the first one\'s fsync is slow', async () => {
  const root = freshRoot();
  await new MetadataStore(root).loadAll(); // the directory
  const fs1 = new SlowFirstSyncFs();
  const s = new MetadataStore(root, fs1);
  const first: DeviceSetRecord = { ...deviceSet, nextDeviceId: 7 };
  const second: DeviceSetRecord = { ...deviceSet, nextDeviceId: 8 };
  await Promise.all([s.saveDeviceSet(first), s.saveDeviceSet(second)]);
  assert.equal((await new MetadataStore(root).loadAll()).deviceSet, second, 'the later call wins');
  // The second write starts (opens its temp file) only after the first one's directory fsync.
  const one = ['open tmp:deviceset-metadata', 'sync tmp:deviceset-metadata', 'rename tmp:deviceset-metadata', 'open metadata', 'sync metadata'];
  assert.equal(fs1.log, [...one, ...one]);

  // A record's write then its removal: the removal waits, and the record is gone.
  const fs2 = new SlowFirstSyncFs();
  const s2 = new MetadataStore(root, fs2);
  await Promise.all([s2.saveDevice(device('abc')), s2.removeDevice('abc')]);
  assert.is(fs.existsSync(join(s2.dir, 'abc')), false, 'removed after it was written');
  assert.equal(fs2.log, ['open tmp:abc', 'sync tmp:abc', 'rename tmp:abc', 'open metadata', 'sync metadata', 'unlink abc', 'open metadata', 'sync metadata']);
});

store('syncDir waits for the writes called before it; writes of other records run side by side', async () => {
  const root = freshRoot();
  await new MetadataStore(root).loadAll();
  const f = new SlowFirstSyncFs();
  const s = new MetadataStore(root, f);
  await Promise.all([s.saveDevice(device('aaa'), { durable: false }), s.saveDevice(device('bbb'), { durable: false }), s.syncDir()]);
  // bbb's write started while aaa's was under way; the one directory fsync came after both renames.
  assert.ok(f.log.indexOf('open tmp:bbb') < f.log.indexOf('rename tmp:aaa'), f.log.join(', '));
  assert.equal(f.log.slice(-2), ['open metadata', 'sync metadata']);
  assert.equal(f.log.filter((l) => l.startsWith('rename ')).sort(), ['rename tmp:aaa', 'rename tmp:bbb']);
  assert.is(f.log.filter((l) => l === 'sync metadata').length, 1);
  const loaded = await new MetadataStore(root).loadAll();
  assert.equal([...loaded.devices.keys()].sort(), ['aaa', 'bbb']);
});

store.run();

const crash = suite('deviceset/metadata: crash at every write step');

crash.after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

crash('after a stop at any step, every record is the old one or the new one, in order', async () => {
  const oldA = device('aaa', { state: 'creating', transactionId: 3 });
  const newA = device('aaa', { state: 'ready', transactionId: 4 });
  const b = device('bbb', { deviceId: 9 });
  const newSet: DeviceSetRecord = { ...deviceSet, nextDeviceId: 10 };
  const setup = async (root: string): Promise<void> => {
    const s = new MetadataStore(root);
    await s.saveDevice(oldA);
    await s.saveDevice(b);
    await s.saveDeviceSet(deviceSet);
  };
  const ops = async (s: MetadataStore): Promise<void> => {
    await s.saveTransaction(transaction);
    await s.saveDevice(newA);
    await s.removeDevice('bbb');
    await s.saveDeviceSet(newSet);
    await s.clearTransaction();
  };
  const dry = new CrashFs();
  const dryRoot = freshRoot();
  await setup(dryRoot);
  await ops(new MetadataStore(dryRoot, dry));
  const total = dry.steps;
  assert.is(total, 1 + 3 * 8 + 2 * 4, 'mkdir, three atomic writes of 8 steps, two removals of 4');

  for (let n = 1; n <= total; n++) {
    const root = freshRoot();
    await setup(root);
    const crashFs = new CrashFs(n);
    await rejects(ops(new MetadataStore(root, crashFs)), (e: unknown) => e instanceof Crash, `stop at step ${n} (${crashFs.trace[n - 1]})`);
    const loaded = await new MetadataStore(root).loadAll();
    const a = loaded.devices.get('aaa');
    const aNew = JSON.stringify(a) === JSON.stringify(newA);
    assert.ok(aNew || JSON.stringify(a) === JSON.stringify(oldA), `step ${n}: aaa is old or new`);
    const bGone = !loaded.devices.has('bbb');
    if (!bGone) assert.equal(loaded.devices.get('bbb'), b);
    const setNew = JSON.stringify(loaded.deviceSet) === JSON.stringify(newSet);
    assert.ok(setNew || JSON.stringify(loaded.deviceSet) === JSON.stringify(deviceSet), `step ${n}: deviceset old or new`);
    if (loaded.transaction !== undefined) assert.equal(loaded.transaction, transaction);
    // Effects appear in program order.
    if (aNew) assert.ok(loaded.transaction !== undefined || setNew, `step ${n}: the transaction precedes the record`);
    if (bGone) assert.ok(aNew, `step ${n}`);
    if (setNew) assert.ok(bGone, `step ${n}`);
    assert.equal(fs.readdirSync(join(root, 'metadata')).filter((f) => f.startsWith('.')), [], `step ${n}: temp files cleaned`);
  }
});

crash.run();
