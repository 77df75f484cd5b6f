// SPDX-License-Identifier: MIT
// Mirrors include/uapi/linux/dm-ioctl.h (interface 4.47.0, "-ioctl (2022-07-28)"): commands,
// request numbers, flags and the structs of the device-mapper control interface, plus pure
// encoders/decoders and walkers for the variable-length payloads that follow struct dm_ioctl.
//
// Kernel side: drivers/md/dm-ioctl.c. Payload conventions: data_size/data_start and the copy-back
// in copy_params(), validate_params() and ctl_ioctl(); result records at data_start, 8-aligned,
// in get_result_buffer() and align_ptr(); the two meanings of dm_target_spec.next in the comment
// on struct dm_target_spec (dm-ioctl.h) and in populate_table() (TABLE_LOAD input) vs
// retrieve_status() (TABLE_STATUS output).
import { seq, s32, u32 } from './buffer-layout.js';
import { InvalidArgumentError, KernelOutputError } from '../errors.js';
import { _IOWR } from './ioc.js';
import {
  align8,
  asBuffer,
  charArray,
  charArrayField,
  decodeStruct,
  defineStruct,
  encodeCString,
  encodeFailure,
  encodeStruct,
  fieldOffset,
  hexSnippet,
  pad,
  readCString,
  shortStructError,
  u64,
  U64,
} from './layout.js';

// ---------------------------------------------------------------------------------------------
// Sizes of the char arrays

/** `DM_NAME_LEN`: size of `dm_ioctl.name`; a name is at most 127 bytes plus its NUL. */
export const DM_NAME_LEN = 128;
/** `DM_UUID_LEN`: size of `dm_ioctl.uuid`; a uuid is at most 128 bytes plus its NUL. */
export const DM_UUID_LEN = 129;
/** `DM_MAX_TYPE_NAME`: size of `dm_target_spec.target_type` (15 bytes plus NUL). */
export const DM_MAX_TYPE_NAME = 16;
/** `DM_DIR`: the directory under /dev holding the control node and named device nodes. */
export const DM_DIR = 'mapper';
/** `DM_CONTROL_NODE`. */
export const DM_CONTROL_NODE = 'control';

// ---------------------------------------------------------------------------------------------
// Interface version of the header we mirror

/** `DM_VERSION_MAJOR` of the header mirrored here. The kernel refuses any other major (EINVAL). */
export const DM_VERSION_MAJOR = 4;
/** `DM_VERSION_MINOR` of the header mirrored here (4.47 = Linux 6.0 era). */
export const DM_VERSION_MINOR = 47;
/** `DM_VERSION_PATCHLEVEL`. */
export const DM_VERSION_PATCHLEVEL = 0;
/** `DM_VERSION_EXTRA`. */
export const DM_VERSION_EXTRA = '-ioctl (2022-07-28)';

// ---------------------------------------------------------------------------------------------
// Commands (enum in dm-ioctl.h) and request numbers

/** `DM_IOCTL`: the ioctl type byte of every device-mapper request. */
export const DM_IOCTL = 0xfd;

export const DM_VERSION_CMD = 0;
export const DM_REMOVE_ALL_CMD = 1;
export const DM_LIST_DEVICES_CMD = 2;
export const DM_DEV_CREATE_CMD = 3;
export const DM_DEV_REMOVE_CMD = 4;
export const DM_DEV_RENAME_CMD = 5;
export const DM_DEV_SUSPEND_CMD = 6;
export const DM_DEV_STATUS_CMD = 7;
export const DM_DEV_WAIT_CMD = 8;
export const DM_TABLE_LOAD_CMD = 9;
export const DM_TABLE_CLEAR_CMD = 10;
export const DM_TABLE_DEPS_CMD = 11;
export const DM_TABLE_STATUS_CMD = 12;
export const DM_LIST_VERSIONS_CMD = 13;
export const DM_TARGET_MSG_CMD = 14;
export const DM_DEV_SET_GEOMETRY_CMD = 15;
export const DM_DEV_ARM_POLL_CMD = 16;
export const DM_GET_TARGET_VERSION_CMD = 17;

// ---------------------------------------------------------------------------------------------
// struct dm_ioctl (312 bytes, align 8)

/**
 * `struct dm_ioctl`, the header of every dm request and response. The C members `padding`
 * (u32 @36) and `data[7]` (@305, the start of the payload area) are not represented: they are
 * always written as zeros.
 */
export interface RawDmIoctl {
  /** in: interface version spoken; out: the kernel's version (written back even on failure). */
  version: [number, number, number];
  /** in: total size of the buffer (header + payload); out: bytes the kernel wrote back. */
  data_size: number;
  /** Offset of the payload from the start of this header (results always at 312). */
  data_start: number;
  /** in (TABLE_LOAD): number of specs; out: number of targets reported. */
  target_count: number;
  /** out: openers of the mapped device (signed). */
  open_count: number;
  /** `DM_*_FLAG` bits. */
  flags: number;
  /** in: event_nr for DEV_WAIT, or the udev cookie for resume/remove/rename; out: event counter. */
  event_nr: number;
  /** Device number, kernel huge encoding (kdev.ts). */
  dev: bigint;
  /** NUL-terminated, ≤ 127 bytes. */
  name: string;
  /** NUL-terminated, ≤ 128 bytes. */
  uuid: string;
}

/** buffer-layout of `struct dm_ioctl`; field offsets are pinned by test/unit/ioctl against the C header. */
export const DmIoctlLayout = defineStruct<RawDmIoctl>(
  'dm_ioctl',
  [
    seq(u32(), 3, 'version'),
    u32('data_size'),
    u32('data_start'),
    u32('target_count'),
    s32('open_count'),
    u32('flags'),
    u32('event_nr'),
    pad(4, 'padding'),
    u64('dev'),
    charArray(DM_NAME_LEN, 'name', 'dm_ioctl.name'),
    charArray(DM_UUID_LEN, 'uuid', 'dm_ioctl.uuid'),
    pad(7, 'data'),
  ],
  312,
);

/** `sizeof(struct dm_ioctl)` = 312. Payloads start here (data_start = 312, as libdm does). */
export const DM_IOCTL_SIZE = DmIoctlLayout.span;
/**
 * `offsetof(struct dm_ioctl, data)` = 305. The kernel refuses `data_size` below this (EINVAL) and
 * reports `data_size = 305` for commands without output payload.
 */
export const DM_IOCTL_DATA_OFFSET = 305;

