// SPDX-License-Identifier: MIT
// crypt and verity: params codecs (the kernel's table form), validation listing every problem, key
// redaction (CryptHexKey, table text, errors), status parsers, key messages, veritysetup's output;
// DmControl: DM_SECURE_DATA by default for crypt tables and key messages, table-mode reads redact
// crypt keys unless revealKeys and zero the reply buffer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inspect } from 'node:util';
import { InvalidArgumentError, KernelOutputError } from '../../../src/errors.js';
import { DM_SECURE_DATA_FLAG, type IoctlArg } from '../../../src/ioctl/index.js';
import {
  CryptHexKey,
  DmControl,
  cryptKeySetMessage,
  cryptKeyWipeMessage,
  cryptParamsProblems,
  cryptTarget,
  formatCryptParams,
  formatCryptParamsRedacted,
  formatVerityParams,
  isCryptKeyMessage,
  linearTarget,
  parseCryptParams,
  parseCryptStatus,
  parseVerityParams,
  parseVerityStatus,
  parseVeritysetupFormat,
  redactCryptParams,
  verityParamsProblems,
  verityTarget,
  type CryptParams,
  type VerityParams,
} from '../../../src/dm/index.js';
import { FakeDm } from './fake-dm.js';
import { d, isInvalid } from './target-helpers.js';

const HEX = '0123456789abcdef'.repeat(8); // 64 bytes
function problems(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InvalidArgumentError) return e;
    throw e;
  }
  throw new Error('expected an InvalidArgumentError');
}
const base = (): CryptParams => ({ cipher: 'aes-xts-plain64', key: CryptHexKey.fromHex(HEX), ivOffset: 0n, device: d(7, 0), offset: 0n });

// ---- crypt: keys ----

test('CryptHexKey: never printed, serialised or inspected; reveal gives lowercase hex; wipe zeroes it', () => {
  const k = CryptHexKey.fromHex(HEX.toUpperCase());
  assert.is(k.size, 64);
  assert.is(k.reveal(), HEX);
  assert.is(String(k), '[redacted 64-byte key]');
  assert.is(JSON.stringify(k), '{"kind":"hex","size":64,"redacted":true}');
  assert.is(inspect(k), 'CryptHexKey [redacted 64-byte key]');
  const p = base();
  for (const text of [JSON.stringify(p, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)), inspect(p, { depth: 9 }), `${String(p.key)}`])
    assert.is(text.includes('0123456789'), false, text);
  assert.ok(k.equals(CryptHexKey.fromHex(HEX)));
  assert.not.ok(k.equals(CryptHexKey.fromHex('ff'.repeat(64))));
  k.wipe();
  assert.is(k.wiped, true);
  assert.throws(() => k.reveal(), isInvalid);
  assert.throws(() => formatCryptParams({ ...base(), key: k }), isInvalid);
});

test('CryptHexKey.fromHex / fromBytes: bad input listed, the text never quoted in the error', () => {
  const e = problems(() => CryptHexKey.fromHex('0123456789abcdeZ0'));
  assert.equal(e.problems.map((p) => p.message), ['must contain only hex digits', 'must have an even, non-zero number of hex digits']);
  assert.is(e.message.includes('0123456789abcde'), false);
  assert.throws(() => CryptHexKey.fromHex(''), isInvalid);
  assert.throws(() => CryptHexKey.fromBytes(new Uint8Array(0)), isInvalid);
  assert.is(CryptHexKey.fromBytes(Buffer.from([1, 2, 255])).reveal(), '0102ff');
});

// ---- crypt: codec ----

