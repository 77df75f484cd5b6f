// SPDX-License-Identifier: MIT
// Pure request builders: one function per dm command, turning typed arguments into a DmRequest
// (command + header fields + payload). No syscalls here; DmControl's choke point executes them.
import { InvalidArgumentError, type ValidationProblem } from '../errors.js';
import {
  DM_COMMANDS,
  DM_DEFERRED_REMOVE,
  DM_DEV_ARM_POLL_CMD,
  DM_DEV_CREATE_CMD,
  DM_DEV_REMOVE_CMD,
  DM_DEV_RENAME_CMD,
  DM_DEV_SET_GEOMETRY_CMD,
  DM_DEV_STATUS_CMD,
  DM_DEV_SUSPEND_CMD,
  DM_DEV_WAIT_CMD,
  DM_GET_TARGET_VERSION_CMD,
  DM_LIST_DEVICES_CMD,
  DM_LIST_VERSIONS_CMD,
  DM_NAME_LEN,
  DM_NOFLUSH_FLAG,
  DM_PERSISTENT_DEV_FLAG,
  DM_QUERY_INACTIVE_TABLE_FLAG,
  DM_READONLY_FLAG,
  DM_REMOVE_ALL_CMD,
  DM_SECURE_DATA_FLAG,
  DM_SKIP_LOCKFS_FLAG,
  DM_STATUS_TABLE_FLAG,
  DM_SUSPEND_FLAG,
  DM_TABLE_CLEAR_CMD,
  DM_TABLE_DEPS_CMD,
  DM_TABLE_LOAD_CMD,
  DM_TABLE_STATUS_CMD,
  DM_TARGET_MSG_CMD,
  DM_UUID_FLAG,
  DM_UUID_LEN,
  DM_VERSION_CMD,
  encodeDmString,
  encodeTargetMsg,
  encodeTargetSpecs,
  type DmCommandInfo,
} from '../ioctl/index.js';
import { assertDevNum, encodeDevNum, type DevNum } from './devnum.js';
import type { DeviceIdent } from './errors.js';
import { lookupProblems, toDmName, toDmUuid, type DmName, type DmUuid } from './names.js';
import type {
  DeviceCreateOptions,
  Geometry,
  ListDevicesOptions,
  SuspendOptions,
  TableLoadOptions,
  TableStatusOptions,
} from './options.js';
import { assertTable, type TargetLine } from './table.js';
import { CRYPT_TARGET, isCryptKeyMessage } from './targets/crypt.js';

/**
 * How a method names an existing device: a bare string is a name; otherwise exactly one of name,
 * uuid or device number. The kernel looks up by uuid first, then name, then dev, and refuses a
 * request that names a device two ways (`__find_device_hash_cell`), so we send exactly one.
 */
export type DeviceRef = string | { readonly name: string } | { readonly uuid: string } | { readonly dev: DevNum };

/** The header fields a request sets; version, data_size and data_start belong to the choke point. */
export interface DmRequestHeader {
  readonly name?: string;
  readonly uuid?: string;
  readonly dev?: bigint;
  readonly flags?: number;
  readonly event_nr?: number;
  readonly target_count?: number;
}

/** One ioctl to perform: everything the choke point needs, nothing it decides itself. */
export interface DmRequest {
  readonly command: DmCommandInfo;
  readonly header: DmRequestHeader;
  /** Input payload, placed at data_start = 312. */
  readonly payload?: Buffer;
  /** The device the request is about, for error messages and errno → domain mapping. */
  readonly ident?: DeviceIdent;
}

/**
 * Commands that can wait in the kernel, and therefore go through `Syscalls.ioctlAsync` (a worker
 * thread) so the event loop keeps running:
 * - DEV_SUSPEND: suspend flushes queued I/O and freezes filesystems; resume first suspends when
 *   swapping tables, then resumes;
 * - DEV_REMOVE, REMOVE_ALL: tear-down syncs and destroys tables (`dm_sync_table`, `dm_destroy`);
 * - DEV_WAIT: blocks until the next event, by design;
 * - TABLE_LOAD: target constructors may read metadata from disk (thin-pool, cache, era);
 * - TABLE_STATUS, TARGET_MSG: thin-pool commits metadata before reporting / handling a message.
 * Everything else is a quick in-memory operation under dm's hash lock and uses the sync call.
 * Every public DmControl method is async regardless, so callers never see the difference.
 */
