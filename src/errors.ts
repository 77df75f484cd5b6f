// SPDX-License-Identifier: MIT
// The base of every error this library throws, plus errno helpers. LEAF: imports nothing from src/.
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';

/**
 * Base class of every error thrown by devmapper. `code` is a stable string that callers can
 * switch on; `cause` (ES2022) always keeps the lower-level error that led here.
 */
export abstract class DevmapperError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Every `code` a {@link DevmapperError} of this package can have, each naming exactly one class
 * (IoctlError aside: its `code` is the errno name, `EBUSY`, see {@link errnoCode}). A new error
 * class adds its code here, and then the CLI's exit-code map does not compile until the code has
 * an exit code; test/unit/error-codes.test.ts checks every exported class against this list.
 */
export const DEVMAPPER_ERROR_CODES = [
  // src/errors.ts
  'EINVALIDARG',
  'EKERNELOUTPUT',
  // src/ioctl
  'EBATCHWORKER',
  // src/dm
  'EDEVICENOTFOUND',
  'EDMDEVICEEXISTS',
  'EDEVICEBUSY',
  'EDMUNAVAILABLE',
  'EDEVICENODE',
  'EWRITELOGCORRUPT',
  // src/loop
  'EBACKINGNOTFOUND',
  'EBACKINGNOTREGULAR',
  'EBACKINGLINK',
  'EBACKINGREADONLY',
  'ELOOPBUSY',
  'ELOOPNOTBOUND',
  'ELOOPNOTFOUND',
  'ENOTLOOPDEVICE',
  'ELOOPEXISTS',
  'ELOOPINUSE',
  'ELOOPUNSUPPORTED',
  'ESPARSESHRINK',
  'ESPARSETOOLARGE',
  'ELOOPABORTED',
  // src/thin
  'ETHINIDINUSE',
  'ETHINIDNOTFOUND',
  'ETHINBUSY',
  'EPOOLNODATASPACE',
  'EPOOLNOMETASPACE',
  'EPOOLREADONLY',
  'EPOOLNEEDSCHECK',
  'EPOOLFAILED',
  'EPOOLBUSY',
  'ETHINTRANSACTIONID',
  'EPOOLMETANOTEMPTY',
  'EPOOLMETAMISMATCH',
  'EPOOLSHRINK',
  'EUNEXPECTEDTARGET',
  'EBLOCKDEVBUSY',
  // src/deviceset
  'EMETADATACORRUPT',
  'EDEVICEIDSEXHAUSTED',
  'EUNSAFEPATH',
  'EDEVICESETLOCKED',
  'ELOCKFILE',
  'EUNKNOWNDEVICE',
  'EDEVICEEXISTS',
  'EDEVICEDELETED',
  'EDEVICEFAULTY',
  'EDEVICESIZE',
  'EPOOLFREESPACE',
  'ETHINPOOLOWNERSHIP',
  'EBACKINGFILEINUSE',
  'EBACKINGLOST',
  'EBASEUUIDMISMATCH',
  'EDEVICEINUSE',
  'EMOUNTFAILED',
  'EEXTERNALTOOL',
  'EABORTED',
  'EDEVICESETCLOSED',
  'EDEVICESETUNSUPPORTED',
  'EUNKNOWNFS',
  // src/driver
  'ELAYERNOTMOUNTED',
  'ELAYERINUSE',
  'EDRIVERCLOSED',
  'EDRIVERNOTINIT',
  'EDOCKERROOT',
  'EDOCKERLAYER',
  'EDOCKERPOOLCONFLICT',
  'EDOCKERNOTMOUNTED',
  'EDOCKERIMPORT',
  // src/cli
  'EUSAGE',
  'EENVIRONMENT',
  'EINTERRUPTED',
] as const;

/** The `code` of a {@link DevmapperError} (an errno name for IoctlError instead). */
export type DevmapperErrorCode = (typeof DEVMAPPER_ERROR_CODES)[number];

/** One problem found while validating input. `path` is a JSON pointer into the input. */
export interface ValidationProblem {
  readonly path: string;
  readonly message: string;
  readonly value?: unknown;
}

/**
 * Where a problem is, as a reader names it: the JSON pointer `/options/size` is `options.size`,
 * `/targets/2/start` is `targets[2].start`, the whole input ('' or '/') is ''. The pointer stays in
 * {@link ValidationProblem.path} for programs; messages show this.
 */
export function problemPlace(path: string): string {
  let place = '';
  for (const raw of path.split('/').slice(1)) {
    if (raw === '') continue;
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~'); // RFC 6901 escapes
    place += /^\d+$/.test(seg) ? `[${seg}]` : place === '' ? seg : `.${seg}`;
  }
  return place;
}

/**
 * The problems as one line for an error message: `place: message` joined by '; ', the place left
 * out for the whole input or when the message already starts with it (`baseSize=-1: …`).
 */