test('formatCryptParams: the kernel table form (crypt_status), features in its order, no trailing blank', () => {
  assert.is(formatCryptParams(base()), `aes-xts-plain64 ${HEX} 0 7:0 0`);
  const all: CryptParams = {
    ...base(),
    ivOffset: 16n,
    offset: 4096n,
    ivLargeSectors: true,
    sectorSize: 4096,
    noWriteWorkqueue: true,
    noReadWorkqueue: true,
    submitFromCryptCpus: true,
    sameCpuCrypt: true,
    allowDiscards: true,
  };
  assert.is(
    formatCryptParams(all),
    `aes-xts-plain64 ${HEX} 16 7:0 4096 8 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue sector_size:4096 iv_large_sectors`.replace(' 8 ', ' 7 '),
  );
  assert.is(formatCryptParams({ ...base(), sectorSize: 512 }), `aes-xts-plain64 ${HEX} 0 7:0 0`, 'sector_size:512 is the default and not reported');
  assert.is(
    formatCryptParams({ ...base(), cipher: 'capi:xts(aes)-plain64', key: { kind: 'keyring', size: 64, keyType: 'logon', description: 'cryptsetup:vol' } }),
    'capi:xts(aes)-plain64 :64:logon:cryptsetup:vol 0 7:0 0',
  );
  assert.is(formatCryptParams({ ...base(), cipher: 'cipher_null-ecb', key: { kind: 'none' } }), 'cipher_null-ecb - 0 7:0 0');
  assert.is(formatCryptParams({ ...base(), integrity: { tagSize: 28, profile: 'aead' } }), `aes-xts-plain64 ${HEX} 0 7:0 0 1 integrity:28:aead`);
});

test('parseCryptParams: kernel form round-trips; ctr form (any case, any order) normalises', () => {
  const p: CryptParams = { ...base(), sectorSize: 4096, allowDiscards: true, ivOffset: 8n };
  const text = formatCryptParams(p);
  const back = parseCryptParams(text);
  assert.is(formatCryptParams(back), text);
  assert.ok((back.key as CryptHexKey).equals(p.key as CryptHexKey));
  assert.is(formatCryptParams(parseCryptParams(`aes-xts-plain64 ${HEX.toUpperCase()} 8 7:0 0 2 SECTOR_SIZE:4096 Allow_Discards`)), text);
  assert.equal(parseCryptParams('aes-cbc-essiv:sha256 :32:user:my-key 0 253:1 0').key, { kind: 'keyring', size: 32, keyType: 'user', description: 'my-key' });
  assert.equal(parseCryptParams(`aes-xts-plain64 redacted:64 0 7:0 0`).key, { kind: 'redacted', size: 64 });
});

test('parseCryptParams: malformed text refused, typed, never quoting the key', () => {
  for (const bad of [
    `aes-xts-plain64 ${HEX} 0 7:0`, // too few words
    `aes-xts-plain64 ${HEX}0 0 7:0 0`, // odd key length
    `aes-xts-plain64 ${HEX} x 7:0 0`,
    `aes-xts-plain64 ${HEX} 0 7:0 0 2 allow_discards`,
    `aes-xts-plain64 ${HEX} 0 7:0 0 1 fast`,
    `aes-xts-plain64 ${HEX} 0 7:0 0 1 sector_size:1000`,
    `aes-xts-plain64 :64:LOGON:x 0 7:0 0`, // the kernel compares the type case-sensitively
    `aes-xts-plain64 :0:logon:x 0 7:0 0`,
    `aes-xts-plain64 ${HEX} 3 7:0 0 1 sector_size:4096`, // iv_offset not a multiple of 8
    `aes-xts-foo ${HEX} 0 7:0 0`,
    `aes-xts-plain64 ${HEX} ${HEX} 7:0 0`, // the key pasted in another field is not quoted either
    `aes-xts-plain64 ${HEX} 0 7:0 0 1 ${HEX}`,
  ]) {
    const e = problems(() => parseCryptParams(bad));
    assert.is(e.message.includes('0123456789abcdef'), false, e.message);
    assert.is(JSON.stringify(e.problems, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).includes('0123456789abcdef'), false);
  }
});

test('cryptParamsProblems: every problem listed at once, none quoting a key', () => {
  const e = cryptParamsProblems({
    cipher: 'aes(x)-cbc',
    key: { kind: 'hex', hex: HEX },
    ivOffset: -1n,
    device: d(-1, 0),
    offset: 1,
    allowDiscards: false,
    sectorSize: 768,
    integrity: { tagSize: 481, profile: 'hmac' },
  });
  assert.equal(
    e.map((p) => p.path),
    ['/cipher', '/cipher', '/key', '/ivOffset', '/device/major', '/offset', '/allowDiscards', '/sectorSize', '/integrity/tagSize', '/integrity/profile'],
  );
  assert.is(JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).includes('0123456789abcdef'), false);
  assert.equal(cryptParamsProblems({ ...base(), cipher: 'aes-cbc-essiv' }).map((p) => p.message), ['essiv needs a digest (e.g. essiv:sha256)']);
  assert.equal(cryptParamsProblems({ ...base(), cipher: 'aes:3-xts-plain64' }).map((p) => p.message), ['key count must be a power of two']);
  assert.equal(cryptParamsProblems({ ...base(), cipher: 'aes-cbc' }).map((p) => p.path), ['/cipher']);
  assert.equal(cryptParamsProblems({ ...base(), cipher: 'aes-ecb' }), []);
  assert.equal(cryptParamsProblems({ ...base(), cipher: 'capi:cbc(aes)-essiv:sha256' }), []);
  assert.equal(cryptParamsProblems({ ...base(), key: { kind: 'keyring', size: 0, keyType: 'session', description: 'a b' } }).map((p) => p.path), ['/key/size', '/key/keyType', '/key/description']);
});

