// SPDX-License-Identifier: MIT
// The CI matrix's file patterns (scripts/test-all.sh) against the files in test/privileged: both
// kernel cells run every file but the docker* ones, the docker cell runs exactly those, the udev
// cell the dm, thin and deviceset files; every file runs in some cell. (A pattern that excluded
// only `docker.` once let docker-variants and docker-import, which start udev and dockerd, into
// the no-udev kernel cells.) uvu matches its pattern against the path below the directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const script = readFileSync(join(repo, 'scripts/test-all.sh'), 'utf8');

/** The default of `NAME=${DEVMAPPER_CI_…:-'PATTERN'}` in test-all.sh. */
function pattern(name: string): RegExp {
  const m = new RegExp(`^${name}=\\$\\{DEVMAPPER_CI_[A-Z0-9_]+:-'([^']+)'\\}$`, 'm').exec(script);
  assert.ok(m, `${name} has a quoted default pattern in test-all.sh`);
  return new RegExp(m[1]!);
}

// The compiled test files as the runner sees them (dist/test/privileged/*.test.js).
const files = readdirSync(join(repo, 'test/privileged'))
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => f.replace(/\.ts$/, '.js'))
  .sort();
const docker = files.filter((f) => f.startsWith('docker'));

test('the kernel cells run every privileged file but docker*; cell 2 is cell 1', () => {
  assert.ok(docker.length >= 3, docker.join(' '));
  assert.equal(files.filter((f) => pattern('FILES').test(f)), files.filter((f) => !f.startsWith('docker')));
  assert.match(script, /^FILES2=\$\{DEVMAPPER_CI_FILES2:-\$FILES\}$/m);
  // The .d.ts and .map files beside them never match.
  for (const f of ['dm.test.d.ts', 'dm.test.js.map', 'loop.test.d.ts']) assert.not.ok(pattern('FILES').test(f), f);
});

test('the docker cell runs exactly the docker* files; the udev cell the dm, thin and deviceset files', () => {
  assert.equal(files.filter((f) => pattern('DOCKER_FILES').test(f)), docker);
  const udev = files.filter((f) => pattern('UDEV_FILES').test(f));
  assert.equal(udev, files.filter((f) => /^(dm|thin|deviceset)[.-]/.test(f)));
  assert.ok(udev.includes('deviceset.test.js') && udev.includes('dm.udev.test.js'), udev.join(' '));
});

test('every privileged file runs in at least one cell', () => {
  const cells = ['FILES', 'UDEV_FILES', 'DOCKER_FILES'].map(pattern);
  assert.equal(files.filter((f) => !cells.some((re) => re.test(f))), []);
});

test.run();
