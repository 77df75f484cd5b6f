// SPDX-License-Identifier: MIT
// The `crypt` target (Documentation/admin-guide/device-mapper/dm-crypt.rst, drivers/md/dm-crypt.c):
// `<cipher> <key> <iv_offset> <device path> <offset> [<#opt_params> <opt_params>...]`.
//
// Every sector written through the device is encrypted onto `device` (starting at `offset`) and
// decrypted on read. The key is given inline as hex, or as a reference into the kernel keyring
// (`:<key_size>:<logon|user|encrypted|trusted>:<key_description>`), or `-` for an empty key
// (cipher_null).
//
// Keeping the key secret (see docs/targets.md, "crypt"):
// - an inline key is a {@link CryptHexKey}: its bytes sit in a Buffer the caller can wipe, and its
//   toString / toJSON / util.inspect print `[redacted N-byte key]`, so logging the params (or an
//   error carrying them) never shows the key; {@link CryptHexKey.reveal} is the one way out;
// - no InvalidArgumentError or KernelOutputError of this module quotes a key;
// - DmControl loads tables with a crypt target and sends `key ...` messages with DM_SECURE_DATA
//   (the kernel wipes its copies of the ioctl buffer, and zeroes ours), and wipes its own reply
//   buffer of DM_TABLE_STATUS in table mode;
// - DmControl.tableStatus in table mode returns crypt lines with the key replaced by
//   `redacted:<bytes>` ({@link redactCryptParams}) unless called with `revealKeys: true`. The
//   marker is not hex, so a redacted table that is loaded back is refused by the kernel
//   (`crypt_set_key`: hex2bin fails, EINVAL) instead of silently using a wrong key (dmsetup's
//   `table` without `--showkeys` prints zeros instead, which the kernel would accept).
// JavaScript strings cannot be wiped: the table text built by formatCryptParams, and a revealed
// table, stay in memory until collected. Prefer keyring keys where that matters.
import { inspect } from 'node:util';
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, intProblem, sectorProblem, words } from './args.js';

export const CRYPT_TARGET = 'crypt';

/** What a redacted key looks like in table text: `redacted:<bytes>` (not hex: the kernel refuses it). */
export const CRYPT_REDACTED_PREFIX = 'redacted:';

/** Key types `crypt_set_keyring_key` accepts (6.1: logon, user; encrypted and trusted with their key types built in). */
export const CRYPT_KEYRING_TYPES = ['logon', 'user', 'encrypted', 'trusted'] as const;
export type CryptKeyringType = (typeof CRYPT_KEYRING_TYPES)[number];

/** Largest inline key we accept, in bytes (lmk with 64 keys + seed of 32-byte keys is 2080 bytes; stay well above). */
export const CRYPT_MAX_KEY_BYTES = 4096;

/**
 * An inline key. The bytes live in a private Buffer (copied in), never in the object's printable
 * or serialisable form: `String(key)`, `JSON.stringify(key)` and `util.inspect(key)` show only the
 * size. {@link reveal} gives the lowercase hex the kernel is sent; {@link wipe} zeroes the bytes.
 */
export class CryptHexKey {
  readonly kind = 'hex' as const;
  readonly #bytes: Buffer;
  #wiped = false;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /**
   * A key from hex text (upper or lower case, even length, 1..{@link CRYPT_MAX_KEY_BYTES} bytes).
   * @throws InvalidArgumentError (which does not quote the text).
   */
  static fromHex(hex: string): CryptHexKey {
    const found = hexKeyProblems(hex, '/key');
    if (found.length > 0) throw new InvalidArgumentError('crypt key', found);
    return new CryptHexKey(Buffer.from(hex, 'hex'));
  }

