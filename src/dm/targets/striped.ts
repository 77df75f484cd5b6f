// SPDX-License-Identifier: MIT
// The `striped` target (Documentation/admin-guide/device-mapper/striped.rst):
// `<#stripes> <chunk_sectors> <dev> <offset> [<dev> <offset>]...`.
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../../errors.js';
import { devNumProblems, formatDevNum, parseDevNum, type DevNum } from '../devnum.js';
import type { TargetLine } from '../table.js';

/** One stripe leg: a device and the sector where the leg starts on it. */
export interface Stripe {
  readonly device: DevNum;
  readonly offset: bigint;
}

/** Parameters of a striped (RAID-0) target. */
export interface StripedParams {
  /** Chunk size in 512-byte sectors. */
  readonly chunkSectors: number;
  readonly stripes: readonly Stripe[];
}

export const STRIPED_TARGET = 'striped';

/**
 * What we check about the chunk size, and why only this much.
 *
 * The kernel doc once said "power of 2 and at least PAGE_SIZE"; both limits were dropped in Linux
 * 3.6 ("dm stripe: support for non power of 2 chunksize", "dm stripe: remove minimum stripe
 * size"). `stripe_ctr` in drivers/md/dm-stripe.c now refuses only a zero or non-u32 chunk size,
 * and the current doc asks only that it be at least the device's logical block size, which this
 * pure module cannot know (the kernel refuses misaligned tables with EINVAL at load time).
 * So: an integer in 1..2^32-1. Powers of two remain the fast path in the kernel (shift/mask).
 */
function chunkProblems(chunk: unknown): ValidationProblem[] {
  if (typeof chunk !== 'number' || !Number.isInteger(chunk) || chunk < 1 || chunk > 0xffffffff)
    return [{ path: '/chunkSectors', message: 'must be an integer in 1..2^32-1', value: chunk }];
  return [];
}

function problems(p: StripedParams): ValidationProblem[] {
  const out = chunkProblems(p.chunkSectors);
  if (!Array.isArray(p.stripes) || p.stripes.length === 0)
    out.push({ path: '/stripes', message: 'must list at least one stripe', value: p.stripes });
  else
    p.stripes.forEach((s, i) => {
      out.push(...devNumProblems(s?.device, `/stripes/${i}/device`));
      if (typeof s?.offset !== 'bigint' || s.offset < 0n)
        out.push({ path: `/stripes/${i}/offset`, message: 'must be a non-negative bigint sector', value: s?.offset });
    });
  return out;
}

/**
 * `{chunkSectors: 128, stripes: [{7:0, 0}, {7:1, 0}]}` → `'2 128 7:0 0 7:1 0'`.
 * @throws InvalidArgumentError listing every problem.
 */
export function formatStripedParams(p: StripedParams): string {
  const found = problems(p);
  if (found.length > 0) throw new InvalidArgumentError('striped params', found);
  const legs = p.stripes.map((s) => `${formatDevNum(s.device)} ${s.offset}`).join(' ');
  return `${p.stripes.length} ${p.chunkSectors} ${legs}`;
}

/**
 * Parses striped params as the kernel reports them.
 * @throws InvalidArgumentError when the shape or the stripe count does not match.
 */
export function parseStripedParams(params: string): StripedParams {
  const bad = (message: string): InvalidArgumentError =>
    new InvalidArgumentError('striped params', [{ path: '', message, value: params }]);
  const parts = params.trim().split(/\s+/);
  const [count, chunk, ...rest] = parts;
  if (count === undefined || chunk === undefined || !/^\d+$/.test(count) || !/^\d+$/.test(chunk))
    throw bad("must start with '<#stripes> <chunk_sectors>'");
  const n = Number(count);
  if (rest.length !== 2 * n) throw bad(`declares ${n} stripe(s) but has ${rest.length} device/offset field(s)`);
  const stripes: Stripe[] = [];
  for (let i = 0; i < n; i++) {
    const off = rest[2 * i + 1]!;
    if (!/^\d+$/.test(off)) throw bad(`stripe ${i}: offset '${off}' is not a number`);
    stripes.push({ device: parseDevNum(rest[2 * i]!), offset: BigInt(off) });
  }
  const p = { chunkSectors: Number(chunk), stripes };
  const found = problems(p);
  if (found.length > 0) throw new InvalidArgumentError('striped params', found);
  return p;
}

/**
 * A complete striped target line. Also checks the kernel's size rule (`stripe_ctr`): the target
 * length must divide evenly by the stripe count, and each stripe's share by the chunk size.
 * @throws InvalidArgumentError
 */
export function stripedTarget(start: bigint, length: bigint, p: StripedParams): TargetLine {
  const params = formatStripedParams(p);
  const width = BigInt(p.stripes.length) * BigInt(p.chunkSectors);
  if (length % width !== 0n)
    throw new InvalidArgumentError('striped target', [
      { path: '/length', message: `must be a multiple of #stripes × chunk (${width})`, value: length },
    ]);
  return { start, length, type: STRIPED_TARGET, params };
}

/** A striped target's INFO status: each leg's device and whether it has seen an I/O error. */
export interface StripedStatus {
  readonly devices: readonly DevNum[];
  /** Per leg: `'A'` alive, `'D'` dead (its error count is non-zero). */
  readonly health: readonly ('A' | 'D')[];
}

/**
 * Parses a striped target's INFO status, as `stripe_status()` (drivers/md/dm-stripe.c) prints
 * it: `<#stripes> <dev>... 1 <A|D per stripe>` (e.g. `3 7:0 7:1 7:2 1 AAA`).
 * @throws KernelOutputError when the line has another shape.
 */
export function parseStripedStatus(line: string): StripedStatus {
  const bad = (why: string): KernelOutputError => new KernelOutputError(`striped status: ${why}: ${JSON.stringify(line)}`, line);
  const w = line.trim().split(/\s+/);
  const count = w[0];
  if (count === undefined || !/^\d{1,4}$/.test(count)) throw bad('expected the stripe count first');
  const n = Number(count);
  if (n < 1 || w.length !== n + 3) throw bad(`expected ${n} device(s), '1' and the health characters`);
  const devices: DevNum[] = [];
  for (let i = 0; i < n; i++) {
    const m = /^(\d{1,10}):(\d{1,10})$/.exec(w[1 + i]!);
    if (!m) throw bad(`stripe ${i}: '${w[1 + i]}' is not MAJOR:MINOR`);
    devices.push({ major: Number(m[1]), minor: Number(m[2]) });
  }
  if (w[n + 1] !== '1') throw bad("expected '1' before the health characters");
  const chars = w[n + 2]!;
  if (chars.length !== n || !/^[AD]+$/.test(chars)) throw bad(`expected ${n} health character(s) A or D`);
  return { devices, health: [...chars] as ('A' | 'D')[] };
}
