// SPDX-License-Identifier: MIT
// schemas.generated.ts: the DeviceSet layer's schemas compiled ahead of time (schema-codegen.ts).
// The committed file is exactly what the TypeBox sources (record-schemas.ts) generate; its
// literals are TypeBox's objects, symbols included; its checks, the error lists and the clean-up
// of unknown fields agree with TypeBox's own on valid and broken values; and a process that
// imports the layer (every `ds` command) loads no TypeBox module.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import * as S from '../../../src/deviceset/record-schemas.js';
import * as G from '../../../src/deviceset/schemas.generated.js';
import { deviceSetSchemaModule } from '../../../src/deviceset/schema-modules.js';
import { schemaLiteral } from '../../../src/deviceset/schema-codegen.js';
import { schemaClean, schemaErrors } from '../../../src/deviceset/schema-runtime.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

test('the committed schemas.generated.ts is what record-schemas.ts generates (npm run validators)', () => {
  assert.is(readFileSync(join(repo, 'src/deviceset/schemas.generated.ts'), 'utf8'), deviceSetSchemaModule(), 'stale: run npm run validators');
});

/** Deep equality that also compares symbol-keyed properties (TypeBox's Kind, Optional). */
function sameSchema(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b) ? [] : [`${path}: ${String(a)} != ${String(b)}`];
  if (Array.isArray(a) !== Array.isArray(b)) return [`${path}: array vs object`];
  const keys = (o: object): (string | symbol)[] => [...Object.keys(o), ...Object.getOwnPropertySymbols(o)];
  const ka = keys(a).map(String).sort();
  const kb = keys(b).map(String).sort();
  if (ka.join() !== kb.join()) return [`${path}: keys ${ka.join()} != ${kb.join()}`];
  return keys(a).flatMap((k) => sameSchema((a as Record<string | symbol, unknown>)[k], (b as Record<string | symbol, unknown>)[k], `${path}/${String(k)}`));
}

const PAIRS: [string, TSchema, TSchema][] = [
  ['DeviceState', S.DeviceState, G.DeviceState],
  ['DeviceRecord', S.DeviceRecord, G.DeviceRecord],
  ['DeviceSetRecord', S.DeviceSetRecord, G.DeviceSetRecord],
  ['TransactionOp', S.TransactionOp, G.TransactionOp],
  ['TransactionRecord', S.TransactionRecord, G.TransactionRecord],
  ['DeviceSetOptions', S.DeviceSetOptions, G.DeviceSetOptions],
];

test('each generated schema is the TypeBox object, symbol keys included', () => {
  for (const [name, source, generated] of PAIRS) {
    assert.equal(sameSchema(source, generated), [], name);
    assert.ok(Object.getOwnPropertySymbols(generated).includes(Symbol.for('TypeBox.Kind')), name);
  }
  // The comparison itself can fail: a missing Optional marker is found.
  const { [Symbol.for('TypeBox.Optional')]: _dropped, ...noOptional } = (S.DeviceRecord.properties.growTo as unknown) as Record<string | symbol, unknown>;
  assert.equal(sameSchema(S.DeviceRecord.properties.growTo, noOptional), [': keys Symbol(TypeBox.Kind),Symbol(TypeBox.Optional),maximum,minimum,type != Symbol(TypeBox.Kind),maximum,minimum,type']);
});

test('schemaLiteral refuses what could not round-trip', () => {
  assert.throws(() => schemaLiteral({ f: () => 1 }), /cannot emit \[object Function\]/);
  assert.throws(() => schemaLiteral({ r: /x/ }), /cannot emit \[object RegExp\]/);
  assert.throws(() => schemaLiteral({ [Symbol('local')]: 1 }), /unregistered symbol Symbol\(local\)/);
  assert.throws(() => schemaLiteral(Number.NaN), /non-finite number NaN/);
  assert.is(schemaLiteral({ [Symbol.for('K')]: 'v', a: [1, 'b', null, true] }), '{\n  [Symbol.for("K")]: "v",\n  "a": [\n    1,\n    "b",\n    null,\n    true,\n  ],\n}');
});

const record = {
  hash: 'abc',
  deviceId: 7,
  size: 1 << 20,
  transactionId: 3,
  initialized: false,
  deleted: false,
  state: 'ready',
  createdAt: '2026-12-06T10:00:00.000Z',
};
const deviceSet = { formatVersion: 1, nextDeviceId: 8, options: ['dm.basesize=20G'], quarantinedIds: [{ deviceId: 5, reason: 'r', since: 's' }] };
const transaction = { openTransactionId: 4, deviceHash: 'abc', deviceId: 7, op: 'snapshot', originDeviceId: 1, size: 512 };
const options = { baseSize: 10n, loopDataSize: 1024, fs: 'xfs', mkfsArgs: ['-m', '0'], useDeferredRemoval: 'auto', minFreeSpacePercent: 10 };

