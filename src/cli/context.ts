// SPDX-License-Identifier: MIT
// What a command handler gets: output streams, flags, and the library objects it talks through
// (injectable, so unit tests run every handler against fakes). Type imports only: every command's
// startup loads this module, so it must not load the library (the real Deps are in real-deps.ts).
import { writeSync } from 'node:fs';
import type { DeviceSet, DeviceSetLogLevel, DmControl, Driver, LoopControl } from '../index.js';
import type { OptionsFs } from './options-file.js';
import type { RunInVmOptions, RunInVmResult } from '../vm/index.js';

/** The asynchronous methods of DmControl the CLI calls (real-deps.ts forwards each one). */
export const CLI_DM_METHODS = [
  'version',
  'listDevices',
  'deviceInfo',
  'deviceCreate',
  'tableLoad',
  'deviceSuspend',
  'deviceResume',
  'deviceRemove',
  'deviceRename',
  'deviceWait',
  'tableStatus',
  'tableDeps',
  'tableClear',
  'removeAll',
  'mknodes',
  'listVersions',
  'targetMessage',
  'createDevice',
] as const satisfies readonly (keyof DmControl)[];

/** The subset of DmControl the CLI uses (a fake implements just this). */
export type CliDm = Pick<DmControl, (typeof CLI_DM_METHODS)[number] | 'close'>;

/** The asynchronous methods of LoopControl the CLI calls. */
export const CLI_LOOP_METHODS = ['attach', 'detach', 'list', 'findByBackingFile', 'status', 'setCapacity'] as const satisfies readonly (keyof LoopControl)[];

/** The subset of LoopControl the CLI uses. */
export type CliLoop = Pick<LoopControl, (typeof CLI_LOOP_METHODS)[number]>;

/**
 * The subset of DeviceSet the CLI uses. The mutating calls take the command's AbortSignal (aborted
 * on SIGINT/SIGTERM): an aborted call kills the filesystem tool it started, finishes or undoes its
 * journalled step and rejects with OperationAbortedError (EABORTED).
 */
export type CliDeviceSet = Pick<
  DeviceSet,
  'addDevice' | 'deleteDevice' | 'mountDevice' | 'deactivateDevice' | 'hasDevice' | 'list' | 'deviceInfo' | 'status' | 'resizePool' | 'shutdown'
>;

/** The subset of Driver the CLI uses (`devmapper driver`). */
export type CliDriver = Pick<Driver, 'create' | 'createReadWrite' | 'get' | 'put' | 'remove' | 'exists' | 'status' | 'getMetadata' | 'cleanup'>;

/** One line of /proc/self/mountinfo that matters here. */
export interface MountEntry {
  readonly major: number;
  readonly minor: number;
  /** Mount point, octal escapes decoded. */
  readonly path: string;
}

/** umount2(2) flag MNT_DETACH (include/linux/fs.h): lazy unmount, as DeviceSet.unmountDevice does. */
export const MNT_DETACH = 2;

/** Parses /proc/self/mountinfo text (proc(5)): field 3 is MAJ:MIN, field 5 the mount point. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const m = /^(\d+):(\d+)$/.exec(f[2] ?? '');
    if (!m || f[4] === undefined) continue;
    const path = f[4].replace(/\\([0-7]{3})/g, (_s, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ major: Number(m[1]), minor: Number(m[2]), path });
  }
  return out;
}

/** Side effects a command may need besides the kernel objects. */
export interface Deps {
  /** A DmControl (opened lazily; the CLI closes it at exit). */
  dm(): CliDm;
  loop(): CliLoop;
  runInVm(options: RunInVmOptions): Promise<RunInVmResult>;
  /**
   * DeviceSet.init with `dm.key=value` options (the CLI never calls shutdown unless asked).
   * `signal` aborts the init (it then undoes what it set up and releases the lock).
   */
  openDeviceSet(
    root: string,
    options: readonly string[],
    log: (level: DeviceSetLogLevel, message: string) => void,
    signal?: AbortSignal,
  ): Promise<CliDeviceSet>;
  /**
   * Driver.init with `dm.key=value` options; `doInit` false opens an existing set only
   * (`devmapper driver`; the CLI never calls cleanup unless asked).
   */
  openDriver?(
    home: string,
    options: readonly string[],
    log: (level: DeviceSetLogLevel, message: string) => void,
    signal: AbortSignal | undefined,
    doInit: boolean,
  ): Promise<CliDriver>;
  /** The kernel's mount table, for re-deriving mount state in each process. */
  mounts(): MountEntry[];
  /** umount2(path, MNT_DETACH). */
  umount(path: string): Promise<void>;
  /** File-system calls for `<root>/cli-options.json` (default: node:fs); a seam for crash tests. */
  optionsFs?: OptionsFs;
}