test('cryptTarget: the length must be a multiple of sectorSize/512', () => {
  assert.equal(cryptTarget(0n, 16n, { ...base(), sectorSize: 4096 }), { start: 0n, length: 16n, type: 'crypt', params: `aes-xts-plain64 ${HEX} 0 7:0 0 1 sector_size:4096` });
  assert.equal(problems(() => cryptTarget(0n, 12n, { ...base(), sectorSize: 4096 })).problems.map((p) => p.path), ['/length']);
});

test('redaction: table text and params', () => {
  const text = formatCryptParams({ ...base(), allowDiscards: true });
  assert.is(redactCryptParams(text), 'aes-xts-plain64 redacted:64 0 7:0 0 1 allow_discards');
  assert.is(formatCryptParamsRedacted({ ...base(), allowDiscards: true }), 'aes-xts-plain64 redacted:64 0 7:0 0 1 allow_discards');
  for (const kept of ['aes-xts-plain64 :64:logon:a:b 0 7:0 0', 'cipher_null-ecb - 0 7:0 0', 'aes-xts-plain64 redacted:64 0 7:0 0', 'x', ''])
    assert.is(redactCryptParams(kept), kept);
});

test('crypt status is empty; key messages', () => {
  assert.equal(parseCryptStatus(''), {});
  assert.equal(parseCryptStatus(' \n'), {});
  assert.throws(() => parseCryptStatus('V'), (e: unknown) => e instanceof KernelOutputError);
  assert.is(cryptKeyWipeMessage(), 'key wipe');
  assert.is(cryptKeySetMessage(CryptHexKey.fromHex('AB'.repeat(32))), `key set ${'ab'.repeat(32)}`);
  assert.is(cryptKeySetMessage({ kind: 'keyring', size: 32, keyType: 'logon', description: 'a:b' }), 'key set :32:logon:a:b');
  assert.throws(() => cryptKeySetMessage({ kind: 'redacted', size: 32 } as never), isInvalid);
  assert.is(isCryptKeyMessage('key wipe'), true);
  assert.is(isCryptKeyMessage('KEY set 00'), true);
  assert.is(isCryptKeyMessage('keys'), false);
  assert.is(isCryptKeyMessage('mark key'), false);
});

// ---- DmControl: secure data and redaction ----

function setup() {
  const k = new FakeDm();
  const bufs: Buffer[] = [];
  const sys = k.syscalls();
  const dm = new DmControl({
    syscalls: {
      ...sys,
      ioctl: (fd: number, req: number, arg: IoctlArg, name: string) => {
        if (Buffer.isBuffer(arg)) bufs.push(arg);
        return sys.ioctl(fd, req, arg, name);
      },
      ioctlAsync: async (fd: number, req: number, arg: IoctlArg, name: string) => {
        if (Buffer.isBuffer(arg)) bufs.push(arg);
        return sys.ioctlAsync(fd, req, arg, name);
      },
    },
    nodes: 'manage',
    sleep: async () => {},
  });
  return { k, dm, bufs };
}

