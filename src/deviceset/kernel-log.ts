// SPDX-License-Identifier: MIT
// The kernel log lines written since a moment: what a failed mount(2) explains only in dmesg.
/**
 * mount(2) answers a bare errno (EINVAL for a bad option, a corrupt superblock or a wrong
 * filesystem type alike); the filesystem says what was wrong only in the kernel log
 * ("EXT4-fs (dm-3): Unrecognized mount option …"). Docker appended the last 256 bytes of the
 * whole dmesg buffer to its error, whoever wrote them. We read the records of /dev/kmsg written
 * since this mount began and prefer those that name its dm-N device.
 *
 * /dev/kmsg (Documentation/ABI/testing/dev-kmsg): every read(2) returns exactly one record,
 * `<prio+facility>,<seq>,<usec>,<flags>[,…];<text>\n` followed by `\n <KEY>=<value>` continuation
 * lines; O_NONBLOCK makes the read answer EAGAIN at the end of the buffer and EPIPE when the
 * record at the reader's position was overwritten (the next read goes on with the oldest one).
 * A cursor opened before the mount reads, after a failure, exactly the records written in
 * between. It is put after the newest record with one lseek(fd, 0, SEEK_END) ("seek after the
 * last entry in the buffer", the ABI document; kernel/printk/printk.c devkmsg_llseek sets the
 * reader's sequence number to the ring buffer's next one, prb_next_seq(): memory work, no wait),
 * whatever the log holds. node:fs has no lseek, so it goes through the Syscalls seam (src/ioctl,
 * the only place that calls libc). The open goes through fs/promises and the reads of a failed
 * mount through its FileHandle, so a mount makes no synchronous file call for the log. Where the
 * lseek is missing or fails, the cursor is positioned as before it existed: by reading (and
 * dropping) every record there is until EAGAIN, one read per record (thousands on a busy log),
 * off the event loop too. Comparing timestamps instead is fragile: the printk clock is
 * local_clock(), not CLOCK_MONOTONIC, and a first version that filtered on process.hrtime found
 * nothing in the VM suite (though the two clocks agreed within 20 ms in an idle guest).
 */
import * as fs from 'node:fs';
import { realSyscalls, SEEK_END, type Syscalls } from '../ioctl/index.js';

/** One kernel log record. */
export interface KmsgRecord {
  /** syslog priority (0 emerg … 7 debug). */
  readonly level: number;
  /** The record's sequence number. */
  readonly seq: bigint;
  /** printk timestamp, µs since boot. */
  readonly usec: bigint;
  /** The message, continuation lines dropped. */
  readonly text: string;
}

/** A position in the kernel log: {@link KernelLogCursor.read} returns what was logged after it. */
export interface KernelLogCursor {
  /** The records written since the cursor was opened (or last read). Never rejects. */
  read(): Promise<KmsgRecord[]>;
  /** Releases the cursor. Idempotent; never rejects. */
  close(): Promise<void>;
}

/** Opens a cursor at the end of the kernel log; null when the log cannot be read. */
export type KernelLog = () => Promise<KernelLogCursor | null>;

/** Parses one /dev/kmsg record; undefined when it is not one. */
export function parseKmsgRecord(raw: string): KmsgRecord | undefined {
  const semi = raw.indexOf(';');
  if (semi < 0) return undefined;
  const fields = raw.slice(0, semi).split(',');
  if (fields.length < 4) return undefined;
  const [prio, seq, usec] = fields as [string, string, string];
  if (!/^\d+$/.test(prio) || !/^\d+$/.test(seq) || !/^\d+$/.test(usec)) return undefined;
  const end = raw.indexOf('\n', semi);
  const text = unescapeKmsg(raw.slice(semi + 1, end < 0 ? raw.length : end));
  return { level: Number(prio) & 7, seq: BigInt(seq), usec: BigInt(usec), text };
}

