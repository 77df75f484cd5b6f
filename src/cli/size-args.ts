// SPDX-License-Identifier: MIT
// Size arguments in the DeviceSet's `dm.*` syntax. A module of its own because parseSize lives in
// the DeviceSet layer, whose entry loads TypeBox: commands import it (with import() where the
// command group has sizeless commands too) only when they parse a size.
import { parseSize } from '../deviceset/index.js';
import { UsageError } from './errors.js';
import { parseUintArg } from './output.js';

/**
 * Parses a size argument: bytes with an optional binary unit (`64M`, `1.5G`, `4096`), the
 * DeviceSet's `dm.*` syntax. With `sectors: true`, a trailing `s` means 512-byte sectors
 * (`2048s`), as dmsetup users expect.
 * @throws UsageError naming the option.
 */
export function parseSizeArg(text: string, what: string, command: string, opts: { sectors?: boolean; min?: bigint } = {}): bigint {
  let bytes: bigint | string;
  const s = /^(\d+)s$/.exec(text);
  if (s && opts.sectors !== false) bytes = BigInt(s[1]!) * 512n;
  else bytes = parseSize(text);
  if (typeof bytes === 'string') throw new UsageError(`${what}: '${text}' is ${bytes}`, command);
  if (opts.min !== undefined && bytes < opts.min) throw new UsageError(`${what}: '${text}' is below the minimum of ${opts.min} bytes`, command);
  return bytes;
}

/** A size in sectors: must be a whole number of 512-byte sectors. */
export function parseSectorsArg(text: string, what: string, command: string): bigint {
  const bytes = parseSizeArg(text, what, command);
  if (bytes % 512n !== 0n) throw new UsageError(`${what}: '${text}' is not a whole number of 512-byte sectors`, command);
  if (bytes === 0n) throw new UsageError(`${what}: must not be zero`, command);
  return bytes / 512n;
}

/** `pool create --block-size`: a plain number is sectors (128 = 64 KiB); with a unit it is bytes (64K). */
export function parseBlockSize(text: string, command: string): number {
  if (/^\d+$/.test(text)) return parseUintArg(text, '--block-size', command, 2097152);
  const bytes = parseSizeArg(text, '--block-size', command);
  if (bytes % 512n !== 0n) throw new UsageError(`--block-size: '${text}' is not a whole number of 512-byte sectors`, command);
  return Number(bytes / 512n);
}
