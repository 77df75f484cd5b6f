// SPDX-License-Identifier: MIT
// Fuzzing the crypt and verity parsers (issue 18): arbitrary and near-valid strings never give an
// untyped exception, and never an error quoting a key; format → parse is the identity.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  CryptHexKey,
  formatCryptParams,
  formatVerityParams,
  parseCryptParams,
  parseCryptStatus,
  parseVerityParams,
  parseVerityStatus,
  parseVeritysetupFormat,
  redactCryptParams,
  type CryptParams,
  type VerityParams,
} from '../../../src/dm/index.js';
import { report, tableSep, tableText, typedOrOk } from './common.js';

const t0 = performance.now();
const RUNS = 6000;
/** A key the near-valid strings contain; no error message may quote it. */
const SECRET = '5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2';

const word = fc.oneof(
  fc.constantFrom(
    'aes-xts-plain64', 'capi:xts(aes)-plain64', 'aes-cbc-essiv:sha256', 'cipher_null-ecb', 'aes-cbc', 'aes:3-xts-plain64', SECRET, `${SECRET}0`,
    ':64:logon:a:b', ':32:user:k', ':0:logon:x', ':x:', 'redacted:64', 'redacted:', '-', 'allow_discards', 'same_cpu_crypt',
    'submit_from_crypt_cpus', 'no_read_workqueue', 'no_write_workqueue', 'sector_size:4096', 'sector_size:1000', 'iv_large_sectors',
    'integrity:28:aead', 'integrity:0:none', 'V', 'C', '0', '1', '2', '8', '14', '512', '4096', '2048', '7:0', '7:1', '253:3', 'sha256', 'sha1',
    'ab'.repeat(32), 'AB'.repeat(20), 'ignore_corruption', 'restart_on_corruption', 'panic_on_corruption', 'restart_on_error', 'ignore_zero_blocks',
    'check_at_most_once', 'try_verify_in_tasklet', 'use_fec_from_device', 'fec_blocks', 'fec_start', 'fec_roots', 'root_hash_sig_key_desc',
    '18446744073709551615', '18446744073709551616', '-1', '',
  ),
  fc.bigInt({ min: 0n, max: 1n << 70n }).map(String),
  fc.string({ maxLength: 8 }),
);
const { nearValid, anyText } = tableText(word, 22);

const parsers: Record<string, (s: string) => unknown> = {
  parseCryptParams,
  parseCryptStatus,
  parseVerityParams,
  parseVerityStatus,
  parseVeritysetupFormat,
  redactCryptParams,
};

for (const [name, parse] of Object.entries(parsers)) {
  test(`${name}: any string parses or throws a typed error`, () => {
    fc.assert(fc.property(anyText, (s) => void typedOrOk(name, () => parse(s))), { numRuns: RUNS });
  });
}

test('parseCryptParams: no error quotes the key', () => {
  fc.assert(
    fc.property(nearValid, (s) => {
      try {
        parseCryptParams(`aes-xts-plain64 ${SECRET} ${s}`);
      } catch (e) {
        assert.ok(e instanceof InvalidArgumentError);
        assert.is(e.message.includes(SECRET), false, e.message);
      }
    }),
    { numRuns: RUNS },
  );
});

test('redactCryptParams: the key word is replaced, the rest kept as it was', () => {
  fc.assert(
    fc.property(tableSep, nearValid, (s0, s) => assert.is(redactCryptParams(`aes-xts-plain64${s0}${SECRET}${s0}${s}`), `aes-xts-plain64${s0}redacted:32${s0}${s}`)),
    { numRuns: RUNS },
  );
});

test('parseCryptParams: no error quotes the key, wherever else it appears', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(word, fc.constant(SECRET)), { maxLength: 10 }), (ws) => {
      try {
        parseCryptParams(`aes-xts-plain64 ${SECRET} ${ws.join(' ')}`);
      } catch (e) {
        assert.ok(e instanceof InvalidArgumentError);
        assert.is(e.message.includes(SECRET), false, e.message);
      }
    }),
    { numRuns: RUNS },
  );
});

const devNum = fc.record({ major: fc.nat(4095), minor: fc.nat((1 << 20) - 1) });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const flag = fc.option(fc.constant(true as const), { nil: undefined });

test('formatCryptParams → parseCryptParams is the identity (valid params)', () => {
  const params = fc
    .record({
      cipher: fc.constantFrom('aes-xts-plain64', 'capi:xts(aes)-plain64', 'aes-cbc-essiv:sha256', 'serpent-xts-plain'),
      key: fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 96 }).map((b) => CryptHexKey.fromBytes(b)),
        fc.record({ kind: fc.constant('keyring' as const), size: fc.integer({ min: 1, max: 4096 }), keyType: fc.constantFrom('logon' as const, 'user' as const), description: fc.stringMatching(/^[a-z0-9:_-]{1,12}$/) }),
      ),
      ivOffset: u64,
      device: devNum,
      offset: u64,
      allowDiscards: flag,
      sameCpuCrypt: flag,
      submitFromCryptCpus: flag,
      noReadWorkqueue: flag,
      noWriteWorkqueue: flag,
      ivLargeSectors: flag,
      sectorSize: fc.option(fc.constantFrom(1024, 2048, 4096), { nil: undefined }),
    })
    .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as CryptParams);
  fc.assert(
    fc.property(params, (p) => {
      const text = typedOrOk('formatCryptParams', () => formatCryptParams(p));
      if (text === undefined) return; // ivOffset not a multiple of the sector size: refused, typed
      assert.is(formatCryptParams(parseCryptParams(text)), text);
      assert.is(formatCryptParams(parseCryptParams(text.replace(/ /g, '\t'))), text);
    }),
    { numRuns: RUNS },
  );
});

test('formatVerityParams → parseVerityParams is the identity (valid params)', () => {
  const bs = fc.constantFrom(512, 1024, 4096);
  const params = fc
    .record({
      version: fc.constantFrom(0 as const, 1 as const),
      dataDevice: devNum,
      hashDevice: devNum,
      dataBlockSize: bs,
      hashBlockSize: bs,
      numDataBlocks: fc.bigInt({ min: 0n, max: 1n << 50n }),
      hashStartBlock: fc.bigInt({ min: 0n, max: 1n << 50n }),
      algorithm: fc.constant('sha256'),
      digest: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
      salt: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('hex')),
      onCorruption: fc.option(fc.constantFrom('ignore' as const, 'restart' as const, 'panic' as const), { nil: undefined }),
      onError: fc.option(fc.constantFrom('restart' as const, 'panic' as const), { nil: undefined }),
      ignoreZeroBlocks: flag,
      checkAtMostOnce: flag,
      tryVerifyInTasklet: flag,
      fec: fc.option(fc.record({ device: devNum, blocks: u64, start: u64, roots: fc.integer({ min: 2, max: 24 }) }), { nil: undefined }),
      rootHashSigKeyDesc: fc.option(fc.stringMatching(/^[a-z0-9:_-]{1,12}$/), { nil: undefined }),
    })
    .map((r) => structuredClone(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))) as unknown as VerityParams);
  fc.assert(
    fc.property(params, (p) => {
      const text = formatVerityParams(p);
      assert.equal(parseVerityParams(text), p);
      assert.is(formatVerityParams(parseVerityParams(text.replace(/ /g, '\t'))), text);
    }),
    { numRuns: RUNS },
  );
});

test.after(() => report('crypt-verity.fuzz', t0));
test.run();
