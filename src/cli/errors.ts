// SPDX-License-Identifier: MIT
// CLI errors and the one mapping from an error to an exit code, a `CODE` and a hint line.
import { DevmapperError, errnoCode, type DevmapperErrorCode } from '../errors.js';

/** Exit codes of `devmapper` (docs/cli.md has the same table). */
export const EXIT = Object.freeze({
  OK: 0,
  /** Anything not classified below (a bug, an unexpected I/O error, corrupt metadata). */
  OTHER: 1,
  /** Bad command line or invalid argument, detected before anything changed. */
  USAGE: 2,
  /** The named device, file, thin id or DeviceSet device does not exist. */
  NOT_FOUND: 3,
  /** It already exists, is in use / busy, or is locked by another process. */
  BUSY: 4,
  /** The kernel refused the operation (an ioctl errno), or its reply made no sense. */
  KERNEL: 5,
  /** The environment cannot do it: not root, no device-mapper / loop driver, a tool is missing. */
  ENVIRONMENT: 6,
  /** A `ds` command stopped by SIGINT (128 + 2, the shell's convention). */
  SIGINT: 130,
  /** A `ds` command stopped by SIGTERM (128 + 15). */
  SIGTERM: 143,
});

/** An exit code of `devmapper`. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Base of the CLI's own errors. */
export abstract class CliError extends DevmapperError {}

/**
 * A `ds` command stopped by SIGINT/SIGTERM: the abort reason of the command's signal, and what a
 * handler throws instead of starting its next step. Exit 130 / 143 (by the signal, not the code).
 */
