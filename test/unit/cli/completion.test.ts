// SPDX-License-Identifier: MIT
// `devmapper completion bash|zsh`: generated from the command tables, so every group, command and
// option is in it. The bash script is also run: `bash -n`, then its function answers
// COMP_WORDS the way bash's programmable completion calls it. zsh, when installed: `zsh -n`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { optionsOf } from '../../../src/cli/args.js';
import { GROUPS, TOP_COMMANDS } from '../../../src/cli/main.js';
import { cli } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'devmapper-completion-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const has = (shell: string): boolean => spawnSync(shell, ['-c', 'exit 0']).status === 0;

async function script(shell: string): Promise<string> {
  const r = await cli(['completion', shell]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, '');
  return r.stdout;
}

/** What the bash function offers for the words typed so far (the last one being completed). */
function complete(file: string, words: string[]): string[] {
  const arr = words.map((w) => `'${w}'`).join(' ');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source '${file}'; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _devmapper; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8', cwd: dir });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  return r.stdout.split('\n').filter((l) => l !== '');
}

test('bash: every command group with every subcommand, every command with every option', async () => {
  const s = await script('bash');
  assert.ok(s.includes(`words='${[...GROUPS.map((g) => g.name), ...TOP_COMMANDS.map((c) => c.name), '--help', '--version'].join(' ')}'`));
  for (const g of GROUPS) {
    assert.ok(s.includes(`\n      ${g.name}) words='${g.commands.map((c) => c.name).join(' ')}' ;;\n`), g.name);
    for (const c of g.commands) {
      const flags = Object.entries(optionsOf(c)).flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])]);
      assert.ok(s.includes(`\n      '${g.name} ${c.name}') words='${flags.join(' ')}' ;;\n`), `${g.name} ${c.name}`);
    }
  }
  for (const c of TOP_COMMANDS) assert.ok(s.includes(`\n      '${c.name}') words='`), c.name);
});

test('bash (when installed): the script parses (bash -n) and completes groups, commands, options and shells', async () => {
  if (!has('bash')) return;
  const file = join(dir, 'devmapper.bash');
  writeFileSync(file, await script('bash'));
  const n = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
  assert.equal([n.status, n.stderr], [0, '']);
  assert.equal(complete(file, ['devmapper', 'd']), ['ds', 'driver', 'dm', 'docker', 'demo']);
  assert.equal(complete(file, ['devmapper', 'loop', '']), ['attach', 'detach', 'set-capacity', 'ls', 'find']);
  assert.equal(complete(file, ['devmapper', 'loop', 'attach', '--s']), ['--size', '--size-limit']);
  assert.equal(complete(file, ['devmapper', 'dm', 'remove', 'vol', '--d']), ['--dev', '--deferred']);
  assert.equal(complete(file, ['devmapper', 'vm', '--k']), ['--kernel', '--kvm']);
  assert.equal(complete(file, ['devmapper', 'completion', '']), ['bash', 'zsh']);
  // After --, the command inside is not ours to complete.
  assert.equal(complete(file, ['devmapper', 'vm', '--', 'devmapper', '--']), []);
});

test('zsh: every group, subcommand (with its summary) and option; zsh -n when zsh is installed', async () => {
  const s = await script('zsh');
  assert.ok(s.startsWith('#compdef devmapper\n'));
  for (const g of GROUPS) {
    assert.ok(s.includes(`'${g.name}:${g.summary.replace(/'/g, `'\\''`)}'`), g.name);
    for (const c of g.commands) {
      assert.ok(s.includes(`'${c.name}:${c.summary.replace(/'/g, `'\\''`)}'`), `${g.name} ${c.name}`);
      for (const o of Object.keys(optionsOf(c))) assert.ok(s.includes(`\n      '${g.name} ${c.name}') compadd -- `) && s.includes(` --${o}`), `${g.name} ${c.name} --${o}`);
    }
  }
  if (has('zsh')) {
    const file = join(dir, '_devmapper');
    writeFileSync(file, s);
    const n = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    assert.equal([n.status, n.stderr], [0, '']);
  }
});

test('completion: an unknown or missing shell is a usage error (exit 2)', async () => {
  const r = await cli(['completion', 'fish']);
  assert.is(r.code, 2);
  assert.is(r.stderr, "devmapper: EUSAGE: SHELL must be one of bash, zsh, not 'fish'\nhint: see 'devmapper completion --help'\n");
  assert.is((await cli(['completion'])).code, 2);
});

test.run();
