// SPDX-License-Identifier: MIT
// The TypeBox sources of the DeviceSet layer's schemas: its records (metadata.ts) and the typed
// options (options.ts). Nothing imports this file at run time: `npm run validators` compiles it
// into schemas.generated.ts (the schema objects and TypeBox's compiled checks, see
// schema-codegen.ts), which the layer uses, so a process that opens a DeviceSet loads no TypeBox
// module (249 of the 356 modules a `ds` command loaded; each ESM module costs ~10 ms of a node
// start in the TCG guest). Edit here, then run `npm run validators`; a unit test fails while the
// generated file is stale.
import { Type, type Static } from '@sinclair/typebox';

/** Thin device ids are 24-bit (metadata.ts MAX_DEVICE_ID). */
const MAX_DEVICE_ID = 0xffffff;

const DeviceId = Type.Integer({ minimum: 0, maximum: MAX_DEVICE_ID });
const SafeCount = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Filesystem = Type.Union([Type.Literal('ext4'), Type.Literal('xfs')]);

/**
 * Lifecycle of a device record:
 * - `creating`: written before the pool's create_thin/create_snap; becomes `ready` after the
 *   transaction commits.
 * - `ready`: usable.
 * - `deleting`: a delete is in flight, or deferred (then `deleted` is true too).
 * - `faulty`: recovery could not tell what happened; its thin id stays reserved until a person
 *   looks (containerd's Faulty).
 */
export const DeviceState = Type.Union([
  Type.Literal('creating'),
  Type.Literal('ready'),
  Type.Literal('deleting'),
  Type.Literal('faulty'),
]);
export type DeviceState = Static<typeof DeviceState>;

/** One device: Docker's DevInfo (hash, device_id, size, transaction_id, initialized, deleted) plus ours. */
export const DeviceRecord = Type.Object({
  /** '' for the base device. Must match the file name. */
  hash: Type.String(),
  deviceId: DeviceId,
  /** Virtual size in bytes, a multiple of 512. */
  size: SafeCount,
  /** The pool transaction id that created this device. */
  transactionId: SafeCount,
  /** Base device: true once mkfs finished. Docker's field; other devices leave it false. */
  initialized: Type.Boolean(),
  /** Docker's deferred-deletion marker: the pool refused the delete (EBUSY); retry later. */
  deleted: Type.Boolean(),
  state: DeviceState,
  /** Filesystem on the device (set for the base device once made). */
  filesystem: Type.Optional(Filesystem),
  /** Filesystem UUID (base device), checked on start to detect a different pool. */
  filesystemUuid: Type.Optional(Type.String({ minLength: 1 })),
  /** ISO-8601 time the record was first written. */
  createdAt: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' }),
  /** Last error seen for this device (faulty devices say why). */
  lastError: Type.Optional(Type.String()),
  /**
   * A filesystem grow in flight (the intent, written before the device is activated at the new
   * size): the size in bytes it grows to. `size` changes only once the grow succeeded; the next
   * init finishes (base device) or undoes (a new snapshot) a grow that a crash interrupted.
   */
  growTo: Type.Optional(SafeCount),
});
export type DeviceRecord = Static<typeof DeviceRecord>;