export const BLOCKING_COMMANDS: ReadonlySet<number> = new Set([
  DM_DEV_SUSPEND_CMD,
  DM_DEV_REMOVE_CMD,
  DM_REMOVE_ALL_CMD,
  DM_DEV_WAIT_CMD,
  DM_TABLE_LOAD_CMD,
  DM_TABLE_STATUS_CMD,
  DM_TARGET_MSG_CMD,
]);

/**
 * Whether a request with (masked) `flags` goes through the worker thread. `BLOCKING_COMMANDS`
 * decides, with one exception: DM_TABLE_STATUS with DM_STATUS_TABLE_FLAG or DM_NOFLUSH_FLAG runs
 * synchronously. The reason status is in BLOCKING_COMMANDS is the metadata commit thin-pool (and
 * cache, clone) do before reporting; in drivers/md/dm-thin.c pool_status() that commit sits under
 * `case STATUSTYPE_INFO:` guarded by `if (!(status_flags & DM_STATUS_NOFLUSH_FLAG) &&
 * !dm_suspended(ti)) (void) commit(pool);`, and `case STATUSTYPE_TABLE:` (DM_STATUS_TABLE_FLAG)
 * only formats the constructor arguments. dm-cache cache_status() and dm-clone clone_status() use
 * the same guard. Both modes are therefore in-memory reads, like DEV_STATUS. (Caveat: dm-era's
 * status waits for its own worker in INFO mode whatever the flags; this library creates no era
 * targets.) The async hop costs ~110 µs in the TCG guest against 3–10 µs for the sync call.
 */
export function usesWorker(cmd: number, flags: number): boolean {
  if (!BLOCKING_COMMANDS.has(cmd)) return false;
  if (cmd === DM_TABLE_STATUS_CMD && (flags & (DM_STATUS_TABLE_FLAG | DM_NOFLUSH_FLAG)) !== 0) return false;
  return true;
}

function commandInfo(cmd: number): DmCommandInfo {
  const info = DM_COMMANDS[cmd];
  if (!info || info.cmd !== cmd) throw new RangeError(`unknown dm command ${cmd}`);
  return info;
}

function fail(what: string, problems: ValidationProblem[]): never {
  throw new InvalidArgumentError(what, problems);
}

/**
 * Header fields and ident for a {@link DeviceRef}. Lookups use the loose rules of
 * {@link lookupProblems}, so devices named by other tools stay reachable.
 * @throws InvalidArgumentError
 */
export function identify(ref: DeviceRef): { header: DmRequestHeader; ident: DeviceIdent } {
  if (typeof ref === 'string') ref = { name: ref };
  if (typeof ref !== 'object' || ref === null) fail('device reference', [{ path: '', message: 'must be a name or {name|uuid|dev}', value: ref }]);
  const keys = (['name', 'uuid', 'dev'] as const).filter((k) => (ref as Record<string, unknown>)[k] !== undefined);
  if (keys.length !== 1)
    fail('device reference', [{ path: '', message: 'must give exactly one of name, uuid, dev', value: keys }]);
  if ('name' in ref && ref.name !== undefined) {
    const p = lookupProblems(ref.name, 'name', '/name');
    if (p.length) fail('device name', p);
    return { header: { name: ref.name }, ident: { name: ref.name } };
  }
  if ('uuid' in ref && ref.uuid !== undefined) {
    const p = lookupProblems(ref.uuid, 'uuid', '/uuid');
    if (p.length) fail('device uuid', p);
    return { header: { uuid: ref.uuid }, ident: { uuid: ref.uuid } };
  }
  const dev = (ref as { dev: DevNum }).dev;
  assertDevNum(dev);
  if (dev.major === 0 && dev.minor === 0)
    fail('device number', [{ path: '/dev', message: '0:0 names no device (the kernel treats dev = 0 as "not given")', value: dev }]);
  return { header: { dev: encodeDevNum(dev) }, ident: { dev } };
}

function onDevice(cmd: number, ref: DeviceRef, flags = 0, extra: Partial<DmRequest> = {}): DmRequest {
  const { header: id, ident } = identify(ref);
  const more = extra.header;
  // One object shape for every request header (no spreads): this runs on every device command.
  const header: DmRequestHeader = {
    name: more?.name ?? id.name,
    uuid: more?.uuid ?? id.uuid,
    dev: more?.dev ?? id.dev,
    flags: more?.flags ?? flags,
    event_nr: more?.event_nr,
    target_count: more?.target_count,
  };
  return extra.payload ? { command: commandInfo(cmd), header, ident, payload: extra.payload } : { command: commandInfo(cmd), header, ident };
}

