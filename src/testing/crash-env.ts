// SPDX-License-Identifier: MIT
// The environment-driven crash hook, for test children only. A DeviceSet never reads these
// variables itself (its default hook does nothing): a test process that wants to die at a crash
// point builds this hook and passes it as `crashPoint`.
import { appendFileSync } from 'node:fs';
import { crashHook, dieNow, parseCrashSpec, type CrashHook } from '../deviceset/index.js';

/** Environment variable naming where to die: `<name>` (first hit), `<name>@<k>` (k-th hit, 1-based) or `#<n>` (n-th point hit overall, 1-based). */
export const CRASH_AT_ENV = 'DEVMAPPER_CRASH_AT';
/** Environment variable naming a file to which every point reached is appended, one per line. */
export const CRASH_TRACE_ENV = 'DEVMAPPER_CRASH_TRACE';

/**
 * A hook that reads {@link CRASH_AT_ENV} and {@link CRASH_TRACE_ENV} from `env` now: SIGKILLs the
 * process at the named point and/or traces every point reached. With neither set it does nothing.
 * @throws Error when CRASH_AT_ENV is malformed (the message names the variable and the valid forms).
 */
export function crashHookFromEnv(env: NodeJS.ProcessEnv = process.env): CrashHook {
  const at = env[CRASH_AT_ENV];
  const traceFile = env[CRASH_TRACE_ENV];
  let spec;
  try {
    spec = at ? parseCrashSpec(at) : undefined;
  } catch (err) {
    throw new Error(`${CRASH_AT_ENV}: ${(err as Error).message}`, { cause: err });
  }
  const trace = traceFile ? (name: string) => appendFileSync(traceFile, `${name}\n`) : undefined;
  return crashHook(spec, () => dieNow(), trace);
}