  /** A key from raw bytes (copied: wiping `bytes` afterwards is the caller's job). @throws InvalidArgumentError */
  static fromBytes(bytes: Uint8Array): CryptHexKey {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > CRYPT_MAX_KEY_BYTES)
      throw new InvalidArgumentError('crypt key', [{ path: '/key', message: `must be 1..${CRYPT_MAX_KEY_BYTES} bytes`, value: '[redacted]' }]);
    return new CryptHexKey(Buffer.from(bytes));
  }

  /** The key's length in bytes (what `:<key_size>:` and the redaction marker state). */
  get size(): number {
    return this.#bytes.length;
  }

  /** True once {@link wipe} ran. */
  get wiped(): boolean {
    return this.#wiped;
  }

  /** The key as the lowercase hex the kernel takes (and reports back). @throws InvalidArgumentError after wipe. */
  reveal(): string {
    if (this.#wiped) throw new InvalidArgumentError('crypt key', [{ path: '/key', message: 'was wiped', value: '[redacted]' }]);
    return this.#bytes.toString('hex');
  }

  /** Same bytes? (constant-time over equal lengths.) */
  equals(other: CryptHexKey): boolean {
    if (!(other instanceof CryptHexKey) || other.size !== this.size) return false;
    let diff = 0;
    for (let i = 0; i < this.size; i++) diff |= this.#bytes[i]! ^ other.#bytes[i]!;
    return diff === 0;
  }

  /** Zeroes the key bytes; the object then only knows its size. */
  wipe(): void {
    this.#bytes.fill(0);
    this.#wiped = true;
  }

  toString(): string {
    return `[redacted ${this.size}-byte key]`;
  }

  toJSON(): { kind: 'hex'; size: number; redacted: true } {
    return { kind: 'hex', size: this.size, redacted: true };
  }

  [inspect.custom](): string {
    return `CryptHexKey ${this.toString()}`;
  }
}

/** A key in the kernel keyring, by description: `:<size>:<type>:<description>` (the kernel reports it as given). */
export interface CryptKeyringKey {
  readonly kind: 'keyring';
  /** Key size in bytes, as the cipher needs it (the kernel checks it against the key's payload). */
  readonly size: number;
  readonly keyType: CryptKeyringType;
  /** The key's description (`keyctl add logon <description> ...`). */
  readonly description: string;
}

/** A key whose bytes were redacted from a table read back: only its size is known. Never loadable. */
export interface CryptRedactedKey {
  readonly kind: 'redacted';
  readonly size: number;
}

/** No key (`-`): only for ciphers with a zero key size, such as `cipher_null-ecb`. */
export interface CryptNoKey {
  readonly kind: 'none';
}

export type CryptKey = CryptHexKey | CryptKeyringKey | CryptRedactedKey | CryptNoKey;

/** `integrity:<bytes>:<type>`: authenticated encryption over a dm-integrity device. */
export interface CryptIntegrity {
  /** Per-sector tag size on disk, 1..480 (`MAX_TAG_SIZE`). */
  readonly tagSize: number;
  /** `aead` (the cipher is an AEAD) or `none` (tags hold only a random IV). */
  readonly profile: 'aead' | 'none';
}

/** Parameters of a crypt target. Optional flags are `true` or absent. */
export interface CryptParams {
  /**
   * Cipher spec: `cipher[:keycount]-chainmode-ivmode[:ivopts]` (e.g. `aes-xts-plain64`,
   * `aes-cbc-essiv:sha256`) or the crypto-API form `capi:<spec>-<ivmode>[:ivopts]` (e.g.
   * `capi:xts(aes)-plain64`). The kernel reports it back as given.
   */
  readonly cipher: string;
  readonly key: CryptKey;
  /** Added to the sector number when computing the IV (in 512-byte sectors; a multiple of sectorSize/512). */
  readonly ivOffset: bigint;
  readonly device: DevNum;
  /** Start sector of the encrypted data on `device`. */
  readonly offset: bigint;
  /** `allow_discards`: pass discards down (reveals which blocks are unused). */
  readonly allowDiscards?: true;
  /** `same_cpu_crypt`: encrypt on the CPU that submitted the I/O. */
  readonly sameCpuCrypt?: true;
  /** `submit_from_crypt_cpus`: submit writes from the encryption thread. */
  readonly submitFromCryptCpus?: true;
  /** `no_read_workqueue` (5.9+): decrypt reads synchronously. */
  readonly noReadWorkqueue?: true;
  /** `no_write_workqueue` (5.9+): encrypt writes synchronously. */
  readonly noWriteWorkqueue?: true;
  readonly integrity?: CryptIntegrity;
  /** `sector_size:<bytes>`: encryption sector size, 512..4096, a power of two; absent = 512. */
  readonly sectorSize?: number;
  /** `iv_large_sectors`: IVs count sectorSize units, not 512-byte sectors. */
  readonly ivLargeSectors?: true;
}

