// SPDX-License-Identifier: MIT
// The CLI's argv parser: a declarative command table over node:util parseArgs, and the help text
// rendered from the same table (so help and parsing cannot drift apart).
import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

/** One `--option` of a command. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** May be given more than once; the values accumulate in order. */
  readonly multiple?: boolean;
  /** Placeholder shown in help, e.g. `SIZE`. */
  readonly value?: string;
  readonly description: string;
}

/** One positional argument. */
export interface PositionalSpec {
  readonly name: string;
  readonly optional?: boolean;
  /** Takes every remaining positional (must be last). */
  readonly variadic?: boolean;
}

/** What a command handler receives. */
export interface Parsed {
  readonly options: Readonly<Record<string, string | boolean | string[] | undefined>>;
  /** Positionals by name; a variadic one is an array. */
  readonly args: Readonly<Record<string, string | string[] | undefined>>;
  /** Everything after a literal `--`, verbatim. */
  readonly rest: readonly string[];
}

/** A leaf command (`devmapper dm ls`). */
export interface CommandSpec<C = unknown> {
  readonly name: string;
  readonly summary: string;
  readonly positionals?: readonly PositionalSpec[];
  readonly options?: Readonly<Record<string, OptionSpec>>;
  /** Adds `--json`; the command documents its JSON shape in docs/cli.md / schemas.ts. */
  readonly json?: boolean;
  /** Accepts `-- ARGS...` (put into `rest`); without it a `--` is a usage error. */
  readonly rest?: { readonly name: string; readonly required: boolean };
  /** Extra help paragraphs. */
  readonly details?: string;
  readonly examples?: readonly string[];
  /**
   * Help paragraphs that need a module the spec does not load (e.g. the DeviceSet's option
   * table): resolved only when this command's help is printed, and shown after `details`.
   */
  readonly lazyDetails?: () => Promise<string>;
  readonly run: Handler<C>;
}

/** What runs a leaf command; a number is the exit code (default 0). */
export type Handler<C = unknown> = (ctx: C, parsed: Parsed) => Promise<number | void>;

/** An implementation module of a command group: one handler per command name. */
export interface CommandModule<C, K extends string> {
  readonly handlers: Readonly<Record<K, Handler<C>>>;
}

/**
 * A command's `run` that loads its group's implementation module with `import()` on first use,
 * so that `--help`, `--version` and every other command never load it (or what it imports: the
 * DeviceSet, TypeBox, the VM code). Node caches the module: later calls cost one lookup.
 */
export function lazyRun<C, K extends string>(load: () => Promise<CommandModule<C, K>>, name: K): Handler<C> {
  return async (ctx, parsed) => (await load()).handlers[name](ctx, parsed);
}

/** A command group (`devmapper dm`). */
export interface GroupSpec<C = unknown> {
  readonly name: string;
  readonly summary: string;
  readonly details?: string;
  readonly commands: readonly CommandSpec<C>[];
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', description: 'Show this help and exit.' },
  quiet: { type: 'boolean', short: 'q', description: 'No progress output on stderr.' },
  verbose: { type: 'boolean', short: 'v', description: 'On errors, also print the cause chain.' },
};

const JSON_OPTION: OptionSpec = { type: 'boolean', description: 'Print machine-readable JSON (shape: docs/cli.md).' };

/** All options of a command, global ones included. */
export function optionsOf<C>(cmd: CommandSpec<C>): Record<string, OptionSpec> {
  return { ...(cmd.options ?? {}), ...(cmd.json ? { json: JSON_OPTION } : {}), ...GLOBAL_OPTIONS };
}

/** True when argv asks for help anywhere before a `--`. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * Parses a leaf command's argv (after the command words).
 * @throws UsageError for unknown options, missing values, wrong positional counts.
 */
export function parseCommand<C>(cmd: CommandSpec<C>, argv: readonly string[], path: string): Parsed {
  const specs = optionsOf(cmd);
  const dd = argv.indexOf('--');
  const head = dd >= 0 ? argv.slice(0, dd) : [...argv];
  const rest = dd >= 0 ? argv.slice(dd + 1) : [];
  if (dd >= 0 && cmd.rest === undefined) throw new UsageError(`'${path}' takes no arguments after '--'`, path);
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  let positionals: string[];
  try {
    const out = parseArgs({
      args: head,
      options: Object.fromEntries(
        Object.entries(specs).map(([k, s]) => [k, { type: s.type, ...(s.short ? { short: s.short } : {}), ...(s.multiple ? { multiple: true } : {}) }]),
      ),
      allowPositionals: true,
      strict: true,
    });
    values = out.values as typeof values;
    positionals = out.positionals;
  } catch (e) {
    throw new UsageError(parseArgsMessage(e, head), path);
  }
  const args: Record<string, string | string[] | undefined> = {};
  const pos = cmd.positionals ?? [];
  let i = 0;
  for (const p of pos) {
    if (p.variadic) {
      args[p.name] = positionals.slice(i);
      if (!p.optional && positionals.length <= i) throw new UsageError(`missing ${p.name}`, path);
      i = positionals.length;
      break;
    }
    const v = positionals[i];
    if (v === undefined) {
      if (!p.optional) throw new UsageError(`missing ${p.name}`, path);
    } else {
      args[p.name] = v;
      i++;
    }
  }
  if (i < positionals.length) {
    throw new UsageError(`unexpected argument '${positionals[i]}'`, path);
  }
  if (cmd.rest?.required && rest.length === 0) throw new UsageError(`missing '-- ${cmd.rest.name}...'`, path);
  return { options: values as Parsed['options'], args, rest };
}

