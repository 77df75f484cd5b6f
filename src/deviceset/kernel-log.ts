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
 * between. It is put after the newest record by reading (and dropping) the records already there
 * until EAGAIN, with node:fs only: the ABI's other way, lseek(SEEK_END), is not in node:fs, and
 * nothing above src/ioctl calls libc. Comparing timestamps instead is fragile: the printk clock is
 * local_clock(), not CLOCK_MONOTONIC, and a first version that filtered on process.hrtime found
 * nothing in the VM suite (though the two clocks agreed within 20 ms in an idle guest).
 */
import * as fs from 'node:fs';

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
  /** The records written since the cursor was opened (or last read). Never throws. */
  read(): KmsgRecord[];
  /** Releases the cursor. Idempotent. */
  close(): void;
}

/** Opens a cursor at the end of the kernel log; null when the log cannot be read. */
export type KernelLog = () => KernelLogCursor | null;

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

/**
 * Opens /dev/kmsg (O_NONBLOCK) positioned after its newest record. Returns null when the log
 * cannot be read (no /dev/kmsg, EPERM under dmesg_restrict without CAP_SYSLOG): the caller only
 * adds the lines to an error message.
 */
export function openKernelLog(path = '/dev/kmsg'): KernelLogCursor | null {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  skipRecords(fd);
  let open = true;
  return {
    read: () => (open ? readRecords(fd) : []),
    close: () => {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

/** Reads and drops the records there are now: the reader's position ends after the newest one. */
function skipRecords(fd: number): void {
  const buf = Buffer.allocUnsafe(RECORD_BYTES);
  for (let i = 0; i < MAX_RECORDS; i++) {
    try {
      if (fs.readSync(fd, buf, 0, buf.length, null) === 0) return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') continue; // overwritten: go on with the oldest
      return; // EAGAIN: the end
    }
  }
}

function readRecords(fd: number): KmsgRecord[] {
  const out: KmsgRecord[] = [];
  const buf = Buffer.allocUnsafe(RECORD_BYTES);
  for (let i = 0; i < MAX_RECORDS; i++) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      // EPIPE: records were overwritten under us; the next read resumes at the oldest one.
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') continue;
      break; // EAGAIN: the end; anything else: give up quietly
    }
    if (n === 0) break;
    const rec = parseKmsgRecord(buf.toString('utf8', 0, n));
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