const FLAG_FEATURES = [
  ['allowDiscards', 'allow_discards'],
  ['sameCpuCrypt', 'same_cpu_crypt'],
  ['submitFromCryptCpus', 'submit_from_crypt_cpus'],
  ['noReadWorkqueue', 'no_read_workqueue'],
  ['noWriteWorkqueue', 'no_write_workqueue'],
] as const;

/** IV modes `crypt_ctr_ivmode` knows (6.1; `elephant` is bitlocker's). */
const IV_MODES = new Set(['plain', 'plain64', 'plain64be', 'essiv', 'benbi', 'null', 'eboiv', 'lmk', 'tcw', 'random', 'elephant']);

const REDACTED = '[redacted]';

function hexKeyProblems(hex: unknown, path: string): ValidationProblem[] {
  if (typeof hex !== 'string') return [{ path, message: 'must be a hex string', value: REDACTED }];
  const out: ValidationProblem[] = [];
  if (!/^[0-9a-fA-F]*$/.test(hex)) out.push({ path, message: 'must contain only hex digits', value: REDACTED });
  if (hex.length === 0 || hex.length % 2 !== 0) out.push({ path, message: 'must have an even, non-zero number of hex digits', value: `${hex.length} digits` });
  if (hex.length > 2 * CRYPT_MAX_KEY_BYTES) out.push({ path, message: `must be at most ${CRYPT_MAX_KEY_BYTES} bytes`, value: `${hex.length} digits` });
  return out;
}

/** Every problem with a key description (one dm argument: no blanks, backslashes or NUL; non-empty). */
function descriptionProblems(d: unknown, path: string): ValidationProblem[] {
  if (typeof d !== 'string') return [{ path, message: 'must be a string', value: d }];
  if (d === '') return [{ path, message: 'must not be empty', value: d }];
  if (/[\s\\\0]/.test(d)) return [{ path, message: 'must not contain whitespace, backslashes or NUL', value: d }];
  return [];
}

/** Every problem with a cipher spec: what crypt_ctr_cipher_old / _new refuse without asking the crypto API. */
export function cryptCipherProblems(c: unknown, path = '/cipher'): ValidationProblem[] {
  if (typeof c !== 'string') return [{ path, message: 'must be a string', value: c }];
  if (!/^[A-Za-z0-9_:()\-,.+]+$/.test(c)) return [{ path, message: 'must be a non-empty cipher spec of letters, digits and _:()-,.+', value: c }];
  const out: ValidationProblem[] = [];
  let ivmode: string | undefined;
  let ivopts: string | undefined;
  if (c.startsWith('capi:')) {
    // crypt_ctr_cipher_new: ivopts after the last ':', ivmode after the last '-'.
    let rest = c.slice(5);
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) {
      ivopts = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
    const dash = rest.lastIndexOf('-');
    if (dash >= 0) ivmode = rest.slice(dash + 1);
    if ((dash >= 0 ? rest.slice(0, dash) : rest) === '') out.push({ path, message: 'capi: must be followed by a crypto API spec', value: c });
  } else {
    if (c.includes('(')) out.push({ path, message: "a legacy spec cannot contain '(' (use the capi: form)", value: c });
    const [head = '', chainmode, ...more] = c.split('-');
    const [cipher, keycount] = head.split(':');
    if (cipher === '') out.push({ path, message: 'must start with a cipher name', value: c });
    if (keycount !== undefined) {
      const n = decimalNumber(keycount, 0xffffffff);
      if (n === undefined || n === 0 || (n & (n - 1)) !== 0) out.push({ path, message: 'key count must be a power of two', value: keycount });
    }
    const ivpart = more.join('-');
    if (ivpart !== '') {
      const i = ivpart.indexOf(':');
      ivmode = i >= 0 ? ivpart.slice(0, i) : ivpart;
      ivopts = i >= 0 ? ivpart.slice(i + 1) : undefined;
    } else if (chainmode !== undefined && chainmode !== 'ecb' && chainmode !== 'plain')
      out.push({ path, message: "an IV mode is required unless the chain mode is ecb ('cipher-chainmode-ivmode')", value: c });
  }
  if (ivmode !== undefined && !IV_MODES.has(ivmode))
    out.push({ path, message: `unknown IV mode (known: ${[...IV_MODES].join(', ')})`, value: ivmode });
  if (ivmode === 'essiv' && (ivopts === undefined || ivopts === ''))
    out.push({ path, message: 'essiv needs a digest (e.g. essiv:sha256)', value: c });
  return out;
}