/** What the CLI says of a negative number where an option or its value was expected. */
const NEGATIVE = 'negative numbers are not valid for any devmapper option or argument (sizes, offsets, ids and counts are >= 0)';

/**
 * parseArgs' messages are multi-line and mention internals; keep the first sentence. `argv` is
 * what was parsed: an "ambiguous" option value (`--offset -512`) is explained by the token that
 * followed the option.
 */
function parseArgsMessage(e: unknown, argv: readonly string[]): string {
  const err = e as { code?: string; message?: string };
  const msg = (err.message ?? String(e)).split('\n')[0] ?? '';
  const unknown = /^Unknown option '([^']+)'/.exec(msg);
  if (unknown && /^-\d/.test(unknown[1]!)) {
    const token = argv.find((a) => a.startsWith(unknown[1]!)) ?? unknown[1]!;
    return `'${token}' is a negative number, not an option: ${NEGATIVE}`;
  }
  if (unknown) return `unknown option '${unknown[1]}'`;
  const ambiguous = /^Option '([^']+)' argument is ambiguous/.exec(msg);
  if (ambiguous) {
    const option = ambiguous[1]!;
    const next = argv[argv.indexOf(option) + 1] ?? '';
    const long = option.startsWith('--') ? option : undefined;
    if (/^-\d/.test(next)) return `option '${option}' was given '${next}': ${NEGATIVE}`;
    return `option '${option}' needs a value, and '${next}' looks like an option; a value that starts with '-' is written ${long ? `'${long}=${next}'` : `'${option}${next}'`}`;
  }
  const missing = /^Option '([^']+)' argument missing/.exec(msg);
  if (missing) return `option '${missing[1]!.replace(/^-\w, /, '').replace(/ <value>$/, '')}' needs a value`;
  const noValue = /^Option '([^']+)' does not take an argument/.exec(msg);
  if (noValue) return `option '${noValue[1]}' does not take a value`;
  return msg.replace(/\. To specify.*$/, '').replace(/\.$/, '');
}

// ------------------------------------------------------------------------------------ help text

function optionLine(name: string, s: OptionSpec): [string, string] {
  const flag = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`;
  return [flag, `${s.description}${s.multiple ? ' Repeatable.' : ''}`];
}

function columns(rows: readonly [string, string][], indent = 2): string {
  const w = Math.min(34, Math.max(0, ...rows.map(([a]) => a.length)));
  return rows
    .map(([a, b]) => (a.length > w ? `${' '.repeat(indent)}${a}\n${' '.repeat(indent + w + 2)}${b}` : `${' '.repeat(indent)}${a.padEnd(w)}  ${b}`))
    .join('\n');
}

/** The usage line of a leaf command. */
export function usageLine<C>(cmd: CommandSpec<C>, path: string): string {
  const pos = (cmd.positionals ?? []).map((p) => {
    const n = p.variadic ? `${p.name}...` : p.name;
    return p.optional ? `[${n}]` : n;
  });
  const rest = cmd.rest === undefined ? [] : cmd.rest.required ? [`-- ${cmd.rest.name}...`] : [`[-- ${cmd.rest.name}...]`];
  return ['devmapper', path, '[OPTIONS]', ...pos, ...rest].join(' ');
}

/**
 * Full help of a leaf command. `lazy` is what `cmd.lazyDetails()` resolved to (see
 * {@link commandHelpAsync}); it follows `details` in the same paragraph.
 */
export function commandHelp<C>(cmd: CommandSpec<C>, path: string, lazy = ''): string {
  const parts = [`Usage: ${usageLine(cmd, path)}`, '', cmd.summary];
  const details = `${cmd.details ?? ''}${lazy}`;
  if (details) parts.push('', details);
  const opts = Object.entries(optionsOf(cmd)).map(([n, s]) => optionLine(n, s));
  parts.push('', 'Options:', columns(opts));
  if (cmd.examples && cmd.examples.length > 0) parts.push('', 'Examples:', ...cmd.examples.map((e) => `  ${e}`));
  return parts.join('\n') + '\n';
}

/** Full help of a leaf command, its lazy details loaded first. */
export async function commandHelpAsync<C>(cmd: CommandSpec<C>, path: string): Promise<string> {
  return commandHelp(cmd, path, cmd.lazyDetails ? await cmd.lazyDetails() : '');
}

/** Help of a command group: its commands and their summaries. */
export function groupHelp<C>(group: GroupSpec<C>): string {
  const rows = group.commands.map((c) => [c.name, c.summary] as [string, string]);
  const parts = [`Usage: devmapper ${group.name} COMMAND [OPTIONS] [ARGS]`, '', group.summary];
  if (group.details) parts.push('', group.details);
  parts.push('', 'Commands:', columns(rows), '', `Run 'devmapper ${group.name} COMMAND --help' for a command's options.`);
  return parts.join('\n') + '\n';
}
