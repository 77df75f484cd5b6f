// SPDX-License-Identifier: MIT
// The `verity` target (Documentation/admin-guide/device-mapper/verity.rst,
// drivers/md/dm-verity-target.c, drivers/md/dm-verity-fec.c):
// `<version> <data_dev> <hash_dev> <data_block_size> <hash_block_size> <num_data_blocks>
//  <hash_start_block> <algorithm> <digest> <salt> [<#opt_params> <opt_params>...]`.
//
// A read-only device whose every data block is checked against a hash tree on `hash_dev` (built
// by `veritysetup format`), rooted in `digest`. A block that does not match fails the read with
// EIO (default), or is logged (`ignore_corruption`), or restarts / panics the machine.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';
import { decimalBigint, decimalNumber, intProblem, sectorProblem, U64_MAX, words } from './args.js';

export const VERITY_TARGET = 'verity';

/** `use_fec_from_device <dev> fec_blocks <n> fec_start <n> fec_roots <n>`: forward error correction. */
export interface VerityFec {
  readonly device: DevNum;
  /** Blocks (of data_block_size) covered by FEC: data, hash and FEC blocks before the parity (veritysetup prints it). */
  readonly blocks: bigint;
  /** First block of the parity data on `device`, in data_block_size units. */
  readonly start: bigint;
  /** Reed-Solomon parity bytes per codeword, 2..24 (`DM_VERITY_FEC_MIN_RSN`..: `fec_roots`). */
  readonly roots: number;
}

/** Parameters of a verity target. Optional flags are `true` or absent. */
export interface VerityParams {
  /** Hash format: 1 (salt prepended, what veritysetup makes) or 0 (Chrome OS: salt appended). */
  readonly version: 0 | 1;
  readonly dataDevice: DevNum;
  readonly hashDevice: DevNum;
  /** Bytes, a power of two, 512..65536 (the kernel also wants ≥ the device's logical block size and ≤ PAGE_SIZE). */
  readonly dataBlockSize: number;
  readonly hashBlockSize: number;
  /** Data blocks covered by the tree (`veritysetup format` prints "Data blocks"). */
  readonly numDataBlocks: bigint;
  /** Where the tree's root block is on `hashDevice`, in hashBlockSize units (1 after veritysetup's superblock). */
  readonly hashStartBlock: bigint;
  /** Hash algorithm name (crypto API), e.g. sha256. */
  readonly algorithm: string;
  /** The root hash, hex (the kernel reports lowercase). */
  readonly digest: string;
  /** The salt, hex; '' for none (`-`). */
  readonly salt: string;
  /** What a corrupted block does: default EIO; `ignore_corruption` logs it; restart / panic the machine. */
  readonly onCorruption?: 'ignore' | 'restart' | 'panic';
  /** `restart_on_error` / `panic_on_error` (6.12+): on an I/O error of the underlying devices. */
  readonly onError?: 'restart' | 'panic';
  /** `ignore_zero_blocks`: blocks whose hash is the zero block's read as zeroes without reading. */
  readonly ignoreZeroBlocks?: true;
  /** `check_at_most_once`: verify each data block once only (a bitmap in memory). */
  readonly checkAtMostOnce?: true;
  /** `try_verify_in_tasklet` (6.0 .. 6.8; later kernels accept and ignore it). */
  readonly tryVerifyInTasklet?: true;
  readonly fec?: VerityFec;
  /** `root_hash_sig_key_desc <desc>`: a keyring key holding the signature of the root hash. */
  readonly rootHashSigKeyDesc?: string;
}

/** Digest sizes of common hashes, to catch a digest of the wrong length before the kernel does. */
const DIGEST_BYTES: Readonly<Record<string, number>> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64, md5: 16, 'blake2b-512': 64, 'blake2b-256': 32, sm3: 32 };

/** A problem when `v` is not a power of two in 512..65536. */
function blockSizeProblem(v: unknown, path: string): ValidationProblem[] {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 512 || v > 65536 || (v & (v - 1)) !== 0)
    return [{ path, message: 'must be a power of two in 512..65536', value: v }];
  return [];
}

function hexProblem(v: unknown, path: string, allowEmpty: boolean): ValidationProblem[] {
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v) || (!allowEmpty && v === ''))
    return [{ path, message: `must be ${allowEmpty ? '' : 'non-empty '}hex with an even number of digits`, value: v }];
  return [];
}

