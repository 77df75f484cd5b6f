// SPDX-License-Identifier: MIT
// The real Deps of a command: DmControl / LoopControl over libc (loaded with this module, which
// main.ts imports only when a command runs, never for --help or --version), and the DeviceSet,
// the Driver and the VM code, each loaded with import() on its first use: `dm ls` and `loop ls`
// never load the DeviceSet, its TypeBox schemas or the VM code.
import { readFileSync } from 'node:fs';
import { DmControl } from '../dm/index.js';
import { realSyscalls } from '../ioctl/index.js';
import { LoopControl } from '../loop/index.js';
import { MNT_DETACH, parseMountInfo, type Deps } from './context.js';

/** The real dependencies: DmControl / LoopControl over libc, DeviceSet, Driver, runInVm. */
export function realDeps(): Deps & { close(): void } {
  let dm: DmControl | undefined;
  let loop: LoopControl | undefined;
  return {
    dm: () => (dm ??= new DmControl()),
    loop: () => (loop ??= new LoopControl()),
    runInVm: async (options) => (await import('../vm/index.js')).runInVm(options),
    openDeviceSet: async (root, options, log, signal) =>
      // One-shot: autoextend checks once at open but does not stay to watch (the process exits).
      (await import('../deviceset/index.js')).DeviceSet.init(root, { options, dm: (dm ??= new DmControl()), log, autoextend: { watch: false }, ...(signal ? { signal } : {}) }),
    openDriver: async (home, options, log, signal, doInit) =>
      (await import('../driver/index.js')).Driver.init(home, { options, dm: (dm ??= new DmControl()), log, doInit, ...(signal ? { signal } : {}) }),
    mounts: () => parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')),
    umount: (path) => realSyscalls().umount2Async(path, MNT_DETACH),
    close: () => dm?.close(),
  };
}
