// SPDX-License-Identifier: MIT
// The fault targets (issue 18, "faults") on the real kernel: flakey, delay and log-writes over loop
// devices. Table and status read back through DmControl equal our encoders' output and what
// dmsetup prints; flakey drops writes while down and only then; log-writes records a known write
// sequence with a mark, decoded from the log device.
import * as assert from 'uvu/assert';
import { release } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, InvalidArgumentError } from '../../src/errors.js';
import {
  DmControl,
  LOG_WRITES_FLAGS,
  decodeLogWritesLog,
  delayTarget,
  flakeyTarget,
  formatDelayParams,
  formatFlakeyParams,
  formatLogWritesParams,
  formatTable,
  logWritesMarkMessage,
  logWritesTarget,
  parseDelayParams,
  parseDelayStatus,
  parseFlakeyParams,
  parseFlakeyStatus,
  parseLogWritesParams,
  parseLogWritesStatus,
  replayLogWrites,
  type DelayParams,
  type DevNum,
  type FlakeyParams,
  type TargetLine,
} from '../../src/dm/index.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';
import { rdevOf } from '../helpers/loop-files.js';

const test = withSweep(privilegedSuite('targets-faults'));

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });


/** 8 MiB = 16384 sectors per loop device. */
const SECTORS = 16384n;
let dm: DmControl;
const loops: { dev: string; file: string; num: DevNum }[] = [];

test.before(() => {
  dm = new DmControl();
  // The kernel loads dm-<target> itself on the first table load (request_module through the
  // guest's forwarded modprobe, src/vm/initramfs.ts); loading them here only makes it explicit.
  spawnSync('modprobe', ['-a', 'dm-flakey', 'dm-delay', 'dm-log-writes'], { stdio: 'ignore' });
  for (const n of ['data', 'log']) {
    const file = join(testTmpDir(), `faults-${n}.img`);
    sh('truncate', ['-s', '8M', file]);
    const dev = sh('losetup', ['-f', '--show', file]).trim();
    loops.push({ dev, file, num: rdevOf(dev) });
  }
});

test.after(() => {
  dm.close();
  for (const l of loops) spawnSync('losetup', ['-d', l.dev], { stdio: 'ignore' });
});

/**
 * Where the two CI kernels differ: from 6.5 ("dm flakey: add an error_reads option"; seen on
 * 6.12, not on 6.1) flakey_ctr switches error_reads and error_writes on when a table names no
 * feature, and the table reads back with both. Same behaviour, other text.
 */
const [kMajor = 0, kMinor = 0] = release().split(/[.-]/).map(Number);
const ERROR_READS_DEFAULT = kMajor > 6 || (kMajor === 6 && kMinor >= 5);
/**
 * The other text difference: 6.1's flakey_status ends every field with a blank, so its table text
 * ends with one (our encoder's form); 6.12's does not. Seen on these two kernels; the change is
 * assumed to have come with the same 6.5 rework (the parser takes both forms).
 */
function asKernelPrintsIt(text: string): string {
  return ERROR_READS_DEFAULT ? text.trimEnd() : text;
}
function asKernelReportsIt(p: FlakeyParams): FlakeyParams {
  if (!ERROR_READS_DEFAULT || p.writes !== undefined || p.corruptBioByte !== undefined || p.errorReads) return p;
  return { ...p, writes: 'error', errorReads: true };
}

/** Table (mode 'table') and status of a one-target device, each checked against dmsetup's output. */
async function readBack(name: string): Promise<{ table: TargetLine; status: TargetLine }> {
  const table = await dm.tableStatus(name, { mode: 'table' });
  assert.is(sh('dmsetup', ['table', name]), formatTable(table), 'dmsetup table = our table text');
  const status = await dm.tableStatus(name);
  assert.is(sh('dmsetup', ['status', name]).trimEnd(), formatTable(status).trimEnd(), 'dmsetup status = our status text');
  assert.is(table.length, 1);
  assert.is(status.length, 1);
  return { table: table[0]!, status: status[0]! };
}

function catchSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
}

async function reload(name: string, line: TargetLine): Promise<void> {
  await dm.tableLoad(name, [line]);
  await dm.deviceResume(name);
}

test('the fault targets are available', async () => {
  for (const t of ['flakey', 'delay', 'log-writes']) assert.ok((await dm.getTargetVersion(t)) !== null, `${t} target`);
});

test('flakey: table text round-trips exactly (our encoder = kernel = dmsetup), status is empty', async () => {
  const name = testName('flakey');
  const dev = loops[0]!.num;
  const variants: FlakeyParams[] = [
    { device: dev, offset: 0n, upInterval: 180, downInterval: 0 },
    { device: dev, offset: 8n, upInterval: 0, downInterval: 180, writes: 'drop' },
    { device: dev, offset: 0n, upInterval: 5, downInterval: 7, writes: 'error', corruptBioByte: { byte: 1, direction: 'read', value: 255, flags: 0 } },
    { device: dev, offset: 0n, upInterval: 3600, downInterval: 1, corruptBioByte: { byte: 513, direction: 'write', value: 0, flags: 2048 } },
  ];
  await dm.createDevice(name, [flakeyTarget(0n, SECTORS - 8n, variants[0]!)]);
  for (const p of variants) {
    await reload(name, flakeyTarget(0n, SECTORS - 8n, p));
    const { table, status } = await readBack(name);
    const back = asKernelReportsIt(p);
    assert.equal(table, { start: 0n, length: SECTORS - 8n, type: 'flakey', params: asKernelPrintsIt(formatFlakeyParams(back)) });
    assert.equal(parseFlakeyParams(table.params), back);
    assert.is(status.params, '');
    assert.equal(parseFlakeyStatus(status.params), {});
  }
  // drop_writes with a write corruption is refused by the kernel (parse_features) and by us.
  const raw = `${dev.major}:${dev.minor} 0 9 1 6 CORRUPT_BIO_BYTE 3 W 7 0 DROP_WRITES`;
  const refused = await dm.tableLoad(name, [{ start: 0n, length: SECTORS, type: 'flakey', params: raw }]).catch((e: unknown) => e);
  assert.is(errnoCode(refused), 'EINVAL');
  assert.throws(() => parseFlakeyParams(raw), (e: unknown) => e instanceof InvalidArgumentError);
  // What the kernel accepts but normalises: upper-case names and direction, features reordered,
  // and (below) a missing feature count.
  const accepted = `${dev.major}:${dev.minor} 0 9 1 6 CORRUPT_BIO_BYTE 3 R 7 0 DROP_WRITES`;
  await reload(name, { start: 0n, length: SECTORS, type: 'flakey', params: accepted });
  const { table } = await readBack(name);
  assert.is(table.params, asKernelPrintsIt(`${dev.major}:${dev.minor} 0 9 1 6 drop_writes corrupt_bio_byte 3 r 7 0 `));
  assert.is(table.params, asKernelPrintsIt(formatFlakeyParams(parseFlakeyParams(accepted))));
  await reload(name, { start: 0n, length: SECTORS, type: 'flakey', params: `${dev.major}:${dev.minor} 0 9 1` });
  assert.is((await readBack(name)).table.params, asKernelPrintsIt(`${dev.major}:${dev.minor} 0 9 1 ${ERROR_READS_DEFAULT ? '2 error_reads error_writes ' : '0 '}`));
  await dm.deviceRemove(name);
});

