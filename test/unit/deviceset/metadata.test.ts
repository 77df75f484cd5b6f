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
  mkdirSync(path: string, options: { recursive: true; mode: number }): void {
    if (this.#step('mkdir')) throw new Crash('mkdir');
    nodeMetadataFs.mkdirSync(path, options);
  }
  readdirSync(path: string): string[] {
    if (this.dead) throw new Crash('dead');
    return nodeMetadataFs.readdirSync(path);
  }
  readFileSync(path: string): string {
    if (this.dead) throw new Crash('dead');
    return nodeMetadataFs.readFileSync(path);
  }
  openSync(path: string, flags: number, mode?: number): number {
    const isDir = (flags & fs.constants.O_DIRECTORY) !== 0;
    if (this.#step(isDir ? 'open-dir' : 'open')) throw new Crash('open');
    return nodeMetadataFs.openSync(path, flags, mode);
  }
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number {
    if (this.#step('write')) {
      nodeMetadataFs.writeSync(fd, data, offset, Math.floor(length / 2));
      throw new Crash('write');
    }
    return nodeMetadataFs.writeSync(fd, data, offset, length);
  }
  fsyncSync(fd: number): void {
    if (this.#step('fsync')) throw new Crash('fsync');
    nodeMetadataFs.fsyncSync(fd);
  }
  closeSync(fd: number): void {
    if (this.#step('close')) {
      nodeMetadataFs.closeSync(fd); // the kernel closes a dead process's fds
      throw new Crash('close');
    }
    nodeMetadataFs.closeSync(fd);
  }
  renameSync(from: string, to: string): void {
    if (this.#step('rename')) throw new Crash('rename');
    nodeMetadataFs.renameSync(from, to);
  }
  unlinkSync(path: string): void {
    if (this.#step('unlink')) throw new Crash('unlink');
    nodeMetadataFs.unlinkSync(path);
  }
}

const store = suite('deviceset/metadata: store');

store.after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

store('save and load every record type; directory mode 0700', () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  assert.equal(s.loadAll().devices.size, 0);
  assert.is(fs.statSync(join(root, 'metadata')).mode & 0o777, 0o700);
  const base = device('', { deviceId: 1, initialized: true, filesystem: 'xfs', filesystemUuid: 'u-1' });
  s.saveDevice(base);
  s.saveDevice(device('abc'));
  s.saveDeviceSet(deviceSet);
  s.saveTransaction(transaction);
  assert.equal(fs.readdirSync(s.dir).sort(), ['abc', 'base', 'deviceset-metadata', 'transaction-metadata']);
  const loaded = new MetadataStore(root).loadAll();
  assert.equal(loaded.devices.get(''), base);
  assert.equal(loaded.devices.get('abc'), device('abc'));
  assert.equal(loaded.deviceSet, deviceSet);
  assert.equal(loaded.transaction, transaction);
  s.clearTransaction();
  s.removeDevice('abc');
  s.removeDevice('abc');
  const after = s.loadAll();
  assert.is(after.transaction, undefined);
  assert.equal([...after.devices.keys()], ['']);
});

store('each write is temp, write, fsync, close, rename, then a directory fsync', () => {
  const root = freshRoot();
  const crashFs = new CrashFs();
  const s = new MetadataStore(root, crashFs);
  s.saveDevice(device('abc'));
  assert.equal(crashFs.trace, ['mkdir', 'open', 'write', 'fsync', 'close', 'rename', 'open-dir', 'fsync', 'close']);
  crashFs.trace.length = 0;
  s.removeDevice('abc');
  assert.equal(crashFs.trace, ['unlink', 'open-dir', 'fsync', 'close']);
});

store('refuses to write an invalid record', () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  assert.throws(() => s.saveDevice(device('abc', { deviceId: 0x1000000 })), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => s.saveDevice(device('a/b')), (e: unknown) => e instanceof InvalidArgumentError);
  assert.throws(() => s.saveDevice(device('x', { deleted: true })), /deleting/);
  assert.throws(() => s.saveTransaction({ ...transaction, originDeviceId: undefined }), /originDeviceId/);
  assert.throws(() => s.saveTransaction({ ...transaction, op: 'delete' }), /no origin/);
  assert.not.ok(fs.existsSync(s.dir), 'nothing was written, not even the directory');
});

store('corrupt JSON names the file', () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  s.saveDevice(device('abc'));
  fs.writeFileSync(join(s.dir, 'abc'), '{"hash":"abc",');
  try {
    s.loadAll();
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

store('schema violations list every field', () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  fs.mkdirSync(s.dir, { recursive: true });
  fs.writeFileSync(join(s.dir, 'abc'), JSON.stringify({ ...device('abc'), deviceId: -1, size: 'big', state: 'weird' }));
  try {
    s.loadAll();
    assert.unreachable();
  } catch (err) {
    assert.instance(err, MetadataCorruptError);
    const paths = (err as MetadataCorruptError).problems.map((p) => p.path);
    for (const p of ['/deviceId', '/size', '/state']) assert.ok(paths.includes(p), `${p} in ${paths.join(',')}`);
  }
});

store('other load-time refusals', () => {
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
    assert.throws(() => s.loadAll(), (e: unknown) => e instanceof MetadataCorruptError && re.test(e.message) && e.file === join(s.dir, name));
  }
});

store('unknown extra fields are accepted and dropped; leftover temp files are deleted; other dot files left alone', () => {
  const root = freshRoot();
  const s = new MetadataStore(root);
  fs.mkdirSync(s.dir, { recursive: true });
  fs.writeFileSync(join(s.dir, 'abc'), JSON.stringify({ ...device('abc'), futureField: { x: 1 } }));
  fs.writeFileSync(join(s.dir, '.tmp-abc-1-1-deadbeef'), '{"hash":');
  fs.writeFileSync(join(s.dir, '.nfs0001'), 'x');
  const loaded = s.loadAll();
  assert.equal(loaded.devices.get('abc'), device('abc'));
  assert.equal(loaded.removedTempFiles, ['.tmp-abc-1-1-deadbeef']);
  assert.equal(fs.readdirSync(s.dir).sort(), ['.nfs0001', 'abc']);
});

store.run();

const crash = suite('deviceset/metadata: crash at every write step');

crash.after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

crash('after a stop at any step, every record is the old one or the new one, in order', () => {
  const oldA = device('aaa', { state: 'creating', transactionId: 3 });
  const newA = device('aaa', { state: 'ready', transactionId: 4 });
  const b = device('bbb', { deviceId: 9 });
  const newSet: DeviceSetRecord = { ...deviceSet, nextDeviceId: 10 };
  const setup = (root: string): void => {
    const s = new MetadataStore(root);
    s.saveDevice(oldA);
    s.saveDevice(b);
    s.saveDeviceSet(deviceSet);
  };
  const ops = (s: MetadataStore): void => {
    s.saveTransaction(transaction);
    s.saveDevice(newA);
    s.removeDevice('bbb');
    s.saveDeviceSet(newSet);
    s.clearTransaction();
  };
  const dry = new CrashFs();
  const dryRoot = freshRoot();
  setup(dryRoot);
  ops(new MetadataStore(dryRoot, dry));
  const total = dry.steps;
  assert.is(total, 1 + 3 * 8 + 2 * 4, 'mkdir, three atomic writes of 8 steps, two removals of 4');

  for (let n = 1; n <= total; n++) {
    const root = freshRoot();
    setup(root);
    const crashFs = new CrashFs(n);
    assert.throws(() => ops(new MetadataStore(root, crashFs)), (e: unknown) => e instanceof Crash, `stop at step ${n} (${crashFs.trace[n - 1]})`);
    const loaded = new MetadataStore(root).loadAll();
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