/** Every problem with verity params, checked as `verity_ctr` / `verity_parse_opt_args` (6.1) do. */
export function verityParamsProblems(p: unknown, path = ''): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path, message: 'must be a verity params object', value: p }];
  const v = p as Partial<Record<keyof VerityParams, unknown>>;
  const out: ValidationProblem[] = [];
  if (v.version !== 0 && v.version !== 1) out.push({ path: `${path}/version`, message: 'must be 0 or 1', value: v.version });
  out.push(...devNumProblems(v.dataDevice, `${path}/dataDevice`));
  out.push(...devNumProblems(v.hashDevice, `${path}/hashDevice`));
  const dbs = blockSizeProblem(v.dataBlockSize, `${path}/dataBlockSize`);
  const hbs = blockSizeProblem(v.hashBlockSize, `${path}/hashBlockSize`);
  out.push(...dbs, ...hbs);
  const nb = sectorProblem(v.numDataBlocks, `${path}/numDataBlocks`);
  const hs = sectorProblem(v.hashStartBlock, `${path}/hashStartBlock`);
  out.push(...nb, ...hs);
  // "Invalid data blocks" / "Invalid hash start": the count in sectors must fit in sector_t.
  if (dbs.length === 0 && nb.length === 0 && (v.numDataBlocks as bigint) * BigInt((v.dataBlockSize as number) / 512) > U64_MAX)
    out.push({ path: `${path}/numDataBlocks`, message: 'numDataBlocks × dataBlockSize must fit in 2^64 sectors', value: v.numDataBlocks });
  if (hbs.length === 0 && hs.length === 0 && (v.hashStartBlock as bigint) * BigInt((v.hashBlockSize as number) / 512) > U64_MAX)
    out.push({ path: `${path}/hashStartBlock`, message: 'hashStartBlock × hashBlockSize must fit in 2^64 sectors', value: v.hashStartBlock });
  if (typeof v.algorithm !== 'string' || !/^[A-Za-z0-9_()\-,.]{1,127}$/.test(v.algorithm))
    out.push({ path: `${path}/algorithm`, message: 'must be a hash algorithm name (letters, digits, _()-,.)', value: v.algorithm });
  const dp = hexProblem(v.digest, `${path}/digest`, false);
  out.push(...dp);
  const want = typeof v.algorithm === 'string' ? DIGEST_BYTES[v.algorithm.toLowerCase()] : undefined;
  if (dp.length === 0 && want !== undefined && (v.digest as string).length !== 2 * want)
    out.push({ path: `${path}/digest`, message: `a ${v.algorithm} digest is ${want} bytes (${2 * want} hex digits)`, value: v.digest });
  out.push(...hexProblem(v.salt, `${path}/salt`, true));
  if (v.onCorruption !== undefined && v.onCorruption !== 'ignore' && v.onCorruption !== 'restart' && v.onCorruption !== 'panic')
    out.push({ path: `${path}/onCorruption`, message: "must be 'ignore', 'restart', 'panic' or absent", value: v.onCorruption });
  if (v.onError !== undefined && v.onError !== 'restart' && v.onError !== 'panic')
    out.push({ path: `${path}/onError`, message: "must be 'restart', 'panic' or absent", value: v.onError });
  for (const f of ['ignoreZeroBlocks', 'checkAtMostOnce', 'tryVerifyInTasklet'] as const)
    if (v[f] !== undefined && v[f] !== true) out.push({ path: `${path}/${f}`, message: 'must be true or absent', value: v[f] });
  const fec = v.fec;
  if (fec !== undefined) {
    if (typeof fec !== 'object' || fec === null) out.push({ path: `${path}/fec`, message: 'must be {device, blocks, start, roots}', value: fec });
    else {
      const f = fec as Partial<Record<keyof VerityFec, unknown>>;
      out.push(...devNumProblems(f.device, `${path}/fec/device`));
      out.push(...sectorProblem(f.blocks, `${path}/fec/blocks`));
      out.push(...sectorProblem(f.start, `${path}/fec/start`));
      // DM_VERITY_FEC_MIN_RSN 231 .. DM_VERITY_FEC_MAX_RSN 253: roots = 255 - rsn in 2..24.
      out.push(...intProblem(f.roots, `${path}/fec/roots`, 2, 24));
    }
  }
  const sig = v.rootHashSigKeyDesc;
  if (sig !== undefined && (typeof sig !== 'string' || sig === '' || /[\s\\\0]/.test(sig)))
    out.push({ path: `${path}/rootHashSigKeyDesc`, message: 'must be a non-empty key description without whitespace, backslashes or NUL', value: sig });
  return out;
}

