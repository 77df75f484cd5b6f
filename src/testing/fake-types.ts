// SPDX-License-Identifier: MIT
// The public types of FakeKernel (re-exported by fake-kernel.ts and devmapper/testing): its
// options, the call log and fault rules, and the shapes its inspection methods return.
import type { SyscallName } from '../ioctl/index.js';
import type { FakePoolMode } from './thin-model.js';

/** Options of {@link FakeKernel}. */
export interface FakeKernelOptions {
  /** dm ioctl interface version the fake speaks. Default 4.47.0. */
  readonly dmVersion?: readonly [number, number, number];
  /** Block major of dm devices. Default 253. */
  readonly dmMajor?: number;
  /** Where the fake /dev lives. Default '/dev'. */
  readonly devDir?: string;
  /** loop0…loopN-1 exist at boot (CONFIG_BLK_DEV_LOOP_MIN_COUNT). Default 8. */
  readonly initialLoops?: number;
  /**
   * Keep a sysfs tree (block/loopN/…, block/dm-N/…) in this real directory, for LoopControl's
   * `sysfsRoot`; `true` makes a temp dir (removed by {@link FakeKernel.dispose}). Default: none.
   */
  readonly sysfs?: string | boolean;
  /** Pretend udev runs (/run/udev/control exists). Default false. */
  readonly udevRunning?: boolean;
  /**
   * Refuse the names 'control', '.' and '..' on create/rename (EINVAL), as kernels newer than 6.1
   * do. Default false: Linux 6.1 (dm ioctl 4.47, the VM's kernel) accepts them; only '/' is refused.
   */
  readonly rejectReservedNames?: boolean;
}

/** One recorded syscall. */
export interface FakeCall {
  /** 0-based, counted over the FakeKernel's life (reset() restarts it). */
  readonly index: number;
  readonly syscall: SyscallName;
  /** C request name for ioctls ('DM_DEV_REMOVE'). */
  readonly request?: string;
  readonly fd?: number;
  readonly path?: string;
  readonly dest?: string;
  /** 'ok', an errno name, or 'crash'. Set when the call ends (undefined while a DEV_WAIT blocks). */
  result?: string;
}

/** A scripted failure: see {@link FakeKernel.failNext}. */
export interface FailRule {
  /** Match an ioctl by C request name ('DM_DEV_REMOVE', 'LOOP_CONFIGURE', 'BLKDISCARD'). */
  readonly request?: string;
  /** Match a syscall ('open', 'mount'…). Default: any (or 'ioctl' when `request` is given). */
  readonly syscall?: SyscallName;
  /** Match the path argument: exact string or RegExp. */
  readonly path?: string | RegExp;
  /** Errno name to fail with ('EBUSY'). */
  readonly errno: string;
  /** How many matching calls fail. Default 1. */
  readonly times?: number;
  /** Matching calls to let through before failing. Default 0. */
  readonly skip?: number;
  /**
   * 'before' (default): the call fails without effect. 'after': the kernel carries it out and the
   * caller still gets the errno (an interrupted-but-done operation).
   */
  readonly when?: 'before' | 'after';
}

/** Handle of an armed rule. */
export interface FailHandle {
  /** Failures left to inject. */
  readonly remaining: number;
  cancel(): void;
}

/** Introspection of one dm device. */
export interface FakeDmDeviceInfo {
  readonly name: string;
  readonly uuid: string | null;
  readonly major: number;
  readonly minor: number;
  readonly suspended: boolean;
  readonly openCount: number;
  readonly eventNr: number;
  readonly deferredRemove: boolean;
  readonly readOnly: boolean;
  /** Live table lines as loaded (params as the kernel normalised them), or null. */
  readonly live: FakeTableLine[] | null;
  readonly inactive: FakeTableLine[] | null;
}

export interface FakeTableLine {
  readonly start: bigint;
  readonly length: bigint;
  readonly type: string;
  readonly params: string;
}

/** Introspection of one loop device. */
export interface FakeLoopInfo {
  readonly index: number;
  readonly path: string;
  readonly openCount: number;
  readonly bound: boolean;
  readonly backingFile?: string;
  readonly offset?: bigint;
  readonly sizeLimit?: bigint;
  readonly flags?: number;
  readonly sizeBytes?: bigint;
  readonly blockSize?: number;
}

/** Introspection of a thin pool. */
export interface FakePoolInfo {
  readonly name: string;
  readonly transactionId: bigint;
  readonly mode: FakePoolMode;
  readonly dataBlockSize: number;
  readonly dataBlocks: number;
  readonly usedDataBlocks: number;
  readonly metadataBlocks: number;
  readonly heldRoot: bigint | null;
  readonly needsCheck: boolean;
  /** Thin ids with their mapped block counts. */
  readonly thins: ReadonlyMap<number, number>;
  /** Thin ids currently opened by thin targets. */
  readonly openThins: readonly number[];
}

/** A mount made through the fake. */
export interface FakeMount {
  readonly source: string;
  readonly target: string;
  readonly fstype: string;
  readonly flags: bigint;
  readonly data: string | null;
}