/** Every problem with a {@link CryptKey}. Never quotes key bytes. */
export function cryptKeyProblems(k: unknown, path = '/key'): ValidationProblem[] {
  if (k instanceof CryptHexKey) return k.wiped ? [{ path, message: 'was wiped', value: REDACTED }] : [];
  if (typeof k !== 'object' || k === null)
    return [{ path, message: 'must be a CryptHexKey, {kind: keyring|redacted|none, ...}', value: typeof k === 'string' ? REDACTED : k }];
  const v = k as Record<string, unknown>;
  switch (v.kind) {
    case 'hex':
      return [{ path, message: 'an inline key must be a CryptHexKey (CryptHexKey.fromHex)', value: REDACTED }];
    case 'keyring': {
      const out = intProblem(v.size, `${path}/size`, 1, CRYPT_MAX_KEY_BYTES);
      if (!(CRYPT_KEYRING_TYPES as readonly unknown[]).includes(v.keyType))
        out.push({ path: `${path}/keyType`, message: `must be one of ${CRYPT_KEYRING_TYPES.join(', ')}`, value: v.keyType });
      out.push(...descriptionProblems(v.description, `${path}/description`));
      return out;
    }
    case 'redacted':
      return intProblem(v.size, `${path}/size`, 0, CRYPT_MAX_KEY_BYTES);
    case 'none':
      return [];
    default:
      return [{ path: `${path}/kind`, message: "must be 'keyring', 'redacted' or 'none' (or a CryptHexKey)", value: v.kind }];
  }
}

/**
 * Every problem with crypt params, checked as `crypt_ctr` / `crypt_ctr_optional` (6.1) do,
 * short of what only the crypto API knows (whether the cipher exists, its key size).
 */
export function cryptParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a crypt params object', value: p }];
  const v = p as Partial<Record<keyof CryptParams, unknown>>;
  const out = cryptCipherProblems(v.cipher, `${path}/cipher`);
  out.push(...cryptKeyProblems(v.key, `${path}/key`));
  out.push(...sectorProblem(v.ivOffset, `${path}/ivOffset`));
  out.push(...devNumProblems(v.device, `${path}/device`));
  out.push(...sectorProblem(v.offset, `${path}/offset`));
  for (const [field] of FLAG_FEATURES)
    if (v[field] !== undefined && v[field] !== true) out.push({ path: `${path}/${field}`, message: 'must be true or absent', value: v[field] });
  if (v.ivLargeSectors !== undefined && v.ivLargeSectors !== true)
    out.push({ path: `${path}/ivLargeSectors`, message: 'must be true or absent', value: v.ivLargeSectors });
  const ss = v.sectorSize;
  if (ss !== undefined) {
    // "Invalid feature value for sector_size": 512..4096 and a power of two.
    if (typeof ss !== 'number' || !Number.isInteger(ss) || ss < 512 || ss > 4096 || (ss & (ss - 1)) !== 0)
      out.push({ path: `${path}/sectorSize`, message: 'must be a power of two in 512..4096', value: ss });
    // "Invalid iv_offset sector": a multiple of the sector size in 512-byte units.
    else if (typeof v.ivOffset === 'bigint' && v.ivOffset % BigInt(ss / 512) !== 0n)
      out.push({ path: `${path}/ivOffset`, message: `must be a multiple of sectorSize/512 = ${ss / 512}`, value: v.ivOffset });
  }
  const ig = v.integrity;
  if (ig !== undefined) {
    if (typeof ig !== 'object' || ig === null) out.push({ path: `${path}/integrity`, message: 'must be {tagSize, profile}', value: ig });
    else {
      const i = ig as Partial<Record<keyof CryptIntegrity, unknown>>;
      out.push(...intProblem(i.tagSize, `${path}/integrity/tagSize`, 1, 480));
      if (i.profile !== 'aead' && i.profile !== 'none') out.push({ path: `${path}/integrity/profile`, message: "must be 'aead' or 'none'", value: i.profile });
    }
  }
  return out;
}

