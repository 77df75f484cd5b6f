// SPDX-License-Identifier: MIT
// Types shared by the DeviceSet's modules (device-set.ts imports them; they import nothing of it),
// and the DeviceSet's public interfaces (re-exported by device-set.ts).
import type { DmControl } from '../dm/index.js';
import type { Syscalls } from '../ioctl/index.js';
import type { LoopControl } from '../loop/index.js';
import type { BlockDevices, PoolMonitorOptions, ThinPoolWorkingStatus } from '../thin/index.js';
import type { CrashHook } from './crash.js';
import type { ProgressCallback } from './diagnostics.js';
import type { FsTools } from './fs-tools.js';
import type { KernelLog } from './kernel-log.js';
import type { DeviceRecord, MetadataFs } from './metadata.js';
import type { BaseFilesystem, DeviceSetOptions } from './options.js';

/** Log levels of {@link DeviceSetInit.log}. */
export type DeviceSetLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The DeviceSet's log sink. */
export type DeviceSetLog = (level: DeviceSetLogLevel, message: string) => void;

/** Where the pool's data and metadata come from. */
export interface PoolSource {
  readonly owned: boolean;
  readonly dataFile: string | null;
  readonly metadataFile: string | null;
  dataDevice: string | null;
  metadataDevice: string | null;
}

/** Everything {@link DeviceSet.init} accepts besides the root. */
export interface DeviceSetInit {
  /** `dm.key=value` strings or the typed object. */
  readonly options?: readonly string[] | DeviceSetOptions;
  /** DmControl to use (default: a new one, closed at shutdown). */
  readonly dm?: DmControl;
  /** LoopControl to use (default: a new one). */
  readonly loops?: LoopControl;
  /** Kernel seam for mount, umount and BLKDISCARD (default: the real libc). */
  readonly syscalls?: Syscalls;
  /** mkfs/blkid/grow tools (default: the real ones through PATH). */
  readonly tools?: FsTools;
  /** Metadata store file system (crash tests). */
  readonly metadataFs?: MetadataFs;
  /**
   * Block-device facts for the thin pool (size, metadata head read/zero): default the real
   * node:fs/sysfs ones. Tests over a fake kernel must pass one backed by it, or the pool would
   * inspect (and, for a new pool, zero) the host's real /dev nodes.
   */
  readonly blockDevices?: BlockDevices;
  /** Crash injection hook, for tests only (default: none; devmapper/testing has crashHookFromEnv). */
  readonly crashPoint?: CrashHook;
  /** Deferred deletion worker period. Default 30 s (Docker's ticker). */
  readonly deferredDeleteIntervalMs?: number;
  /** Log sink. Default: warnings and errors to stderr. */
  readonly log?: (level: DeviceSetLogLevel, message: string) => void;
  /**
   * Opens a cursor at the end of the kernel log before each mount, for the explanation a failed
   * mount gives only in dmesg (default: `openKernelLog`, /dev/kmsg positioned by one
   * lseek(SEEK_END); see kernel-log.ts).
   */
  readonly kernelLog?: KernelLog;
  /**
   * Cancels the init: no new step starts once it fires, mkfs/grow children are killed, the step
   * under way is finished or undone, everything this init created is torn down and the lock is
   * released; init then rejects with {@link OperationAbortedError}.
   */
  readonly signal?: AbortSignal;
  /**
   * When the pool's metadata is blank (zeroed, or new files) while device records exist, drop the
   * records and start an empty pool. Default false: init refuses with BackingFilesLostError, as
   * the records are then the only trace of the devices.
   */
  readonly discardRecordsOnBlankMetadata?: boolean;
  /** Autoextend seams (dm.autoextend_threshold): whether to watch, the host free-space probe, the monitor's options. */
  readonly autoextend?: AutoextendInit;
}

/** Cancellation of one call: see {@link DeviceSetInit.signal}. */
export interface AbortOptions {
  readonly signal?: AbortSignal;
}

/** Options of {@link DeviceSet.resizePool}. */
export interface ResizePoolOptions extends AbortOptions {
  /**
   * Progress of the growth: `sparse-file` stages (0..3 of 3) of the data file, then `grow-data`
   * stages (0 start, 1 file grown, 2 loop capacity refreshed, 3 pool reloaded, of 3). The same
   * events go to the `devmapper:deviceset` channel.
   */
  readonly onProgress?: ProgressCallback;
}

/** Options of {@link DeviceSet.deleteDevice}. */
export interface DeleteDeviceOptions extends AbortOptions {
  /** Delete now even when deferred deletion is on (a busy device then fails instead of deferring). */
  readonly sync?: boolean;
  /** Progress of the discard (dm.blkdiscard): `discard` chunks of 1 GiB, as on the channel. */
  readonly onProgress?: ProgressCallback;
}

/** A device as {@link DeviceSet.deviceInfo} reports it. */
export interface DeviceSetDevice {
  readonly hash: string;
  readonly deviceId: number;
  readonly size: bigint;
  readonly transactionId: number;
  readonly state: DeviceRecord['state'];
  readonly deleted: boolean;
  /** dm name (`<prefix>-<hash>`, `<prefix>-base`). */
  readonly dmName: string;
  /** `/dev/mapper/<dmName>` (present only while active). */
  readonly devicePath: string;
}

