// SPDX-License-Identifier: MIT
// thin target params `<pool_dev> <dev_id> [<external_origin_dev>]` (thin_ctr()/thin_status() in drivers/md/dm-thin.c).
import { InvalidArgumentError, KernelOutputError, type ValidationProblem } from '../errors.js';
import { deviceRefProblem } from './device-ref.js';
import { thinDeviceIdProblem, type ThinDeviceId } from './device-id.js';

/** The params of a `thin` table line. */
export interface ThinParams {
  /** The pool device: `'major:minor'` or an absolute path such as `/dev/mapper/pool`. */
  readonly poolDev: string;
  /** The thin id inside the pool, created earlier with `create_thin`/`create_snap`. */
  readonly devId: ThinDeviceId;
  /**
   * Optional read-only external origin: reads of unprovisioned blocks go
   * there. It must never be written while in use, and every internal snapshot
   * of this thin needs the same origin argument (thin-provisioning.rst).
   */
  readonly externalOriginDev?: string;
}

/** Every problem with `p` as thin params, empty when valid. */
export function thinParamsProblems(p: unknown): ValidationProblem[] {
  if (typeof p !== 'object' || p === null) return [{ path: '', message: 'must be an object', value: p }];
  const v = p as Record<string, unknown>;
  const problems: ValidationProblem[] = [];
  const pool = deviceRefProblem(v['poolDev'], '/poolDev');
  if (pool) problems.push(pool);
  const id = thinDeviceIdProblem(v['devId'], '/devId');
  if (id) problems.push(id);
  const origin = v['externalOriginDev'];
  if (origin !== undefined) {
    const op = deviceRefProblem(origin, '/externalOriginDev');
    if (op) problems.push(op);
    // thin_ctr() strcmp()s the origin against the pool argument ("Error setting origin device", EINVAL).
    else if (origin === v['poolDev']) {
      problems.push({ path: '/externalOriginDev', message: 'must differ from poolDev', value: origin });
    }
  }
  return problems;
}

/**
 * Checks thin params, reporting every problem at once.
 * @throws InvalidArgumentError listing all problems.
 */
export function validateThinParams(p: unknown): ThinParams {
  const problems = thinParamsProblems(p);
  if (problems.length > 0) throw new InvalidArgumentError('thin params', problems);
  return p as ThinParams;
}

/**
 * The exact thin params string: `<pool_dev> <dev_id>[ <external_origin_dev>]`.
 * @throws InvalidArgumentError when the params are invalid.
 * @example formatThinParams({ poolDev: '253:0', devId: thinDeviceId(7) }) // → '253:0 7'
 */
export function formatThinParams(p: ThinParams): string {
  validateThinParams(p);
  const words = [p.poolDev, String(p.devId)];
  if (p.externalOriginDev !== undefined) words.push(p.externalOriginDev);
  return words.join(' ');
}

function badField(line: string, index: number, what: string, raw: string | undefined, expected: string): KernelOutputError {
  const got = raw === undefined ? 'nothing' : JSON.stringify(raw);
  return new KernelOutputError(`thin table field ${index} (${what}): got ${got}, expected ${expected}`, line);
}

/**
 * Parses thin params as given back by the kernel with `DM_STATUS_TABLE_FLAG`:
 * `<pool maj:min> <dev_id>[ <origin maj:min>]` (paths accepted too).
 * @throws KernelOutputError naming the field index, raw value and expectation.
 */
export function parseThinParams(line: string): ThinParams {
  const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
  const [pool, idText, origin, extra] = words;
  if (pool === undefined || deviceRefProblem(pool, '') !== undefined) {
    throw badField(line, 1, 'pool device', pool, "'major:minor' or an absolute path");
  }
  const id = idText !== undefined && /^\d+$/.test(idText) ? Number(idText) : NaN;
  if (thinDeviceIdProblem(id, '') !== undefined) throw badField(line, 2, 'device id', idText, 'a decimal in 0 … 16777215');
  if (origin !== undefined && deviceRefProblem(origin, '') !== undefined) {
    throw badField(line, 3, 'external origin', origin, "'major:minor' or an absolute path");
  }
  if (extra !== undefined) throw badField(line, 4, 'end of line', extra, 'at most 3 fields');
  const devId = id as ThinDeviceId;
  return origin === undefined ? { poolDev: pool, devId } : { poolDev: pool, devId, externalOriginDev: origin };
}