export class InterruptedError extends CliError {
  override readonly name = 'InterruptedError';
  readonly code = 'EINTERRUPTED';
  readonly signal: 'SIGINT' | 'SIGTERM';
  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`);
    this.signal = signal;
  }
}

/** A command-line mistake (unknown option, missing argument, bad value). */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
  readonly code = 'EUSAGE';
  /** The command path (`dm create`) whose `--help` the hint points to; '' for `devmapper --help`. */
  readonly command: string;
  /** A usage text the CLI prints before the error (`devmapper` with no command prints the top help). */
  readonly usage?: string;
  constructor(message: string, command = '', options?: { cause?: unknown; usage?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.command = command;
    if (options?.usage !== undefined) this.usage = options.usage;
  }
}

/** Something this machine lacks (a tool, QEMU, root). `hint` says how to get it. */
export class EnvironmentError extends CliError {
  override readonly name = 'EnvironmentError';
  readonly code = 'EENVIRONMENT';
  readonly hint: string;
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super(message, options);
    this.hint = hint;
  }
}

/**
 * The exit code of every DevmapperError code: typed against DevmapperErrorCode, so a new code
 * does not compile until it is given an exit code here (and a row in docs/cli.md).
 */
const BY_CODE: Readonly<Record<DevmapperErrorCode, ExitCode>> = {
  EUSAGE: EXIT.USAGE,
  EINVALIDARG: EXIT.USAGE,
  EBACKINGNOTREGULAR: EXIT.USAGE,
  ESPARSESHRINK: EXIT.USAGE,
  ESPARSETOOLARGE: EXIT.USAGE,
  ELOOPABORTED: EXIT.OTHER,
  EPOOLSHRINK: EXIT.USAGE,
  EPOOLMETAMISMATCH: EXIT.USAGE,
  EDEVICESIZE: EXIT.USAGE,
  EUNKNOWNFS: EXIT.USAGE,
  EUNEXPECTEDTARGET: EXIT.USAGE,
  ENOTLOOPDEVICE: EXIT.USAGE,

  EDEVICENOTFOUND: EXIT.NOT_FOUND,
  ELOOPNOTFOUND: EXIT.NOT_FOUND,
  ELOOPNOTBOUND: EXIT.NOT_FOUND,
  EBACKINGNOTFOUND: EXIT.NOT_FOUND,
  ETHINIDNOTFOUND: EXIT.NOT_FOUND,
  EUNKNOWNDEVICE: EXIT.NOT_FOUND,
  EDEVICEDELETED: EXIT.NOT_FOUND,
  EDRIVERNOTINIT: EXIT.NOT_FOUND,
  ELAYERNOTMOUNTED: EXIT.NOT_FOUND,
  EDOCKERLAYER: EXIT.NOT_FOUND,
  EDOCKERNOTMOUNTED: EXIT.NOT_FOUND,

  EDMDEVICEEXISTS: EXIT.BUSY,
  EDEVICEEXISTS: EXIT.BUSY,
  EDEVICEBUSY: EXIT.BUSY,
  EDEVICEINUSE: EXIT.BUSY,
  ELAYERINUSE: EXIT.BUSY,
  EDEVICESETLOCKED: EXIT.BUSY,
  ELOOPBUSY: EXIT.BUSY,
  ELOOPEXISTS: EXIT.BUSY,
  ELOOPINUSE: EXIT.BUSY,
  ETHINIDINUSE: EXIT.BUSY,
  ETHINBUSY: EXIT.BUSY,
  EPOOLBUSY: EXIT.BUSY,
  EBLOCKDEVBUSY: EXIT.BUSY,
  EPOOLMETANOTEMPTY: EXIT.BUSY,
  ETHINTRANSACTIONID: EXIT.BUSY,
  ETHINPOOLOWNERSHIP: EXIT.BUSY,
  EDOCKERPOOLCONFLICT: EXIT.BUSY,

  EKERNELOUTPUT: EXIT.KERNEL,
  EBATCHWORKER: EXIT.OTHER,
  EPOOLFAILED: EXIT.KERNEL,
  EPOOLNEEDSCHECK: EXIT.KERNEL,
  EPOOLREADONLY: EXIT.KERNEL,
  EPOOLNODATASPACE: EXIT.KERNEL,
  EPOOLNOMETASPACE: EXIT.KERNEL,
  EPOOLFREESPACE: EXIT.KERNEL,
  EDEVICENODE: EXIT.KERNEL,
  EDEVICEFAULTY: EXIT.KERNEL,
  EMOUNTFAILED: EXIT.KERNEL,

  EENVIRONMENT: EXIT.ENVIRONMENT,
  EDMUNAVAILABLE: EXIT.ENVIRONMENT,
  ELOOPUNSUPPORTED: EXIT.ENVIRONMENT,
  EDEVICESETUNSUPPORTED: EXIT.ENVIRONMENT,
  EEXTERNALTOOL: EXIT.ENVIRONMENT,
  EBACKINGREADONLY: EXIT.ENVIRONMENT,

  // Refusals that protect data or state the operator must look at (corrupt or lost metadata,
  // unsafe paths, a second pool over the same files) and interruptions.
  EMETADATACORRUPT: EXIT.OTHER,
  EWRITELOGCORRUPT: EXIT.OTHER,
  EDEVICEIDSEXHAUSTED: EXIT.OTHER,
  EUNSAFEPATH: EXIT.OTHER,
  ELOCKFILE: EXIT.OTHER,
  EBACKINGLINK: EXIT.OTHER,
  EBACKINGFILEINUSE: EXIT.OTHER,
  EBACKINGLOST: EXIT.OTHER,
  EBASEUUIDMISMATCH: EXIT.OTHER,
  EABORTED: EXIT.OTHER,
  EDEVICESETCLOSED: EXIT.OTHER,
  EDRIVERCLOSED: EXIT.OTHER,
  EDOCKERROOT: EXIT.OTHER,
  EDOCKERIMPORT: EXIT.OTHER,
  // The process exits 130 / 143 by the signal (main.ts); as a code alone it is no failure class.
  EINTERRUPTED: EXIT.OTHER,
};

/** Exit codes of the errnos with a meaning of their own (an IoctlError's `code` is its errno name). */
const BY_ERRNO: Readonly<Record<string, ExitCode>> = {
  ENOENT: EXIT.NOT_FOUND,
  ENXIO: EXIT.NOT_FOUND,
  ENODATA: EXIT.NOT_FOUND,
  EBUSY: EXIT.BUSY,
  EEXIST: EXIT.BUSY,
  ENOTEMPTY: EXIT.BUSY,
  EPERM: EXIT.ENVIRONMENT,
  EACCES: EXIT.ENVIRONMENT,
  EROFS: EXIT.ENVIRONMENT,
  ENODEV: EXIT.ENVIRONMENT,
};


const HINTS: Readonly<Record<number, string>> = {
  [EXIT.USAGE]: "see 'devmapper --help'",
  [EXIT.NOT_FOUND]: "check the name: 'devmapper dm ls', 'devmapper loop ls' or 'devmapper ds list --root DIR' show what exists",
  [EXIT.BUSY]: 'something already uses it: unmount, deactivate or remove the user first, or pick another name/id',
  [EXIT.KERNEL]: "the kernel refused; 'dmesg | tail' usually says why (re-run with --verbose for the errno and request)",
  [EXIT.ENVIRONMENT]:
    "run as root on a kernel with device-mapper and loop (modprobe dm-mod dm-thin-pool loop), or inside the bundled VM: 'devmapper vm -- devmapper ...'",
  [EXIT.OTHER]: 're-run with --verbose for the cause chain; please report it if it looks like a bug',
};

/** How the CLI reports one error. */
export interface ErrorReport {
  readonly exitCode: number;
  /** Stable, switchable: the error's `code` (EDEVICENOTFOUND, EINVALIDARG, EBUSY, …). */
  readonly code: string;
  /** One line. */
  readonly message: string;
  readonly hint: string;
}

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^E[A-Z0-9_]+$/.test(c) ? c : undefined;
}

/** True when `err` is an IoctlError-like (a failed libc call: syscall + errno). */
function isSyscallError(err: unknown): boolean {
  const e = err as { syscall?: unknown; errno?: unknown } | null;
  return typeof e?.syscall === 'string' && typeof e.errno === 'number';
}

/** The exit code for an error: by its `code`, else by the first coded error in its cause chain. */
export function exitCodeFor(err: unknown): number {
  const code = codeOf(err);
  if (code !== undefined) {
    const mapped = Object.hasOwn(BY_CODE, code) ? BY_CODE[code as DevmapperErrorCode] : BY_ERRNO[code];
    if (mapped !== undefined) return mapped;
    // An errno we have no special meaning for, from a kernel call: the kernel refused.
    if (isSyscallError(err)) return (err as { syscall: string }).syscall === 'ioctl' ? EXIT.KERNEL : EXIT.OTHER;
  }
  return EXIT.OTHER;
}

/** Flattens a message to one line. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim();
}

/**
 * Builds the report for an error: exit code, code, one-line message, hint. `command` is the
 * command that ran (`loop attach`): an invalid argument's hint points to its `--help`.
 */
export function reportError(err: unknown, command?: string): ErrorReport {
  const exitCode = exitCodeFor(err);
  const code = codeOf(err) ?? 'EUNEXPECTED';
  const message = oneLine(err instanceof Error ? err.message : String(err));
  let hint = HINTS[exitCode] ?? HINTS[EXIT.OTHER]!;
  const helpOf = err instanceof UsageError ? err.command : command;
  if (exitCode === EXIT.USAGE && helpOf) hint = `see 'devmapper ${helpOf} --help'`;
  if (err instanceof EnvironmentError) hint = err.hint;
  if (code === 'EDMUNAVAILABLE') hint = HINTS[EXIT.ENVIRONMENT]!;
  if (code === 'EDEVICESETLOCKED') hint = 'another devmapper process holds this DeviceSet root; wait for it, or check the lock file it names';
  if (code === 'EPERM' || code === 'EACCES') hint = 'device-mapper and loop control need root (CAP_SYS_ADMIN); use sudo, or the VM: devmapper vm -- ...';
  return { exitCode, code, message, hint };
}

/**
 * An error as `--json` prints it on stderr (one line): `{"error": {code, message, hint, errno,
 * causes}}`. `errno` is the errno name under the error (its own, or the first in its cause chain:
 * {@link errnoCode}), or null; `causes` is the cause chain `--verbose` prints, one string each
 * (always present, empty when there is none). docs/cli.md documents the shape.
 */
export interface JsonErrorReport {
  readonly error: { readonly code: string; readonly message: string; readonly hint: string; readonly errno: string | null; readonly causes: readonly string[] };
}

/** The `--json` error document for `err` (hint overridable, as for a signal). */
export function jsonErrorReport(err: unknown, rep: ErrorReport = reportError(err), hint: string = rep.hint): JsonErrorReport {
  return {
    error: {
      code: rep.code,
      message: rep.message,
      hint,
      errno: errnoCode(err) ?? null,
      causes: causeLines(err).map((l) => l.replace(/^cause: /, '')),
    },
  };
}

/** The cause chain below `err`, one line each (for --verbose). */
export function causeLines(err: unknown): string[] {
  const out: string[] = [];
  let e = (err as { cause?: unknown } | null)?.cause;
  for (let depth = 0; e !== undefined && e !== null && depth < 16; depth++) {
    const c = codeOf(e);
    const extra = e as { request?: unknown; syscall?: unknown };
    const where = typeof extra.request === 'string' ? ` [${extra.request}]` : typeof extra.syscall === 'string' ? ` [${extra.syscall}]` : '';
    out.push(`cause: ${c ? `${c}: ` : ''}${oneLine(e instanceof Error ? e.message : String(e))}${where}`);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}
