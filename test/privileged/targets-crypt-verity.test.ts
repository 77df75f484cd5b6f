// SPDX-License-Identifier: MIT
// The data-at-rest targets (issue 18) on the real kernel: crypt over a loop device with a random
// key (loaded with DM_SECURE_DATA: the kernel zeroes our request buffer), data written through dm
// reads back through dm and is not plaintext on the backing file; the table reads back redacted by
// default and, with revealKeys, equals our encoder and `dmsetup table --showkeys`; `key wipe` /
// `key set` while suspended. verity over a data and a hash file made by `veritysetup format`:
// reads verify (`V`), a byte flipped in the data file gives EIO and `C`.
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../../src/errors.js';
import { DM_SECURE_DATA_FLAG, realSyscalls, type IoctlBatcher, type Syscalls } from '../../src/ioctl/index.js';
import {
  CryptHexKey,
  DmControl,
  cryptKeySetMessage,
  cryptKeyWipeMessage,
  cryptTarget,
  formatCryptParams,
  formatCryptParamsRedacted,
  formatTable,
  formatVerityParams,
  parseCryptParams,
  parseCryptStatus,
  parseVerityParams,
  parseVerityStatus,
  parseVeritysetupFormat,
  verityTarget,
  type CryptParams,
  type DevNum,
  type TargetLine,
  type VerityParams,
} from '../../src/dm/index.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';
import { rdevOf } from '../helpers/loop-files.js';

const test = withSweep(privilegedSuite('targets-crypt-verity'));

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });


/** 8 MiB = 16384 sectors per loop device. */
const SECTORS = 16384n;
/** What every DM_TABLE_LOAD sent: its flags, and whether its payload was all zeroes after the call. */
const loads: { flags: number; payloadZeroed: boolean; payloadHas: (s: string) => boolean }[] = [];
let dm: DmControl;
const loops: { dev: string; file: string; num: DevNum }[] = [];

/** The real kernel seam, recording DM_TABLE_LOAD buffers after the kernel is done with them. */
function spySyscalls(): Syscalls {
  const real = realSyscalls();
  // The flags as sent (the kernel clears DM_SECURE_DATA_FLAG in the header it writes back); the
  // payload as the kernel left it.
  const record = (name: string, arg: unknown, flags: number): void => {
    if (name !== 'DM_TABLE_LOAD' || !Buffer.isBuffer(arg)) return;
    const payload = Buffer.from(arg.subarray(312)); // data_start: struct dm_ioctl is 312 bytes
    loads.push({ flags, payloadZeroed: payload.every((b) => b === 0), payloadHas: (s) => payload.includes(s) });
  };
  const flagsOf = (arg: unknown): number => (Buffer.isBuffer(arg) ? arg.readUInt32LE(28) : 0);
  return new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'ioctl')
        return (fd: number, req: number, arg: Buffer, name: string): number => {
          const flags = flagsOf(arg);
          try {
            return real.ioctl(fd, req, arg, name);
          } finally {
            record(name, arg, flags);
          }
        };
      if (prop === 'ioctlAsync')
        return async (fd: number, req: number, arg: Buffer, name: string): Promise<number> => {
          const flags = flagsOf(arg);
          try {
            return await real.ioctlAsync(fd, req, arg, name);
          } finally {
            record(name, arg, flags);
          }
        };
      // createDevice sends create → load → resume as one batch (the worker's arena is copied
      // back into each step's buffer): record the steps that ran, as the kernel left them.
      if (prop === 'openBatch')
        return (): IoctlBatcher => {
          const inner = real.openBatch!();
          return {
            get busy() {
              return inner.busy;
            },
            close: () => inner.close(),
            run: async (steps) => {
              const flags = steps.map((st) => flagsOf(st.arg));
              let ran = steps.length;
              try {
                const out = await inner.run(steps);
                ran = out.results.length + (out.error ? 1 : 0);
                return out;
              } finally {
                steps.slice(0, ran).forEach((st, i) => record(st.requestName, st.arg, flags[i]!));
              }
            },
          };
        };
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test.before(() => {
  dm = new DmControl({ syscalls: spySyscalls() });
  spawnSync('modprobe', ['-a', 'dm-crypt', 'dm-verity'], { stdio: 'ignore' });
  for (const n of ['crypt', 'vdata', 'vhash']) {
    const file = join(testTmpDir(), `cv-${n}.img`);
    sh('truncate', ['-s', '8M', file]);
    loops.push({ dev: '', file, num: { major: 0, minor: 0 } });
  }
  // The crypt backing file is attached now; the verity files after veritysetup wrote them.
  const c = loops[0]!;
  c.dev = sh('losetup', ['-f', '--show', c.file]).trim();
  c.num = rdevOf(c.dev);
});

