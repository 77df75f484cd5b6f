// SPDX-License-Identifier: MIT
// Event-loop lag probe: a short interval timer; lag = how late each tick fires.
import { readFileSync } from 'node:fs';
import { median } from './stats.js';

/** One late tick: when it fired (performance.now(), ms) and how late it was. */
export interface LagSpike {
  readonly atMs: number;
  readonly lagMs: number;
}

export interface LagReading {
  readonly worstMs: number;
  readonly medianMs: number;
  /** 99th percentile lateness. */
  readonly p99Ms: number;
  readonly ticks: number;
  /**
   * The latest ticks, worst first (at most `spikes` of the probe's options, only those later than
   * `spikeMs`): the blocked interval is `[atMs − lagMs − intervalMs, atMs]`, to be matched against
   * the timestamps of what ran meanwhile.
   */
  readonly spikes: readonly LagSpike[];
}

export interface LagProbe {
  stop(): LagReading;
}

export interface LagProbeOptions {
  /** Keep at most this many spikes (default 8). */
  readonly spikes?: number;
  /** Only ticks later than this count as spikes (default 10 ms: issue #20's bound). */
  readonly spikeMs?: number;
}

/**
 * On-CPU and run-queue-wait time of the calling thread so far, in ms, from
 * /proc/thread-self/schedstat (fs/proc/base.c proc_pid_schedstat(): se.sum_exec_runtime and
 * sched_info.run_delay, in ns; CONFIG_SCHED_INFO); null where it cannot be read. Under TCG the guest counts time its vCPU thread was
 * descheduled on the host as on-CPU time: only the run-queue wait separates cleanly.
 */
export function threadSchedstat(): { cpuMs: number; runQueueMs: number } | null {
  try {
    const [cpu, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').trim().split(/\s+/).map(Number);
    return cpu === undefined || wait === undefined ? null : { cpuMs: cpu / 1e6, runQueueMs: wait / 1e6 };
  } catch {
    return null;
  }
}

/** Starts a probe ticking every `intervalMs`. */
export function startLagProbe(intervalMs = 2, options: LagProbeOptions = {}): LagProbe {
  const keep = options.spikes ?? 8;
  const spikeMs = options.spikeMs ?? 10;
  const lags: number[] = [];
  const spikes: LagSpike[] = [];
  let last = performance.now();
  const record = (now: number): void => {
    const lag = Math.max(0, now - last - intervalMs);
    lags.push(lag);
    if (lag > spikeMs) spikes.push({ atMs: now, lagMs: lag });
    last = now;
  };
  const timer = setInterval(() => record(performance.now()), intervalMs);
  return {
    stop(): LagReading {
      clearInterval(timer);
      // The gap since the last tick counts too: a call that blocked the thread at the very end
      // would otherwise go unseen.
      record(performance.now());
      const sorted = [...lags].sort((a, b) => a - b);
      const p99Ms = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
      const worst = [...spikes].sort((a, b) => b.lagMs - a.lagMs).slice(0, keep);
      return { worstMs: Math.max(...lags), medianMs: median(lags), p99Ms, ticks: lags.length, spikes: worst };
    },
  };
}
