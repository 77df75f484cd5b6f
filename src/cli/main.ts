// SPDX-License-Identifier: MIT
// `devmapper`: argv → one public-API call → output; error → exit code. No policy lives here.
// Startup loads only the command tables (specs/: names, options, help); a command's handlers
// (commands/) and the library they use load with import() when that command runs, so `--help`,
// `--version`, `loop ls` and `dm ls` never load the DeviceSet, TypeBox or the VM code
// (test/unit/cli/startup.test.ts pins which modules each of them loads).
import { commandHelpAsync, groupHelp, parseCommand, wantsHelp, type CommandSpec, type GroupSpec } from './args.js';
import { processIo, type CliSignal, type Ctx, type Deps, type Io } from './context.js';
import { EXIT, InterruptedError, UsageError, causeLines, jsonErrorReport, reportError } from './errors.js';
import { realDeps } from './real-deps.js';
import { completionCommand } from './specs/completion.js';
import { demoCommand } from './specs/demo.js';
import { dmGroup } from './specs/dm.js';
import { dockerGroup } from './specs/docker.js';
import { driverGroup } from './specs/driver.js';
import { dsGroup } from './specs/ds.js';
import { loopGroup } from './specs/loop.js';
import { poolGroup, thinGroup } from './specs/thin.js';
import { vmCommand } from './specs/vm.js';
import { libraryVersion } from './version.js';

/** Every command group, in help order. */
export const GROUPS: readonly GroupSpec<Ctx>[] = [dsGroup, driverGroup, dmGroup, loopGroup, poolGroup, thinGroup, dockerGroup];
/** Top-level leaf commands. */
export const TOP_COMMANDS: readonly CommandSpec<Ctx>[] = [demoCommand, vmCommand, completionCommand(() => ({ groups: GROUPS, tops: TOP_COMMANDS }))];

