// SPDX-License-Identifier: MIT
// The DeviceSet layer: Docker-style devices on a thin pool (DeviceSet) and its foundations.
export * from './errors.js';
export * from './hash.js';
export * from './options.js';
export * from './metadata.js';
export * from './ids.js';
export * from './reconcile.js';
export * from './mutex.js';
export * from './crash.js';
export * from './root-lock.js';
export * from './pool-sizing.js';
export * from './fs-tools.js';
export * from './kernel-log.js';
export * from './device-set.js';
export * from './safe-path.js';
