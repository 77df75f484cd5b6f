// SPDX-License-Identifier: MIT
// src/errors.ts: errnoCode() (the one errno helper) and the deprecated isErrno wrapper.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, errnoCode, formatProblems, isErrno, problemPlace } from '../../src/errors.js';
import { IoctlError } from '../../src/ioctl/index.js';
import { DeviceBusyError, DeviceNotFoundError } from '../../src/dm/index.js';

const ebusy = new IoctlError({ syscall: 'ioctl', errno: 16, request: 'DM_DEV_REMOVE' });

test('errnoCode: an IoctlError, a Node SystemError, a bare code, a bare errno', async () => {
  assert.is(errnoCode(ebusy), 'EBUSY');
  let nodeErr: unknown;
  try {
    (await import('node:fs')).readFileSync('/nonexistent/devmapper-errno-test');
  } catch (err) {
    nodeErr = err;
  }
  assert.is(errnoCode(nodeErr), 'ENOENT');
  assert.is(errnoCode({ code: 'ENODATA' }), 'ENODATA');
  assert.is(errnoCode({ errno: 17 }), 'EEXIST');
  assert.is(errnoCode({ errno: -61 }), 'ENODATA');
});

test('errnoCode: looks through domain errors to the errno in the cause chain', () => {
  assert.is(errnoCode(new DeviceBusyError({ name: 'x' }, 3, { cause: ebusy })), 'EBUSY');
  const deep = new Error('outer', { cause: new DeviceNotFoundError({ name: 'y' }, { cause: new IoctlError({ syscall: 'ioctl', errno: 6 }) }) });
  assert.is(errnoCode(deep), 'ENXIO');
});

test('errnoCode: undefined when nothing in the chain carries an errno', () => {
  assert.is(errnoCode(new DeviceBusyError({ name: 'x' }, 3)), undefined);
  assert.is(errnoCode({ code: 'EINVALIDARG' }), undefined);
  assert.is(errnoCode({ code: 'ERR_INVALID_ARG_TYPE' }), undefined);
  assert.is(errnoCode({ errno: 0 }), undefined);
  assert.is(errnoCode(new Error('plain')), undefined);
  assert.is(errnoCode('EBUSY'), undefined);
  assert.is(errnoCode(null), undefined);
  assert.is(errnoCode(undefined), undefined);
});

test('errnoCode: a cause cycle ends', () => {
  const a: { code: string; cause?: unknown } = { code: 'EFOO' };
  a.cause = a;
  assert.is(errnoCode(a), undefined);
});

test('isErrno (deprecated) is errnoCode(err) === code', () => {
  assert.is(isErrno(new DeviceBusyError({ name: 'x' }, 3, { cause: ebusy }), 'EBUSY'), true);
  assert.is(isErrno(ebusy, 'ENXIO'), false);
  assert.is(isErrno({ code: 'EINVALIDARG' }, 'EINVALIDARG'), false);
});

const srcRoot = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'src');

test("a layer's errors.ts imports nothing of its own layer (translations import it, never the reverse)", () => {
  const offenders: string[] = [];
  for (const layer of readdirSync(srcRoot)) {
    const file = join(srcRoot, layer, 'errors.ts');
    if (!statSync(join(srcRoot, layer)).isDirectory()) continue;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(/from\s+['"](\.\/[^'"]+)['"]/g)) offenders.push(`src/${layer}/errors.ts imports ${m[1]}`);
  }
  assert.equal(offenders, []);
});

test('messages name places as a reader does, not as JSON pointers', () => {
  assert.is(problemPlace(''), '');
  assert.is(problemPlace('/'), '');
  assert.is(problemPlace('/options/size'), 'options.size');
  assert.is(problemPlace('/targets/2/start'), 'targets[2].start');
  assert.is(problemPlace('/3'), '[3]');
  assert.is(problemPlace('/a~1b/c~0d'), 'a/b.c~d');
  const e = new InvalidArgumentError('addDevice arguments', [
    { path: '/options/size', message: 'must be a positive multiple of 512 bytes' },
    { path: '/baseSize', message: 'baseSize=-1: a size cannot be negative' },
    { path: '', message: 'expected an options object' },
  ]);
  assert.is(e.message, 'invalid addDevice arguments: options.size: must be a positive multiple of 512 bytes; baseSize=-1: a size cannot be negative; expected an options object');
  assert.equal(e.problems.map((p) => p.path), ['/options/size', '/baseSize', '']);
  assert.is(formatProblems([{ path: '/0/start', message: 'gap' }]), '[0].start: gap');
});

test.run();
