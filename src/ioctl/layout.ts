// SPDX-License-Identifier: MIT
// Building blocks for hand-laid kernel structs on top of @solana/buffer-layout: a bigint u64, a
// fixed char[N] field with NUL handling, explicit padding, and length-checked encode/decode.
import { Layout, Structure, struct } from './buffer-layout.js';
import { InvalidArgumentError, KernelOutputError } from '../errors.js';

/** 2^64 - 1. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** `b` as a Buffer over the same memory (no copy). */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Hex dump of at most `max` bytes, for the `raw` field of decode errors. */
export function hexSnippet(b: Uint8Array, start: number, end: number, max = 64): string {
  const s = Math.max(0, Math.min(start, b.length));
  const e = Math.max(s, Math.min(end, b.length, s + max));
  return asBuffer(b).subarray(s, e).toString('hex') + (end - s > max ? '…' : '');
}

/**
 * Little-endian unsigned 64-bit field that decodes to **bigint**. buffer-layout's own `nu64`
 * decodes to Number and silently loses precision above 2^53, which is unacceptable for dev_t,
 * sector counts and byte offsets.
 */
export class U64 extends Layout<bigint> {
  constructor(property?: string) {
    super(8, property);
  }
  /** The little-endian u64 at `offset`. */
  override decode(b: Uint8Array, offset = 0): bigint {
    return asBuffer(b).readBigUInt64LE(offset);
  }
  /** Writes `src` as a little-endian u64 at `offset`; returns the bytes written (8). */
  override encode(src: bigint, b: Uint8Array, offset = 0): number {
    if (typeof src !== 'bigint' || src < 0n || src > U64_MAX) {
      throw new InvalidArgumentError('u64 field', [
        { path: `/${this.property ?? ''}`, message: 'must be a bigint in 0..2^64-1', value: src },
      ]);
    }
    asBuffer(b).writeBigUInt64LE(src, offset);
    return 8;
  }
}

/** A bigint u64 field (little-endian). */
export const u64 = (property?: string): U64 => new U64(property);

/**
 * A fixed-size C `char[size]` field holding a NUL-terminated string. This is the ONE place where
 * fixed char arrays are encoded and decoded:
 * - encode refuses (InvalidArgumentError) values longer than `size - 1` bytes (UTF-8) — the NUL
 *   must fit — and values with an embedded NUL (they would be silently truncated by the kernel);
 *   the rest of the field is zero-filled;
 * - decode returns the bytes up to the first NUL and throws KernelOutputError if the field has no
 *   NUL at all (every kernel field this library reads is NUL-terminated by the kernel).
 */
export class CharArray extends Layout<string> {
  readonly size: number;
  /** "struct.field", for error messages. */
  readonly cname: string;
  constructor(size: number, property: string, cname: string) {
    super(size, property);
    this.size = size;
    this.cname = cname;
  }
  override decode(b: Uint8Array, offset = 0): string {
    const buf = asBuffer(b);
    const nul = buf.indexOf(0, offset);
    if (nul < 0 || nul >= offset + this.size) {
      throw new KernelOutputError(
        `${this.cname}: char[${this.size}] is not NUL-terminated`,
        hexSnippet(buf, offset, offset + this.size),
      );
    }
    return buf.toString('utf8', offset, nul);
  }
  /**
   * Fast path of {@link encode} for hot encoders: same checks, same bytes, same errors, but
   * writes the string straight into `buf` (no temporary Buffer) when it is valid. Any value that
   * would be refused falls through to {@link encode}, which throws the one typed error.
   */
  writeTo(buf: Buffer, offset: number, src: string): void {
    // UTF-16 length ≤ UTF-8 length, so a string of ≥ size units can never fit; '\0' is the only
    // character whose UTF-8 form contains a zero byte.
    if (typeof src === 'string' && src.length < this.size && !src.includes('\0')) {
      buf.fill(0, offset, offset + this.size);
      if (src.length === 0) return;
      const written = buf.write(src, offset, this.size - 1, 'utf8');
      if (written === Buffer.byteLength(src, 'utf8')) return;
    }
    this.encode(src, buf, offset);
  }
  /** Fast path of {@link decode} (same result and error) for a Buffer. */
  readFrom(buf: Buffer, offset: number): string {
    const nul = buf.indexOf(0, offset);
    if (nul < 0 || nul >= offset + this.size) return this.decode(buf, offset);
    return nul === offset ? '' : buf.toString('utf8', offset, nul);
  }
  /** Writes `src` as UTF-8 at `offset`, NUL-padded to the field's size (refused when it does not fit with its NUL); returns the size. */
  override encode(src: string, b: Uint8Array, offset = 0): number {
    const bytes = encodeCString(src, this.size - 1, this.cname);
    const buf = asBuffer(b);
    buf.fill(0, offset, offset + this.size);
    bytes.copy(buf, offset);
    return this.size;
  }
}