/** Valid values and one-field breakages of each, per checked schema. */
const SAMPLES: [string, TSchema, (v: unknown) => boolean, Record<string, unknown>, Record<string, unknown>[]][] = [
  ['DeviceRecord', S.DeviceRecord, G.checkDeviceRecord, record, [
    { deviceId: 0x1000000 }, { deviceId: -1 }, { deviceId: 1.5 }, { size: '1' }, { state: 'gone' }, { createdAt: 'yesterday' },
    { filesystem: 'btrfs' }, { filesystemUuid: '' }, { growTo: 2 ** 53 }, { hash: undefined }, { initialized: 'no' },
  ]],
  ['DeviceSetRecord', S.DeviceSetRecord, G.checkDeviceSetRecord, deviceSet, [
    { formatVersion: 0 }, { options: [1] }, { quarantinedIds: [{ deviceId: 5 }] }, { transactionId: -1 }, { nextDeviceId: undefined },
  ]],
  ['TransactionRecord', S.TransactionRecord, G.checkTransactionRecord, transaction, [
    { openTransactionId: 0 }, { op: 'rename' }, { originDeviceId: 'x' }, { size: -512 },
  ]],
  ['DeviceSetOptions', S.DeviceSetOptions, G.checkDeviceSetOptions, options, [
    { baseSize: true }, { fs: 'ext3' }, { mkfsArgs: ['a', 2] }, { useDeferredRemoval: 'yes' }, { minFreeSpacePercent: 0.5 }, { unknownKey: 1 },
  ]],
];

test('the generated checks and the error lists agree with TypeBox on valid and broken values', () => {
  for (const [name, schema, check, valid, breaks] of SAMPLES) {
    const compiled = TypeCompiler.Compile(schema);
    assert.ok(check(valid), `${name}: valid`);
    assert.ok(compiled.Check(valid), `${name}: valid (TypeBox)`);
    assert.equal(schemaErrors(schema, valid), []);
    for (const b of breaks) {
      const v = { ...valid, ...b };
      for (const [k, x] of Object.entries(b)) if (x === undefined) delete v[k];
      assert.is(check(v), false, `${name} ${JSON.stringify(b)}`);
      assert.is(compiled.Check(v), false, `${name} ${JSON.stringify(b)} (TypeBox)`);
      const ours = schemaErrors(schema, v);
      assert.ok(ours.length > 0, `${name} ${JSON.stringify(b)}: no problem listed`);
      assert.equal(ours, [...compiled.Errors(v)].map((e) => ({ path: e.path, message: e.message, value: e.value })));
    }
    for (const junk of [null, [], 'x', 0]) assert.is(check(junk), false, `${name} ${JSON.stringify(junk)}`);
  }
});

test('schemaClean drops unknown fields at every depth, as Value.Clean does, keeping key order', () => {
  const cases: [TSchema, unknown][] = [
    [G.DeviceRecord, { newer: 1, ...record, growTo: 4096, z: { deep: true } }],
    [G.DeviceSetRecord, { ...deviceSet, quarantinedIds: [{ extra: 1, deviceId: 5, reason: 'r', since: 's' }], other: [] }],
    [G.TransactionRecord, { ...transaction, by: 'a newer devmapper' }],
  ];
  for (const [schema, value] of cases) {
    const ours = schemaClean(schema, structuredClone(value));
    const typebox = Value.Clean(schema, structuredClone(value));
    assert.equal(ours, typebox);
    assert.equal(Object.keys(ours as object), Object.keys(typebox as object));
  }
  assert.equal(schemaClean(G.DeviceSetRecord, { ...deviceSet, quarantinedIds: [{ extra: 1, deviceId: 5, reason: 'r', since: 's' }] }), deviceSet);
});

test('importing the DeviceSet layer loads no TypeBox module', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-loads-'));
  const log = join(dir, 'loaded.txt');
  try {
    const recorder = join(repo, 'dist/test/unit/cli/load-recorder.js');
    const layer = join(repo, 'dist/src/deviceset/index.js');
    const r = spawnSync(process.execPath, ['--import', recorder, '--input-type=module', '-e', `await import(${JSON.stringify(layer)})`], {
      encoding: 'utf8',
      env: { ...process.env, DEVMAPPER_LOAD_LOG: log },
    });
    assert.is(r.status, 0, r.stderr);
    const loaded = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
    assert.ok(loaded.some((u) => u.endsWith('/dist/src/deviceset/metadata.js')), 'the recorder saw the layer load');
    assert.equal(loaded.filter((u) => u.includes('@sinclair/typebox')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
