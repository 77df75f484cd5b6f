// SPDX-License-Identifier: MIT
// Argument checks of DeviceSet's public methods, for JavaScript callers (and `as any`): every
// wrong-typed argument is an InvalidArgumentError listing every problem, thrown before anything
// is touched. Pure.
/**
 * # DeviceSet argument checks
 *
 * One `check…Args` function per public {@link DeviceSet} method, called on its first line.
 * TypeScript's types say the same; these make a JavaScript caller's mistake (`{ options: 5 }`,
 * `{ sise: '20G' }`, a label with a comma) a typed error instead of a TypeError halfway through
 * the call, after a device was activated.
 *
 * Rules:
 * - an options object is `undefined` or a plain object; an unknown key is refused (typo
 *   protection), except `signal`, which every options object accepts as `undefined` or an
 *   AbortSignal;
 * - hashes follow hash.ts ({@link hashProblem}); paths are absolute strings without NUL;
 * - sizes are a bigint, a safe integer or a size string, positive, a multiple of 512 and at most
 *   {@link MAX_SIZE} (the records store sizes as JSON safe integers);
 * - a mount label goes into `context="<label>"` and the options are split at commas, so it may
 *   contain neither `"` nor `,` (nor NUL: mount data is a C string).
 *
 * Paths in the problems are JSON pointers into `{ <argument name>: value, … }`, e.g.
 * `/options/label` for mountDevice's third argument's `label`.
 */
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import type { DeviceSetInit, MountDeviceOptions } from './types.js';
import { hashProblem } from './hash.js';
import { MAX_SIZE, parseSize } from './options.js';

type Problems = ValidationProblem[];
type FieldCheck = (value: unknown, path: string, problems: Problems) => void;

/**
 * Keys of {@link DeviceSetInit} and the type each must have (the options' content is options.ts's
 * job). Typed so that a key added to DeviceSetInit does not compile until it is checked here.
 */
const INIT_FIELDS: { readonly [K in Exclude<keyof DeviceSetInit, 'signal'>]-?: FieldCheck } = {
  options: (v, path, p) => {
    if (v !== undefined && (typeof v !== 'object' || v === null)) {
      p.push({ path, message: 'expected an array of "dm.key=value" strings or an options object', value: v });
    }
  },
  dm: objectField('a DmControl'),
  loops: objectField('a LoopControl'),
  syscalls: objectField('a Syscalls object'),
  tools: objectField('an FsTools object'),
  metadataFs: objectField('a MetadataFs object'),
  blockDevices: objectField('a BlockDevices object'),
  crashPoint: functionField,
  log: functionField,
  kernelLog: functionField,
  discardRecordsOnBlankMetadata: (v, path, p) => {
    if (v !== undefined && typeof v !== 'boolean') p.push({ path, message: 'expected a boolean', value: v });
  },
  autoextend: (v, path, p) => {
    if (v === undefined) return;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      p.push({ path, message: 'expected an object { watch?, hostFreeBytes?, monitor? }', value: v });
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      const at = `${path}/${k}`;
      if (k === 'watch') {
        if (x !== undefined && typeof x !== 'boolean') p.push({ path: at, message: 'expected a boolean', value: x });
      } else if (k === 'hostFreeBytes') functionField(x, at, p);
      else if (k === 'monitor') objectField('PoolMonitor options')(x, at, p);
      else p.push({ path: at, message: `unknown key "${k}"`, value: x });
    }
  },
  deferredDeleteIntervalMs: (v, path, p) => {
    // setInterval takes a 32-bit signed delay; Node turns anything larger into 1 ms.
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_TIMER_MS)) {
      p.push({ path, message: `expected milliseconds from 0 (no background worker) to ${MAX_TIMER_MS}`, value: v });
    }
  },
};