/** A `char[size]` field; `cname` ("dm_ioctl.name") is used in error messages. */
export const charArray = (size: number, property: string, cname: string): CharArray =>
  new CharArray(size, property, cname);

/**
 * UTF-8 bytes of `value` **without** the terminating NUL, after checking that it is a string,
 * has no embedded NUL and is at most `maxBytes` long.
 * @throws InvalidArgumentError
 */
export function encodeCString(value: string, maxBytes: number, cname: string): Buffer {
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(cname, [{ path: '', message: 'must be a string', value }]);
  }
  const bytes = Buffer.from(value, 'utf8');
  const problems = [];
  if (bytes.includes(0)) problems.push({ path: '', message: 'must not contain a NUL byte', value });
  if (bytes.length > maxBytes) {
    problems.push({
      path: '',
      message: `is ${bytes.length} bytes; at most ${maxBytes} bytes fit (plus the terminating NUL)`,
      value,
    });
  }
  if (problems.length > 0) throw new InvalidArgumentError(cname, problems);
  return bytes;
}

/**
 * Explicit padding (compiler-inserted or a C `padding`/`__reserved` member). Encodes as zeros,
 * and is dropped from decoded objects by {@link decodeStruct}.
 */
export class Pad extends Layout<undefined> {
  constructor(span: number, property: string) {
    super(span, property);
  }
  override decode(): undefined {
    return undefined;
  }
  /** Zeroes the padding at `offset`; returns its size. */
  override encode(_src: undefined, b: Uint8Array, offset = 0): number {
    b.fill(0, offset, offset + this.span);
    return this.span;
  }
}

/** `span` bytes of padding named `property` (`_pad0`, or the C name of a padding member). */
export const pad = (span: number, property: string): Pad => new Pad(span, property);

/**
 * Declares a struct layout whose decoded shape is `T`, and checks its span against the C
 * `sizeof` when given (a mistake in a layout table fails at import time, not in the kernel).
 * Pads are not part of `T`; the cast below is the only place where that is papered over.
 */
export function defineStruct<T>(cname: string, fields: Layout<unknown>[], sizeof?: number): Structure<T> {
  const layout = struct<T>(fields as unknown as Layout<T[keyof T]>[], cname);
  if (sizeof !== undefined && layout.span !== sizeof) {
    throw new Error(`layout ${cname}: span ${layout.span} != sizeof ${sizeof}`);
  }
  return layout;
}

/**
 * `offsetof(struct, property)` from a layout, for hand-coded fast paths: they take their offsets
 * from the layout at module load, so the ABI tests that pin the layout also pin them.
 * @throws Error at import time when the layout has no such field.
 */
export function fieldOffset<T>(layout: Structure<T>, property: string): number {
  const off = layout.offsetOf(property);
  if (off === undefined) throw new Error(`layout ${layout.property ?? 'struct'} has no field ${property}`);
  return off;
}

/** The CharArray field `property` of a layout (for fast paths; see {@link fieldOffset}). */
export function charArrayField<T>(layout: Structure<T>, property: string): CharArray {
  const f = (layout.fields as Layout<unknown>[]).find((x) => x.property === property);
  if (!(f instanceof CharArray)) throw new Error(`layout ${layout.property ?? 'struct'}: ${property} is not a char array`);
  return f;
}

/**
 * The error {@link encodeStruct} throws when a number does not fit its field, for hand-coded
 * encoders that write with Buffer.write*: RangeError/TypeError → InvalidArgumentError.
 */