/** `DM_VERSION`: `_IOWR(0xfd, 0, struct dm_ioctl)` = 0xc138fd00. */
export const DM_VERSION = _IOWR(DM_IOCTL, DM_VERSION_CMD, DM_IOCTL_SIZE);
export const DM_REMOVE_ALL = _IOWR(DM_IOCTL, DM_REMOVE_ALL_CMD, DM_IOCTL_SIZE);
export const DM_LIST_DEVICES = _IOWR(DM_IOCTL, DM_LIST_DEVICES_CMD, DM_IOCTL_SIZE);
export const DM_DEV_CREATE = _IOWR(DM_IOCTL, DM_DEV_CREATE_CMD, DM_IOCTL_SIZE);
export const DM_DEV_REMOVE = _IOWR(DM_IOCTL, DM_DEV_REMOVE_CMD, DM_IOCTL_SIZE);
export const DM_DEV_RENAME = _IOWR(DM_IOCTL, DM_DEV_RENAME_CMD, DM_IOCTL_SIZE);
export const DM_DEV_SUSPEND = _IOWR(DM_IOCTL, DM_DEV_SUSPEND_CMD, DM_IOCTL_SIZE);
export const DM_DEV_STATUS = _IOWR(DM_IOCTL, DM_DEV_STATUS_CMD, DM_IOCTL_SIZE);
export const DM_DEV_WAIT = _IOWR(DM_IOCTL, DM_DEV_WAIT_CMD, DM_IOCTL_SIZE);
export const DM_DEV_ARM_POLL = _IOWR(DM_IOCTL, DM_DEV_ARM_POLL_CMD, DM_IOCTL_SIZE);
export const DM_TABLE_LOAD = _IOWR(DM_IOCTL, DM_TABLE_LOAD_CMD, DM_IOCTL_SIZE);
export const DM_TABLE_CLEAR = _IOWR(DM_IOCTL, DM_TABLE_CLEAR_CMD, DM_IOCTL_SIZE);
export const DM_TABLE_DEPS = _IOWR(DM_IOCTL, DM_TABLE_DEPS_CMD, DM_IOCTL_SIZE);
export const DM_TABLE_STATUS = _IOWR(DM_IOCTL, DM_TABLE_STATUS_CMD, DM_IOCTL_SIZE);
export const DM_LIST_VERSIONS = _IOWR(DM_IOCTL, DM_LIST_VERSIONS_CMD, DM_IOCTL_SIZE);
export const DM_GET_TARGET_VERSION = _IOWR(DM_IOCTL, DM_GET_TARGET_VERSION_CMD, DM_IOCTL_SIZE);
export const DM_TARGET_MSG = _IOWR(DM_IOCTL, DM_TARGET_MSG_CMD, DM_IOCTL_SIZE);
export const DM_DEV_SET_GEOMETRY = _IOWR(DM_IOCTL, DM_DEV_SET_GEOMETRY_CMD, DM_IOCTL_SIZE);

/** One dm command: its enum value, request number, C request name and minimum interface version. */
export interface DmCommandInfo {
  readonly cmd: number;
  readonly request: number;
  readonly name: DmRequestName;
  /** Smallest `version` to send for this command (libdm sends exactly this; see below). */
  readonly minVersion: readonly [number, number, number];
}

/** C names of the dm requests. */
export type DmRequestName =
  | 'DM_VERSION'
  | 'DM_REMOVE_ALL'
  | 'DM_LIST_DEVICES'
  | 'DM_DEV_CREATE'
  | 'DM_DEV_REMOVE'
  | 'DM_DEV_RENAME'
  | 'DM_DEV_SUSPEND'
  | 'DM_DEV_STATUS'
  | 'DM_DEV_WAIT'
  | 'DM_TABLE_LOAD'
  | 'DM_TABLE_CLEAR'
  | 'DM_TABLE_DEPS'
  | 'DM_TABLE_STATUS'
  | 'DM_LIST_VERSIONS'
  | 'DM_TARGET_MSG'
  | 'DM_DEV_SET_GEOMETRY'
  | 'DM_DEV_ARM_POLL'
  | 'DM_GET_TARGET_VERSION';

const cmd = (
  cmdNr: number,
  request: number,
  name: DmRequestName,
  minMinor: number,
): DmCommandInfo => Object.freeze({ cmd: cmdNr, request, name, minVersion: Object.freeze([4, minMinor, 0] as const) });

/**
 * Every dm command, indexed by its `*_CMD` number, with the **minimum interface version** to send.
 *
 * The versions are those of libdm's `_cmd_data_v4` table (lvm2 libdm/ioctl/libdm-iface.c):
 * 4.0.0 for the original commands, LIST_VERSIONS 4.1.0, TARGET_MSG 4.2.0, SET_GEOMETRY 4.6.0,
 * ARM_POLL 4.36.0, GET_TARGET_VERSION 4.41.0. Sending the minimum rather than our header's
 * 4.47.0 matters: the kernel rejects a request whose minor is *newer* than its own (EINVAL), so
 * a request stamped 4.47 would fail on a 4.40 kernel even for DM_DEV_REMOVE.
 */
export const DM_COMMANDS: readonly DmCommandInfo[] = Object.freeze([
  cmd(DM_VERSION_CMD, DM_VERSION, 'DM_VERSION', 0),
  cmd(DM_REMOVE_ALL_CMD, DM_REMOVE_ALL, 'DM_REMOVE_ALL', 0),
  cmd(DM_LIST_DEVICES_CMD, DM_LIST_DEVICES, 'DM_LIST_DEVICES', 0),
  cmd(DM_DEV_CREATE_CMD, DM_DEV_CREATE, 'DM_DEV_CREATE', 0),
  cmd(DM_DEV_REMOVE_CMD, DM_DEV_REMOVE, 'DM_DEV_REMOVE', 0),
  cmd(DM_DEV_RENAME_CMD, DM_DEV_RENAME, 'DM_DEV_RENAME', 0),
  cmd(DM_DEV_SUSPEND_CMD, DM_DEV_SUSPEND, 'DM_DEV_SUSPEND', 0),
  cmd(DM_DEV_STATUS_CMD, DM_DEV_STATUS, 'DM_DEV_STATUS', 0),
  cmd(DM_DEV_WAIT_CMD, DM_DEV_WAIT, 'DM_DEV_WAIT', 0),
  cmd(DM_TABLE_LOAD_CMD, DM_TABLE_LOAD, 'DM_TABLE_LOAD', 0),
  cmd(DM_TABLE_CLEAR_CMD, DM_TABLE_CLEAR, 'DM_TABLE_CLEAR', 0),
  cmd(DM_TABLE_DEPS_CMD, DM_TABLE_DEPS, 'DM_TABLE_DEPS', 0),
  cmd(DM_TABLE_STATUS_CMD, DM_TABLE_STATUS, 'DM_TABLE_STATUS', 0),
  cmd(DM_LIST_VERSIONS_CMD, DM_LIST_VERSIONS, 'DM_LIST_VERSIONS', 1),
  cmd(DM_TARGET_MSG_CMD, DM_TARGET_MSG, 'DM_TARGET_MSG', 2),
  cmd(DM_DEV_SET_GEOMETRY_CMD, DM_DEV_SET_GEOMETRY, 'DM_DEV_SET_GEOMETRY', 6),
  cmd(DM_DEV_ARM_POLL_CMD, DM_DEV_ARM_POLL, 'DM_DEV_ARM_POLL', 36),
  cmd(DM_GET_TARGET_VERSION_CMD, DM_GET_TARGET_VERSION, 'DM_GET_TARGET_VERSION', 41),
]);

