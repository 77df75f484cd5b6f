// SPDX-License-Identifier: MIT
// A timing `Syscalls` proxy: forwards every call to the real seam and records its wall time per
// call name (`ioctl LOOP_CONFIGURE`, `open`, `fstat`…). For profiles only: the proxy's own cost
// (a closure and two hrtime reads per call) is in every recorded time, so timed benchmark samples
// never go through it.
import type { Syscalls } from '../../src/ioctl/index.js';

/** One recorded call: its name and wall time in µs. */
export interface TimedCall {
  readonly name: string;
  readonly us: number;
}

export interface TimingSyscalls {
  readonly sys: Syscalls;
  /** Calls since the last {@link take}, in order. */
  take(): TimedCall[];
}

/** Wraps `real`: every method call is timed; `ioctl`/`ioctlAsync` are named after their request. */
export function timingSyscalls(real: Syscalls): TimingSyscalls {
  let calls: TimedCall[] = [];
  const sys = new Proxy(real, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]): unknown => {
        const name = prop === 'ioctl' || prop === 'ioctlAsync' ? `${String(prop)} ${String(args[3])}` : String(prop);
        const t0 = process.hrtime.bigint();
        const done = (): void => {
          calls.push({ name, us: Number(process.hrtime.bigint() - t0) / 1000 });
        };
        let r: unknown;
        try {
          r = fn.apply(target, args);
        } catch (err) {
          done();
          throw err;
        }
        if (r instanceof Promise) {
          return r.finally(done);
        }
        done();
        return r;
      };
    },
  });
  return {
    sys,
    take(): TimedCall[] {
      const out = calls;
      calls = [];
      return out;
    },
  };
}