test('DmControl: a crypt table is loaded with DM_SECURE_DATA by default, other tables without; secure: false turns it off', async () => {
  const { k, dm } = setup();
  const flagsOf = (): number => k.seen.filter((s) => s.name === 'DM_TABLE_LOAD').at(-1)!.header.flags;
  await dm.createDevice('c', [cryptTarget(0n, 2048n, base())]);
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, DM_SECURE_DATA_FLAG);
  await dm.tableLoad('c', [cryptTarget(0n, 2048n, base())], { secure: false });
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, 0);
  await dm.tableLoad('c', [linearTarget(0n, 2048n, { device: d(7, 0), offset: 0n })]);
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, 0);
  await dm.tableLoad('c', [linearTarget(0n, 2048n, { device: d(7, 0), offset: 0n })], { secure: true });
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, DM_SECURE_DATA_FLAG);
  await dm.createDevice('c2', [cryptTarget(0n, 2048n, base())], { secure: false });
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, 0);
});

test('DmControl: key messages go with DM_SECURE_DATA by default', async () => {
  const { k, dm } = setup();
  await dm.createDevice('c', [cryptTarget(0n, 2048n, base())]);
  const flagsOf = (): number => k.seen.filter((s) => s.name === 'DM_TARGET_MSG').at(-1)!.header.flags;
  await dm.targetMessage('c', 0n, cryptKeySetMessage(CryptHexKey.fromHex(HEX)));
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, DM_SECURE_DATA_FLAG);
  await dm.targetMessage('c', 0n, cryptKeyWipeMessage());
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, DM_SECURE_DATA_FLAG);
  await dm.targetMessage('c', 0n, 'other');
  assert.is(flagsOf() & DM_SECURE_DATA_FLAG, 0);
});

test('DmControl.tableStatus: crypt keys redacted in table mode unless revealKeys; the reply buffer is zeroed', async () => {
  const { dm, bufs } = setup();
  const p = base();
  await dm.createDevice('c', [cryptTarget(0n, 2048n, p), linearTarget(2048n, 8n, { device: d(7, 1), offset: 0n })]);
  const redacted = await dm.tableStatus('c', { mode: 'table' });
  assert.equal(redacted.map((t) => t.params), ['aes-xts-plain64 redacted:64 0 7:0 0', '7:1 0']);
  assert.is(bufs.at(-1)!.every((b) => b === 0), true, 'reply buffer zeroed');
  const revealed = await dm.tableStatus('c', { mode: 'table', revealKeys: true });
  assert.equal(revealed.map((t) => t.params), [formatCryptParams(p), '7:1 0']);
  assert.is(bufs.at(-1)!.every((b) => b === 0), true, 'reply buffer zeroed');
  // Status mode is untouched.
  assert.equal((await dm.tableStatus('c')).map((t) => t.params), ['status-of crypt', 'status-of linear']);
});

// ---- verity ----

const DIGEST = 'ab'.repeat(32);
const vbase = (): VerityParams => ({
  version: 1,
  dataDevice: d(7, 1),
  hashDevice: d(7, 2),
  dataBlockSize: 4096,
  hashBlockSize: 4096,
  numDataBlocks: 2048n,
  hashStartBlock: 1n,
  algorithm: 'sha256',
  digest: DIGEST,
  salt: 'cd'.repeat(32),
});

test('formatVerityParams: the kernel table form (verity_status), options in its order', () => {
  assert.is(formatVerityParams(vbase()), `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} ${'cd'.repeat(32)}`);
  assert.is(formatVerityParams({ ...vbase(), salt: '', digest: DIGEST.toUpperCase() }), `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} -`);
  const all: VerityParams = {
    ...vbase(),
    rootHashSigKeyDesc: 'sig:1',
    fec: { device: d(7, 3), blocks: 2100n, start: 0n, roots: 2 },
    tryVerifyInTasklet: true,
    checkAtMostOnce: true,
    ignoreZeroBlocks: true,
    onCorruption: 'restart',
  };
  assert.is(
    formatVerityParams(all),
    `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} ${'cd'.repeat(32)} 14 restart_on_corruption ignore_zero_blocks check_at_most_once try_verify_in_tasklet use_fec_from_device 7:3 fec_blocks 2100 fec_start 0 fec_roots 2 root_hash_sig_key_desc sig:1`,
  );
  assert.equal(parseVerityParams(formatVerityParams(all)), all);
  assert.is(formatVerityParams({ ...vbase(), onCorruption: 'ignore', onError: 'panic' }).endsWith(' 2 ignore_corruption panic_on_error'), true);
});