/** DM_VERSION: ask only for the kernel's interface version. */
export function versionRequest(): DmRequest {
  return { command: commandInfo(DM_VERSION_CMD), header: {} };
}

/** DM_REMOVE_ALL: remove every unused device (debugging aid); `deferred` defers busy ones. */
export function removeAllRequest(deferred = false): DmRequest {
  return { command: commandInfo(DM_REMOVE_ALL_CMD), header: { flags: deferred ? DM_DEFERRED_REMOVE : 0 } };
}

/**
 * DM_LIST_DEVICES with DM_UUID_FLAG. Name and uuid are left empty for a full listing: since dm
 * ioctl 4.45 (Linux 5.13, `filter_device`) a non-empty name/uuid is a *prefix filter*, and older
 * kernels ignore them. Prefixes given here are sent so new kernels filter (less to copy); the
 * caller must still filter client-side for old kernels (DmControl does).
 */
export function listDevicesRequest(opts: ListDevicesOptions = {}): DmRequest {
  const header: { name?: string; uuid?: string; flags: number } = { flags: DM_UUID_FLAG };
  const problems: ValidationProblem[] = [];
  if (opts.namePrefix !== undefined) {
    if (typeof opts.namePrefix !== 'string' || Buffer.byteLength(opts.namePrefix) >= DM_NAME_LEN || opts.namePrefix.includes('\0'))
      problems.push({ path: '/namePrefix', message: 'must be a string of at most 127 bytes without NUL', value: opts.namePrefix });
    else if (opts.namePrefix !== '') header.name = opts.namePrefix;
  }
  if (opts.uuidPrefix !== undefined) {
    if (typeof opts.uuidPrefix !== 'string' || Buffer.byteLength(opts.uuidPrefix) >= DM_UUID_LEN || opts.uuidPrefix.includes('\0'))
      problems.push({ path: '/uuidPrefix', message: 'must be a string of at most 128 bytes without NUL', value: opts.uuidPrefix });
    else if (opts.uuidPrefix !== '') header.uuid = opts.uuidPrefix;
  }
  if (problems.length) fail('list options', problems);
  return { command: commandInfo(DM_LIST_DEVICES_CMD), header };
}

/**
 * DM_DEV_CREATE: a new device with no tables (not suspended, but there is nothing to do I/O to
 * until a table is loaded and resumed). Name and uuid use the strict creatable rules of names.ts.
 * @throws InvalidArgumentError
 */
export function createRequest(name: string, opts: DeviceCreateOptions = {}): DmRequest {
  const problems: ValidationProblem[] = [];
  let dmName: DmName | undefined;
  let dmUuid: DmUuid | undefined;
  try {
    dmName = toDmName(name);
  } catch (e) {
    if (e instanceof InvalidArgumentError) problems.push(...e.problems.map((p) => ({ ...p, path: `/name${p.path}` })));
    else throw e;
  }
  if (opts.uuid !== undefined) {
    try {
      dmUuid = toDmUuid(opts.uuid);
    } catch (e) {
      if (e instanceof InvalidArgumentError) problems.push(...e.problems.map((p) => ({ ...p, path: `/uuid${p.path}` })));
      else throw e;
    }
  }
  let dev = 0n;
  if (opts.dev !== undefined) {
    try {
      assertDevNum(opts.dev);
      dev = encodeDevNum(opts.dev);
    } catch (e) {
      if (e instanceof InvalidArgumentError) problems.push(...e.problems.map((p) => ({ ...p, path: `/dev${p.path}` })));
      else throw e;
    }
  }
  if (problems.length) fail('device create', problems);
  const header: DmRequestHeader = {
    name: dmName!,
    ...(dmUuid !== undefined ? { uuid: dmUuid } : {}),
    ...(opts.dev !== undefined ? { dev, flags: DM_PERSISTENT_DEV_FLAG } : {}),
  };
  const ident: DeviceIdent = dmUuid !== undefined ? { name: dmName!, uuid: dmUuid } : { name: dmName! };
  return { command: commandInfo(DM_DEV_CREATE_CMD), header, ident };
}

/** DM_DEV_REMOVE. `cookie` goes into event_nr (udev flags; see control.ts). */
export function removeRequest(ref: DeviceRef, deferred = false, cookie = 0): DmRequest {
  return onDevice(DM_DEV_REMOVE_CMD, ref, deferred ? DM_DEFERRED_REMOVE : 0, { header: { event_nr: cookie } });
}