/** Largest setInterval delay (a signed 32-bit int, Node's TIMEOUT_MAX). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function objectField(what: string): FieldCheck {
  return (v, path, p) => {
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) p.push({ path, message: `expected ${what}`, value: v });
  };
}

function functionField(v: unknown, path: string, p: Problems): void {
  if (v !== undefined && typeof v !== 'function') p.push({ path, message: 'expected a function', value: v });
}

function signalField(v: unknown, path: string, p: Problems): void {
  if (v !== undefined && !(v instanceof AbortSignal)) p.push({ path, message: 'expected an AbortSignal', value: v });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** An optional options object: plain, only `fields` and `signal`, each checked. */
function checkOptionsObject(value: unknown, path: string, fields: Record<string, FieldCheck>, p: Problems): void {
  if (value === undefined) return;
  if (!isPlainObject(value)) {
    p.push({ path, message: 'expected an options object', value });
    return;
  }
  const known = [...Object.keys(fields), 'signal'];
  for (const key of Object.keys(value)) {
    const check = key === 'signal' ? signalField : Object.prototype.hasOwnProperty.call(fields, key) ? fields[key] : undefined;
    if (check === undefined) {
      p.push({ path: `${path}/${key}`, message: `unknown option "${key}" (known: ${known.join(', ')})`, value: value[key] });
      continue;
    }
    if (value[key] === undefined && SEAMS.has(key)) {
      // A seam spelled out but undefined would fall back to the real kernel, libc or disk.
      p.push({ path: `${path}/${key}`, message: `"${key}" is given as undefined: leave the key out to mean the real one` });
      continue;
    }
    check(value[key], `${path}/${key}`, p);
  }
}

/** The init keys that replace the real kernel, libc, tools or disk (refused when given as undefined). */
const SEAMS: ReadonlySet<string> = new Set(['dm', 'loops', 'syscalls', 'tools', 'metadataFs', 'blockDevices']);

function checkHash(hash: unknown, path: string, p: Problems, options: { base?: 'allowed' | 'refused' } = {}): void {
  const problem = hashProblem(hash);
  if (problem !== undefined) p.push({ path, message: problem, value: hash });
  else if (hash === '' && options.base === 'refused') p.push({ path, message: "'' is the base device, created by init", value: hash });
}

function checkString(value: unknown, path: string, p: Problems): value is string {
  if (typeof value === 'string') return true;
  p.push({ path, message: 'expected a string', value });
  return false;
}

function checkAbsolutePath(value: unknown, path: string, p: Problems): void {
  if (typeof value !== 'string' || !value.startsWith('/')) p.push({ path, message: 'must be an absolute path', value });
  else if (value.includes('\0')) p.push({ path, message: 'a path cannot contain NUL', value });
}

/**
 * A device or pool size: bigint, safe integer or size string; positive, a multiple of 512, ≤
 * {@link MAX_SIZE}. Returns the bytes, or undefined after pushing the problem: the one place a
 * size argument is parsed.
 */
function checkSize(value: unknown, path: string, p: Problems): bigint | undefined {
  let bytes: bigint | string;
  if (typeof value === 'bigint') bytes = value;
  else if (typeof value === 'number') bytes = Number.isSafeInteger(value) ? BigInt(value) : 'not a safe integer; pass a bigint or a size string';
  else if (typeof value === 'string') bytes = parseSize(value);
  else bytes = 'must be bytes (bigint or safe integer) or a size string such as 20G';
  if (typeof bytes === 'string') p.push({ path, message: bytes, value });
  else if (bytes <= 0n || bytes % 512n !== 0n || bytes > MAX_SIZE) {
    p.push({ path, message: `must be a positive multiple of 512 bytes, at most ${MAX_SIZE} (2^53 − 512)`, value });
  } else return bytes;
  return undefined;
}

function done(what: string, p: Problems): void {
  if (p.length > 0) throw new InvalidArgumentError(what, p);
}