/**
 * Encodes verity params exactly as the kernel reports them back in table mode. `verity_status`
 * STATUSTYPE_TABLE (drivers/md/dm-verity-target.c) emits `"%u %s %s %u %u %llu %llu %s "` of
 * version, the devices (`major:minor`), the block sizes, data blocks, hash start and algorithm,
 * then the digest as `%02x` bytes, a blank, the salt as `%02x` bytes or `-`; then, when any
 * optional argument is set, `" %u"` of their count (FEC counts 8, the signature key 2) and each
 * after a blank in this order: the corruption mode, the error mode (6.12), ignore_zero_blocks,
 * check_at_most_once, try_verify_in_tasklet, the FEC arguments (`verity_fec_status_table`:
 * `use_fec_from_device %s fec_blocks %llu fec_start %llu fec_roots %d`), root_hash_sig_key_desc.
 * @throws InvalidArgumentError listing every problem.
 */
export function formatVerityParams(p: VerityParams): string {
  const found = verityParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('verity params', found);
  const head =
    `${p.version} ${formatDevNum(p.dataDevice)} ${formatDevNum(p.hashDevice)} ${p.dataBlockSize} ${p.hashBlockSize} ` +
    `${p.numDataBlocks} ${p.hashStartBlock} ${p.algorithm} ${p.digest.toLowerCase()} ${p.salt === '' ? '-' : p.salt.toLowerCase()}`;
  const opts: string[] = [];
  let count = 0;
  const add = (n: number, ...ws: string[]): void => {
    count += n;
    opts.push(...ws);
  };
  if (p.onCorruption !== undefined) add(1, `${p.onCorruption}_${p.onCorruption === 'ignore' ? 'corruption' : 'on_corruption'}`);
  if (p.onError !== undefined) add(1, `${p.onError}_on_error`);
  if (p.ignoreZeroBlocks === true) add(1, 'ignore_zero_blocks');
  if (p.checkAtMostOnce === true) add(1, 'check_at_most_once');
  if (p.tryVerifyInTasklet === true) add(1, 'try_verify_in_tasklet');
  if (p.fec !== undefined)
    add(8, 'use_fec_from_device', formatDevNum(p.fec.device), 'fec_blocks', String(p.fec.blocks), 'fec_start', String(p.fec.start), 'fec_roots', String(p.fec.roots));
  if (p.rootHashSigKeyDesc !== undefined) add(2, 'root_hash_sig_key_desc', p.rootHashSigKeyDesc);
  return count === 0 ? head : `${head} ${count} ${opts.join(' ')}`;
}

/**
 * Parses verity params: the kernel's table form or any line `verity_ctr` accepts (option names
 * are case-insensitive there, `strcasecmp`; any order; hex in either case).
 * @throws InvalidArgumentError when the text is malformed or the params are invalid.
 */
