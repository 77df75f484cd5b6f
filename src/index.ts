// SPDX-License-Identifier: MIT
/**
 * devmapper: Linux device-mapper, loop devices, thin provisioning and a Docker-style DeviceSet,
 * from TypeScript, at ioctl level (no libdevmapper, no dmsetup/losetup subprocesses).
 *
 * Layers, each usable on its own (imports only flow downward):
 * - `devmapper/dm`: DmControl, one method per DM_* command through a single ioctl choke point;
 *   lifecycle is create → tableLoad → deviceResume (the inactive table becomes live on resume).
 * - `devmapper/loop`: LoopControl (LOOP_CONFIGURE with fallback) and sparse backing files.
 * - `devmapper/thin`: ThinPool / ThinDevice: pool table, messages (create_thin, create_snap with
 *   the origin suspended first, delete, set_transaction_id, metadata snapshots) and typed status.
 * - `devmapper/deviceset`: Docker's DeviceSet (dm.* options, base image, snapshots, mounts,
 *   crash-safe journalled metadata).
 * - `devmapper/driver`: the seed's graph Driver over a DeviceSet, and Docker-root tools.
 * - `devmapper/testing`: FakeKernel, an in-process kernel behind the same `Syscalls` seam.
 * - `devmapper/vm`: boot a Debian kernel under QEMU and run a command in it as root.
 */
export * from './errors.js';
export { IoctlError, realSyscalls } from './ioctl/index.js';
export type { Syscalls, StatResult, IoctlArg } from './ioctl/index.js';
export * from './dm/index.js';
export * from './loop/index.js';
export * from './thin/index.js';
export * from './deviceset/index.js';
export * from './driver/index.js';