export function topHelp(): string {
  const rows: [string, string][] = [
    ...GROUPS.map((g) => [g.name, g.summary] as [string, string]),
    ...TOP_COMMANDS.map((c) => [c.name, c.summary] as [string, string]),
  ];
  const w = Math.max(...rows.map(([a]) => a.length));
  return [
    'Usage: devmapper COMMAND [SUBCOMMAND] [OPTIONS] [ARGS]',
    '',
    'Linux device-mapper, loop devices, thin pools and a Docker-style DeviceSet, at ioctl level.',
    '',
    'Commands:',
    ...rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`),
    '',
    'Global options: -h/--help (everywhere), -q/--quiet (no progress), -v/--verbose (cause chain on errors),',
    '--json on every read command. --version prints the library version.',
    '',
    'Errors go to stderr as "devmapper: CODE: message" and a "hint:" line (under --json, as one line',
    '{"error": {code, message, hint, errno, causes}}). Exit codes: 0 ok, 1 other,',
    '2 usage/invalid argument, 3 not found, 4 exists/busy, 5 kernel refused, 6 environment (root, drivers, tools);',
    'a ds command stopped by SIGINT / SIGTERM exits 130 / 143.',
    "Run 'devmapper COMMAND --help' for more. Reference: docs/cli.md.",
  ].join('\n') + '\n';
}

/** Finds the command for argv: [spec, path, remaining argv], or a help text to print. */
function resolve(argv: readonly string[]): { cmd: CommandSpec<Ctx>; path: string; rest: string[] } | { help: string } | { error: UsageError } {
  const [first, second, ...more] = argv;
  if (first === '--help' || first === '-h' || first === 'help') return { help: topHelp() };
  if (first === undefined) return { error: new UsageError('no command given', '', { usage: topHelp() }) };
  const top = TOP_COMMANDS.find((c) => c.name === first);
  if (top) return { cmd: top, path: first, rest: argv.slice(1) };
  const group = GROUPS.find((g) => g.name === first);
  if (!group) return { error: new UsageError(`unknown command '${first}'`, '') };
  if (second === undefined || second === '--help' || second === '-h' || second === 'help') return { help: groupHelp(group) };
  const cmd = group.commands.find((c) => c.name === second);
  if (!cmd) return { error: new UsageError(`unknown command '${first} ${second}' (see 'devmapper ${first} --help')`, first) };
  return { cmd, path: `${first} ${second}`, rest: more };
}

/**
 * Runs the CLI and resolves with the exit code. Never throws: every error is reported on stderr
 * as `devmapper: CODE: message` + `hint: ...`, or under `--json` as one line
 * `{"error": {code, message, hint, errno, causes}}`, with the same exit code.
 */
export async function run(argv: readonly string[], io: Io = processIo(), deps?: Deps): Promise<number> {
  if (argv.length === 1 && argv[0] === '--version') {
    io.stdout(`${libraryVersion()}\n`);
    return EXIT.OK;
  }
  const dd = argv.indexOf('--');
  const head = dd >= 0 ? argv.slice(0, dd) : argv;
  const quiet = head.includes('--quiet') || head.includes('-q');
  const verbose = head.includes('--verbose') || head.includes('-v');
  // Under --json, stderr holds nothing but one JSON error document (docs/cli.md, "Errors").
  const json = head.includes('--json');
  /** Prints `err` (as text, or as JSON under --json) and returns its exit code. */
  const printError = (err: unknown, hint?: string): number => {
    // Usage text first (`devmapper` alone), then the error: stderr, exit 2.
    if (!json && err instanceof UsageError && err.usage !== undefined) io.stderr(`${err.usage}\n`);
    const rep = reportError(err, 'cmd' in r ? r.path : undefined);
    if (json) {
      io.stderr(`${JSON.stringify(jsonErrorReport(err, rep, hint ?? rep.hint))}\n`);
      return rep.exitCode;
    }
    io.stderr(`devmapper: ${rep.code}: ${rep.message}\n`);
    if (verbose) for (const l of causeLines(err)) io.stderr(`${l}\n`);
    io.stderr(`hint: ${hint ?? rep.hint}\n`);
    return rep.exitCode;
  };
  const r = resolve(argv);
  if ('help' in r) {
    io.stdout(r.help);
    return EXIT.OK;
  }
  // The real Deps: the library behind them (DmControl, LoopControl, ...) loads on first use.
  let own: (Deps & { close(): void }) | undefined;
  // SIGINT/SIGTERM during a `ds` command: abort its signal (the DeviceSet kills the mkfs /
  // resize2fs / xfs_growfs it started and closes the journalled step), start no new step, exit
  // 130 / 143. A second signal exits at once.
  const abort = new AbortController();
  let received: CliSignal | undefined;
  let stopListening: (() => void) | undefined;
  const listen = (): void => {
    const signals = io.signals;
    if (signals === undefined || !('cmd' in r) || !(r.path.startsWith('ds ') || r.path.startsWith('driver ') || r.path === 'docker mount')) return;
    stopListening = signals.listen((sig) => {
      if (received !== undefined) return signals.exitNow(EXIT[sig]);
      received = sig;
      if (!json) io.stderr(`devmapper: ${sig}: stopping: closing the step in progress (send it again to exit at once)\n`);
      abort.abort(new InterruptedError(sig));
    });
  };
  const interrupted = (sig: CliSignal, err: unknown): number => {
    if (err === undefined) {
      const message = `interrupted by ${sig} after the command had finished`;
      const hint = `the command completed before ${sig} could stop it; nothing is left to do`;
      if (json) io.stderr(`${JSON.stringify({ error: { code: 'EINTERRUPTED', message, hint, errno: null, causes: [] } })}\n`);
      else io.stderr(`devmapper: EINTERRUPTED: ${message}\nhint: ${hint}\n`);
      return EXIT[sig];
    }
    printError(err, `stopped by ${sig}: the step in progress was undone or closed and no new one started; run the command again`);
    return EXIT[sig];
  };
  const context = (d: Deps): Ctx => ({
    ...io,
    // Read when asked (processIo: process.stderr is made on first use, and its flag is not spread).
    get stderrIsTTY() {
      return io.stderrIsTTY;
    },
    deps: d,
    quiet,
    verbose,
    command: 'cmd' in r ? r.path : '',
    signal: abort.signal,
    progress: (text) => {
      if (io.stderrIsTTY && !quiet && !json) io.stderr(`devmapper: ${text}...\n`);
    },
  });
  try {
    if ('error' in r) throw r.error;
    if (wantsHelp(r.rest)) {
      io.stdout(await commandHelpAsync(r.cmd, r.path));
      return EXIT.OK;
    }
    const parsed = parseCommand(r.cmd, r.rest, r.path);
    if (deps === undefined) own = realDeps();
    listen();
    const code = await r.cmd.run(context(deps ?? own!), parsed);
    if (received !== undefined) return interrupted(received, undefined);
    return typeof code === 'number' ? code : EXIT.OK;
  } catch (err) {
    if (received !== undefined) return interrupted(received, err);
    return printError(err);
  } finally {
    stopListening?.();
    try {
      own?.close();
    } catch {
      // closing the control fd cannot change the outcome
    }
  }
}