test('flakey: drop_writes loses writes while down and only then; error_writes fails them; no feature fails reads too', async () => {
  const name = testName('flakey-drop');
  const { num, file } = loops[0]!;
  const up: FlakeyParams = { device: num, offset: 0n, upInterval: 3600, downInterval: 1, writes: 'drop' };
  // up = 0: `elapsed % (up + down) >= up` holds from the moment the table is constructed.
  const down: FlakeyParams = { device: num, offset: 0n, upInterval: 0, downInterval: 3600, writes: 'drop' };
  const block = (byte: number): Buffer => Buffer.alloc(4096, byte);
  const writeThrough = (data: Buffer, at: number): void => {
    const fd = openSync(`/dev/mapper/${name}`, 'r+');
    try {
      assert.is(writeSync(fd, data, 0, data.length, at), data.length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  };
  /** The backing file, read past every block-device cache. */
  const onDisk = (at: number): Buffer => {
    const out = Buffer.alloc(4096);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, out, 0, 4096, at);
    } finally {
      closeSync(fd);
    }
    return out;
  };

  await dm.createDevice(name, [flakeyTarget(0n, SECTORS, up)]);
  writeThrough(block(0x11), 65536);
  assert.ok(onDisk(65536).equals(block(0x11)), 'up: the write reached the disk');

  await reload(name, flakeyTarget(0n, SECTORS, down));
  writeThrough(block(0x22), 65536); // succeeds: drop_writes completes the bio without writing
  assert.ok(onDisk(65536).equals(block(0x11)), 'down: the write was dropped');

  await reload(name, flakeyTarget(0n, SECTORS, up));
  writeThrough(block(0x33), 65536);
  assert.ok(onDisk(65536).equals(block(0x33)), 'up again: the write reached the disk');

  // error_writes: the write fails (reported by fsync, as writeback failed) and is not on disk.
  await reload(name, flakeyTarget(0n, SECTORS, { ...down, writes: 'error' }));
  assert.is(errnoCode(catchSync(() => writeThrough(block(0x44), 65536))), 'EIO');
  assert.ok(onDisk(65536).equals(block(0x33)), 'error_writes: nothing written');

  // No feature: while down every I/O fails, reads too (at an offset never read, so not cached).
  await reload(name, flakeyTarget(0n, SECTORS, { device: num, offset: 0n, upInterval: 0, downInterval: 3600 }));
  const fd = openSync(`/dev/mapper/${name}`, 'r');
  try {
    assert.is(errnoCode(catchSync(() => readSync(fd, Buffer.alloc(4096), 0, 4096, 4 << 20))), 'EIO');
  } finally {
    closeSync(fd);
  }
  await dm.deviceRemove(name);
});

test('delay: 3, 6 and 9 argument tables round-trip exactly; status counts nothing in flight', async () => {
  const name = testName('delay');
  const [a, b] = [loops[0]!.num, loops[1]!.num];
  const variants: DelayParams[] = [
    { device: a, offset: 0n, delayMs: 0 },
    { device: a, offset: 16n, delayMs: 100, write: { device: b, offset: 0n, delayMs: 200 } },
    { device: a, offset: 0n, delayMs: 1, write: { device: b, offset: 8n, delayMs: 2 }, flush: { device: a, offset: 0n, delayMs: 300 } },
  ];
  await dm.createDevice(name, [delayTarget(0n, SECTORS - 16n, variants[0]!)]);
  for (const p of variants) {
    await reload(name, delayTarget(0n, SECTORS - 16n, p));
    const { table, status } = await readBack(name);
    assert.equal(table, { start: 0n, length: SECTORS - 16n, type: 'delay', params: formatDelayParams(p) });
    assert.equal(parseDelayParams(table.params), p);
    assert.is(status.params, '0 0 0');
    assert.equal(parseDelayStatus(status.params), { reads: 0, writes: 0, flushes: 0 });
  }
  await dm.deviceRemove(name);
});