/** The kernel escapes non-printable bytes as `\xNN` (printk's devkmsg format). */
function unescapeKmsg(s: string): string {
  return s.replace(/\\x([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Bounds one read: the kernel's buffer holds at most a few thousand records. */
const MAX_RECORDS = 100_000;
const RECORD_BYTES = 8192;

/** Where {@link openKernelLog} reads. */
export interface KernelLogOptions {
  /** The log device. Default /dev/kmsg. */
  readonly path?: string;
  /**
   * Where lseek(2) comes from. Default the real seam ({@link realSyscalls}): the fd is a real one.
   * Without `lseek`, or when it fails, the cursor is positioned by reading the records there are.
   */
  readonly sys?: Pick<Syscalls, 'lseek'>;
}

/**
 * Opens the kernel log (O_NONBLOCK, through fs/promises) positioned after its newest record,
 * with one lseek(SEEK_END). Resolves to null when the log cannot be read (no /dev/kmsg, EPERM
 * under dmesg_restrict without CAP_SYSLOG): the caller only adds the lines to an error message.
 * Never rejects.
 */
export async function openKernelLog(options: KernelLogOptions = {}): Promise<KernelLogCursor | null> {
  let file: fs.promises.FileHandle;
  try {
    file = await fs.promises.open(options.path ?? '/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  if (!seekToEnd(file.fd, options.sys ?? realSyscalls())) await skipRecords(file);
  let open = true;
  return {
    read: () => (open ? readRecords(file) : Promise.resolve([])),
    close: async () => {
      if (!open) return;
      open = false;
      await file.close().catch(() => undefined);
    },
  };
}

/** lseek(fd, 0, SEEK_END); false when the seam has no lseek or the call failed. */
function seekToEnd(fd: number, sys: Pick<Syscalls, 'lseek'>): boolean {
  if (!sys.lseek) return false;
  try {
    sys.lseek(fd, 0n, SEEK_END);
    return true;
  } catch {
    return false; // not /dev/kmsg's lseek (an old or odd kernel), or libc could not be loaded
  }
}

/** Reads and drops the records there are now: the reader's position ends after the newest one. */
async function skipRecords(file: fs.promises.FileHandle): Promise<void> {
  const buf = Buffer.allocUnsafe(RECORD_BYTES);
  for (let i = 0; i < MAX_RECORDS; i++) {
    try {
      if ((await file.read(buf, 0, buf.length, null)).bytesRead === 0) return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') continue; // overwritten: go on with the oldest
      return; // EAGAIN: the end
    }
  }
}

async function readRecords(file: fs.promises.FileHandle): Promise<KmsgRecord[]> {
  const out: KmsgRecord[] = [];
  const buf = Buffer.allocUnsafe(RECORD_BYTES);
  for (let i = 0; i < MAX_RECORDS; i++) {
    let n: number;
    try {
      n = (await file.read(buf, 0, buf.length, null)).bytesRead;
    } catch (err) {
      // EPIPE: records were overwritten under us; the next read resumes at the oldest one.
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') continue;
      break; // EAGAIN: the end; anything else (the cursor closed meanwhile): give up quietly
    }
    if (n === 0) break;
    out.push(...parseKmsgChunk(buf.toString('utf8', 0, n)));
  }
  return out;
}

/**
 * The records of one read. /dev/kmsg returns exactly one; a regular file standing in for it
 * (tests) returns several at once, split here where a line does not begin with the space of a
 * continuation line.
 */
function parseKmsgChunk(chunk: string): KmsgRecord[] {
  const out: KmsgRecord[] = [];
  for (const raw of chunk.split(/\n(?! )/)) {
    const rec = parseKmsgRecord(raw);
    if (rec) out.push(rec);
  }
  return out;
}

/**
 * The lines worth showing for a failure of `kernelName` (`dm-3`): the records naming it, or
 * when none does, the last few of the window. At most `max` lines, newest last.
 */
export function kernelLogTail(records: readonly KmsgRecord[], kernelName: string, max = 8): string[] {
  const word = new RegExp(`\\b${kernelName.replace(/[^\w-]/g, '')}\\b`);
  const named = records.filter((r) => word.test(r.text));
  return (named.length > 0 ? named : records).slice(-max).map((r) => r.text);
}
