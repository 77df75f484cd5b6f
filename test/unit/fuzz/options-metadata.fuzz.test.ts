// SPDX-License-Identifier: MIT
// Fuzzing the dm.* option parser and the metadata loader (issue 10): arbitrary strings and
// near-valid keys give options or InvalidArgumentError; formatDmOptions → parseDmOptions is the
// identity on what parses; MetadataStore.loadAll over arbitrary/corrupted files gives records or
// MetadataCorruptError, never a raw SyntaxError/TypeError.
import { mkdtempSync, rmSync, writeFileSync, readdirSync, unlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { formatDmOptions, parseDmOptions } from '../../../src/deviceset/options.js';
import { MetadataStore } from '../../../src/deviceset/metadata.js';
import { report, typedOrOk, typedOrOkAsync } from './common.js';

const t0 = performance.now();

const KEYS = [
  'dm.thinpooldev', 'dm.directlvm_device', 'dm.directlvm_device_force', 'dm.thinp_percent', 'dm.thinp_metapercent',
  'dm.thinp_autoextend_threshold', 'dm.thinp_autoextend_percent', 'dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize',
  'dm.fs', 'dm.mkfsarg', 'dm.mountopt', 'dm.datadev', 'dm.metadatadev', 'dm.blocksize', 'dm.blkdiscard',
  'dm.override_udev_sync_check', 'dm.use_deferred_removal', 'dm.use_deferred_deletion', 'dm.min_free_space',
  'dm.xfs_nospace_max_retries', 'dm.libdm_log_level',
];
/** Valid keys, with case flips, typos, blanks and junk. */
const key = fc.oneof(
  fc.constantFrom(...KEYS),
  fc.constantFrom(...KEYS).map((k) => k.toUpperCase()),
  fc.tuple(fc.constantFrom(...KEYS), fc.nat(), fc.string({ maxLength: 2 })).map(([k, i, s]) => k.slice(0, i % k.length) + s + k.slice((i % k.length) + 1)),
  fc.constantFrom(...KEYS).map((k) => ` ${k} `),
  fc.string({ maxLength: 12 }),
);
const value = fc.oneof(
  fc.constantFrom('', 'true', 'false', '1', '0', 'ext4', 'xfs', 'btrfs', '10G', '16M', '512', '64K', '2M', '100%', '10%', '-1', '1.5G', '0x10', 'auto', '/dev/loop0', 'pool', '99999999999999999999T', '1e9', ' 8G', 'NaN'),
  fc.tuple(fc.nat(1 << 30), fc.constantFrom('', 'b', 'k', 'K', 'm', 'M', 'g', 'G', 't', 'T', 'KB', 'KiB', 'MB', 'p', 'E', '%')).map(([n, u]) => `${n}${u}`),
  fc.string({ maxLength: 16 }),
);
const option = fc.oneof(fc.tuple(key, fc.constantFrom('=', ' = ', '==', ':', ''), value).map(([k, e, v]) => `${k}${e}${v}`), fc.string({ maxLength: 24 }));

test('parseDmOptions: arbitrary near-valid option lists', () => {
  fc.assert(
    fc.property(fc.array(option, { maxLength: 6 }), (opts) => {
      const parsed = typedOrOk('parseDmOptions', () => parseDmOptions(opts));
      if (parsed === undefined) return;
      // Round trip: what parses formats back to strings that parse to the same options.
      const again = parseDmOptions(formatDmOptions(parsed));
      assert.equal(formatDmOptions(again), formatDmOptions(parsed));
      assert.equal(again, parsed);
    }),
    { numRuns: 12000 },
  );
});

test('parseDmOptions: non-string and odd inputs', () => {
  fc.assert(
    fc.property(fc.array(fc.anything(), { maxLength: 4 }), (xs) => void typedOrOk('parseDmOptions(anything)', () => parseDmOptions(xs as string[]))),
    { numRuns: 3000 },
  );
});

// ---- metadata loader

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'dm-fuzz-meta-'));
const META = join(dir, 'metadata');

const validDevice = (hash: string) => ({
  hash, deviceId: 1, size: 16777216, transactionId: 1, initialized: hash === '', deleted: false, state: 'ready', createdAt: '2026-01-01T00:00:00Z',
});
const validFiles: Record<string, unknown> = {
  base: validDevice(''),
  'deviceset-metadata': { formatVersion: 1, nextDeviceId: 2, options: [] },
  'transaction-metadata': { openTransactionId: 2, deviceHash: 'abc', deviceId: 3, op: 'create', size: 512 },
  abc: validDevice('abc'),
};

/** A JSON value mutated at a random path (type swaps, out-of-range numbers, dropped fields). */
const jsonMutation = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(null, -1, 0, 1.5, 2 ** 53, 0xffffff + 1, '', 'x', true, [], {}, 'creating', 'deleting', 'faulty', 'snapshot', 'delete', '__proto__'),
  fc.jsonValue({ maxDepth: 2 }),
);
const fileName = fc.oneof(fc.constantFrom('base', 'deviceset-metadata', 'transaction-metadata', 'abc', '.tmp-x', '.hidden', 'Bad Name', 'a'.repeat(200)), fc.stringMatching(/^[a-z0-9._-]{1,12}$/).filter((n) => n !== '.' && n !== '..'));
const fileContent = fc.oneof(
  // A valid record of some kind, with fields mutated.
  fc.tuple(fc.constantFrom(...Object.keys(validFiles)), fc.array(fc.tuple(fc.constantFrom('hash', 'deviceId', 'size', 'transactionId', 'initialized', 'deleted', 'state', 'createdAt', 'formatVersion', 'nextDeviceId', 'options', 'openTransactionId', 'deviceHash', 'op', 'originDeviceId', 'filesystem', 'filesystemUuid', 'extra'), jsonMutation), { maxLength: 3 }))
    .map(([k, muts]) => {
      const o = { ...(validFiles[k] as Record<string, unknown>) };
      for (const [f, v] of muts) {
        if (v === undefined) delete o[f];
        else o[f] = v;
      }
      return JSON.stringify(o);
    }),
  // Truncated valid JSON (a torn write), arbitrary JSON, arbitrary text.
  fc.tuple(fc.constantFrom(...Object.values(validFiles).map((v) => JSON.stringify(v))), fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1))),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 40 }),
);

test('MetadataStore.loadAll: arbitrary and corrupted files give records or MetadataCorruptError', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fileName, fileContent), { maxLength: 5 }), async (files) => {
      rmSync(META, { recursive: true, force: true });
      const store = new MetadataStore(dir);
      await store.loadAll(); // creates the directory
      for (const [name, content] of files) writeFileSync(join(META, name), content);
      const loaded = await typedOrOkAsync('MetadataStore.loadAll', () => store.loadAll());
      if (loaded === undefined) return;
      // What loads is self-consistent and no temp file survives.
      for (const [hash, r] of loaded.devices) assert.is(r.hash, hash);
      assert.ok(readdirSync(META).every((n) => !n.startsWith('.tmp-')));
    }),
    { numRuns: 4000 },
  );
  for (const n of readdirSync(META)) unlinkSync(join(META, n));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
  report('options-metadata.fuzz', t0);
});
test.run();
