// SPDX-License-Identifier: MIT
// The `--json` output shapes of every read command, as TypeBox schemas. These are a public
// contract (docs/cli.md documents them); change them only by adding optional fields.
//
// Conventions: sizes are bytes and counts are JSON integers written with all their digits, also
// above 2^53 (jq keeps them exact; JS JSON.parse rounds). Absent values are `null`, never a
// missing key. Device numbers are split into `major` and `minor`.
import { Type, type Static } from '@sinclair/typebox';

const Int = Type.Integer({ minimum: 0 });
const NullableInt = Type.Union([Int, Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);

/** `dm version --json` */
export const DmVersionJson = Type.Object({
  /** devmapper's own version (package.json). */
  library: Type.String(),
  /**
   * The kernel's dm ioctl interface version, `major.minor.patch` (DM_VERSION); null when the
   * driver could not be asked (the command then also reports the error on stderr and fails).
   */
  driver: Type.Union([Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' }), Type.Null()]),
  /** uname -r. */
  kernel: Type.String(),
}, { additionalProperties: false });
export type DmVersionJson = Static<typeof DmVersionJson>;

/** One entry of `dm ls --json` (an array of these). */
export const DmListEntryJson = Type.Object({
  name: Type.String(),
  major: Int,
  minor: Int,
  /** null when the device has no uuid or the kernel (dm < 4.45) did not say. */
  uuid: NullableString,
  /** null when the kernel (dm < 4.38) does not report event counters in the list. */
  eventNr: NullableInt,
}, { additionalProperties: false });
export const DmListJson = Type.Array(DmListEntryJson);
export type DmListJson = Static<typeof DmListJson>;

/** `dm info --json` */
export const DmInfoJson = Type.Object({
  name: Type.String(),
  uuid: NullableString,
  major: Int,
  minor: Int,
  suspended: Type.Boolean(),
  readOnly: Type.Boolean(),
  activeTable: Type.Boolean(),
  inactiveTable: Type.Boolean(),
  deferredRemove: Type.Boolean(),
  internalSuspend: Type.Boolean(),
  openCount: Type.Integer(),
  eventNr: Int,
  targetCount: Int,
}, { additionalProperties: false });
export type DmInfoJson = Static<typeof DmInfoJson>;

/** One table line: `dm table --json` / `dm status --json` are arrays of these. */
export const DmTargetJson = Type.Object({
  /** 512-byte sectors. */
  start: Int,
  length: Int,
  type: Type.String(),
  /** Table parameters (`dm table`) or the target's status text (`dm status`). */
  params: Type.String(),
}, { additionalProperties: false });
export const DmTableJson = Type.Array(DmTargetJson);
export type DmTableJson = Static<typeof DmTableJson>;

/** `dm targets --json` */
export const DmTargetsJson = Type.Array(
  Type.Object({ name: Type.String(), version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' }) }, { additionalProperties: false }),
);
export type DmTargetsJson = Static<typeof DmTargetsJson>;

/** `dm wait --json`: the device after the event, with its status lines at that moment. */
export const DmWaitJson = Type.Object({ info: DmInfoJson, targets: DmTableJson }, { additionalProperties: false });
export type DmWaitJson = Static<typeof DmWaitJson>;

/** `dm message --json` */
export const DmMessageJson = Type.Object({ reply: NullableString }, { additionalProperties: false });

/** `dm deps --json`: the devices the table maps onto (DM_TABLE_DEPS), in the kernel's order. */
export const DmDepsJson = Type.Array(Type.Object({ major: Int, minor: Int }, { additionalProperties: false }));
export type DmDepsJson = Static<typeof DmDepsJson>;

/** `dm remove_all --yes --json`: the devices gone afterwards, and those still there (open ones). */
export const DmRemoveAllJson = Type.Object({
  /** Names listed before DM_REMOVE_ALL and absent after it, sorted. */
  removed: Type.Array(Type.String()),
  /** Names present after it (open devices; with --deferred, those awaiting their last close), sorted. */
  remaining: Type.Array(Type.String()),
}, { additionalProperties: false });
export type DmRemoveAllJson = Static<typeof DmRemoveAllJson>;

/** `loop attach --json` */
export const LoopAttachJson = Type.Object({
  path: Type.String(),
  index: Int,
  major: Int,
  minor: Int,
  /** Canonical path of the backing file. */
  backingFile: Type.String(),
  readOnly: Type.Boolean(),
  /** Always false from the CLI: see docs/cli.md ("loop attach and autoclear"). */
  autoclear: Type.Boolean(),
  /** What the kernel actually enabled (direct I/O is best effort). */
  directIo: Type.Boolean(),
  /** LOOP_CONFIGURE (`configure`) or the pre-5.8 sequence (`legacy`). */
  method: Type.Union([Type.Literal('configure'), Type.Literal('legacy')]),
}, { additionalProperties: false });
export type LoopAttachJson = Static<typeof LoopAttachJson>;

/** One entry of `loop ls --json`. */
export const LoopListEntryJson = Type.Object({
  path: Type.String(),
  index: Int,
  major: Int,
  minor: Int,
  bound: Type.Boolean(),
  /** null while unbound. */
  backingFile: NullableString,
  /** The backing file was unlinked after attach. */
  backingFileDeleted: Type.Boolean(),
  offset: Int,
  /** 0 = to the end of the file. */
  sizeLimit: Int,
  /** Device size in bytes (0 while unbound). */
  sizeBytes: Int,
  readOnly: Type.Boolean(),
  autoclear: Type.Boolean(),
  partscan: Type.Boolean(),
  directIo: Type.Boolean(),
  logicalBlockSize: NullableInt,
}, { additionalProperties: false });
export const LoopListJson = Type.Array(LoopListEntryJson);
export type LoopListJson = Static<typeof LoopListJson>;

/** One entry of `loop find --json`. */
export const LoopFindEntryJson = Type.Object({
  path: Type.String(),
  index: Int,
  major: Int,
  minor: Int,
  backingFile: Type.String(),
  /** `inode` (st_dev + st_ino, like util-linux) or `path` (the file is gone). */
  matchedBy: Type.Union([Type.Literal('inode'), Type.Literal('path')]),
}, { additionalProperties: false });
export const LoopFindJson = Type.Array(LoopFindEntryJson);
export type LoopFindJson = Static<typeof LoopFindJson>;

/** `pool status --json`: `kind` says which fields are present (working ones are not null). */
export const PoolStatusJson = Type.Object({
  name: Type.String(),
  kind: Type.Union([Type.Literal('working'), Type.Literal('fail'), Type.Literal('error')]),
  /** Data block size in sectors, from the live table. */
  dataBlockSize: Int,
  /** Pool length in sectors. */
  lengthSectors: Int,
  metadataDev: Type.String(),
  dataDev: Type.String(),
  transactionId: NullableInt,
  usedMetadataBlocks: NullableInt,
  totalMetadataBlocks: NullableInt,
  usedDataBlocks: NullableInt,
  totalDataBlocks: NullableInt,
  heldMetadataRoot: NullableInt,
  mode: Type.Union([Type.Literal('rw'), Type.Literal('ro'), Type.Literal('out_of_data_space'), Type.Null()]),
  discardPassdown: Type.Union([Type.Literal('discard_passdown'), Type.Literal('no_discard_passdown'), Type.Literal('ignore_discard'), Type.Null()]),
  noSpacePolicy: Type.Union([Type.Literal('error_if_no_space'), Type.Literal('queue_if_no_space'), Type.Null()]),
  needsCheck: Type.Union([Type.Boolean(), Type.Null()]),
}, { additionalProperties: false });
export type PoolStatusJson = Static<typeof PoolStatusJson>;

/** `thin status --json` */
export const ThinStatusJson = Type.Object({
  name: Type.String(),
  pool: Type.String(),
  deviceId: Int,
  /** Active size in sectors. */
  lengthSectors: Int,
  kind: Type.Union([Type.Literal('working'), Type.Literal('fail'), Type.Literal('error')]),
  mappedSectors: NullableInt,
  highestMappedSector: NullableInt,
}, { additionalProperties: false });
export type ThinStatusJson = Static<typeof ThinStatusJson>;

/** One device of `ds list --json`; the base device has `id: ""`. */
export const DsDeviceJson = Type.Object({
  id: Type.String(),
  /** Thin device id in the pool. */
  deviceId: Int,
  /** Virtual size in bytes. */
  size: Int,
  /** Pool transaction id that created the device. */
  transactionId: Int,
  /** Base device: the filesystem has been made. */
  initialized: Type.Boolean(),
  /** Deferred deletion pending. */
  deleted: Type.Boolean(),
  /** Record state: creating, ready, deleting or faulty. */
  state: Type.Union([Type.Literal('creating'), Type.Literal('ready'), Type.Literal('deleting'), Type.Literal('faulty')]),
  /** The dm device name when active. */
  dmName: Type.String(),
  /** A dm device exists for it right now. */
  active: Type.Boolean(),
  /** Where the kernel's mount table has it mounted, or null. */
  mountPoint: NullableString,
}, { additionalProperties: false });
export const DsListJson = Type.Array(DsDeviceJson);
export type DsListJson = Static<typeof DsListJson>;

const Space = Type.Object({ used: Int, total: Int, available: Int }, { additionalProperties: false });

/** `ds status --json`: Docker's devicemapper status fields in camelCase. Sizes in bytes. */
export const DsStatusJson = Type.Object({
  poolName: Type.String(),
  /** Data block device (loop device or dm.datadev); null for an external pool. */
  dataFile: NullableString,
  /** The loopback data file, or null. */
  dataLoopback: NullableString,
  metadataFile: NullableString,
  metadataLoopback: NullableString,
  data: Space,
  metadata: Space,
  /** Pool data block size in bytes. */
  dataBlockSize: Int,
  udevSyncSupported: Type.Boolean(),
  deferredRemoveEnabled: Type.Boolean(),
  deferredDeleteEnabled: Type.Boolean(),
  deferredDeletedDeviceCount: Int,
  baseDeviceSize: Int,
  baseDeviceFS: Type.Union([Type.Literal('ext4'), Type.Literal('xfs'), Type.Null()]),
  minFreeSpace: Int,
  transactionId: Int,
  mode: Type.Union([Type.Literal('rw'), Type.Literal('ro'), Type.Literal('out_of_data_space'), Type.Literal('fail'), Type.Literal('error')]),
  needsCheck: Type.Boolean(),
  /** This DeviceSet created the pool (and removes it at shutdown). */
  poolOwned: Type.Boolean(),
  /** External pool thin ids a crash left in doubt: never deleted, never reused (docs/deviceset.md, Safety rules). */
  quarantinedThinIds: Type.Array(Type.Object({ deviceId: Int, reason: Type.String(), since: Type.String() }, { additionalProperties: false })),
  /**
   * dm.autoextend_* (docs/deviceset.md, Autoextend). Always written; optional in the schema
   * because it was added later. `state` is that of the process that printed it: the CLI's one-shot
   * commands check once at open and do not stay to watch (`notWatching`).
   */
  autoextend: Type.Optional(Type.Object({
    enabled: Type.Boolean(),
    /** Percent used that triggers a grow; null when off. */
    threshold: NullableInt,
    /** Growth step, percent of the current size. */
    percent: Int,
    /** dm.autoextend_max in bytes; null: bounded by the host only. */
    max: NullableInt,
    /** The pool table's low water mark in data blocks; null when off. */
    lowWaterMark: NullableInt,
    state: Type.Union([Type.Literal('off'), Type.Literal('notWatching'), Type.Literal('watching'), Type.Literal('ceiling'), Type.Literal('hostFull'), Type.Literal('error')]),
    /** Why the state is ceiling, hostFull or error. */
    message: NullableString,
    lastExtension: Type.Union([
      Type.Object({
        at: Type.String(),
        what: Type.Union([Type.Literal('data'), Type.Literal('metadata')]),
        from: Int,
        to: Int,
        trigger: Type.Union([Type.Literal('start'), Type.Literal('lowWater'), Type.Literal('outOfDataSpace'), Type.Literal('metadataLow'), Type.Literal('check')]),
      }, { additionalProperties: false }),
      Type.Null(),
    ]),
    /** Grows done by the process that printed this. */
    extensions: Int,
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type DsStatusJson = Static<typeof DsStatusJson>;

/** `driver status --json`: Docker's Driver.Status `[key, value]` pairs, in its order (docs/driver.md). */
export const DriverStatusJson = Type.Array(Type.Tuple([Type.String(), Type.String()]));
export type DriverStatusJson = Static<typeof DriverStatusJson>;

/** `driver metadata --json`: Docker's GetMetadata map (its key names; values are strings, as Docker's). */
export const DriverMetadataJson = Type.Object({ DeviceId: Type.String(), DeviceSize: Type.String(), DeviceName: Type.String() }, { additionalProperties: false });
export type DriverMetadataJson = Static<typeof DriverMetadataJson>;

/** `driver exists --json` */
export const DriverExistsJson = Type.Object({ id: Type.String(), exists: Type.Boolean() }, { additionalProperties: false });
export type DriverExistsJson = Static<typeof DriverExistsJson>;

/** `vm` has no JSON; `demo --json` prints the final `ds status` (DsStatusJson). */
/** `docker ls --json`: a Docker devicemapper root read read-only (src/driver/docker-mount.ts DockerRootReport). */
export const DockerLsJson = Type.Object({
  root: Type.String(),
  /** `docker-<major>:<minor>-<inode>` of the root directory. */
  prefix: Type.String(),
  poolName: Type.String(),
  poolLive: Type.Boolean(),
  /** From the live pool's status, else the metadata file's superblock; null when neither says. */
  poolTransactionId: NullableInt,
  dataFile: NullableString,
  metadataFile: NullableString,
  baseDeviceUuid: NullableString,
  baseDeviceFilesystem: NullableString,
  nextDeviceId: NullableInt,
  /** Docker's open transaction above the pool's (Docker rolls it back at its next start; never rolled back here). */
  openTransaction: Type.Union([
    Type.Object({
      openTransactionId: Int,
      deviceHash: Type.String(),
      deviceId: Int,
      poolTransactionId: Int,
      poolTransactionFrom: Type.Union([Type.Literal('pool-status'), Type.Literal('superblock')]),
      rolledBack: Type.Literal(false),
      note: Type.String(),
    }, { additionalProperties: false }),
    Type.Null(),
  ]),
  devices: Type.Array(Type.Object({
    /** `base` or Docker's hash (the file name under metadata/). */
    id: Type.String(),
    hash: Type.String(),
    deviceId: Int,
    size: Int,
    transactionId: Int,
    initialized: Type.Boolean(),
    deleted: Type.Boolean(),
    dmName: Type.String(),
    active: Type.Boolean(),
    mountedAt: Type.Array(Type.String()),
    uncommitted: Type.Boolean(),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type DockerLsJson = Static<typeof DockerLsJson>;

/**
 * What every command writes to stderr on an error under `--json` (one line; src/cli/errors.ts,
 * jsonErrorReport). Published as schemas/error.schema.json.
 */
export const CliErrorJson = Type.Object(
  {
    error: Type.Object(
      {
        /** The error's stable code (EDEVICENOTFOUND, EUSAGE, an errno name, EUNEXPECTED). */
        code: Type.String({ pattern: '^E[A-Z0-9_]+$' }),
        message: Type.String(),
        hint: Type.String(),
        /** The errno name under the error (errnoCode), or null. */
        errno: Type.Union([Type.String({ pattern: '^E[A-Z0-9_]+$' }), Type.Null()]),
        /** The cause chain, outermost first (what --verbose prints). */
        causes: Type.Array(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type CliErrorJson = Static<typeof CliErrorJson>;

/** `docker import --json`: what the import did (src/driver/docker-import.ts DockerImportResult). */
export const DockerImportJson = Type.Object({
  root: Type.String(),
  /** `imported` now, `finished` (an import stopped between its two renames), or `already-imported`. */
  outcome: Type.Union([Type.Literal('imported'), Type.Literal('finished'), Type.Literal('already-imported')]),
  /** Docker's kernel name prefix, which the set keeps. */
  prefix: Type.String(),
  poolName: Type.String(),
  /** Where Docker's metadata/ went, relative to the root (undo: `devmapper docker restore`). */
  dockerMetadata: Type.String(),
  importedAt: Type.String(),
  /** The dm.* options saved in ROOT/cli-options.json. */
  options: Type.Array(Type.String()),
  /** ROOT/cli-options.json was written by this command (false: it existed already). */
  optionsSaved: Type.Boolean(),
  removedStaging: Type.Boolean(),
  devices: Type.Array(Type.Object({
    id: Type.String(),
    hash: Type.String(),
    deviceId: Int,
    size: Int,
    state: Type.Union([Type.Literal('ready'), Type.Literal('deleting')]),
  }, { additionalProperties: false })),
  pendingDeletion: Type.Array(Type.String()),
  /** Docker's open transaction: rolled back by the first open of the set (delete of its thin id). */
  openTransaction: Type.Union([
    Type.Object({
      openTransactionId: Int,
      deviceHash: Type.String(),
      deviceId: Int,
      poolTransactionId: Int,
      recordLeftOut: Type.Boolean(),
      note: Type.String(),
    }, { additionalProperties: false }),
    Type.Null(),
  ]),
}, { additionalProperties: false });
export type DockerImportJson = Static<typeof DockerImportJson>;

export const SCHEMAS = {
  'dm version': DmVersionJson,
  'dm ls': DmListJson,
  'dm info': DmInfoJson,
  'dm table': DmTableJson,
  'dm status': DmTableJson,
  'dm targets': DmTargetsJson,
  'dm wait': DmWaitJson,
  'dm message': DmMessageJson,
  'dm deps': DmDepsJson,
  'dm remove_all': DmRemoveAllJson,
  'loop attach': LoopAttachJson,
  'loop ls': LoopListJson,
  'loop find': LoopFindJson,
  'pool status': PoolStatusJson,
  'thin status': ThinStatusJson,
  'ds list': DsListJson,
  'ds status': DsStatusJson,
  'driver exists': DriverExistsJson,
  'driver status': DriverStatusJson,
  'driver metadata': DriverMetadataJson,
  'docker ls': DockerLsJson,
  'docker import': DockerImportJson,
} as const;