/** The signals a `ds` command stops on. */
export type CliSignal = 'SIGINT' | 'SIGTERM';

/** Where SIGINT/SIGTERM come from (the process; a test drives its own). */
export interface SignalSource {
  /** Calls `handler` on every SIGINT/SIGTERM until the returned function is called. */
  listen(handler: (signal: CliSignal) => void): () => void;
  /** Ends the process at once with `code` (a second signal while the first one is handled). */
  exitNow(code: number): void;
}

/** Where output goes. Both are line-oriented writers. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  /** stderr is a terminal: progress lines are shown. */
  readonly stderrIsTTY: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** SIGINT/SIGTERM for `ds` commands; without it they cannot be interrupted cleanly. */
  readonly signals?: SignalSource;
}

/** Per-invocation context. */
export interface Ctx extends Io {
  readonly deps: Deps;
  readonly quiet: boolean;
  readonly verbose: boolean;
  /** The command path being run (`dm ls`), for error hints. */
  readonly command: string;
  /** Aborted on the first SIGINT/SIGTERM (`ds` commands); handlers pass it on and start no new step. */
  readonly signal: AbortSignal;
  /** A progress line on stderr (TTY only, not with --quiet). */
  progress(text: string): void;
}

/**
 * The process's own streams. Text goes to fd 1 / 2 with writeSync: process.stdout and
 * process.stderr are created on first use, and that costs 2 ms (a file) to 7 ms (a pipe) of a
 * 60 ms start, once per stream (Node loads its stream and net modules then). A write that
 * writeSync cannot finish (EAGAIN on a non-blocking fd, EPIPE, ...) goes to the Node stream
 * instead, as do all later writes to that fd, so such cases behave as they did with the stream
 * alone. `stderrIsTTY` is a getter for the same reason (only a `ds` command's progress asks), and
 * not enumerable: main.ts spreads this object into the command's Ctx, which must not read it.
 */
export function processIo(): Io {
  const io = {
    stdout: fdWriter(1, () => process.stdout),
    stderr: fdWriter(2, () => process.stderr),
    env: process.env,
    cwd: process.cwd(),
    signals: processSignals,
  };
  return Object.defineProperty(io, 'stderrIsTTY', { get: () => process.stderr.isTTY === true, enumerable: false }) as typeof io & { readonly stderrIsTTY: boolean };
}

/** A writer to `fd` (see processIo): writeSync until a write fails, then `stream()`. */
function fdWriter(fd: 1 | 2, stream: () => NodeJS.WriteStream): (text: string) => void {
  let fallback: NodeJS.WriteStream | undefined;
  return (text) => {
    if (fallback !== undefined) {
      fallback.write(text);
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(fd, bytes, done);
    } catch {
      fallback = stream();
      fallback.write(bytes.subarray(done));
    }
  };
}

/** The process's SIGINT/SIGTERM. While a handler is installed, Node's default (exit) is off. */
export const processSignals: SignalSource = {
  listen(handler) {
    const onInt = (): void => handler('SIGINT');
    const onTerm = (): void => handler('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    return () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
  },
  exitNow: (code) => process.exit(code),
};
