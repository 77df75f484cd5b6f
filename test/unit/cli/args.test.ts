// SPDX-License-Identifier: MIT
// The argv parser and help rendering: unknown options, missing/extra positionals, repeatable
// options, `--`, and that every command and group answers --help.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommand, wantsHelp, type CommandSpec } from '../../../src/cli/args.js';
import { UsageError } from '../../../src/cli/errors.js';
import { GROUPS, TOP_COMMANDS } from '../../../src/cli/main.js';
import { cli } from './harness.js';

const spec: CommandSpec<unknown> = {
  name: 'x',
  summary: 's',
  positionals: [{ name: 'A' }, { name: 'B', optional: true }],
  options: { table: { type: 'string', multiple: true, description: 't' }, ro: { type: 'boolean', description: 'r' } },
  json: true,
  run: async () => undefined,
};

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

test('positionals by name, optional ones absent', () => {
  const p = parseCommand(spec, ['a1'], 'g x');
  assert.equal(p.args, { A: 'a1' });
  assert.equal(parseCommand(spec, ['a1', 'b1'], 'g x').args, { A: 'a1', B: 'b1' });
});

test('repeatable options accumulate in order; booleans; --json added', () => {
  const p = parseCommand(spec, ['--table', '0 1 zero', 'a', '--table=1 1 zero', '--ro', '--json'], 'g x');
  assert.equal(p.options['table'], ['0 1 zero', '1 1 zero']);
  assert.is(p.options['ro'], true);
  assert.is(p.options['json'], true);
});

test('unknown option, missing value, missing and extra positionals are usage errors naming the command', () => {
  assert.match(usage(() => parseCommand(spec, ['a', '--nope'], 'g x')).message, "unknown option '--nope'");
  assert.match(usage(() => parseCommand(spec, ['a', '--table'], 'g x')).message, "'--table' needs a value");
  assert.match(usage(() => parseCommand(spec, [], 'g x')).message, 'missing A');
  const extra = usage(() => parseCommand(spec, ['a', 'b', 'c'], 'g x'));
  assert.match(extra.message, "unexpected argument 'c'");
  assert.is(extra.command, 'g x');
  assert.match(usage(() => parseCommand(spec, ['a', '--ro=yes'], 'g x')).message, "'--ro' does not take a value");
});

test('`--` is refused unless the command takes a rest; with rest it is kept verbatim', () => {
  assert.match(usage(() => parseCommand(spec, ['a', '--', 'b'], 'g x')).message, "takes no arguments after '--'");
  const withRest: CommandSpec<unknown> = { ...spec, positionals: [], rest: { name: 'CMD', required: true } };
  assert.equal(parseCommand(withRest, ['--json', '--', 'ls', '-l', '--help'], 'vm').rest, ['ls', '-l', '--help']);
  assert.match(usage(() => parseCommand(withRest, [], 'vm')).message, "missing '-- CMD...'");
});

test('wantsHelp stops at --', () => {
  assert.ok(wantsHelp(['a', '-h']));
  assert.not.ok(wantsHelp(['--', '--help']));
});

test('top-level help, unknown command, --version', async () => {
  const top = await cli(['--help']);
  assert.is(top.code, 0);
  for (const g of GROUPS) assert.match(top.stdout, `  ${g.name} `);
  assert.match(top.stdout, 'Exit codes');
  assert.is((await cli([])).code, 2); // usage on stderr (messages.test.ts)
  const bad = await cli(['frobnicate']);
  assert.is(bad.code, 2);
  assert.is(bad.stderr.split('\n')[0], "devmapper: EUSAGE: unknown command 'frobnicate'");
  assert.match(bad.stderr, /\nhint: /);
  const badSub = await cli(['dm', 'frob']);
  assert.is(badSub.code, 2);
  assert.match(badSub.stderr, "unknown command 'dm frob'");
  const v = await cli(['--version']);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
});

test('every group and every command answers --help (and -h) with exit 0, listing each option', async () => {
  for (const g of GROUPS) {
    const r = await cli([g.name, '--help']);
    assert.is(r.code, 0, g.name);
    for (const c of g.commands) assert.match(r.stdout, `  ${c.name}`);
    for (const c of g.commands) {
      for (const flag of ['--help', '-h']) {
        const h = await cli([g.name, c.name, flag]);
        assert.is(h.code, 0, `${g.name} ${c.name} ${flag}`);
        assert.ok(h.stdout.startsWith(`Usage: devmapper ${g.name} ${c.name} [OPTIONS]`), h.stdout);
        for (const o of Object.keys(c.options ?? {})) assert.match(h.stdout, `--${o}`);
        if (c.json) assert.match(h.stdout, '--json');
        assert.is(h.stderr, '');
      }
    }
  }
  for (const c of TOP_COMMANDS) {
    const h = await cli([c.name, '--help']);
    assert.is(h.code, 0);
    assert.ok(h.stdout.startsWith(`Usage: devmapper ${c.name}`));
  }
});

test('--help wins over otherwise bad arguments; after -- it belongs to the command', async () => {
  assert.is((await cli(['dm', 'create', '--nope', '--help'])).code, 0);
  const r = await cli(['vm', '--', 'ls', '--help'], { runInVm: async () => ({ exitCode: 7, bootMs: 1, totalMs: 2, timedOut: false, kernel: {} as never }) }, { env: { PATH: process.env['PATH'] ?? '' } });
  // Either qemu is missing here (exit 6) or the fake ran (exit 7): never help text.
  assert.not.match(r.stdout, 'Usage:');
});

test.run();
