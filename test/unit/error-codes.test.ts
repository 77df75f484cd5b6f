// SPDX-License-Identifier: MIT
// Every error class of the package has a `code` of its own, listed in DEVMAPPER_ERROR_CODES (so the
// CLI's exit-code map, typed against that list, covers it), and no code is also an errno name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as osConstants } from 'node:os';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEVMAPPER_ERROR_CODES, DevmapperError } from '../../src/errors.js';
import { IoctlError } from '../../src/ioctl/index.js';
import { DeviceAlreadyExistsError, DeviceSetError } from '../../src/deviceset/index.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every entry point of package.json's `exports`, plus the CLI's errors (the CLI is no entry point). */
async function entryModules(): Promise<Record<string, Record<string, unknown>>> {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { exports: Record<string, { default?: string } | string> };
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, target] of Object.entries(pkg.exports)) {
    const file = typeof target === 'string' ? target : target.default;
    if (file === undefined || !file.endsWith('.js')) continue;
    out[key] = (await import(join(repo, file))) as Record<string, unknown>;
  }
  out['cli/errors'] = (await import('../../src/cli/errors.js')) as Record<string, unknown>;
  return out;
}

type ErrorClass = new (...args: unknown[]) => DevmapperError;

/** The DevmapperError classes exported by any entry point, by name. */
async function exportedErrorClasses(): Promise<Map<string, ErrorClass>> {
  const classes = new Map<string, ErrorClass>();
  for (const mod of Object.values(await entryModules())) {
    for (const [name, value] of Object.entries(mod)) {
      if (typeof value === 'function' && value.prototype instanceof DevmapperError) classes.set(name, value as ErrorClass);
    }
  }
  return classes;
}

/** Constructors that take neither. */
const ARGS: Record<string, unknown[]> = { ExternalToolError: [['mkfs.ext4'], 1, 'failed'] };

/**
 * The code of an instance: constructors get `[]` for every argument (a valid list, ident or
 * context, and printable), or failing that `'x'` (a path).
 */
function codeOf(C: ErrorClass): string {
  const args = ARGS[C.name];
  if (args !== undefined) return (Reflect.construct(C, args) as DevmapperError).code;
  try {
    return (Reflect.construct(C, Array.from({ length: 8 }, () => [])) as DevmapperError).code;
  } catch {
    return (Reflect.construct(C, Array.from({ length: 8 }, () => 'x')) as DevmapperError).code;
  }
}

/** Base classes: no code of their own. */
const ABSTRACT = new Set(['LoopError', 'ThinError', 'DmError', 'DeviceSetError', 'CliError', 'DriverError']);

test('every exported DevmapperError class has a code from DEVMAPPER_ERROR_CODES, unique to it', async () => {
  const classes = await exportedErrorClasses();
  assert.ok(classes.size >= DEVMAPPER_ERROR_CODES.length, `${classes.size} classes found`);
  const byCode = new Map<string, string[]>();
  const notListed: string[] = [];
  for (const [name, C] of classes) {
    if (ABSTRACT.has(name) || C === IoctlError) continue;
    const code = codeOf(C);
    if (!(DEVMAPPER_ERROR_CODES as readonly string[]).includes(code)) notListed.push(`${name}: ${code}`);
    byCode.set(code, [...(byCode.get(code) ?? []), name]);
  }
  assert.equal(notListed, []);
  const shared = [...byCode].filter(([, names]) => names.length > 1).map(([code, names]) => `${code}: ${names.join(', ')}`);
  assert.equal(shared, []);
  // and every listed code belongs to a class (no stale entry)
  assert.equal(DEVMAPPER_ERROR_CODES.filter((c) => !byCode.has(c)), []);
});

test('the code list has no duplicate and no errno name (errnoCode tells them apart)', () => {
  assert.is(new Set(DEVMAPPER_ERROR_CODES).size, DEVMAPPER_ERROR_CODES.length);
  assert.equal(DEVMAPPER_ERROR_CODES.filter((c) => c in osConstants.errno), []);
});

test('IoctlError keeps the errno name as its code', () => {
  assert.is(new IoctlError({ syscall: 'ioctl', errno: 16 }).code, 'EBUSY');
});

test('every code literal in src/ is unique to one class', () => {
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
  const seen = new Map<string, string[]>();
  for (const file of walk(join(repo, 'src'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/readonly code = '([A-Z0-9_]+)'/g)) {
      seen.set(m[1]!, [...(seen.get(m[1]!) ?? []), relative(repo, file)]);
    }
  }
  assert.equal([...seen].filter(([, files]) => files.length > 1), []);
});

test('messages name no schema fields: DeviceAlreadyExistsError says what deleted means', () => {
  assert.is(new DeviceAlreadyExistsError('c1', false).message, 'device c1 already exists');
  assert.is(
    new DeviceAlreadyExistsError('c1', true).message,
    'device c1 already exists (marked for deferred deletion, which has not finished yet)',
  );
});

test('every error class the DeviceSet layer exports extends DeviceSetError', async () => {
  const mod = (await import('../../src/deviceset/index.js')) as Record<string, unknown>;
  const outside = Object.entries(mod)
    .filter(([name, v]) => typeof v === 'function' && v.prototype instanceof DevmapperError && name !== 'DeviceSetError')
    .filter(([, v]) => !((v as ErrorClass).prototype instanceof DeviceSetError))
    .map(([name]) => name);
  assert.equal(outside, []);
});

test.run();
