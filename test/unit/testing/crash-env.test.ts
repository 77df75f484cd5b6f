// SPDX-License-Identifier: MIT
// devmapper/testing's crashHookFromEnv: the env-reading crash hook test children pass explicitly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRASH_AT_ENV, CRASH_TRACE_ENV, crashHookFromEnv } from '../../../src/testing/index.js';

test('the variable names', () => {
  assert.is(CRASH_AT_ENV, 'DEVMAPPER_CRASH_AT');
  assert.is(CRASH_TRACE_ENV, 'DEVMAPPER_CRASH_TRACE');
});

test('a malformed DEVMAPPER_CRASH_AT is refused naming the variable and the valid forms', () => {
  assert.throws(() => crashHookFromEnv({ DEVMAPPER_CRASH_AT: 'init:before-typo' }), /^DEVMAPPER_CRASH_AT: crash point "init:before-typo": expected <point>\[@k\] or #n; points: init:before-pool-create, /);
});

test('DEVMAPPER_CRASH_TRACE appends every point reached; no CRASH_AT: nobody dies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dm-crash-trace-'));
  try {
    const file = join(dir, 'trace');
    const hook = crashHookFromEnv({ DEVMAPPER_CRASH_TRACE: file });
    hook('init:before-probe');
    hook('shutdown:before-unlock');
    assert.is(readFileSync(file, 'utf8'), 'init:before-probe\nshutdown:before-unlock\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