const BY_REQUEST = new Map<number, DmCommandInfo>(DM_COMMANDS.map((c) => [c.request, c]));

/** The command for a request number, or undefined when it is not a dm request. */
export function dmCommand(request: number): DmCommandInfo | undefined {
  return BY_REQUEST.get(request >>> 0);
}

/** C name of a dm request number ('DM_DEV_REMOVE'), or `0x…` for anything else. */
export function dmRequestName(request: number): string {
  return BY_REQUEST.get(request >>> 0)?.name ?? `0x${(request >>> 0).toString(16)}`;
}

// ---------------------------------------------------------------------------------------------
// Flags (dm_ioctl.flags). Direction per the comments on each flag in include/uapi/linux/dm-ioctl.h
// and where drivers/md/dm-ioctl.c reads or sets it.

/** In (TABLE_LOAD): load read-only. Out: device/table is read-only. */
export const DM_READONLY_FLAG = 1 << 0;
/** In (DEV_SUSPEND): suspend; absent = resume. Out: device is suspended. */
export const DM_SUSPEND_FLAG = 1 << 1;
/**
 * Not in the uapi header (historic, bit 2). libdm sets it on every request; the kernel ignores and
 * preserves it. Exported only so decoders can name it.
 */
export const DM_EXISTS_FLAG = 1 << 2;
/** In (DEV_CREATE): use the minor in `dev`. */
export const DM_PERSISTENT_DEV_FLAG = 1 << 3;
/** In (TABLE_STATUS, DEV_WAIT): return the table instead of the status. */
export const DM_STATUS_TABLE_FLAG = 1 << 4;
/** Out: a live table is present. */
export const DM_ACTIVE_PRESENT_FLAG = 1 << 5;
/** Out: an inactive (loaded, not yet resumed) table is present. */
export const DM_INACTIVE_PRESENT_FLAG = 1 << 6;
/** Out: the payload did not fit; retry with a bigger buffer. Never trust the payload when set. */
export const DM_BUFFER_FULL_FLAG = 1 << 8;
/** In: obsolete, ignored by current kernels. */
export const DM_SKIP_BDGET_FLAG = 1 << 9;
/** In (suspend): don't freeze the filesystem. */
export const DM_SKIP_LOCKFS_FLAG = 1 << 10;
/** In (suspend): don't flush queued I/O; (status) don't let thin commit first. */
export const DM_NOFLUSH_FLAG = 1 << 11;
/** In: the query refers to the inactive table. */
export const DM_QUERY_INACTIVE_TABLE_FLAG = 1 << 12;
/** Out: a uevent carrying the cookie in event_nr was emitted. */
export const DM_UEVENT_GENERATED_FLAG = 1 << 13;
/** In (RENAME): set the uuid instead of the name; (LIST_DEVICES) include uuids. */
export const DM_UUID_FLAG = 1 << 14;
/** In: the kernel wipes its copy — and zeroes the whole user buffer — after use. */
export const DM_SECURE_DATA_FLAG = 1 << 15;
/** Out (TARGET_MSG): a result string was written at data_start. */
export const DM_DATA_OUT_FLAG = 1 << 16;
/** In/Out (REMOVE, REMOVE_ALL): defer removal of a busy device to its last close. */
export const DM_DEFERRED_REMOVE = 1 << 17;
/** Out: device is internally suspended. */
export const DM_INTERNAL_SUSPEND_FLAG = 1 << 18;
/** In (TABLE_STATUS): return IMA measurement text. */
export const DM_IMA_MEASUREMENT_FLAG = 1 << 19;

/** All named flags, by C name, for decoding flags into names (tests, error messages). */
export const DM_FLAGS: Readonly<Record<string, number>> = Object.freeze({
  DM_READONLY_FLAG,
  DM_SUSPEND_FLAG,
  DM_EXISTS_FLAG,
  DM_PERSISTENT_DEV_FLAG,
  DM_STATUS_TABLE_FLAG,
  DM_ACTIVE_PRESENT_FLAG,
  DM_INACTIVE_PRESENT_FLAG,
  DM_BUFFER_FULL_FLAG,
  DM_SKIP_BDGET_FLAG,
  DM_SKIP_LOCKFS_FLAG,
  DM_NOFLUSH_FLAG,
  DM_QUERY_INACTIVE_TABLE_FLAG,
  DM_UEVENT_GENERATED_FLAG,
  DM_UUID_FLAG,
  DM_SECURE_DATA_FLAG,
  DM_DATA_OUT_FLAG,
  DM_DEFERRED_REMOVE,
  DM_INTERNAL_SUSPEND_FLAG,
  DM_IMA_MEASUREMENT_FLAG,
});