/**
 * DM_DEV_RENAME to a new name. The kernel finds the device **by name only** here
 * (`dm_hash_rename`), so `from` is a name.
 * @throws InvalidArgumentError
 */
export function renameRequest(from: string, to: string, cookie = 0): DmRequest {
  const newName = toDmName(to);
  return onDevice(DM_DEV_RENAME_CMD, { name: from }, 0, {
    header: { event_nr: cookie },
    payload: encodeDmString(newName, DM_NAME_LEN - 1, 'new name'),
  });
}

/**
 * DM_DEV_RENAME with DM_UUID_FLAG: give a device without a uuid its uuid. The kernel refuses
 * (EINVAL) to change an existing uuid.
 * @throws InvalidArgumentError
 */
export function setUuidRequest(name: string, uuid: string, cookie = 0): DmRequest {
  const newUuid = toDmUuid(uuid);
  return onDevice(DM_DEV_RENAME_CMD, { name }, DM_UUID_FLAG, {
    header: { event_nr: cookie },
    payload: encodeDmString(newUuid, DM_UUID_LEN - 1, 'new uuid'),
  });
}

/** DM_DEV_SUSPEND with DM_SUSPEND_FLAG. */
export function suspendRequest(ref: DeviceRef, opts: SuspendOptions = {}): DmRequest {
  const flags = DM_SUSPEND_FLAG | (opts.noflush ? DM_NOFLUSH_FLAG : 0) | (opts.skipLockfs ? DM_SKIP_LOCKFS_FLAG : 0);
  return onDevice(DM_DEV_SUSPEND_CMD, ref, flags);
}

/**
 * DM_DEV_SUSPEND without DM_SUSPEND_FLAG = resume: swaps in the inactive table if there is one
 * (suspending first if needed, honouring noflush/skipLockfs for that internal suspend), then
 * resumes. `cookie` goes into event_nr.
 */
export function resumeRequest(ref: DeviceRef, opts: SuspendOptions = {}, cookie = 0): DmRequest {
  const flags = (opts.noflush ? DM_NOFLUSH_FLAG : 0) | (opts.skipLockfs ? DM_SKIP_LOCKFS_FLAG : 0);
  return onDevice(DM_DEV_SUSPEND_CMD, ref, flags, { header: { event_nr: cookie } });
}

/** DM_DEV_STATUS ("info"): header-only state. `inactive` reports the inactive table's RO/count. */
export function infoRequest(ref: DeviceRef, inactive = false): DmRequest {
  return onDevice(DM_DEV_STATUS_CMD, ref, inactive ? DM_QUERY_INACTIVE_TABLE_FLAG : 0);
}

function statusFlags(opts: TableStatusOptions): number {
  return (
    (opts.mode === 'table' ? DM_STATUS_TABLE_FLAG : 0) |
    (opts.inactive ? DM_QUERY_INACTIVE_TABLE_FLAG : 0) |
    (opts.noflush ? DM_NOFLUSH_FLAG : 0)
  );
}

/**
 * DM_DEV_WAIT: block until the device's event counter differs from `eventNr`, then report status
 * (or the table, with mode 'table') like TABLE_STATUS.
 */
export function waitRequest(ref: DeviceRef, eventNr: number, opts: TableStatusOptions = {}): DmRequest {
  if (!Number.isInteger(eventNr) || eventNr < 0 || eventNr > 0xffffffff)
    fail('event number', [{ path: '', message: 'must be a u32', value: eventNr }]);
  return onDevice(DM_DEV_WAIT_CMD, ref, statusFlags(opts), { header: { event_nr: eventNr } });
}

/**
 * DM_TABLE_LOAD: put `targets` in the device's inactive slot (replacing any staged table).
 * The table is validated first (contiguous from 0, non-zero lengths, type ≤ 15 bytes).
 * @throws InvalidArgumentError
 */
export function tableLoadRequest(ref: DeviceRef, targets: readonly TargetLine[], opts: TableLoadOptions = {}): DmRequest {
  assertTable(targets);
  const payload = encodeTargetSpecs(
    targets.map((t) => ({ sector_start: t.start, length: t.length, target_type: t.type, params: t.params })),
    'spec',
  );
  // A table with a crypt target carries key material (or a keyring reference): secure by default.
  const secure = opts.secure ?? targets.some((t) => t.type === CRYPT_TARGET);
  const flags = (opts.readOnly ? DM_READONLY_FLAG : 0) | (secure ? DM_SECURE_DATA_FLAG : 0);
  return onDevice(DM_TABLE_LOAD_CMD, ref, flags, { header: { target_count: targets.length }, payload });
}