test.after(() => {
  dm.close();
  for (const l of loops) if (l.dev !== '') spawnSync('losetup', ['-d', l.dev], { stdio: 'ignore' });
  spawnSync('keyctl', ['purge', '-s', 'logon', 'cvtest:key'], { stdio: 'ignore' });
});

function dropCaches(): void {
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

function pwrite(path: string, data: Buffer, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    assert.is(writeSync(fd, data, 0, data.length, at), data.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function pread(path: string, length: number, at: number): Buffer {
  const out = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    assert.is(readSync(fd, out, 0, length, at), length);
  } finally {
    closeSync(fd);
  }
  return out;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** Table (mode 'table', keys revealed) of a one-target device, checked against dmsetup's output. */
async function tableOf(name: string): Promise<{ redacted: TargetLine; revealed: TargetLine }> {
  const revealed = await dm.tableStatus(name, { mode: 'table', revealKeys: true });
  assert.is(sh('dmsetup', ['table', '--showkeys', name]), formatTable(revealed), 'dmsetup table --showkeys = our revealed table text');
  const redacted = await dm.tableStatus(name, { mode: 'table' });
  assert.is(revealed.length, 1);
  assert.is(redacted.length, 1);
  return { redacted: redacted[0]!, revealed: revealed[0]! };
}

test('the crypt and verity targets are available, veritysetup is installed', async () => {
  for (const t of ['crypt', 'verity']) assert.ok((await dm.getTargetVersion(t)) !== null, `${t} target`);
  assert.match(sh('veritysetup', ['--version']), /veritysetup/);
});

test('crypt: secure load, encrypted at rest, reads back; table redacted by default, revealed = encoder = dmsetup --showkeys', async () => {
  const name = testName('crypt');
  const { num, file } = loops[0]!;
  const key = CryptHexKey.fromBytes(randomBytes(64));
  const p: CryptParams = { cipher: 'aes-xts-plain64', key, ivOffset: 0n, device: num, offset: 0n };
  const before = loads.length;
  await dm.createDevice(name, [cryptTarget(0n, SECTORS, p)]);
  // DM_SECURE_DATA was set (by default, for a crypt table) and the kernel zeroed our whole payload.
  assert.is(loads.length, before + 1);
  assert.is((loads[before]!.flags & DM_SECURE_DATA_FLAG) !== 0, true, 'DM_SECURE_DATA_FLAG sent');
  assert.is(loads[before]!.payloadZeroed, true, 'the kernel wiped the table from our request buffer');

  const plain = Buffer.alloc(65536, 'PLAINTEXT-MARKER-');
  pwrite(`/dev/mapper/${name}`, plain, 1 << 20);
  dropCaches();
  assert.ok(pread(`/dev/mapper/${name}`, plain.length, 1 << 20).equals(plain), 'read back through dm');
  const onDisk = pread(file, plain.length, 1 << 20);
  assert.not.ok(onDisk.equals(plain));
  assert.is(onDisk.includes('PLAINTEXT-MARKER'), false, 'no plaintext on the backing file');

  const { redacted, revealed } = await tableOf(name);
  assert.equal(revealed, { start: 0n, length: SECTORS, type: 'crypt', params: formatCryptParams(p) });
  assert.equal(redacted, { start: 0n, length: SECTORS, type: 'crypt', params: formatCryptParamsRedacted(p) });
  assert.is(redacted.params, `aes-xts-plain64 redacted:64 0 ${num.major}:${num.minor} 0`);
  assert.ok((parseCryptParams(revealed.params).key as CryptHexKey).equals(key));
  assert.equal((await dm.tableStatus(name)).map((t) => parseCryptStatus(t.params)), [{}]);

  // A redacted table cannot be loaded back by mistake: the marker is not hex (crypt_set_key).
  assert.is(errnoCode(await rejection(dm.tableLoad(name, [redacted]))), 'EINVAL');

  // Without DM_SECURE_DATA (explicitly off) the table stays in our buffer: the flag is what wipes it.
  const n = loads.length;
  await dm.tableLoad(name, [cryptTarget(0n, SECTORS, p)], { secure: false });
  assert.is(loads[n]!.flags & DM_SECURE_DATA_FLAG, 0);
  assert.is(loads[n]!.payloadHas(key.reveal()), true, 'without the flag the key is still in the request buffer');
  await dm.tableClear(name);
  await dm.deviceRemove(name);
});

test('crypt: key messages only while suspended; after key wipe resume is refused until key set', async () => {
  const name = testName('crypt-key');
  const { num } = loops[0]!;
  const key = CryptHexKey.fromBytes(randomBytes(64));
  const wrong = CryptHexKey.fromBytes(randomBytes(64));
  const p: CryptParams = { cipher: 'aes-xts-plain64', key, ivOffset: 0n, device: num, offset: 0n, sectorSize: 4096, allowDiscards: true };
  await dm.createDevice(name, [cryptTarget(0n, SECTORS, p)]);
  assert.is((await tableOf(name)).revealed.params, formatCryptParams(p));
  const plain = Buffer.alloc(8192, 'key-test-data:');
  pwrite(`/dev/mapper/${name}`, plain, 8192);

  // crypt_message: "not suspended during key manipulation" → EINVAL.
  assert.is(errnoCode(await rejection(dm.targetMessage(name, 0n, cryptKeyWipeMessage()))), 'EINVAL');

  await dm.deviceSuspend(name);
  assert.is(await dm.targetMessage(name, 0n, cryptKeyWipeMessage()), null);
  // crypt_preresume: "aborting resume - crypt key is not set" → EAGAIN; the device stays suspended.
  assert.is(errnoCode(await rejection(dm.deviceResume(name))), 'EAGAIN');
  assert.is((await dm.deviceInfo(name)).suspended, true);
  // A key of another size is refused (crypt_message: the key size may not change).
  assert.is(errnoCode(await rejection(dm.targetMessage(name, 0n, cryptKeySetMessage(CryptHexKey.fromBytes(randomBytes(32)))))), 'EINVAL');

  // The wrong key: the device resumes, but the data does not decrypt.
  await dm.targetMessage(name, 0n, cryptKeySetMessage(wrong));
  await dm.deviceResume(name);
  dropCaches();
  assert.not.ok(pread(`/dev/mapper/${name}`, plain.length, 8192).equals(plain), 'the wrong key does not decrypt');

  await dm.deviceSuspend(name);
  await dm.targetMessage(name, 0n, cryptKeySetMessage(key));
  await dm.deviceResume(name);
  dropCaches();
  assert.ok(pread(`/dev/mapper/${name}`, plain.length, 8192).equals(plain), 'the right key decrypts again');
  await dm.deviceRemove(name);
});

test('crypt: a logon keyring key is referenced, reported as given, and decrypts what the hex key wrote', async () => {
  if (spawnSync('keyctl', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.log('  skipped: no keyctl (keyutils)');
    return;
  }
  const name = testName('crypt-ring');
  const { num } = loops[0]!;
  const raw = randomBytes(64);
  execFileSync('keyctl', ['padd', 'logon', 'cvtest:key', '@u'], { input: raw, stdio: ['pipe', 'ignore', 'pipe'] });
  // Link the user keyring into the session keyring so request_key from this process finds it.
  spawnSync('keyctl', ['link', '@u', '@s'], { stdio: 'ignore' });
  const hexP: CryptParams = { cipher: 'aes-xts-plain64', key: CryptHexKey.fromBytes(raw), ivOffset: 0n, device: num, offset: 0n };
  const ringP: CryptParams = { ...hexP, key: { kind: 'keyring', size: 64, keyType: 'logon', description: 'cvtest:key' } };
  const plain = Buffer.alloc(4096, 'keyring-data:');
  await dm.createDevice(name, [cryptTarget(0n, SECTORS, hexP)]);
  pwrite(`/dev/mapper/${name}`, plain, 0);
  await dm.tableLoad(name, [cryptTarget(0n, SECTORS, ringP)]);
  await dm.deviceResume(name);
  const { redacted, revealed } = await tableOf(name);
  assert.is(revealed.params, formatCryptParams(ringP));
  assert.is(revealed.params, `aes-xts-plain64 :64:logon:cvtest:key 0 ${num.major}:${num.minor} 0`);
  assert.equal(redacted, revealed, 'a keyring reference is not secret: kept as is');
  assert.equal(parseCryptParams(revealed.params), ringP);
  dropCaches();
  assert.ok(pread(`/dev/mapper/${name}`, plain.length, 0).equals(plain));
  await dm.deviceRemove(name);
});

test('verity: veritysetup format → our table activates; reads verify (V); a flipped data byte gives EIO and C', async () => {
  const name = testName('verity');
  const data = loops[1]!;
  const hash = loops[2]!;
  // Known content: every 4 KiB block filled with its number.
  const content = Buffer.alloc(8 << 20);
  for (let b = 0; b < 2048; b++) content.fill(b & 0xff, b * 4096, (b + 1) * 4096);
  writeFileSync(data.file, content);
  writeFileSync(hash.file, Buffer.alloc(0));
  const info = parseVeritysetupFormat(sh('veritysetup', ['format', data.file, hash.file]));
  assert.is(info.numDataBlocks, 2048n);
  assert.is(info.dataBlockSize, 4096);
  assert.is(info.algorithm, 'sha256');
  for (const l of [data, hash]) {
    l.dev = sh('losetup', ['-f', '--show', l.file]).trim();
    l.num = rdevOf(l.dev);
  }
  const p: VerityParams = {
    version: info.version,
    dataDevice: data.num,
    hashDevice: hash.num,
    dataBlockSize: info.dataBlockSize,
    hashBlockSize: info.hashBlockSize,
    numDataBlocks: info.numDataBlocks,
    hashStartBlock: 1n, // veritysetup's superblock takes hash block 0
    algorithm: info.algorithm,
    digest: info.rootHash,
    salt: info.salt,
  };
  const length = info.numDataBlocks * BigInt(info.dataBlockSize / 512);
  await dm.createDevice(name, [verityTarget(0n, length, p)], { readOnly: true });
  const table = await dm.tableStatus(name, { mode: 'table' });
  assert.is(sh('dmsetup', ['table', name]), formatTable(table), 'dmsetup table = our table text');
  assert.equal(table, [{ start: 0n, length, type: 'verity', params: formatVerityParams(p) }]);
  assert.equal(parseVerityParams(table[0]!.params), p);

  assert.ok(pread(`/dev/mapper/${name}`, content.length, 0).equals(content), 'every block reads and verifies');
  const status = await dm.tableStatus(name);
  assert.is(sh('dmsetup', ['status', name]).trimEnd(), formatTable(status).trimEnd(), 'dmsetup status = our status text');
  assert.equal(parseVerityStatus(status[0]!.params), { verified: true });

  // Flip one byte of block 1000 in the data file, behind the loop device; drop every cache.
  const at = 1000 * 4096 + 123;
  pwrite(data.file, Buffer.from([content[at]! ^ 0xff]), at);
  dropCaches();
  const err = (() => {
    try {
      pread(`/dev/mapper/${name}`, 4096, 1000 * 4096);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.is(errnoCode(err), 'EIO');
  assert.equal(parseVerityStatus((await dm.tableStatus(name))[0]!.params), { verified: false });
  assert.match(sh('dmsetup', ['status', name]), / verity C\n$/);
  // Other blocks still read.
  assert.ok(pread(`/dev/mapper/${name}`, 4096, 0).equals(content.subarray(0, 4096)));

  // Optional arguments round-trip through the kernel exactly.
  const opts: VerityParams = { ...p, onCorruption: 'ignore', ignoreZeroBlocks: true, checkAtMostOnce: true };
  await dm.tableLoad(name, [verityTarget(0n, length, opts)], { readOnly: true });
  await dm.deviceResume(name);
  const t2 = await dm.tableStatus(name, { mode: 'table' });
  assert.is(sh('dmsetup', ['table', name]), formatTable(t2));
  assert.is(t2[0]!.params, formatVerityParams(opts));
  assert.equal(parseVerityParams(t2[0]!.params), opts);
  await dm.deviceRemove(name);
});

test('tables made by cryptsetup (plain) and veritysetup (with FEC) parse and re-encode exactly', async () => {
  // crypt: cryptsetup's table for a plain mapping with features, read with the key revealed.
  const cname = testName('csetup');
  const keyFile = join(testTmpDir(), 'cv-key.bin');
  writeFileSync(keyFile, randomBytes(64));
  sh('cryptsetup', ['open', '--type', 'plain', '--cipher', 'aes-xts-plain64', '--key-size', '512', '--key-file', keyFile, '--sector-size', '4096', '--allow-discards', loops[0]!.dev, cname]);
  try {
    const { redacted, revealed } = await tableOf(cname);
    const p = parseCryptParams(revealed.params);
    assert.is(formatCryptParams(p), revealed.params);
    assert.is(p.sectorSize, 4096);
    assert.is(p.allowDiscards, true);
    assert.is(redacted.params, formatCryptParamsRedacted(p));
    assert.equal(parseCryptStatus((await dm.tableStatus(cname))[0]!.params), {});
  } finally {
    sh('cryptsetup', ['close', cname]);
  }

  // verity: veritysetup's table with FEC, and its status.
  const vname = testName('vsetup');
  const files = ['cv-fdata', 'cv-fhash', 'cv-fec'].map((n) => join(testTmpDir(), `${n}.img`));
  writeFileSync(files[0]!, Buffer.alloc(1 << 20, 7));
  const info = sh('veritysetup', ['format', files[0]!, files[1]!, '--fec-device', files[2]!, '--fec-roots', '2']);
  const root = parseVeritysetupFormat(info).rootHash;
  const devs = files.map((f) => {
    const dev = sh('losetup', ['-f', '--show', f]).trim();
    loops.push({ dev, file: f, num: rdevOf(dev) });
    return dev;
  });
  sh('veritysetup', ['open', devs[0]!, vname, devs[1]!, root, '--fec-device', devs[2]!, '--fec-roots', '2']);
  try {
    const [line] = await dm.tableStatus(vname, { mode: 'table' });
    assert.is(sh('dmsetup', ['table', vname]), formatTable([line!]));
    const p = parseVerityParams(line!.params);
    assert.is(formatVerityParams(p), line!.params);
    assert.equal(p.fec?.device, loops.at(-1)!.num);
    assert.is(p.fec?.roots, 2);
    assert.ok(pread(`/dev/mapper/${vname}`, 1 << 20, 0).equals(Buffer.alloc(1 << 20, 7)));
    const status = parseVerityStatus((await dm.tableStatus(vname))[0]!.params);
    assert.is(status.verified, true);
    console.log(`  veritysetup table: ${line!.params}; status: ${JSON.stringify(status, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
  } finally {
    sh('veritysetup', ['close', vname]);
  }
});

test.run();
