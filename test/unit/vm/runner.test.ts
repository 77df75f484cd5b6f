// SPDX-License-Identifier: MIT
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestCommandScript, readOnlyCachedPaths, shQuote } from '../../../src/vm/runner.js';
import { cellFailureReport, cellLabel, parseUvuProgress, parseUvuSummary, summaryLine, uvuFailureReport } from '../../vm/summary.js';

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

test('a run cut off before its footer: the finished suites\' (passed / total) are summed', () => {
  const log = '\x1b[1mcli.test.js\x1b[22m\n\x1b[47m cli \x1b[49m \x1b[90m• \x1b[39m\x1b[32m  (5 / 5)\n\x1b[39m dm contract \x1b[31m✘ \x1b[39m  (24 / 25)\n\ndeviceset.test.js\n[devmapper vm] timeout\n';
  assert.equal(parseUvuProgress(log), { suites: 2, passed: 29, total: 30 });
  assert.equal(parseUvuProgress('nothing finished\n'), { suites: 0, passed: 0, total: 0 });
});

test('the unit failures are repeated at the end: uvu FAIL blocks without colour, capped', () => {
  const log =
    'a.test.js\n\x1b[32m• \x1b[39m (3 / 4)\n\n  \x1b[41m FAIL \x1b[49m  suite  "does x"\n\n    Expected 1 to equal 2\n    at x.js:3\n\n\n  Total:     4\n  Passed:    3\n  Skipped:   0\n';
  assert.equal(uvuFailureReport(log), ['   FAIL   suite  "does x"', '', '    Expected 1 to equal 2', '    at x.js:3']);
  assert.equal(uvuFailureReport('  Total:     1\n  Passed:    1\n  Skipped:   0\n'), []);
  assert.equal(uvuFailureReport(log, 2), ['   FAIL   suite  "does x"', '', '… 2 more line(s) in the log']);
});

