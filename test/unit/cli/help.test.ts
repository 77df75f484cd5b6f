// SPDX-License-Identifier: MIT
// Every --help text, as `run()` prints it, speaks to a user of the installed package: it names
// no file or npm script that only exists in a checkout (scripts/setup.sh, npm run demo, test/…),
// and every docs/ page it points to is in the repository (and so in the tarball: files has docs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GROUPS, TOP_COMMANDS } from '../../../src/cli/main.js';
import { cli } from './harness.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** argv of every help page: the top one, each group's, each command's. */
export function helpArgvs(): string[][] {
  return [
    ['--help'],
    ...TOP_COMMANDS.map((c) => [c.name, '--help']),
    ...GROUPS.flatMap((g) => [[g.name, '--help'], ...g.commands.map((c) => [g.name, c.name, '--help'])]),
  ];
}

const CHECKOUT_ONLY = /scripts\/|setup\.sh|\bnpm (run|test|ci)\b|\bdist\/|\btest\/|\bsrc\//;

test('every --help page: exit 0, usage on stdout, nothing on stderr, no checkout-only paths or npm scripts', async () => {
  const argvs = helpArgvs();
  assert.is(argvs.length, 1 + TOP_COMMANDS.length + GROUPS.length + GROUPS.reduce((n, g) => n + g.commands.length, 0));
  const bad: string[] = [];
  for (const argv of argvs) {
    const r = await cli(argv);
    assert.is(r.code, 0, argv.join(' '));
    assert.is(r.stderr, '', argv.join(' '));
    assert.match(r.stdout, /^Usage: devmapper /, argv.join(' '));
    for (const line of r.stdout.split('\n')) if (CHECKOUT_ONLY.test(line)) bad.push(`${argv.join(' ')}: ${line.trim()}`);
    for (const m of r.stdout.matchAll(/\bdocs\/[\w.-]+\.md/g)) if (!existsSync(join(repo, m[0]))) bad.push(`${argv.join(' ')}: ${m[0]} does not exist`);
  }
  assert.equal(bad, []);
});

test.run();