export function parseVerityParams(params: string): VerityParams {
  const bad = (message: string, value: unknown = params): InvalidArgumentError =>
    new InvalidArgumentError('verity params', [{ path: '', message, value }]);
  const w = words(params);
  if (w.length < 10)
    throw bad("must be '<version> <data_dev> <hash_dev> <data_block_size> <hash_block_size> <num_data_blocks> <hash_start_block> <algorithm> <digest> <salt> [<#opt_params> <opt_params>...]'");
  const version = decimalNumber(w[0], 1);
  if (version === undefined) throw bad('version must be 0 or 1', w[0]);
  const dbs = decimalNumber(w[3], 0xffffffff);
  const hbs = decimalNumber(w[4], 0xffffffff);
  if (dbs === undefined) throw bad('data block size must be a decimal', w[3]);
  if (hbs === undefined) throw bad('hash block size must be a decimal', w[4]);
  const nb = decimalBigint(w[5]);
  const hs = decimalBigint(w[6]);
  if (nb === undefined) throw bad('num_data_blocks must be a decimal in 0..2^64-1', w[5]);
  if (hs === undefined) throw bad('hash_start_block must be a decimal in 0..2^64-1', w[6]);
  const salt = w[9] === '-' ? '' : w[9]!;
  const opt: {
    onCorruption?: 'ignore' | 'restart' | 'panic';
    onError?: 'restart' | 'panic';
    ignoreZeroBlocks?: true;
    checkAtMostOnce?: true;
    tryVerifyInTasklet?: true;
    rootHashSigKeyDesc?: string;
  } = {};
  let fecDev: DevNum | undefined;
  let fecBlocks: bigint | undefined;
  let fecStart: bigint | undefined;
  let fecRoots: number | undefined;
  if (w.length > 10) {
    // dm_read_arg_group: the count must not exceed what follows (DM_VERITY_OPTS_MAX).
    const count = decimalNumber(w[10], 20);
    if (count === undefined) throw bad('optional argument count must be a decimal in 0..20', w[10]);
    const rest = w.slice(11);
    if (rest.length !== count) throw bad(`declares ${count} optional argument(s) but has ${rest.length}`);
    for (let i = 0; i < rest.length; i++) {
      const name = rest[i]!.toLowerCase();
      const value = (): string => {
        const next = rest[i + 1];
        if (next === undefined) throw bad(`${name} needs a value`, rest[i]);
        i++;
        return next;
      };
      const num = (): bigint => {
        const n = decimalBigint(value());
        if (n === undefined) throw bad(`${name} must be followed by a decimal in 0..2^64-1`, rest[i]);
        return n;
      };
      const mode = /^(ignore_corruption|restart_on_corruption|panic_on_corruption)$/.exec(name);
      if (mode) {
        if (opt.onCorruption !== undefined) throw bad('more than one corruption mode', rest[i]);
        opt.onCorruption = name.split('_')[0] as 'ignore' | 'restart' | 'panic';
      } else if (name === 'restart_on_error' || name === 'panic_on_error') {
        if (opt.onError !== undefined) throw bad('more than one error mode', rest[i]);
        opt.onError = name === 'restart_on_error' ? 'restart' : 'panic';
      } else if (name === 'ignore_zero_blocks') opt.ignoreZeroBlocks = true;
      else if (name === 'check_at_most_once') opt.checkAtMostOnce = true;
      else if (name === 'try_verify_in_tasklet') opt.tryVerifyInTasklet = true;
      else if (name === 'use_fec_from_device') fecDev = parseDevNum(value());
      else if (name === 'fec_blocks') fecBlocks = num();
      else if (name === 'fec_start') fecStart = num();
      else if (name === 'fec_roots') {
        const n = num();
        fecRoots = n <= 255n ? Number(n) : 256;
      } else if (name === 'root_hash_sig_key_desc') opt.rootHashSigKeyDesc = value();
      else throw bad('unknown verity option', rest[i]);
    }
  }
  const anyFec = fecDev !== undefined || fecBlocks !== undefined || fecStart !== undefined || fecRoots !== undefined;
  if (anyFec && (fecDev === undefined || fecBlocks === undefined || fecStart === undefined || fecRoots === undefined))
    throw bad('FEC needs all of use_fec_from_device, fec_blocks, fec_start and fec_roots');
  const p: VerityParams = {
    version: version as 0 | 1,
    dataDevice: parseDevNum(w[1]!),
    hashDevice: parseDevNum(w[2]!),
    dataBlockSize: dbs,
    hashBlockSize: hbs,
    numDataBlocks: nb,
    hashStartBlock: hs,
    algorithm: w[7]!,
    digest: w[8]!.toLowerCase(),
    salt: salt.toLowerCase(),
    ...opt,
    ...(anyFec ? { fec: { device: fecDev!, blocks: fecBlocks!, start: fecStart!, roots: fecRoots! } } : {}),
  };
  const found = verityParamsProblems(p);
  if (found.length > 0) throw new InvalidArgumentError('verity params', found);
  return p;
}

/**
 * A complete verity target line. `length` must not exceed the data the tree covers
 * (`verity_ctr`: "Data device is too small").
 * @throws InvalidArgumentError
 */
