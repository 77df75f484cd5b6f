// SPDX-License-Identifier: MIT
// The real Deps of a command. Importing this module loads none of the library: DmControl and
// LoopControl load with import() on the first call of one of their methods (deps.dm() and
// deps.loop() hand out forwarders: every CLI method of both is asynchronous), and the DeviceSet,
// the Driver and the VM code on their first use. So `loop ls` never loads src/dm, `dm ls` never
// loads src/loop, and neither loads the DeviceSet, its TypeBox schemas or the VM code
// (test/unit/cli/startup.test.ts pins it).
import { readFileSync } from 'node:fs';
import type { DmControl } from '../dm/index.js';
import type { LoopControl } from '../loop/index.js';
import { CLI_DM_METHODS, CLI_LOOP_METHODS, MNT_DETACH, parseMountInfo, type CliDm, type CliLoop, type Deps } from './context.js';

/** The keys of T whose values are functions returning a Promise. */
type AsyncKeys<T> = { [K in keyof T]: T[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof T];

/**
 * An object with `methods` of T, each awaiting `get()` (the one T, made on the first call) and
 * calling the method on it. Only asynchronous methods can be forwarded so: the type says which.
 */
function forwarder<T extends object, K extends AsyncKeys<T>>(get: () => Promise<T>, methods: readonly K[]): Pick<T, K> {
  const out: Partial<Record<K, unknown>> = {};
  for (const m of methods) {
    out[m] = async (...args: unknown[]) => {
      const target = await get();
      return (target[m] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
    };
  }
  return out as Pick<T, K>;
}

/** The real dependencies: DmControl / LoopControl over libc, DeviceSet, Driver, runInVm. */
export function realDeps(): Deps & { close(): void } {
  let dm: DmControl | undefined;
  let dmLoading: Promise<DmControl> | undefined;
  let loopLoading: Promise<LoopControl> | undefined;
  const dmControl = (): Promise<DmControl> =>
    (dmLoading ??= import('./lazy/dm.js').then(({ DmControl }) => (dm = new DmControl())));
  const dmForwarder: CliDm = { ...forwarder<DmControl, (typeof CLI_DM_METHODS)[number]>(dmControl, CLI_DM_METHODS), close: () => dm?.close() };
  const loopControl = (): Promise<LoopControl> => (loopLoading ??= import('./lazy/loop.js').then(({ LoopControl }) => new LoopControl()));
  const loopForwarder: CliLoop = {
    ...forwarder<LoopControl, (typeof CLI_LOOP_METHODS)[number]>(loopControl, CLI_LOOP_METHODS),
    // A one-shot process has nothing to overlap with the sysfs walk: the synchronous twin reads
    // the same files (same results, same errors) without four threadpool hops per file
    // (`loop ls` with 8 loop devices: 7 ms of CPU async, 3 ms sync).
    list: async (options) => (await loopControl()).listSync(options),
  };
  return {
    dm: () => dmForwarder,
    loop: () => loopForwarder,
    runInVm: async (options) => (await import('../vm/index.js')).runInVm(options),
    openDeviceSet: async (root, options, log, signal) => {
      const { DeviceSet } = await import('../deviceset/index.js');
      // One-shot: autoextend checks once at open but does not stay to watch (the process exits).
      return DeviceSet.init(root, { options, dm: await dmControl(), log, autoextend: { watch: false }, ...(signal ? { signal } : {}) });
    },
    openDriver: async (home, options, log, signal, doInit) => {
      const { Driver } = await import('../driver/index.js');
      return Driver.init(home, { options, dm: await dmControl(), log, doInit, ...(signal ? { signal } : {}) });
    },
    mounts: () => parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')),
    umount: async (path) => (await import('./lazy/ioctl.js')).realSyscalls().umount2Async(path, MNT_DETACH),
    close: () => dm?.close(),
  };
}