/**
 * DeviceSet.init(root, init): `root` absolute, `init` a plain object of known keys with the right
 * types. The options themselves are validated by resolveDeviceSetOptions right after.
 */
export function checkInitArgs(root: unknown, init: unknown): void {
  const p: Problems = [];
  checkAbsolutePath(root, '/root', p);
  checkOptionsObject(init, '/init', INIT_FIELDS, p);
  done('DeviceSet.init arguments', p);
}

/** DeviceSet.addDevice(hash, baseHash, { size }); returns the size in bytes when one was given. */
export function checkAddDeviceArgs(hash: unknown, baseHash: unknown, options: unknown): { readonly size: bigint | undefined } {
  const p: Problems = [];
  let size: bigint | undefined;
  checkHash(hash, '/hash', p, { base: 'refused' });
  checkHash(baseHash, '/baseHash', p);
  checkOptionsObject(options, '/options', {
    size: (v, path, q) => {
      if (v !== undefined) size = checkSize(v, path, q);
    },
  }, p);
  done('addDevice arguments', p);
  return { size };
}

/** DeviceSet.deleteDevice(hash, { sync }). */
export function checkDeleteDeviceArgs(hash: unknown, options: unknown): void {
  const p: Problems = [];
  checkHash(hash, '/hash', p);
  checkOptionsObject(options, '/options', {
    sync: (v, path, q) => {
      if (v !== undefined && typeof v !== 'boolean') q.push({ path, message: 'expected a boolean', value: v });
    },
    onProgress: functionField,
  }, p);
  done('deleteDevice arguments', p);
}

/** DeviceSet.activateDevice / deactivateDevice / deviceStatus(hash). */
export function checkHashArg(method: string, hash: unknown): void {
  const p: Problems = [];
  checkHash(hash, '/hash', p);
  done(`${method} arguments`, p);
}

/**
 * DeviceSet.hasDevice / deviceInfo(hash): a string. Any string is a fair question ("is there a
 * device by that name?"), so it is not held to the hash syntax; the answer is just no.
 */
export function checkLookupArg(method: string, hash: unknown): void {
  const p: Problems = [];
  checkString(hash, '/hash', p);
  done(`${method} arguments`, p);
}

/** DeviceSet.mountDevice(hash, path, { options, label }). */
export function checkMountArgs(hash: unknown, path: unknown, options: unknown): void {
  const p: Problems = [];
  checkHash(hash, '/hash', p);
  checkAbsolutePath(path, '/path', p);
  const fields: { readonly [K in Exclude<keyof MountDeviceOptions, 'signal'>]-?: FieldCheck } = {
    options: (v, at, q) => {
      if (v === undefined || !checkString(v, at, q)) return;
      if (v.includes('\0')) q.push({ path: at, message: 'mount options cannot contain NUL', value: v });
    },
    label: (v, at, q) => {
      if (v === undefined || !checkString(v, at, q)) return;
      // Appended as context="<label>" to a comma-separated option list (see mountDevice).
      if (/[",\0]/.test(v)) q.push({ path: at, message: 'a mount label cannot contain ", "," or NUL', value: v });
    },
  };
  checkOptionsObject(options, '/options', fields, p);
  done('mountDevice arguments', p);
}

/** DeviceSet.unmountDevice(hash, path). */
export function checkUnmountArgs(hash: unknown, path: unknown): void {
  const p: Problems = [];
  checkHash(hash, '/hash', p);
  checkAbsolutePath(path, '/path', p);
  done('unmountDevice arguments', p);
}

/** DeviceSet.resizePool(size, options?); returns the size in bytes. */
export function checkResizePoolArgs(size: unknown, options?: unknown): bigint {
  const p: Problems = [];
  const bytes = checkSize(size, '/size', p);
  checkOptionsObject(options, '/options', { onProgress: functionField }, p);
  done('resizePool arguments', p);
  if (bytes === undefined) throw new Error('internal: a size problem was not reported'); // done() threw
  return bytes;
}