export function verityTarget(start: bigint, length: bigint, p: VerityParams): TargetLine {
  const params = formatVerityParams(p);
  const covered = p.numDataBlocks * BigInt(p.dataBlockSize / 512);
  if (typeof length === 'bigint' && length > covered)
    throw new InvalidArgumentError('verity target', [{ path: '/length', message: `must be at most numDataBlocks × dataBlockSize / 512 = ${covered} sectors`, value: length }]);
  return { start, length, type: VERITY_TARGET, params };
}

/**
 * Verity's INFO status (`verity_status` STATUSTYPE_INFO: `"%c"` of `hash_failed ? 'C' : 'V'`;
 * kernels that count FEC corrections add `" %lld"` of them when FEC is on. 6.1 prints only the
 * letter, also with FEC: seen in the VM).
 */
export interface VerityStatus {
  /** false once any block failed verification (`C`): sticky until the table is reloaded. */
  readonly verified: boolean;
  /** Blocks corrected by FEC, when FEC is on. */
  readonly fecCorrected?: bigint;
}

/**
 * Parses verity's INFO status line `V|C [<fec corrected>]`.
 * @throws KernelOutputError naming the field that does not fit.
 */
export function parseVerityStatus(line: string): VerityStatus {
  const w = words(line);
  if (w.length !== 1 && w.length !== 2) throw new KernelOutputError(`verity status: expected 'V|C [<fec corrected>]', got ${w.length} field(s)`, line);
  if (w[0] !== 'V' && w[0] !== 'C') throw new KernelOutputError(`verity status field 1: got ${JSON.stringify(w[0])}, expected V or C`, line);
  if (w.length === 1) return { verified: w[0] === 'V' };
  const n = decimalBigint(w[1]);
  if (n === undefined) throw new KernelOutputError(`verity status field 2 (fec corrected): got ${JSON.stringify(w[1])}, expected an unsigned decimal`, line);
  return { verified: w[0] === 'V', fecCorrected: n };
}

/** What `veritysetup format` prints that a table needs (its "VERITY header information" block). */
export interface VeritysetupFormatInfo {
  readonly version: 0 | 1;
  readonly numDataBlocks: bigint;
  readonly dataBlockSize: number;
  readonly hashBlockSize: number;
  readonly algorithm: string;
  readonly salt: string;
  readonly rootHash: string;
}

/**
 * Parses the output of `veritysetup format <data> <hash>` (cryptsetup's `Hash type`, `Data
 * blocks`, `Data block size`, `Hash block size`, `Hash algorithm`, `Salt`, `Root hash` lines).
 * With veritysetup's default superblock the tree starts at hash block 1.
 * @throws KernelOutputError when a field is missing or malformed.
 */
export function parseVeritysetupFormat(text: string): VeritysetupFormatInfo {
  const field = (name: string): string => {
    const m = new RegExp(`^${name}:\\s*(\\S+)\\s*$`, 'mi').exec(text);
    if (!m) throw new KernelOutputError(`veritysetup format: no '${name}:' line`, text);
    return m[1]!;
  };
  const num = (name: string): bigint => {
    const n = decimalBigint(field(name));
    if (n === undefined) throw new KernelOutputError(`veritysetup format: '${name}' is not a decimal`, text);
    return n;
  };
  const type = num('Hash type');
  if (type > 1n) throw new KernelOutputError(`veritysetup format: hash type ${type} is not 0 or 1`, text);
  const salt = field('Salt');
  const rootHash = field('Root hash');
  if (!/^([0-9a-f]{2})+$/i.test(rootHash)) throw new KernelOutputError('veritysetup format: root hash is not hex', text);
  if (salt !== '-' && !/^([0-9a-f]{2})+$/i.test(salt)) throw new KernelOutputError('veritysetup format: salt is not hex', text);
  return {
    version: Number(type) as 0 | 1,
    numDataBlocks: num('Data blocks'),
    dataBlockSize: Number(num('Data block size')),
    hashBlockSize: Number(num('Hash block size')),
    algorithm: field('Hash algorithm'),
    salt: salt === '-' ? '' : salt.toLowerCase(),
    rootHash: rootHash.toLowerCase(),
  };
}