/** Docker's GetDeviceStatus. */
export interface DeviceStatus {
  readonly deviceId: number;
  readonly size: bigint;
  readonly transactionId: number;
  readonly sizeInSectors: bigint;
  readonly mappedSectors: bigint;
  /** null when nothing is mapped. */
  readonly highestMappedSector: bigint | null;
}

/** Used/total/available, in bytes. */
export interface SpaceUsage {
  readonly used: bigint;
  readonly total: bigint;
  readonly available: bigint;
}

/** Docker's DeviceSet Status fields in camelCase, plus the pool's health. */
export interface DeviceSetStatus {
  readonly poolName: string;
  /** Data block device: the loop device, dm.datadev, or for an external pool its table's `major:minor`. */
  readonly dataFile: string | null;
  readonly dataLoopback: string | null;
  readonly metadataFile: string | null;
  readonly metadataLoopback: string | null;
  readonly data: SpaceUsage;
  readonly metadata: SpaceUsage;
  /** Pool data block size in bytes (Docker's misnamed SectorSize). */
  readonly sectorSize: bigint;
  /** True when udev is running (DmControl then synchronises with it through libdm's udev cookies). */
  readonly udevSyncSupported: boolean;
  readonly deferredRemoveEnabled: boolean;
  readonly deferredDeleteEnabled: boolean;
  readonly deferredDeletedDeviceCount: number;
  readonly baseDeviceSize: bigint;
  readonly baseDeviceFS: BaseFilesystem | null;
  /** dm.min_free_space of the data space, in bytes. */
  readonly minFreeSpace: bigint;
  readonly transactionId: bigint;
  readonly mode: ThinPoolWorkingStatus['mode'] | 'fail' | 'error';
  readonly needsCheck: boolean;
  /** True when this DeviceSet created (owns) the pool and removes it at shutdown. */
  readonly poolOwned: boolean;
  /**
   * Thin ids of an external pool left in doubt by a crash (maybe ours, maybe another user's):
   * never deleted, never reused. Empty on an owned pool.
   */
  readonly quarantinedThinIds: readonly { readonly deviceId: number; readonly reason: string; readonly since: string }[];
  /** dm.autoextend_*: enabled, thresholds, state, last extension (autoextend.ts). */
  readonly autoextend: AutoextendStatus;
}

/** Options of {@link DeviceSet.mountDevice}. */
export interface MountDeviceOptions extends AbortOptions {
  /** Extra mount options, comma-separated (after nouuid and dm.mountopt). */
  readonly options?: string;
  /** SELinux mount label: appended as `context="<label>"`. */
  readonly label?: string;
}

// ------------------------------------------------------------ autoextend (autoextend.ts)

/** What the Autoextender is doing. */
export type AutoextendState =
  /** dm.autoextend_threshold unset. */
  | 'off'
  /** Enabled, but this process does not watch (DeviceSetInit.autoextend.watch false, e.g. the CLI's one-shot commands), or after shutdown. */
  | 'notWatching'
  /** The monitor runs; the last check grew what it had to (or nothing was needed). */
  | 'watching'
  /** A file reached its ceiling (dm.autoextend_max for data, the kernel's maximum for metadata) and needs to grow. */
  | 'ceiling'
  /** The host filesystem has no room for even one more block. */
  | 'hostFull'
  /** A grow or the monitor failed: see `message`. */
  | 'error';

/** One grow. */
export interface AutoextendExtension {
  /** ISO 8601 time of the grow's end. */
  readonly at: string;
  readonly what: 'data' | 'metadata';
  /** File size before and after, in bytes. */
  readonly from: bigint;
  readonly to: bigint;
  /** What asked for it. */
  readonly trigger: AutoextendTrigger;
}

/** Why a check ran. */
export type AutoextendTrigger = 'start' | 'lowWater' | 'outOfDataSpace' | 'metadataLow' | 'check';

/** The Autoextender's part of DeviceSet.status(). */
export interface AutoextendStatus {
  readonly enabled: boolean;
  /** dm.autoextend_threshold (percent), null when off. */
  readonly threshold: number | null;
  /** dm.autoextend_percent. */
  readonly percent: number;
  /** dm.autoextend_max in bytes; null: unbounded but by the host. */
  readonly max: bigint | null;
  /** The pool table's low water mark (data blocks), as last set; null when off. */
  readonly lowWaterMark: bigint | null;
  readonly state: AutoextendState;
  /** Why the state is ceiling, hostFull or error; null otherwise. */
  readonly message: string | null;
  readonly lastExtension: AutoextendExtension | null;
  /** Grows done by this process. */
  readonly extensions: number;
}

/** Test and embedding seams of {@link DeviceSetInit.autoextend}. */
export interface AutoextendInit {
  /**
   * Run the PoolMonitor in this process (default true). The CLI's one-shot `ds` commands pass
   * false: they check once at init (and grow if the pool is over the threshold) but do not stay.
   */
  readonly watch?: boolean;
  /** Free bytes of the filesystem holding `path` (default: statfs f_bavail × f_bsize). */
  readonly hostFreeBytes?: (path: string) => Promise<bigint>;
  /** Options of the PoolMonitor (default: on the DeviceSet's syscalls and /dev). */
  readonly monitor?: Omit<PoolMonitorOptions, 'signal'>;
}