export function encodeFailure<T>(layout: Structure<T>, err: unknown): unknown {
  if (err instanceof InvalidArgumentError) return err;
  return new InvalidArgumentError(layout.property ?? 'struct', [{ path: '', message: String((err as Error)?.message ?? err) }], {
    cause: err,
  });
}

/** The error {@link decodeStruct} throws when the struct does not fit at `offset`. */
export function shortStructError<T>(layout: Structure<T>, b: Uint8Array, offset: number): KernelOutputError {
  return new KernelOutputError(
    `${layout.property ?? 'struct'}: need ${layout.span} bytes at offset ${offset}, buffer has ${b.length}`,
    hexSnippet(b, offset, b.length),
  );
}

function stripPads(layout: Structure<unknown>, value: Record<string, unknown>): void {
  for (const f of layout.fields as Layout<unknown>[]) {
    if (f.property === undefined) continue;
    if (f instanceof Pad) delete value[f.property];
    else if (f instanceof Structure) stripPads(f as Structure<unknown>, value[f.property] as Record<string, unknown>);
  }
}

function zeroPads(layout: Structure<unknown>, b: Uint8Array, offset: number): void {
  let off = offset;
  for (const f of layout.fields as Layout<unknown>[]) {
    if (f instanceof Pad) b.fill(0, off, off + f.span);
    else if (f instanceof Structure) zeroPads(f as Structure<unknown>, b, off);
    off += f.span;
  }
}

/**
 * Decodes one fixed-size struct at `offset`, after checking that the whole struct lies inside
 * `b`. @throws KernelOutputError when it does not, or when a char[] field is unterminated.
 */
export function decodeStruct<T>(layout: Structure<T>, b: Uint8Array, offset = 0): T {
  const name = layout.property ?? 'struct';
  if (!Number.isInteger(offset) || offset < 0 || b.length - offset < layout.span) {
    throw new KernelOutputError(
      `${name}: need ${layout.span} bytes at offset ${offset}, buffer has ${b.length}`,
      hexSnippet(b, offset, b.length),
    );
  }
  const value = layout.decode(b, offset) as unknown as Record<string, unknown>;
  stripPads(layout as Structure<unknown>, value);
  return value as T;
}

/**
 * Encodes `value` into `b` at `offset` (or into a new zeroed buffer of exactly `span` bytes).
 * Padding is always zeroed. Out-of-range numbers become InvalidArgumentError rather than the
 * RangeError buffer-layout would throw.
 * @throws InvalidArgumentError
 */
export function encodeStruct<T>(layout: Structure<T>, value: T, b?: Buffer, offset = 0): Buffer {
  const name = layout.property ?? 'struct';
  const out = b ?? Buffer.alloc(layout.span);
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < layout.span) {
    throw new InvalidArgumentError(name, [
      { path: '', message: `need ${layout.span} bytes at offset ${offset}, buffer has ${out.length}` },
    ]);
  }
  try {
    layout.encode(value, out, offset);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(name, [{ path: '', message: String((err as Error).message ?? err) }], {
      cause: err,
    });
  }
  zeroPads(layout as Structure<unknown>, out, offset);
  return out;
}

/** Rounds `n` up to a multiple of 8 (kernel `ALIGN(n, 8)`). */
export const align8 = (n: number): number => (n + 7) & ~7;

/**
 * Reads a NUL-terminated string that starts at `start` and must end (NUL included) before
 * `end`. @throws KernelOutputError ("not NUL-terminated") otherwise.
 */
export function readCString(b: Uint8Array, start: number, end: number, what: string): { value: string; nul: number } {
  const buf = asBuffer(b);
  const limit = Math.min(end, buf.length);
  if (start < 0 || start >= limit) {
    throw new KernelOutputError(`${what}: string offset ${start} is outside 0..${limit}`, hexSnippet(buf, 0, limit));
  }
  const nul = buf.indexOf(0, start);
  if (nul < 0 || nul >= limit) {
    throw new KernelOutputError(`${what}: string at ${start} is not NUL-terminated before ${limit}`, hexSnippet(buf, start, limit));
  }
  return { value: buf.toString('utf8', start, nul), nul };
}