test('a failed cell is reported again at the end: its FAIL blocks, or its last lines after a timeout, and the runner lines', () => {
  const failed =
    'x.test.js\n\x1b[31m✘ \x1b[39m (0 / 1)\n\n  \x1b[41m FAIL \x1b[49m  x  "hangs"\n\n    resizePool: not settled after 180 s\n\n  Total:     1\n  Passed:    0\n  Skipped:   0\n[devmapper vm] vm[6.1]: seconds per file: x.test.js 181\n';
  assert.equal(cellFailureReport(failed), ['   FAIL   x  "hangs"', '', '    resizePool: not settled after 180 s', '[devmapper vm] vm[6.1]: seconds per file: x.test.js 181']);
  const cut = 'a\nb\nc\n[devmapper vm] timeout after 3000 s\n\n';
  assert.equal(cellFailureReport(cut, 60, 2), ['(no uvu failure report; the last lines of the log:)', 'c', '[devmapper vm] timeout after 3000 s']);
  // summarize.js prints it for every failed cell, from <job>.log beside <job>.json, before the totals.
  const dir = mkdtempSync(join(tmpdir(), 'summarize-'));
  try {
    writeFileSync(join(dir, 'unit.log'), '  Total:     2\n  Passed:    2\n  Skipped:   0\n');
    writeFileSync(join(dir, 'k1.json'), JSON.stringify({ label: 'vm[6.1]', passed: 0, failed: 1 }));
    writeFileSync(join(dir, 'k1.log'), failed);
    writeFileSync(join(dir, 'k2.json'), JSON.stringify({ label: 'vm[6.12]', passed: 1, failed: 0 }));
    writeFileSync(join(dir, 'k2.log'), '  FAIL  never printed for a passing cell\n');
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('../../vm/summarize.js', import.meta.url)), join(dir, 'unit.log'), '0', 'k1', join(dir, 'k1.json'), '1', 'k2', join(dir, 'k2.json'), '0'], { encoding: 'utf8' });
    assert.is(r.status, 1);
    const out = r.stdout.trimEnd().split('\n');
    assert.equal(out.slice(0, 2), ['summarize: what failed in vm[6.1] again (its log is above):', '   FAIL   x  "hangs"']);
    assert.not.ok(r.stdout.includes('never printed'));
    assert.equal(out.slice(-4), ['unit: 2 passed, 0 failed', 'vm[6.1]: 0 passed, 1 failed', 'vm[6.12]: 1 passed, 0 failed', 'total: 3 passed, 1 failed']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run-privileged: --help prints the usage, an unknown flag is refused (exit 2); neither boots a guest', () => {
  const script = join(dirname(fileURLToPath(import.meta.url)), '../../vm/run-privileged.js');
  const help = spawnSync(process.execPath, [script, '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(help.status, 0);
  assert.match(help.stdout, /^usage: node dist\/test\/vm\/run-privileged\.js /);
  const bad = spawnSync(process.execPath, [script, '--file', 'x'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /run-privileged: Unknown option '--file'/);
});

test('matrix summary: one line per cell, total over all; one failing or missing cell fails the run', () => {
  assert.is(cellLabel('6.12.118+deb12-amd64', false), 'vm[6.12.118+deb12-amd64]');
  assert.is(cellLabel('6.1.0-57-amd64', true), 'vm[6.1.0-57-amd64, udev]');
  assert.is(cellLabel('6.1.0-57-amd64', true, 'docker'), 'vm[6.1.0-57-amd64, udev, docker]');
  const dir = mkdtempSync(join(tmpdir(), 'summarize-'));
  const summarize = join(dirname(fileURLToPath(import.meta.url)), '../../vm/summarize.js');
  const run = (args: string[]): { out: string; code: number } => {
    try {
      return { out: execFileSync(process.execPath, [summarize, ...args], { encoding: 'utf8' }), code: 0 };
    } catch (e) {
      const err = e as { stdout: string; status: number };
      return { out: err.stdout, code: err.status };
    }
  };
  try {
    writeFileSync(join(dir, 'unit.log'), '  Total:     10\n  Passed:    10\n  Skipped:   0\n');
    const cell = (f: string, label: string, passed: number, failed: number): string => {
      writeFileSync(join(dir, f), JSON.stringify({ label, kernel: '', udev: false, files: '', passed, failed, exitCode: failed ? 1 : 0, timedOut: false, ms: 1 }));
      return join(dir, f);
    };
    const a = cell('a.json', 'vm[6.1.0-57-amd64]', 100, 0);
    const b = cell('b.json', 'vm[6.12.118+deb12-amd64]', 99, 1);
    const u = cell('u.json', 'vm[6.1.0-57-amd64, udev]', 50, 0);
    const unit = [join(dir, 'unit.log'), '0'];
    assert.equal(run([...unit, 'kernel1', a, '0', 'udev', u, '0']), {
      out: 'unit: 10 passed, 0 failed\nvm[6.1.0-57-amd64]: 100 passed, 0 failed\nvm[6.1.0-57-amd64, udev]: 50 passed, 0 failed\ntotal: 160 passed, 0 failed\n',
      code: 0,
    });
    assert.equal(run([...unit, 'kernel1', a, '0', 'kernel2', b, '1']), {
      out: 'summarize: what failed in vm[6.12.118+deb12-amd64] again (its log is above):\n(no log)\nunit: 10 passed, 0 failed\nvm[6.1.0-57-amd64]: 100 passed, 0 failed\nvm[6.12.118+deb12-amd64]: 99 passed, 1 failed\ntotal: 209 passed, 1 failed\n',
      code: 1,
    });
    // A cell that left no summary (run-privileged crashed) counts as one failure under its name.
    assert.equal(run([...unit, 'kernel1', a, '0', 'kernel2', join(dir, 'missing.json'), '1']), {
      out: 'summarize: what failed in vm[kernel2] again (its log is above):\n(no log)\nunit: 10 passed, 0 failed\nvm[6.1.0-57-amd64]: 100 passed, 0 failed\nvm[kernel2]: 0 passed, 1 failed\ntotal: 110 passed, 1 failed\n',
      code: 1,
    });
    // A zero exit with a failure count, or a non-zero exit with none, is still a failure.
    assert.is(run([...unit, 'kernel1', a, '1']).code, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