/** The key as table text: hex, `:<size>:<type>:<desc>`, `redacted:<size>` or `-`. */
function formatKey(k: CryptKey): string {
  if (k instanceof CryptHexKey) return k.reveal();
  switch (k.kind) {
    case 'keyring':
      return `:${k.size}:${k.keyType}:${k.description}`;
    case 'redacted':
      return `${CRYPT_REDACTED_PREFIX}${k.size}`;
    default:
      return '-';
  }
}

/**
 * Encodes crypt params exactly as the kernel reports them back in table mode with the key shown
 * (`dmsetup table --showkeys`). `crypt_status` STATUSTYPE_TABLE in drivers/md/dm-crypt.c emits
 * `"%s "` of the cipher string as given, the key (lowercase hex of the key bytes; `:%u:%s` of the
 * size and `<type>:<description>` for a keyring key; `-` for none), `" %llu %s %llu"` of
 * iv_offset, the device (`major:minor`) and the start, then, when any feature is set, `" %d"` of
 * their count and each as ` <name>` in this order: allow_discards, same_cpu_crypt,
 * submit_from_crypt_cpus, no_read_workqueue, no_write_workqueue, integrity:%u:%s,
 * sector_size:%d, iv_large_sectors. No trailing blank.
 * @example formatCryptParams({cipher: 'aes-xts-plain64', key: CryptHexKey.fromHex('00'.repeat(64)), ivOffset: 0n, device: {major: 7, minor: 0}, offset: 0n, sectorSize: 4096})
 *   // → 'aes-xts-plain64 0000…00 0 7:0 0 1 sector_size:4096'
 * @throws InvalidArgumentError listing every problem (never quoting the key).
 */
export function formatCryptParams(p: CryptParams): string {
  const found = cryptParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('crypt params', found);
  const features: string[] = [];
  for (const [field, name] of FLAG_FEATURES) if (p[field] === true) features.push(name);
  if (p.integrity !== undefined) features.push(`integrity:${p.integrity.tagSize}:${p.integrity.profile}`);
  if (p.sectorSize !== undefined && p.sectorSize !== 512) features.push(`sector_size:${p.sectorSize}`);
  if (p.ivLargeSectors === true) features.push('iv_large_sectors');
  const head = `${p.cipher} ${formatKey(p.key)} ${p.ivOffset} ${formatDevNum(p.device)} ${p.offset}`;
  return features.length === 0 ? head : `${head} ${features.length} ${features.join(' ')}`;
}

/** {@link formatCryptParams} with the key shown as `redacted:<size>` (keyring references and `-` are kept). */
export function formatCryptParamsRedacted(p: CryptParams): string {
  return formatCryptParams({ ...p, key: redactCryptKey(p.key) });
}

/** The key with inline bytes replaced by a {@link CryptRedactedKey}; keyring references and `-` unchanged. */
export function redactCryptKey(k: CryptKey): CryptKey {
  return k instanceof CryptHexKey ? { kind: 'redacted', size: k.size } : k;
}

