// SPDX-License-Identifier: MIT
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestCommandScript, readOnlyCachedPaths, shQuote } from '../../../src/vm/runner.js';
import { parseUvuSummary, summaryLine } from '../../vm/summary.js';

test('readOnlyCached: existing plain subdirectories become absolute paths; anything else is refused', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'dmvm-ro-'));
  try {
    mkdirSync(join(cwd, 'node_modules'));
    mkdirSync(join(cwd, 'dist', 'src'), { recursive: true });
    assert.equal(readOnlyCachedPaths(cwd, ['node_modules', 'dist/src', 'missing']), [join(cwd, 'node_modules'), join(cwd, 'dist/src')]);
    assert.equal(readOnlyCachedPaths(cwd, [join(cwd, 'dist')]), [join(cwd, 'dist')]);
    assert.equal(readOnlyCachedPaths(cwd, ['/srv/share/x'], [cwd, '/srv/share']), []);
    for (const bad of ['', '/etc', '../x', 'a/../b', './a', 'a b', `${cwd}/../x`])
      assert.throws(() => readOnlyCachedPaths(cwd, [bad]), /plain path inside cwd or a share/, bad);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('shQuote survives the shell unchanged', () => {
  for (const s of ["it's", 'a b', '$HOME', '`x`', '\\.test\\.js$', '', '"q"\n']) {
    assert.is(execFileSync('sh', ['-c', `printf %s ${shQuote(s)}`], { encoding: 'utf8' }), s);
  }
});

test('the guest script sets PATH, HOME and env, cds and execs the quoted command', () => {
  const script = guestCommandScript('/work/my repo', ['node', 'a b.js', "it's"], { FOO: '$x y' }, '/usr/bin:/bin');
  assert.is(
    script,
    [
      '#!/bin/sh',
      "export PATH='/usr/bin:/bin'",
      'export HOME=/tmp',
      "export FOO='$x y'",
      "cd '/work/my repo' || exit 125",
      "exec 'node' 'a b.js' 'it'\\''s'",
      '',
    ].join('\n'),
  );
  assert.throws(() => guestCommandScript('/', ['x'], { 'BAD-NAME': '1' }, '/bin'), /bad environment variable name/);
  assert.throws(() => guestCommandScript('/', [], {}, '/bin'), /empty command/);
});

test('uvu footers are parsed (colours and all); the last one wins; failed = total - passed', () => {
  const out = '\x1b[1mx.test.js\x1b[22m\n  Total:     9\x1b[31m\n  Passed:    7\x1b[39m\n  Skipped:   \x1b[33m2\x1b[39m\n  Duration:  1.2ms\n\n';
  assert.equal(parseUvuSummary('junk\n  Total:     1\n  Passed:    1\n  Skipped:   0\n' + out), { total: 9, passed: 7, skipped: 2, failed: 2 });
  assert.is(parseUvuSummary('Error: cannot find module\n'), undefined);
  assert.is(summaryLine('vm', 7, 2), 'vm: 7 passed, 2 failed');
});

test.run();
