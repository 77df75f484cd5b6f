// SPDX-License-Identifier: MIT
// The JSON the in-guest benchmark writes and the host report reads (bench/results/*.json).
import type { Summary } from './stats.js';

/** Who performed the operation. */
export type Impl = 'ours' | 'floor' | 'libdm' | 'cli';

/**
 * Which targets apply: 'kernel' (kernel-bound: ≤ 1.1× floor), 'light' (≤ 3× floor, never slower
 * than libdm), 'loop' (≤ 1.2× the floor's LOOP_CONFIGURE path), 'info' (no target, for analysis).
 * All but 'info' also carry "dmsetup/losetup ≥ 20× slower than ours" when a CLI was timed.
 */
export type OpClass = 'kernel' | 'light' | 'loop' | 'info';

export interface OpResult {
  readonly id: string;
  readonly label: string;
  readonly cls: OpClass;
  /** Per-implementation summaries (µs per operation); absent = not timed. */
  readonly impl: Partial<Record<Impl, Summary>>;
  /** Why an implementation has no numbers (e.g. libdevmapper-dev not installable). */
  readonly unavailable: Partial<Record<Impl, string>>;
  /** The CLI command timed, e.g. "dmsetup create". */
  readonly cli?: string;
  readonly notes: string[];
}

export interface DeviceSetPoint {
  readonly initUs: number;
  readonly statusUs: number;
  readonly listUs: number;
  readonly addDeviceUs: number;
}

export interface GrowthPoint {
  /** Thin devices in the pool (create_thin'd). */
  readonly thinCount: number;
  /** Of which active as dm devices. */
  readonly activeCount: number;
  /** dm devices the kernel lists (active thins + pool + the rest). */
  readonly listed: number;
  /** Mean µs per create_thin over the last step that brought the pool to this size. */
  readonly createThinUs: number;
  /** Mean µs per thin activation (create+load+resume) over the last step, or null if none. */
  readonly activateUs: number | null;
  readonly listDevices: Summary;
  readonly listDevicesFloor: Summary | null;
  readonly poolStatus: Summary;
  /** process.memoryUsage().rss after the step, MiB. */
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly deviceSet?: DeviceSetPoint | null;
}

export interface LagResult {
  readonly scenario: string;
  /** Worst timer lateness seen while the calls were in flight, ms. */
  readonly worstLagMs: number;
  /** Median lateness, ms. */
  readonly medianLagMs: number;
  /** 99th percentile lateness, ms. */
  readonly p99LagMs?: number;
  readonly ticks: number;
  /** How long the blocking calls kept the kernel busy in total, ms. */
  readonly blockedMs: number;
  /** Individual blocking-call durations (ms), when several. */
  readonly callMs?: Summary;
  readonly notes: string[];
}

export interface BenchResults {
  readonly meta: {
    readonly date: string;
    readonly smoke: boolean;
    readonly kernel: string;
    readonly dmVersion: string;
    readonly node: string;
    readonly cpus: number;
    readonly memMiB: number;
    readonly libdm: string;
    readonly guestMs: number;
  };
  readonly ops: OpResult[];
  readonly growth: {
    readonly sizes: number[];
    readonly activateCap: number;
    readonly points: GrowthPoint[];
    readonly notes: string[];
  };
  readonly lag: LagResult[];
  /** Benchmarks that failed (the run continues past them). */
  readonly errors: string[];
}