function parseKey(text: string): CryptKey | string {
  if (text === '-') return { kind: 'none' };
  if (text.startsWith(CRYPT_REDACTED_PREFIX)) {
    const size = decimalNumber(text.slice(CRYPT_REDACTED_PREFIX.length), CRYPT_MAX_KEY_BYTES);
    return size === undefined ? 'a redacted key must be redacted:<bytes>' : { kind: 'redacted', size };
  }
  if (text.startsWith(':')) {
    // get_key_size: `:%u:` then crypt_set_keyring_key: `<type>:<description>`.
    const m = /^:(\d{1,10}):([^:]*):(.*)$/.exec(text);
    if (!m) return "a keyring key must be ':<size>:<type>:<description>'";
    const type = m[2]!; // crypt_set_keyring_key compares the type with strncmp: case matters
    const size = decimalNumber(m[1], CRYPT_MAX_KEY_BYTES);
    if (size === undefined || size === 0) return `keyring key size must be 1..${CRYPT_MAX_KEY_BYTES}`;
    if (!(CRYPT_KEYRING_TYPES as readonly string[]).includes(type)) return `keyring key type must be one of ${CRYPT_KEYRING_TYPES.join(', ')}`;
    return { kind: 'keyring', size, keyType: type as CryptKeyringType, description: m[3]! };
  }
  if (hexKeyProblems(text, '').length > 0) return 'the key must be hex (an even number of digits), :<size>:<type>:<description>, redacted:<bytes> or -';
  return CryptHexKey.fromHex(text);
}

/**
 * Parses crypt params: the kernel's table form (with the key shown, a keyring reference, or
 * redacted by {@link redactCryptParams}), or any line `crypt_ctr` accepts (feature names are
 * case-insensitive there, `strcasecmp`; any order). Errors never quote the key.
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseCryptParams(params: string): CryptParams {
  const w = words(params);
  // Whatever word of the text an error quotes, the key's text is cut out of it.
  const keyText = w[1];
  const hide = (v: unknown): unknown =>
    typeof v === 'string' && keyText !== undefined && keyText.length > 1 && v.includes(keyText) ? v.split(keyText).join(REDACTED) : v;
  const bad = (message: string, value: unknown): InvalidArgumentError => new InvalidArgumentError('crypt params', [{ path: '', message, value: hide(value) }]);
  if (w.length < 5) throw bad("must be '<cipher> <key> <iv_offset> <major:minor> <offset> [<#features> <features>...]'", `${w.length} word(s)`);
  const key = parseKey(w[1]!);
  if (typeof key === 'string') throw bad(key, REDACTED);
  const ivOffset = decimalBigint(w[2]);
  if (ivOffset === undefined) throw bad('iv_offset must be a decimal in 0..2^64-1', w[2]);
  const offset = decimalBigint(w[4]);
  if (offset === undefined) throw bad('offset must be a decimal sector in 0..2^64-1', w[4]);
  const flags: Partial<Record<(typeof FLAG_FEATURES)[number][0] | 'ivLargeSectors', true>> = {};
  let sectorSize: number | undefined;
  let integrity: CryptIntegrity | undefined;
  if (w.length > 5) {
    // dm_read_arg_group: the count must not exceed what follows (6.1 allows 0..8).
    const count = decimalNumber(w[5], 8);
    if (count === undefined) throw bad('feature count must be a decimal in 0..8', w[5]);
    const rest = w.slice(6);
    if (rest.length !== count) throw bad(`declares ${count} feature(s) but has ${rest.length}`, rest.join(' '));
    for (const f of rest) {
      const lower = f.toLowerCase();
      const flag = FLAG_FEATURES.find(([, name]) => name === lower);
      const ss = /^sector_size:(\d{1,5})$/.exec(lower);
      const ig = /^integrity:(\d{1,3}):(aead|none)$/.exec(lower);
      if (flag !== undefined) flags[flag[0]] = true;
      else if (lower === 'iv_large_sectors') flags.ivLargeSectors = true;
      else if (ss) sectorSize = Number(ss[1]);
      else if (ig) integrity = { tagSize: Number(ig[1]), profile: ig[2] as 'aead' | 'none' };
      else
        throw bad(
          'unknown crypt feature (known: allow_discards, same_cpu_crypt, submit_from_crypt_cpus, no_read_workqueue, no_write_workqueue, integrity:<bytes>:<aead|none>, sector_size:<bytes>, iv_large_sectors)',
          f,
        );
    }
  }
  const p: CryptParams = {
    cipher: w[0]!,
    key,
    ivOffset,
    device: parseDevNum(w[3]!),
    offset,
    ...flags,
    ...(integrity !== undefined ? { integrity } : {}),
    ...(sectorSize !== undefined && sectorSize !== 512 ? { sectorSize } : {}),
  };
  const found = cryptParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('crypt params', found);
  return p;
}

/**
 * Replaces the inline key of crypt table text with `redacted:<bytes>`, leaving every other
 * character as it was (keyring references, `-` and already redacted keys are kept). Text that
 * does not have a second word is returned unchanged. Used by DmControl.tableStatus in table mode.
 */
