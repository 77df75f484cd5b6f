// SPDX-License-Identifier: MIT
// A stub kernel: a `Syscalls` whose every request answers at once with a plausible reply. Used by
// `bench:overhead` (our JavaScript per call, natively) and by the guest bench's JIT warm-up
// (bench/lib/jit-warmup.ts), which runs the measured library paths through it so that V8 has
// optimized them before the real kernel is timed.
//
// Replies, by request (the header's flags and name are read from the request buffer):
// - DM_LIST_DEVICES: 101 devices;
// - DM_TABLE_STATUS with DM_STATUS_TABLE_FLAG: a thin-pool table line for a name ending in
//   "pool", else a thin table line (thin id 1 of 253:3); without it a thin-pool status line;
// - DM_DEV_SUSPEND: a resume that made a table live (DM_ACTIVE_PRESENT_FLAG);
// - anything else: a bare header (success, not suspended, device 253:3).
import * as io from '../../src/ioctl/index.js';
import type { IoctlArg, StatResult, Syscalls } from '../../src/ioctl/index.js';

/** The kernel's reply to fill in, per request. */
type Reply = (buf: Buffer) => void;

const LIST = io.encodeNameList(
  Array.from({ length: 101 }, (_, i) => ({ name: `dmbench-list-device-${i}`, dev: (253n << 8n) | BigInt(i), event_nr: 0, flags: 0 })),
  47,
  false,
  io.DM_IOCTL_SIZE,
);
const STATUS_LINE = '5 345/131072 2048/16384 - rw discard_passdown queue_if_no_space - 1024';
const STATUS = io.encodeTargetSpecs([{ sector_start: 0n, length: 2097152n, target_type: 'thin-pool', params: STATUS_LINE }], 'data_start');
const POOL_TABLE = io.encodeTargetSpecs([{ sector_start: 0n, length: 2097152n, target_type: 'thin-pool', params: '7:0 7:1 128 0 1 skip_block_zeroing' }], 'data_start');
const THIN_TABLE = io.encodeTargetSpecs([{ sector_start: 0n, length: 2048n, target_type: 'thin', params: '253:3 1' }], 'data_start');

/** struct dm_ioctl: flags at 28, name[128] at 48 (include/uapi/linux/dm-ioctl.h). */
const FLAGS_OFFSET = 28;
const NAME_OFFSET = 48;

function header(buf: Buffer, payload: Buffer | null, targets: number, flags: number): void {
  buf.writeUInt32LE(4, 0);
  buf.writeUInt32LE(47, 4);
  buf.writeUInt32LE(0, 8);
  if (payload) {
    payload.copy(buf, io.DM_IOCTL_SIZE);
    buf.writeUInt32LE(io.DM_IOCTL_SIZE + payload.length, 12);
  }
  buf.writeUInt32LE(targets, 20);
  buf.writeUInt32LE(flags, 28);
  buf.writeBigUInt64LE(0xfd03n, 40);
}

/** Whether the NUL-terminated name in the request ends in "pool". */
function namesPool(buf: Buffer): boolean {
  const end = buf.indexOf(0, NAME_OFFSET);
  const stop = end < 0 || end > NAME_OFFSET + 128 ? NAME_OFFSET + 128 : end;
  return stop - NAME_OFFSET >= 4 && buf.toString('latin1', stop - 4, stop) === 'pool';
}

const REPLIES = new Map<string, Reply>([
  ['DM_LIST_DEVICES', (b) => header(b, LIST, 0, 0)],
  [
    'DM_TABLE_STATUS',
    (b) => {
      if ((b.readUInt32LE(FLAGS_OFFSET) & io.DM_STATUS_TABLE_FLAG) !== 0) header(b, namesPool(b) ? POOL_TABLE : THIN_TABLE, 1, io.DM_ACTIVE_PRESENT_FLAG);
      else header(b, STATUS, 1, io.DM_ACTIVE_PRESENT_FLAG);
    },
  ],
  // A resume that made a table live: DmControl then brings /dev/mapper/NAME in line.
  ['DM_DEV_SUSPEND', (b) => header(b, null, 0, io.DM_ACTIVE_PRESENT_FLAG)],
]);

const enoent = (path: string): never => {
  throw new io.IoctlError({ syscall: 'stat', errno: 2, path });
};
const stubDir: StatResult = { dev: 5n, ino: 1n, rdev: 0n, mode: 0o040755, size: 0n, blocks: 0n };
const stubControl: StatResult = { dev: 5n, ino: 2n, rdev: io.makedev(10, 236), mode: 0o020600, size: 0n, blocks: 0n };

/**
 * A kernel that answers every request at once (dm requests with a plausible reply). With
 * `batch`, it also has `openBatch`: batches run inline through the same `ioctl`, so
 * DmControl({ batch: true }) takes its batched paths.
 */
export function stubKernel(options: { readonly batch?: boolean } = {}): Syscalls {
  const ioctl = (_fd: number, _req: number, arg: IoctlArg, name: string): number => {
    if (Buffer.isBuffer(arg)) (REPLIES.get(name) ?? ((b: Buffer) => header(b, null, 0, 0)))(arg);
    return 0;
  };
  const sys: Syscalls = {
    open: () => 1000,
    close: () => undefined,
    ioctl,
    ioctlAsync: async (fd, req, arg, name) => ioctl(fd, req, arg, name),
    fstat: () => stubDir,
    stat: (p) => (p.endsWith('/mapper/control') ? stubControl : p.endsWith('/mapper') ? stubDir : enoent(p)),
    lstat: (p) => enoent(p),
    mknod: () => undefined,
    unlink: () => undefined,
    rename: () => undefined,
    mkdir: () => undefined,
    fsync: () => undefined,
    flock: () => undefined,
    mountAsync: async () => undefined,
    umount2Async: async () => undefined,
    pollAsync: async () => 0,
  };
  return options.batch === true ? { ...sys, openBatch: () => io.inlineBatcher(sys) } : sys;
}