test('log-writes: table and status round-trip; a known write sequence and a mark are in the log', async () => {
  const name = testName('logw');
  const [data, log] = [loops[0]!, loops[1]!];
  const params = { device: data.num, logDevice: log.num };
  await dm.createDevice(name, [logWritesTarget(0n, SECTORS, params)]);
  const first = await readBack(name);
  assert.equal(first.table, { start: 0n, length: SECTORS, type: 'log-writes', params: formatLogWritesParams(params) });
  assert.equal(parseLogWritesParams(first.table.params), params);
  assert.is(first.status.params, '0 0');
  assert.equal(parseLogWritesStatus(first.status.params), { loggedEntries: 0n, highestSector: 0n, loggingEnabled: true });

  // Two direct 4 KiB writes, each followed by a flush (dd conv=fsync: blkdev_fsync issues one)
  // and a mark. Writes are logged when the flush after them completes, then the flush itself.
  const a = Buffer.alloc(4096, 0xa1);
  const b = Buffer.alloc(4096, 0xb2);
  const pattern = join(testTmpDir(), 'pattern');
  for (const [buf, seek, mark] of [[a, 0, 'after-a'], [b, 2, 'after-b']] as const) {
    writeFileSync(pattern, buf);
    sh('dd', [`if=${pattern}`, `of=/dev/mapper/${name}`, 'bs=4096', 'count=1', `seek=${seek}`, 'oflag=direct', 'conv=fsync,notrunc', 'status=none']);
    assert.is(await dm.targetMessage(name, 0n, logWritesMarkMessage(mark)), null);
  }

  // Entries are appended by the target's kthread after the I/O completes: wait (bounded) until
  // all six are counted, then check the exact figures.
  let status = parseLogWritesStatus((await dm.tableStatus(name))[0]!.params);
  for (let i = 0; i < 200 && status.loggedEntries < 6n; i++) {
    await new Promise((r) => setTimeout(r, 50));
    status = parseLogWritesStatus((await dm.tableStatus(name))[0]!.params);
  }
  // Sectors used: super (1) + A (1 + 8) + flush (1) + mark (1) + B (1 + 8) + flush (1) + mark (1) = 23; the last is 22.
  assert.equal(status, { loggedEntries: 6n, highestSector: 22n, loggingEnabled: true });
  assert.is(sh('dmsetup', ['status', name]).trimEnd(), `0 ${SECTORS} log-writes 6 22`);

  // Removing the target waits for every pending log write and appends its own end mark.
  await dm.deviceRemove(name);
  const logBytes = readFileSync(log.file);
  const decoded = decodeLogWritesLog(logBytes);
  assert.equal([decoded.version, decoded.nrEntries, decoded.sectorSize], [1n, 7n, 512]);
  const { flush, mark } = LOG_WRITES_FLAGS;
  assert.equal(
    decoded.entries.map((e) => [e.sector, e.nrSectors, e.flags, e.mark ?? null]),
    [
      [0n, 8n, 0n, null],
      [0n, 0n, flush, null],
      [0n, 0n, mark, 'after-a'],
      [16n, 8n, 0n, null],
      [0n, 0n, flush, null],
      [0n, 0n, mark, 'after-b'],
      [0n, 0n, mark, 'dm-log-writes-end'],
    ],
  );
  // Replaying onto an empty image up to each mark gives the device as it was at that mark.
  const replayed = (until: string): Buffer => {
    const img = Buffer.alloc(16384);
    replayLogWrites(logBytes, decoded, { mark: until }, (op) => {
      if (op.kind === 'write') op.data.copy(img, Number(op.byteOffset));
    });
    return img;
  };
  const expectA = Buffer.alloc(16384);
  a.copy(expectA, 0);
  const expectAB = Buffer.from(expectA);
  b.copy(expectAB, 8192);
  assert.ok(replayed('after-a').equals(expectA), 'replay to after-a: A only');
  assert.ok(replayed('after-b').equals(expectAB), 'replay to after-b: A and B');
  // And the writes reached the data device.
  assert.ok(readFileSync(data.file).subarray(0, 16384).equals(expectAB));
});

test.run();