export function formatProblems(problems: readonly ValidationProblem[]): string {
  return problems
    .map((p) => {
      const place = problemPlace(p.path);
      return place === '' || p.message.startsWith(place) ? p.message : `${place}: ${p.message}`;
    })
    .join('; ');
}

/**
 * Bad input, detected before anything reached the kernel or the disk. `problems` lists every
 * problem found, not only the first.
 */
export class InvalidArgumentError extends DevmapperError {
  override readonly name = 'InvalidArgumentError';
  readonly code = 'EINVALIDARG';
  readonly problems: readonly ValidationProblem[];
  constructor(what: string, problems: readonly ValidationProblem[], options?: { cause?: unknown }) {
    super(`invalid ${what}: ${formatProblems(problems)}`, options);
    this.problems = problems;
  }
}

/** Kernel output (a status or table line, a list payload) that we could not parse. */
export class KernelOutputError extends DevmapperError {
  override readonly name = 'KernelOutputError';
  readonly code = 'EKERNELOUTPUT';
  readonly raw: string;
  constructor(message: string, raw: string, options?: { cause?: unknown }) {
    super(message, options);
    this.raw = raw;
  }
}

/** Symbolic name of a positive errno ('EBUSY'), or `E<n>` when Node does not know it. */
export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `E${errno}`;
  }
}

/** Errno names of this platform ('EBUSY', 'ENOENT', …): what a libc failure's `code` can be. */
const ERRNO_NAMES: ReadonlySet<string> = new Set(Object.keys(osConstants.errno));

/**
 * The errno name ('EBUSY') that `err` carries, or else the first error in its `cause` chain that
 * carries one; undefined when none does. An error carries an errno when its `code` is an errno
 * name of this platform (IoctlError, Node's SystemError, the fake kernel's errors), or when it has
 * a nonzero integer `errno` (positive, or negative as Node's SystemError has it), which is named.
 * Domain codes (`EDEVICEBUSY`, `EINVALIDARG`) are never errno names, so a domain error is looked
 * through to the errno underneath it.
 *
 * The one way to ask "did this fail with EBUSY?": `errnoCode(err) === 'EBUSY'`.
 */
export function errnoCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 16; depth++) {
    const { code, errno, cause } = e as { code?: unknown; errno?: unknown; cause?: unknown };
    if (typeof code === 'string' && ERRNO_NAMES.has(code)) return code;
    if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0) return errnoName(errno);
    e = cause;
  }
  return undefined;
}

/**
 * True when {@link errnoCode} of `err` is `code`.
 * @deprecated use `errnoCode(err) === code`; src/deviceset has migrated, the wrapper stays for
 * callers outside it until the next major version.
 */
export function isErrno(err: unknown, code: string): boolean {
  return errnoCode(err) === code;
}

/** What an option of a constructor's options object must be: a type name or a checker returning a problem. */
export type OptionField = 'object' | 'function' | 'string' | 'number' | ((value: unknown) => string | undefined);

/**
 * Checks a constructor's options object before anything is opened: a plain object (or nothing),
 * only `fields`, each of its type, and **no key given as `undefined`**. A seam spelled out but
 * undefined (`{ syscalls: maybeFake }` with the fake not set up yet) would otherwise fall back to
 * the real default, the real libc and /dev, and a test meant for a fake would touch the real
 * kernel. Every problem is listed in one {@link InvalidArgumentError}.
 */
export function assertOptionsObject(what: string, value: unknown, fields: Readonly<Record<string, OptionField>>): void {
  if (value === undefined) return;
  const problems: ValidationProblem[] = [];
  const proto: unknown = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || (proto !== Object.prototype && proto !== null)) {
    throw new InvalidArgumentError(what, [{ path: '', message: 'expected an options object', value }]);
  }
  const o = value as Record<string, unknown>;
  const known = Object.keys(fields);
  for (const key of Object.keys(o)) {
    const field = Object.hasOwn(fields, key) ? fields[key] : undefined;
    const v = o[key];
    if (field === undefined) {
      problems.push({ path: `/${key}`, message: `unknown option "${key}" (known: ${known.join(', ')})`, value: v });
    } else if (v === undefined) {
      problems.push({ path: `/${key}`, message: `"${key}" is given as undefined: leave the key out to mean the default` });
    } else if (typeof field === 'function') {
      const p = field(v);
      if (p !== undefined) problems.push({ path: `/${key}`, message: p, value: v });
    } else if (field === 'object' ? typeof v !== 'object' || v === null || Array.isArray(v) : typeof v !== field) {
      problems.push({ path: `/${key}`, message: `expected ${field === 'object' ? 'an object' : `a ${field}`}`, value: v });
    }
  }
  if (problems.length > 0) throw new InvalidArgumentError(what, problems);
}