/** DM_TABLE_CLEAR: drop the inactive table. */
export function tableClearRequest(ref: DeviceRef): DmRequest {
  return onDevice(DM_TABLE_CLEAR_CMD, ref);
}

/** DM_TABLE_DEPS: device numbers the (live or inactive) table uses. */
export function tableDepsRequest(ref: DeviceRef, inactive = false): DmRequest {
  return onDevice(DM_TABLE_DEPS_CMD, ref, inactive ? DM_QUERY_INACTIVE_TABLE_FLAG : 0);
}

/** DM_TABLE_STATUS: per-target status (default) or table params (mode 'table'). */
export function tableStatusRequest(ref: DeviceRef, opts: TableStatusOptions = {}): DmRequest {
  return onDevice(DM_TABLE_STATUS_CMD, ref, statusFlags(opts));
}

/** DM_LIST_VERSIONS: every registered target type. */
export function listVersionsRequest(): DmRequest {
  return { command: commandInfo(DM_LIST_VERSIONS_CMD), header: {} };
}

/** DM_GET_TARGET_VERSION (dm ioctl ≥ 4.41): one target type, named in the header's name field. */
export function getTargetVersionRequest(type: string): DmRequest {
  if (typeof type !== 'string' || type.length === 0 || Buffer.byteLength(type) > 15 || /[\s\0/]/.test(type))
    fail('target type', [{ path: '', message: 'must be a non-empty target type name of at most 15 bytes', value: type }]);
  return { command: commandInfo(DM_GET_TARGET_VERSION_CMD), header: { name: type } };
}

/**
 * DM_TARGET_MSG: deliver `message` to the target covering `sector`. Messages starting with `@`
 * go to dm core (`@cancel_deferred_remove`, `@stats_*`).
 * @throws InvalidArgumentError for an empty message or a sector that is not a u64.
 */
export function targetMessageRequest(ref: DeviceRef, sector: bigint, message: string, secure?: boolean): DmRequest {
  if (typeof sector !== 'bigint' || sector < 0n || sector >= 1n << 64n)
    fail('message sector', [{ path: '', message: 'must be a u64 bigint', value: sector }]);
  if (typeof message !== 'string' || message.length === 0)
    fail('target message', [{ path: '', message: 'must be a non-empty string', value: message }]);
  // `key set <key>` / `key wipe` (crypt_message) carry key material: secure unless told otherwise.
  const sec = secure ?? isCryptKeyMessage(message);
  return onDevice(DM_TARGET_MSG_CMD, ref, sec ? DM_SECURE_DATA_FLAG : 0, { payload: encodeTargetMsg(sector, message) });
}

/**
 * DM_DEV_SET_GEOMETRY: the `"cyl heads sectors start"` string `dev_set_geometry` parses, with its
 * range limits (cylinders ≤ 65535, heads ≤ 255, sectors ≤ 255) and dm_set_geometry's start ≤ C×H×S
 * checked here first.
 */
export function setGeometryRequest(ref: DeviceRef, g: Geometry): DmRequest {
  const problems: ValidationProblem[] = [];
  const int = (k: 'cylinders' | 'heads' | 'sectors', max: number): void => {
    const v = g?.[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
      problems.push({ path: `/${k}`, message: `must be an integer in 0..${max}`, value: v });
  };
  int('cylinders', 65535);
  int('heads', 255);
  int('sectors', 255);
  if (typeof g?.start !== 'bigint' || g.start < 0n || g.start >= 1n << 64n)
    problems.push({ path: '/start', message: 'must be a u64 bigint', value: g?.start });
  else if (problems.length === 0 && g.start > BigInt(g.cylinders) * BigInt(g.heads) * BigInt(g.sectors)) {
    // dm_set_geometry (drivers/md/dm.c): "Start sector is beyond the geometry limits" → EINVAL.
    problems.push({ path: '/start', message: `must be at most cylinders × heads × sectors (${g.cylinders * g.heads * g.sectors})`, value: g.start });
  }
  if (problems.length) fail('geometry', problems);
  return onDevice(DM_DEV_SET_GEOMETRY_CMD, ref, 0, {
    payload: encodeDmString(`${g.cylinders} ${g.heads} ${g.sectors} ${g.start}`),
  });
}

/** DM_DEV_ARM_POLL (dm ioctl ≥ 4.36): re-arm POLLIN on this control fd. */
export function armPollRequest(): DmRequest {
  return { command: commandInfo(DM_DEV_ARM_POLL_CMD), header: {} };
}
