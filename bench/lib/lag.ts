// SPDX-License-Identifier: MIT
// Event-loop lag probe: a short interval timer; lag = how late each tick fires.
import { median } from './stats.js';

export interface LagReading {
  readonly worstMs: number;
  readonly medianMs: number;
  /** 99th percentile lateness. */
  readonly p99Ms: number;
  readonly ticks: number;
}

export interface LagProbe {
  stop(): LagReading;
}

/** Starts a probe ticking every `intervalMs`. */
export function startLagProbe(intervalMs = 2): LagProbe {
  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - intervalMs));
    last = now;
  }, intervalMs);
  return {
    stop(): LagReading {
      clearInterval(timer);
      // The gap since the last tick counts too: a call that blocked the thread at the very end
      // would otherwise go unseen.
      lags.push(Math.max(0, performance.now() - last - intervalMs));
      const sorted = [...lags].sort((a, b) => a - b);
      const p99Ms = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
      return { worstMs: Math.max(...lags), medianMs: median(lags), p99Ms, ticks: lags.length };
    },
  };
}