/** The DeviceSet as a whole. */
export const DeviceSetRecord = Type.Object({
  formatVersion: Type.Integer({ minimum: 1 }),
  /** Where the id allocator resumes. May be stale after a crash: allocation skips used ids. */
  nextDeviceId: DeviceId,
  baseFilesystem: Type.Optional(Filesystem),
  baseFilesystemUuid: Type.Optional(Type.String({ minLength: 1 })),
  /** The options in force, as `dm.key=value` strings (formatDmOptions). */
  options: Type.Array(Type.String()),
  /**
   * The commit marker of the journal for an external pool (dm.thinpooldev). Its own transaction
   * id belongs to its manager: LVM refuses to activate a pool whose id moved away from the one it
   * recorded (moby#15629), so the journal commits here instead of with set_transaction_id.
   * Absent for a pool this DeviceSet owns.
   */
  transactionId: Type.Optional(SafeCount),
  /**
   * A root imported from Docker (src/driver/docker-import.ts) keeps Docker's kernel names:
   * `docker-<major>:<minor>-<inode>`, which DeviceSet.init uses instead of its own prefix while it
   * equals Docker's prefix of stat(root) (docker-names.ts). Absent for every other root.
   */
  namePrefix: Type.Optional(Type.String({ pattern: '^docker-\\d+:\\d+-\\d+$' })),
  /**
   * Thin ids of an external pool (dm.thinpooldev) that a crash left in doubt: an uncommitted
   * create whose id exists in the pool, which may be ours or another user's. They are never
   * deleted and never reused; status() reports them (see docs/deviceset.md, "Safety rules").
   */
  /**
   * The last grow of a loopback file by autoextend (autoextend.ts), written after the grow (file,
   * LOOP_SET_CAPACITY, table reload) finished, so that status() and `ds status` show it after a
   * restart. A crash between the grow and this write loses the entry, never the grow. Absent until
   * the first grow.
   */
  lastExtension: Type.Optional(
    Type.Object({
      /** ISO-8601 time the grow finished. */
      at: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' }),
      what: Type.Union([Type.Literal('data'), Type.Literal('metadata')]),
      /** File size before and after, in bytes. */
      from: SafeCount,
      to: SafeCount,
      /** What asked for it (AutoextendTrigger). */
      trigger: Type.Union([Type.Literal('start'), Type.Literal('lowWater'), Type.Literal('outOfDataSpace'), Type.Literal('metadataLow'), Type.Literal('check')]),
    }),
  ),
  /**
   * The last full check of the base device that passed (activate, read its filesystem UUID,
   * deactivate; or the base's creation), with what it was keyed on. DeviceSet.init skips the
   * check while every key still holds (base-image.ts, "When the base check is skipped"): the base
   * record's thin id, size and UUID, dm.fs, the pool's identity and a pool transaction id not
   * below this one. Absent until the first check (a root written before it existed loads as is).
   */
  baseVerified: Type.Optional(
    Type.Object({
      /** The filesystem UUID read. */
      uuid: Type.String({ minLength: 1 }),
      /** The base device's thin id and size (bytes) when checked. */
      deviceId: DeviceId,
      size: SafeCount,
      /** dm.fs in force. */
      fs: Filesystem,
      /** The pool's own transaction id (its status line) after the check. */
      transactionId: SafeCount,
      /** What identifies the pool (PoolSetup.identity): backing files' dev/ino, or device numbers and dm uuid. */
      pool: Type.String({ minLength: 1 }),
    }),
  ),
  quarantinedIds: Type.Optional(
    Type.Array(
      Type.Object({
        deviceId: DeviceId,
        /** Why the id is in doubt, with the transaction that named it. */
        reason: Type.String(),
        /** ISO-8601 time it was quarantined. */
        since: Type.String(),
      }),
    ),
  ),
});
export type DeviceSetRecord = Static<typeof DeviceSetRecord>;

/** Pool operations a transaction can record. */
export const TransactionOp = Type.Union([Type.Literal('create'), Type.Literal('snapshot'), Type.Literal('delete')]);
export type TransactionOp = Static<typeof TransactionOp>;

/**
 * The one-slot journal: WHAT pool operation is in flight, written before the pool is touched and
 * removed after the operation finished, so recovery (reconcile.ts) can roll it back or forward.
 */
export const TransactionRecord = Type.Object({
  /**
   * Transaction id this operation commits with: the journal's id + 1 when opened (the pool's id
   * for an owned pool, DeviceSetRecord.transactionId for an external one).
   */
  openTransactionId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  deviceHash: Type.String(),
  deviceId: DeviceId,
  op: TransactionOp,
  /** create_snap's origin; required for 'snapshot'. */
  originDeviceId: Type.Optional(DeviceId),
  /** Size in bytes of the device being created. */
  size: Type.Optional(SafeCount),
});
export type TransactionRecord = Static<typeof TransactionRecord>;

/** Sizes in the typed form: bytes as bigint or a safe integer, or a size string such as '10G'. */
const SizeInput = Type.Union([Type.BigInt(), Type.Integer(), Type.String()]);
const Tristate = Type.Union([Type.Boolean(), Type.Literal('auto')]);

/** The typed (camelCase) input form; every property is optional and defaulted by resolveDeviceSetOptions (options.ts). */
export const DeviceSetOptions = Type.Object(
  {
    baseSize: Type.Optional(SizeInput),
    loopDataSize: Type.Optional(SizeInput),
    loopMetadataSize: Type.Optional(SizeInput),
    fs: Type.Optional(Type.Union([Type.Literal('ext4'), Type.Literal('xfs')])),
    mkfsArgs: Type.Optional(Type.Array(Type.String())),
    mountOptions: Type.Optional(Type.String()),
    dataDevice: Type.Optional(Type.String()),
    metadataDevice: Type.Optional(Type.String()),
    thinPoolDevice: Type.Optional(Type.String()),
    blockSize: Type.Optional(SizeInput),
    blkDiscard: Type.Optional(Type.Boolean()),
    useDeferredRemoval: Type.Optional(Tristate),
    useDeferredDeletion: Type.Optional(Tristate),
    minFreeSpacePercent: Type.Optional(Type.Integer()),
    xfsNoSpaceMaxRetries: Type.Optional(Type.Integer()),
    autoextendThreshold: Type.Optional(Type.Integer()),
    autoextendPercent: Type.Optional(Type.Integer()),
    autoextendMax: Type.Optional(SizeInput),
  },
  { additionalProperties: false },
);
export type DeviceSetOptions = Static<typeof DeviceSetOptions>;