/** Names of the flags set in `flags` ('DM_SUSPEND_FLAG|DM_ACTIVE_PRESENT_FLAG'), unknown bits as hex. */
export function dmFlagNames(flags: number): string[] {
  const names: string[] = [];
  let rest = flags >>> 0;
  for (const [name, bit] of Object.entries(DM_FLAGS)) {
    if (rest & bit) {
      names.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names;
}

/** dm_name_list trailing `flags`: the entry carries a uuid. */
export const DM_NAME_LIST_FLAG_HAS_UUID = 1;
/** dm_name_list trailing `flags`: uuids were requested and this device has none. */
export const DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID = 2;

// ---------------------------------------------------------------------------------------------
// dm_ioctl encode/decode

/** Header fields to encode; missing ones default (see {@link encodeDmIoctl}). The version is only read. */
export type DmIoctlInput = Partial<Omit<RawDmIoctl, 'version'>> & { version?: readonly [number, number, number] };

// Fast path. Every dm request encodes and decodes this header, and going through buffer-layout's
// Structure (a Buffer per field, a full header object, pad stripping) cost ~12 µs per build +
// decode natively, most of DmControl.version(). The functions below write and read the fields at
// fixed offsets with Buffer.write*/read* instead. The offsets are NOT hand-written: they are taken
// from DmIoctlLayout once, here, so the ABI tests that pin the layout against the C header pin the
// fast path too; the char arrays use the layout's own CharArray fields (same limits, same typed
// errors). The layout path (encodeDmIoctlLayout / decodeDmIoctlLayout) stays as the reference, and
// a unit test checks that both produce identical bytes and objects.
const H_VERSION = fieldOffset(DmIoctlLayout, 'version');
const H_DATA_SIZE = fieldOffset(DmIoctlLayout, 'data_size');
const H_DATA_START = fieldOffset(DmIoctlLayout, 'data_start');
const H_TARGET_COUNT = fieldOffset(DmIoctlLayout, 'target_count');
const H_OPEN_COUNT = fieldOffset(DmIoctlLayout, 'open_count');
const H_FLAGS = fieldOffset(DmIoctlLayout, 'flags');
const H_EVENT_NR = fieldOffset(DmIoctlLayout, 'event_nr');
const H_PADDING = fieldOffset(DmIoctlLayout, 'padding');
const H_DEV = fieldOffset(DmIoctlLayout, 'dev');
const H_NAME = fieldOffset(DmIoctlLayout, 'name');
const H_UUID = fieldOffset(DmIoctlLayout, 'uuid');
const H_DATA = fieldOffset(DmIoctlLayout, 'data');
const H_NAME_FIELD = charArrayField(DmIoctlLayout, 'name');
const H_UUID_FIELD = charArrayField(DmIoctlLayout, 'uuid');
const H_DEV_FIELD = new U64('dev');

function writeHeader(h: DmIoctlInput, b: Buffer, dataSize: number, dataStart: number): void {
  try {
    const v = h.version;
    if (v === undefined) {
      b.writeUInt32LE(DM_VERSION_MAJOR, H_VERSION);
      b.writeUInt32LE(0, H_VERSION + 4);
      b.writeUInt32LE(0, H_VERSION + 8);
    } else {
      b.writeUInt32LE(v[0], H_VERSION);
      b.writeUInt32LE(v[1], H_VERSION + 4);
      b.writeUInt32LE(v[2], H_VERSION + 8);
    }
    b.writeUInt32LE(dataSize, H_DATA_SIZE);
    b.writeUInt32LE(dataStart, H_DATA_START);
    b.writeUInt32LE(h.target_count ?? 0, H_TARGET_COUNT);
    b.writeInt32LE(h.open_count ?? 0, H_OPEN_COUNT);
    b.writeUInt32LE(h.flags ?? 0, H_FLAGS);
    b.writeUInt32LE(h.event_nr ?? 0, H_EVENT_NR);
    b.writeUInt32LE(0, H_PADDING);
    H_DEV_FIELD.encode(h.dev ?? 0n, b, H_DEV);
    H_NAME_FIELD.writeTo(b, H_NAME, h.name ?? '');
    H_UUID_FIELD.writeTo(b, H_UUID, h.uuid ?? '');
    b.fill(0, H_DATA, DM_IOCTL_SIZE);
  } catch (err) {
    throw encodeFailure(DmIoctlLayout, err);
  }
}

/**
 * Encodes a dm_ioctl header into `buf` at offset 0 (or into a new 312-byte buffer). Missing fields
 * default to: version 4.0.0, data_size = data_start = 312, everything else 0/''.
 * @throws InvalidArgumentError when name > 127 bytes, uuid > 128 bytes, or a number is out of range.
 */
export function encodeDmIoctl(header: DmIoctlInput, buf?: Buffer): Buffer {
  const out = buf ?? Buffer.alloc(DM_IOCTL_SIZE);
  if (out.length < DM_IOCTL_SIZE) return encodeDmIoctlLayout(header, out); // its typed error
  writeHeader(header, out, header.data_size ?? DM_IOCTL_SIZE, header.data_start ?? DM_IOCTL_SIZE);
  return out;
}

/**
 * Decodes the dm_ioctl header at offset 0 of `buf`.
 * @throws KernelOutputError when `buf` is shorter than 312 bytes or name/uuid lack their NUL.
 */
export function decodeDmIoctl(buf: Uint8Array): RawDmIoctl {
  if (buf.length < DM_IOCTL_SIZE) throw shortStructError(DmIoctlLayout, buf, 0);
  const b = asBuffer(buf);
  return {
    version: [b.readUInt32LE(H_VERSION), b.readUInt32LE(H_VERSION + 4), b.readUInt32LE(H_VERSION + 8)],
    data_size: b.readUInt32LE(H_DATA_SIZE),
    data_start: b.readUInt32LE(H_DATA_START),
    target_count: b.readUInt32LE(H_TARGET_COUNT),
    open_count: b.readInt32LE(H_OPEN_COUNT),
    flags: b.readUInt32LE(H_FLAGS),
    event_nr: b.readUInt32LE(H_EVENT_NR),
    dev: b.readBigUInt64LE(H_DEV),
    name: H_NAME_FIELD.readFrom(b, H_NAME),
    uuid: H_UUID_FIELD.readFrom(b, H_UUID),
  };
}

function fullHeader(h: DmIoctlInput): RawDmIoctl {
  return {
    version: h.version ? [h.version[0], h.version[1], h.version[2]] : [DM_VERSION_MAJOR, 0, 0],
    data_size: h.data_size ?? DM_IOCTL_SIZE,
    data_start: h.data_start ?? DM_IOCTL_SIZE,
    target_count: h.target_count ?? 0,
    open_count: h.open_count ?? 0,
    flags: h.flags ?? 0,
    event_nr: h.event_nr ?? 0,
    dev: h.dev ?? 0n,
    name: h.name ?? '',
    uuid: h.uuid ?? '',
  };
}

/** Reference encoder through buffer-layout (what {@link encodeDmIoctl} must match byte for byte). */
export function encodeDmIoctlLayout(header: DmIoctlInput, buf?: Buffer): Buffer {
  return encodeStruct(DmIoctlLayout, fullHeader(header), buf, 0);
}

/** Reference decoder through buffer-layout (what {@link decodeDmIoctl} must match). */
export function decodeDmIoctlLayout(buf: Uint8Array): RawDmIoctl {
  return decodeStruct(DmIoctlLayout, buf, 0);
}

/**
 * Builds a complete request buffer: header at 0, `payload` at data_start = 312, total size
 * max(312 + payload.length, minSize) (the extra room is where the kernel writes results), and
 * `data_size` = the buffer length, `data_start` = 312.
 */
export function buildDmRequest(header: DmIoctlInput, payload?: Uint8Array, minSize = 0): Buffer {
  const needed = DM_IOCTL_SIZE + (payload?.length ?? 0);
  const size = Math.max(needed, minSize);
  // allocUnsafe: small requests come from Node's shared slab instead of a new zeroed ArrayBuffer
  // per ioctl (allocation + GC were a fifth of a DmControl call natively). Nothing is left
  // uninitialised: writeHeader writes all 312 header bytes (char fields and pads included), the
  // payload follows, and the rest is zeroed.
  const buf = Buffer.allocUnsafe(size);
  writeHeader(header, buf, size, DM_IOCTL_SIZE);
  if (payload) buf.set(payload, DM_IOCTL_SIZE);
  if (needed < size) buf.fill(0, needed);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// struct dm_target_spec (40 bytes) + params

/** `struct dm_target_spec` without the parameter string that follows it. */
export interface RawDmTargetSpec {
  /** First sector (512 bytes) covered by this target. */
  sector_start: bigint;
  /** Length in sectors. */
  length: bigint;
  /** Always 0 on input; 0 on output. */
  status: number;
  /** Input (TABLE_LOAD): bytes from this spec to the next; output: bytes from data_start to the next. */
  next: number;
  /** ≤ 15 bytes. */
  target_type: string;
}

/** buffer-layout of `struct dm_target_spec`. */
export const DmTargetSpecLayout = defineStruct<RawDmTargetSpec>(
  'dm_target_spec',
  [
    u64('sector_start'),
    u64('length'),
    s32('status'),
    u32('next'),
    charArray(DM_MAX_TYPE_NAME, 'target_type', 'dm_target_spec.target_type'),
  ],
  40,
);
/** `sizeof(struct dm_target_spec)` = 40. */
export const DM_TARGET_SPEC_SIZE = DmTargetSpecLayout.span;

// Fast path for the per-spec encode/decode (TABLE_LOAD input, TABLE_STATUS output), offsets
// from the layout as for dm_ioctl above.
const S_SECTOR_START = fieldOffset(DmTargetSpecLayout, 'sector_start');
const S_LENGTH = fieldOffset(DmTargetSpecLayout, 'length');
const S_STATUS = fieldOffset(DmTargetSpecLayout, 'status');
const S_NEXT = fieldOffset(DmTargetSpecLayout, 'next');
const S_TARGET_TYPE = fieldOffset(DmTargetSpecLayout, 'target_type');
const S_TARGET_TYPE_FIELD = charArrayField(DmTargetSpecLayout, 'target_type');
const S_SECTOR_START_FIELD = new U64('sector_start');
const S_LENGTH_FIELD = new U64('length');

/** Encodes one spec (without params). */
export function encodeDmTargetSpec(spec: RawDmTargetSpec, buf?: Buffer, offset = 0): Buffer {
  const out = buf ?? Buffer.alloc(DM_TARGET_SPEC_SIZE);
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < DM_TARGET_SPEC_SIZE) {
    return encodeStruct(DmTargetSpecLayout, spec, out, offset); // its typed error
  }
  try {
    S_SECTOR_START_FIELD.encode(spec.sector_start, out, offset + S_SECTOR_START);
    S_LENGTH_FIELD.encode(spec.length, out, offset + S_LENGTH);
    out.writeInt32LE(spec.status, offset + S_STATUS);
    out.writeUInt32LE(spec.next, offset + S_NEXT);
    S_TARGET_TYPE_FIELD.writeTo(out, offset + S_TARGET_TYPE, spec.target_type);
  } catch (err) {
    throw encodeFailure(DmTargetSpecLayout, err);
  }
  return out;
}
/** Decodes one spec at `offset` (length-checked). */
export function decodeDmTargetSpec(buf: Uint8Array, offset = 0): RawDmTargetSpec {
  if (!Number.isInteger(offset) || offset < 0 || buf.length - offset < DM_TARGET_SPEC_SIZE) {
    throw shortStructError(DmTargetSpecLayout, buf, offset);
  }
  const b = asBuffer(buf);
  return {
    sector_start: b.readBigUInt64LE(offset + S_SECTOR_START),
    length: b.readBigUInt64LE(offset + S_LENGTH),
    status: b.readInt32LE(offset + S_STATUS),
    next: b.readUInt32LE(offset + S_NEXT),
    target_type: S_TARGET_TYPE_FIELD.readFrom(b, offset + S_TARGET_TYPE),
  };
}

/** One table line: a target spec with its parameter string. */
export interface DmTarget {
  sector_start: bigint;
  length: bigint;
  target_type: string;
  /** The table parameters (input, or output with DM_STATUS_TABLE_FLAG) or the status string. */
  params: string;
  /** Kernel-reported status field (output only; always 0 today). */
  status?: number;
}

/** Where `next` points relative to: see {@link RawDmTargetSpec.next}. */
export type SpecNextBase = 'spec' | 'data_start';

/**
 * Encodes target specs as a payload (to be placed at data_start = 312): per target the 40-byte
 * spec, the params and their NUL, zero-padded to a multiple of 8.
 *
 * `nextBase: 'spec'` (default) produces TABLE_LOAD input, where `next` is the padded size of the
 * record (bytes to the next spec; libdm fills it for the last spec too). `'data_start'` produces
 * TABLE_STATUS/DEV_WAIT output as the kernel writes it (offset of the next spec from data_start),
 * for fakes and tests.
 *
 * Params are passed verbatim: escaping backslashes (as libdm does) is the caller's business.
 * @throws InvalidArgumentError on an overlong target_type, an embedded NUL, or a bad number.
 */
export function encodeTargetSpecs(targets: readonly DmTarget[], nextBase: SpecNextBase = 'spec'): Buffer {
  const records = targets.map((t, i) => {
    const params = encodeCString(t.params, Number.MAX_SAFE_INTEGER, `targets[${i}].params`);
    return { t, params, size: align8(DM_TARGET_SPEC_SIZE + params.length + 1) };
  });
  const total = records.reduce((n, r) => n + r.size, 0);
  const buf = Buffer.alloc(total);
  let off = 0;
  for (const { t, params, size } of records) {
    encodeDmTargetSpec(
      {
        sector_start: t.sector_start,
        length: t.length,
        status: t.status ?? 0,
        next: nextBase === 'spec' ? size : off + size,
        target_type: t.target_type,
      },
      buf,
      off,
    );
    params.copy(buf, off + DM_TARGET_SPEC_SIZE);
    off += size;
  }
  return buf;
}

/** Validates the (dataStart, dataSize) window against the buffer; returns the end offset. */
function payloadEnd(buf: Uint8Array, dataStart: number, dataSize: number, what: string): number {
  if (!Number.isInteger(dataStart) || !Number.isInteger(dataSize) || dataStart < 0 || dataSize < 0) {
    throw new KernelOutputError(`${what}: bad data_start ${dataStart} / data_size ${dataSize}`, '');
  }
  if (dataSize > buf.length) {
    throw new KernelOutputError(
      `${what}: data_size ${dataSize} is larger than the ${buf.length}-byte buffer`,
      hexSnippet(buf, dataStart, buf.length),
    );
  }
  if (dataStart > dataSize) {
    throw new KernelOutputError(`${what}: data_start ${dataStart} is past data_size ${dataSize}`, '');
  }
  return dataSize;
}

/**
 * Walks `targetCount` target specs in `buf` (a whole ioctl buffer, header at offset 0) between
 * `dataStart` and `dataSize` (dm_ioctl.data_size, counted from the header).
 *
 * `nextBase` says how `next` is to be read: `'data_start'` (default) for TABLE_STATUS and
 * DEV_WAIT output, `'spec'` for TABLE_LOAD input (what a fake kernel receives).
 *
 * Refuses — with KernelOutputError, never a hang or RangeError — specs that don't fit, params
 * without a NUL before the end, a `next` that does not move past the current record's string
 * (this covers 0 and loops), or that points outside the payload.
 */
export function walkTargetSpecs(
  buf: Uint8Array,
  dataStart: number,
  dataSize: number,
  targetCount: number,
  nextBase: SpecNextBase = 'data_start',
): DmTarget[] {
  const what = 'dm_target_spec list';
  if (!Number.isInteger(targetCount) || targetCount < 0) {
    throw new KernelOutputError(`${what}: bad target_count ${targetCount}`, '');
  }
  // A device without the requested table answers target_count 0 and no payload at all
  // (data_size stays at 305, below data_start 312: drivers/md/dm-ioctl.c table_status/dev_wait
  // only call retrieve_status() when a table exists). That is a valid, empty reply.
  if (targetCount === 0) return [];
  const end = payloadEnd(buf, dataStart, dataSize, what);
  const out: DmTarget[] = [];
  let off = dataStart;
  for (let i = 0; i < targetCount; i++) {
    if (off + DM_TARGET_SPEC_SIZE > end) {
      throw new KernelOutputError(
        `${what}: target ${i} of ${targetCount} at offset ${off} does not fit before data_size ${end}`,
        hexSnippet(buf, off, end),
      );
    }
    const spec = decodeDmTargetSpec(buf, off);
    const { value: params, nul } = readCString(buf, off + DM_TARGET_SPEC_SIZE, end, `${what}: target ${i} params`);
    out.push({
      sector_start: spec.sector_start,
      length: spec.length,
      target_type: spec.target_type,
      params,
      status: spec.status,
    });
    if (i + 1 < targetCount) {
      const next = (nextBase === 'spec' ? off : dataStart) + spec.next;
      if (next <= nul || next + DM_TARGET_SPEC_SIZE > end) {
        throw new KernelOutputError(
          `${what}: target ${i} has next=${spec.next} (→ offset ${next}), which does not point past its ` +
            `params (end ${nul + 1}) and inside the payload (end ${end})`,
          hexSnippet(buf, off, end),
        );
      }
      off = next;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// struct dm_target_deps (TABLE_DEPS output)

/** `struct dm_target_deps` header; `dev[count]` u64s follow at +8. */
export interface RawDmTargetDeps {
  count: number;
}
/** buffer-layout of the fixed part of `struct dm_target_deps`. */
export const DmTargetDepsLayout = defineStruct<RawDmTargetDeps>(
  'dm_target_deps',
  [u32('count'), pad(4, 'padding')],
  8,
);
/** `sizeof(struct dm_target_deps)` = 8 (the `dev[]` array follows). */
export const DM_TARGET_DEPS_SIZE = DmTargetDepsLayout.span;

/**
 * Decodes TABLE_DEPS output: the huge-encoded device numbers of every device the table uses.
 * @throws KernelOutputError when count × 8 bytes don't fit before data_size.
 */
export function decodeTargetDeps(buf: Uint8Array, dataStart: number, dataSize: number): bigint[] {
  const what = 'dm_target_deps';
  // Without a table the kernel writes no dm_target_deps at all (table_deps() only calls
  // retrieve_deps() when a live or inactive table exists): data_size stays below data_start.
  if (Number.isInteger(dataSize) && Number.isInteger(dataStart) && dataSize <= dataStart && dataSize <= buf.length) return [];
  const end = payloadEnd(buf, dataStart, dataSize, what);
  if (dataStart + DM_TARGET_DEPS_SIZE > end) {
    throw new KernelOutputError(`${what}: header does not fit before data_size ${end}`, hexSnippet(buf, dataStart, end));
  }
  const { count } = decodeStruct(DmTargetDepsLayout, buf, dataStart);
  if (dataStart + DM_TARGET_DEPS_SIZE + count * 8 > end) {
    throw new KernelOutputError(`${what}: count ${count} needs ${8 + count * 8} bytes, payload has ${end - dataStart}`, hexSnippet(buf, dataStart, end));
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const devs: bigint[] = [];
  for (let i = 0; i < count; i++) devs.push(b.readBigUInt64LE(dataStart + DM_TARGET_DEPS_SIZE + i * 8));
  return devs;
}

/** Encodes a dm_target_deps payload (for fakes and tests). */
export function encodeTargetDeps(devs: readonly bigint[]): Buffer {
  const buf = Buffer.alloc(DM_TARGET_DEPS_SIZE + devs.length * 8);
  encodeStruct(DmTargetDepsLayout, { count: devs.length }, buf, 0);
  devs.forEach((d, i) => u64('dev').encode(d, buf, DM_TARGET_DEPS_SIZE + i * 8));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// struct dm_name_list (LIST_DEVICES output)

/** Fixed part of `struct dm_name_list`: `name` starts at offset 12 (sizeof is 16 with tail padding). */
export interface RawDmNameList {
  dev: bigint;
  /** Bytes from the start of this entry to the next one; 0 = last. */
  next: number;
}
/** buffer-layout of the fixed part (dev, next) of `struct dm_name_list`; `name[]` follows at 12. */
export const DmNameListLayout = defineStruct<RawDmNameList>('dm_name_list', [u64('dev'), u32('next')], 12);
const N_DEV = fieldOffset(DmNameListLayout, 'dev');
const N_NEXT = fieldOffset(DmNameListLayout, 'next');
/** `offsetof(struct dm_name_list, name)` = 12. */
export const DM_NAME_LIST_NAME_OFFSET = 12;
/** `sizeof(struct dm_name_list)` = 16 (tail padding after the 12-byte fixed part). */
export const DM_NAME_LIST_SIZE = 16;
/**
 * First dm interface minor whose LIST_DEVICES entries carry `event_nr` + `flags` after the name
 * (libdm: `_check_has_event_nr`, "minor >= 38").
 */
export const DM_NAME_LIST_EVENT_NR_MINOR = 38;

/** One LIST_DEVICES entry. */
export interface DmNameListEntry {
  name: string;
  dev: bigint;
  /** Present when the kernel's interface minor is ≥ 38. */
  event_nr?: number;
  /** The trailing `DM_NAME_LIST_FLAG_*` bits (minor ≥ 38). */
  flags?: number;
  /** Present when DM_UUID_FLAG was passed and the device has a uuid. */
  uuid?: string;
}

/**
 * Walks LIST_DEVICES output. `buf` is the whole ioctl buffer (header at 0: the trailing-field
 * alignment is relative to it), `dataStart`/`dataSize` come from the returned header, and
 * `kernelMinor` is the returned `version[1]` (trailing event_nr/flags exist from minor 38).
 *
 * Entry layout: dev u64 @0, next u32 @8, name @12 NUL-terminated; then, on new kernels, at
 * align8(end of name): event_nr u32, flags u32; then at align8(+8) the uuid if flags has
 * DM_NAME_LIST_FLAG_HAS_UUID. An empty list is "first entry dev == 0" (or no payload at all).
 *
 * @throws KernelOutputError for entries that don't fit, unterminated strings, or a `next` that
 * doesn't move past the entry's own fields or points outside the payload.
 */
export function walkNameList(buf: Uint8Array, dataStart: number, dataSize: number, kernelMinor: number): DmNameListEntry[] {
  const out: DmNameListEntry[] = [];
  visitNameList(buf, dataStart, dataSize, kernelMinor, (name, devLo, devHi, eventNr, flags, uuid) => {
    const entry: DmNameListEntry = { name, dev: (BigInt(devHi) << 32n) | BigInt(devLo) };
    if (eventNr !== undefined) entry.event_nr = eventNr;
    if (flags !== undefined) entry.flags = flags;
    if (uuid !== undefined) entry.uuid = uuid;
    out.push(entry);
  });
  return out;
}

/**
 * One dm_name_list entry, as positional arguments so that a decoder can build its own object
 * without an intermediate one: `dev` as its low and high 32 bits (no BigInt per entry), and
 * event_nr/flags/uuid undefined when the kernel did not write them.
 */
export type NameListVisitor = (name: string, devLo: number, devHi: number, eventNr: number | undefined, flags: number | undefined, uuid: string | undefined) => void;

/**
 * {@link walkNameList} without building its result: calls `visit` for each entry, in order, with
 * the same validation and the same errors. DmControl.listDevices decodes through this (one object
 * per device instead of two).
 * @throws KernelOutputError as {@link walkNameList}.
 */
export function visitNameList(buf: Uint8Array, dataStart: number, dataSize: number, kernelMinor: number, visit: NameListVisitor): void {
  const what = 'dm_name_list';
  const end = payloadEnd(buf, dataStart, dataSize, what);
  // The kernel reports an empty list as data_size == data_start with dev = 0 written at data_start.
  if (end - dataStart < DM_NAME_LIST_NAME_OFFSET) {
    if (end === dataStart) return;
    throw new KernelOutputError(`${what}: ${end - dataStart} payload bytes, too few for an entry`, hexSnippet(buf, dataStart, end));
  }
  const b = asBuffer(buf);
  let off = dataStart;
  for (let i = 0; ; i++) {
    if (off + DM_NAME_LIST_NAME_OFFSET > end) {
      throw new KernelOutputError(`${what}: entry ${i} at offset ${off} does not fit before data_size ${end}`, hexSnippet(buf, off, end));
    }
    // Direct reads at the layout's offsets (a Structure decode per entry cost ms for 100 entries
    // in the guest); the bounds check above covers the fixed part (end ≤ buf.length).
    const devLo = b.readUInt32LE(off + N_DEV);
    const devHi = b.readUInt32LE(off + N_DEV + 4);
    const next = b.readUInt32LE(off + N_NEXT);
    if (i === 0 && devLo === 0 && devHi === 0) return;
    const { value: name, nul } = readCString(buf, off + DM_NAME_LIST_NAME_OFFSET, end, `${what}: entry ${i} name`);
    let eventNr: number | undefined;
    let flags: number | undefined;
    let uuid: string | undefined;
    let fieldsEnd = nul + 1;
    if (kernelMinor >= DM_NAME_LIST_EVENT_NR_MINOR) {
      const e = align8(nul + 1);
      if (e + 8 > end) {
        throw new KernelOutputError(`${what}: entry ${i} event_nr/flags at ${e} run past data_size ${end}`, hexSnippet(buf, off, end));
      }
      eventNr = b.readUInt32LE(e);
      flags = b.readUInt32LE(e + 4);
      fieldsEnd = e + 8;
      if (flags & DM_NAME_LIST_FLAG_HAS_UUID) {
        const u = align8(e + 8);
        const r = readCString(buf, u, end, `${what}: entry ${i} uuid`);
        uuid = r.value;
        fieldsEnd = r.nul + 1;
      }
    }
    visit(name, devLo, devHi, eventNr, flags, uuid);
    if (next === 0) return;
    const nextOff = off + next;
    if (nextOff < fieldsEnd || nextOff + DM_NAME_LIST_NAME_OFFSET > end) {
      throw new KernelOutputError(
        `${what}: entry ${i} has next=${next} (→ offset ${nextOff}), which does not point past its fields ` +
          `(end ${fieldsEnd}) and inside the payload (end ${end})`,
        hexSnippet(buf, off, end),
      );
    }
    off = nextOff;
  }
}

/**
 * Encodes LIST_DEVICES output as a kernel of interface minor `kernelMinor` would (for fakes and
 * tests). `payloadOffset` is where the payload will sit in the ioctl buffer (alignment is
 * relative to the header); it must be a multiple of 8. `withUuid` mirrors DM_UUID_FLAG.
 * An empty list encodes as 8 zero bytes (dev = 0).
 */
export function encodeNameList(
  entries: readonly DmNameListEntry[],
  kernelMinor: number,
  withUuid = false,
  payloadOffset = DM_IOCTL_SIZE,
): Buffer {
  if (payloadOffset % 8 !== 0) throw new RangeError('payloadOffset must be a multiple of 8');
  if (entries.length === 0) return Buffer.alloc(8);
  const parts: Buffer[] = [];
  let abs = payloadOffset;
  entries.forEach((e, i) => {
    const name = encodeCString(e.name, DM_NAME_LEN - 1, `entries[${i}].name`);
    let end = abs + DM_NAME_LIST_NAME_OFFSET + name.length + 1;
    let evOff = -1;
    let uuid: Buffer | undefined;
    let uuidOff = -1;
    let flags = 0;
    if (kernelMinor >= DM_NAME_LIST_EVENT_NR_MINOR) {
      evOff = align8(end);
      end = evOff + 8;
      if (withUuid) {
        if (e.uuid) {
          uuid = encodeCString(e.uuid, DM_UUID_LEN - 1, `entries[${i}].uuid`);
          flags = DM_NAME_LIST_FLAG_HAS_UUID;
          uuidOff = align8(end);
          end = uuidOff + uuid.length + 1;
        } else flags = DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID;
      }
    }
    const size = align8(end) - abs;
    const rec = Buffer.alloc(size);
    encodeStruct(DmNameListLayout, { dev: e.dev, next: i + 1 < entries.length ? size : 0 }, rec, 0);
    name.copy(rec, DM_NAME_LIST_NAME_OFFSET);
    if (evOff >= 0) {
      rec.writeUInt32LE(e.event_nr ?? 0, evOff - abs);
      rec.writeUInt32LE(flags, evOff - abs + 4);
    }
    if (uuid) uuid.copy(rec, uuidOff - abs);
    parts.push(rec);
    abs += size;
  });
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// struct dm_target_versions (LIST_VERSIONS / GET_TARGET_VERSION output)

/** Fixed part of `struct dm_target_versions`; `name[]` follows at 16. */
export interface RawDmTargetVersions {
  /** Bytes from this entry to the next; 0 = last. */
  next: number;
  version: [number, number, number];
}
/** buffer-layout of the fixed part of `struct dm_target_versions`. */
export const DmTargetVersionsLayout = defineStruct<RawDmTargetVersions>(
  'dm_target_versions',
  [u32('next'), seq(u32(), 3, 'version')],
  16,
);
/** `sizeof(struct dm_target_versions)` = 16 = offset of `name`. */
export const DM_TARGET_VERSIONS_SIZE = DmTargetVersionsLayout.span;

/** One registered target type. */
export interface DmTargetVersion {
  name: string;
  version: [number, number, number];
}

/**
 * Walks LIST_VERSIONS (or the single GET_TARGET_VERSION) output. `next` is relative to the entry;
 * 0 ends the list. No payload (data_size == data_start) → [].
 * @throws KernelOutputError on bad offsets, unterminated names, non-advancing next.
 */
export function walkTargetVersions(buf: Uint8Array, dataStart: number, dataSize: number): DmTargetVersion[] {
  const what = 'dm_target_versions';
  const end = payloadEnd(buf, dataStart, dataSize, what);
  if (end === dataStart) return [];
  const out: DmTargetVersion[] = [];
  let off = dataStart;
  for (let i = 0; ; i++) {
    if (off + DM_TARGET_VERSIONS_SIZE > end) {
      throw new KernelOutputError(`${what}: entry ${i} at offset ${off} does not fit before data_size ${end}`, hexSnippet(buf, off, end));
    }
    const { next, version } = decodeStruct(DmTargetVersionsLayout, buf, off);
    const { value: name, nul } = readCString(buf, off + DM_TARGET_VERSIONS_SIZE, end, `${what}: entry ${i} name`);
    out.push({ name, version: [version[0], version[1], version[2]] });
    if (next === 0) return out;
    const nextOff = off + next;
    if (nextOff <= nul || nextOff + DM_TARGET_VERSIONS_SIZE > end) {
      throw new KernelOutputError(
        `${what}: entry ${i} has next=${next} (→ offset ${nextOff}), which does not point past its name and inside the payload (end ${end})`,
        hexSnippet(buf, off, end),
      );
    }
    off = nextOff;
  }
}

/** Encodes LIST_VERSIONS output (for fakes and tests): records padded to 8, last next = 0. */
export function encodeTargetVersions(entries: readonly DmTargetVersion[]): Buffer {
  const parts = entries.map((e, i) => {
    const name = encodeCString(e.name, DM_MAX_TYPE_NAME - 1, `entries[${i}].name`);
    const size = align8(DM_TARGET_VERSIONS_SIZE + name.length + 1);
    const rec = Buffer.alloc(size);
    encodeStruct(DmTargetVersionsLayout, { next: i + 1 < entries.length ? size : 0, version: e.version }, rec, 0);
    name.copy(rec, DM_TARGET_VERSIONS_SIZE);
    return rec;
  });
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// struct dm_target_msg (TARGET_MSG input) and plain string payloads

/** Fixed part of `struct dm_target_msg`; the NUL-terminated message follows at 8. */
export interface RawDmTargetMsg {
  /** Selects the target whose range contains this sector (0 for single-target tables). */
  sector: bigint;
}
/** buffer-layout of the fixed part of `struct dm_target_msg`. */
export const DmTargetMsgLayout = defineStruct<RawDmTargetMsg>('dm_target_msg', [u64('sector')], 8);
/** `sizeof(struct dm_target_msg)` = 8 = offset of `message`. */
export const DM_TARGET_MSG_SIZE = DmTargetMsgLayout.span;

/**
 * Encodes a TARGET_MSG payload: sector, message, NUL, zero-padded to a multiple of 8.
 * @throws InvalidArgumentError for an empty message (the kernel answers EINVAL) or an embedded NUL.
 */
export function encodeTargetMsg(sector: bigint, message: string): Buffer {
  const msg = encodeCString(message, Number.MAX_SAFE_INTEGER, 'dm_target_msg.message');
  if (msg.length === 0) {
    throw new InvalidArgumentError('dm_target_msg.message', [{ path: '', message: 'must not be empty', value: message }]);
  }
  const buf = Buffer.alloc(align8(DM_TARGET_MSG_SIZE + msg.length + 1));
  encodeStruct(DmTargetMsgLayout, { sector }, buf, 0);
  msg.copy(buf, DM_TARGET_MSG_SIZE);
  return buf;
}

/** Decodes a TARGET_MSG payload (what a fake kernel receives). */
export function decodeTargetMsg(buf: Uint8Array, dataStart: number, dataSize: number): { sector: bigint; message: string } {
  const end = payloadEnd(buf, dataStart, dataSize, 'dm_target_msg');
  if (dataStart + DM_TARGET_MSG_SIZE > end) {
    throw new KernelOutputError(`dm_target_msg: header does not fit before data_size ${end}`, hexSnippet(buf, dataStart, end));
  }
  const { sector } = decodeStruct(DmTargetMsgLayout, buf, dataStart);
  const { value } = readCString(buf, dataStart + DM_TARGET_MSG_SIZE, end, 'dm_target_msg.message');
  return { sector, message: value };
}

/**
 * Encodes a single NUL-terminated string payload (DEV_RENAME new name/uuid, DEV_SET_GEOMETRY
 * "cyl heads sectors start"), padded to 8. `maxBytes` defaults to unlimited; pass
 * DM_NAME_LEN - 1 / DM_UUID_LEN - 1 for renames.
 */
export function encodeDmString(value: string, maxBytes = Number.MAX_SAFE_INTEGER, what = 'string payload'): Buffer {
  const bytes = encodeCString(value, maxBytes, what);
  const buf = Buffer.alloc(align8(bytes.length + 1));
  bytes.copy(buf, 0);
  return buf;
}

/**
 * Reads the NUL-terminated string payload at data_start (TARGET_MSG result with DM_DATA_OUT_FLAG,
 * RENAME input). No payload (data_size ≤ data_start) → ''.
 */
export function decodeDmString(buf: Uint8Array, dataStart: number, dataSize: number): string {
  const end = payloadEnd(buf, dataStart, dataSize, 'string payload');
  if (end === dataStart) return '';
  return readCString(buf, dataStart, end, 'string payload').value;
}