test('parseVerityParams: ctr form (any case, any order) normalises; malformed refused', () => {
  const p = parseVerityParams(`1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST.toUpperCase()} - 3 IGNORE_ZERO_BLOCKS Panic_On_Corruption check_at_most_once`);
  assert.equal(p, { ...vbase(), salt: '', ignoreZeroBlocks: true, onCorruption: 'panic', checkAtMostOnce: true });
  assert.is(formatVerityParams(p), `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} - 3 panic_on_corruption ignore_zero_blocks check_at_most_once`);
  for (const bad of [
    `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST}`,
    `2 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} -`,
    `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST}a -`,
    `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} - 2 ignore_corruption`,
    `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} - 2 ignore_corruption restart_on_corruption`,
    `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} - 2 use_fec_from_device 7:3`,
    `1 7:1 7:2 4096 4096 2048 1 sha256 ${DIGEST} - 1 fec_roots`,
    `1 7:1 7:2 4096 4096 2048 1 sha1 ${DIGEST} -`,
    `1 7:1 7:2 1000 4096 2048 1 sha256 ${DIGEST} -`,
  ])
    assert.throws(() => parseVerityParams(bad), isInvalid, bad);
});

test('verityParamsProblems: every problem listed at once', () => {
  assert.equal(
    verityParamsProblems({
      version: 2,
      dataDevice: d(7, 1),
      hashDevice: 'x',
      dataBlockSize: 100,
      hashBlockSize: 4096,
      numDataBlocks: -1n,
      hashStartBlock: 1n << 62n,
      algorithm: 'sha 256',
      digest: 'xy',
      salt: 'abc',
      onCorruption: 'log',
      checkAtMostOnce: 1,
      fec: { device: d(7, 3), blocks: 1n, start: 0n, roots: 25 },
      rootHashSigKeyDesc: '',
    }).map((p) => p.path),
    ['/version', '/hashDevice', '/dataBlockSize', '/numDataBlocks', '/hashStartBlock', '/algorithm', '/digest', '/salt', '/onCorruption', '/checkAtMostOnce', '/fec/roots', '/rootHashSigKeyDesc'],
  );
  assert.equal(verityParamsProblems(vbase()), []);
});

test('verityTarget: the length must not exceed the data the tree covers', () => {
  assert.equal(verityTarget(0n, 16384n, vbase()).type, 'verity');
  assert.equal(problems(() => verityTarget(0n, 16385n, vbase())).problems.map((p) => p.path), ['/length']);
});

test('parseVerityStatus: V, C, with the FEC corrected count', () => {
  assert.equal(parseVerityStatus('V'), { verified: true });
  assert.equal(parseVerityStatus('C'), { verified: false });
  assert.equal(parseVerityStatus('V 12'), { verified: true, fecCorrected: 12n });
  for (const bad of ['', 'v', 'X', 'V x', 'V 1 2', 'VC']) assert.throws(() => parseVerityStatus(bad), (e: unknown) => e instanceof KernelOutputError, bad);
});

test('parseVeritysetupFormat: cryptsetup 2.6 output', () => {
  const out = [
    'VERITY header information for /tmp/h.img',
    'UUID:            \t377d058e-9349-445f-8747-1a7dec6a69d4',
    'Hash type:       \t1',
    'Data blocks:     \t256',
    'Data block size: \t4096',
    'Hash blocks:     \t3',
    'Hash block size: \t4096',
    'Hash algorithm:  \tsha256',
    'Salt:            \ted84dcf3aa1be19e2992932dd6bbe2c9f2247744faf5ee9ee343fcb7c5f1187a',
    'Root hash:      \t014e3a26606ef26e7f99ee5ac1014b9d31b2acae3ffbb366490d2e8758b99730',
    'Hash device size: \t16384 [bytes]',
    '',
  ].join('\n');
  assert.equal(parseVeritysetupFormat(out), {
    version: 1,
    numDataBlocks: 256n,
    dataBlockSize: 4096,
    hashBlockSize: 4096,
    algorithm: 'sha256',
    salt: 'ed84dcf3aa1be19e2992932dd6bbe2c9f2247744faf5ee9ee343fcb7c5f1187a',
    rootHash: '014e3a26606ef26e7f99ee5ac1014b9d31b2acae3ffbb366490d2e8758b99730',
  });
  assert.throws(() => parseVeritysetupFormat(out.replace(/Root hash.*\n/, '')), (e: unknown) => e instanceof KernelOutputError);
});

test.run();