export function redactCryptParams(params: string): string {
  const m = /^(\s*\S+\s+)(\S+)(.*)$/s.exec(params);
  if (!m) return params;
  const key = m[2]!;
  if (key === '-' || key.startsWith(':') || key.startsWith(CRYPT_REDACTED_PREFIX)) return params;
  return `${m[1]}${CRYPT_REDACTED_PREFIX}${key.length >> 1}${m[3]}`;
}

/** A complete crypt target line. @throws InvalidArgumentError */
export function cryptTarget(start: bigint, length: bigint, p: CryptParams): TargetLine {
  const params = formatCryptParams(p);
  // crypt_ctr_optional: "Device size is not multiple of sector_size feature".
  const per = BigInt((p.sectorSize ?? 512) / 512);
  if (typeof length === 'bigint' && length % per !== 0n)
    throw new InvalidArgumentError('crypt target', [{ path: '/length', message: `must be a multiple of sectorSize/512 = ${per}`, value: length }]);
  return { start, length, type: CRYPT_TARGET, params };
}

/** Crypt's INFO status: the kernel reports nothing (`crypt_status` STATUSTYPE_INFO: `result[0] = '\0'`). */
export type CryptStatus = Record<string, never>;

/**
 * Parses crypt's INFO status line, which is always empty (blanks aside).
 * @throws KernelOutputError when there is any text.
 */
export function parseCryptStatus(line: string): CryptStatus {
  if (words(line).length > 0) throw new KernelOutputError(`crypt status: expected an empty line, got ${JSON.stringify(line)}`, line);
  return {};
}

/**
 * `key wipe`: forget the key (`crypt_wipe_key`: the key bytes are overwritten with random bytes and
 * DM_CRYPT_KEY_VALID cleared). `crypt_message` refuses every `key` message unless the device is
 * suspended (EINVAL), and `crypt_preresume` refuses to resume without a valid key (EAGAIN): so
 * suspend → `key wipe` → (`key set` → resume). Send with DmControl.targetMessage at sector 0.
 */
export function cryptKeyWipeMessage(): string {
  return 'key wipe';
}

/**
 * `key set <key>`: install a key of the same size as the table's (`crypt_message`: a different
 * size is refused, EINVAL), while suspended. DmControl sends `key ...` messages with
 * DM_SECURE_DATA. A redacted key cannot be set.
 * @throws InvalidArgumentError when the key is invalid, redacted or none.
 */
export function cryptKeySetMessage(key: CryptHexKey | CryptKeyringKey): string {
  const found = cryptKeyProblems(key, '/key');
  if (found.length === 0 && !(key instanceof CryptHexKey) && key.kind !== 'keyring')
    found.push({ path: '/key/kind', message: 'must be a CryptHexKey or a keyring key', value: (key as { kind?: unknown }).kind });
  if (found.length > 0) throw new InvalidArgumentError('crypt key set message', found);
  return `key set ${formatKey(key)}`;
}

/** True for a message that carries key material (`key ...`, as crypt_message matches it: case-insensitive). */
export function isCryptKeyMessage(message: string): boolean {
  return /^\s*key\s/i.test(message);
}
