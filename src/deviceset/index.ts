// SPDX-License-Identifier: MIT
// The DeviceSet layer: Docker-style devices on a thin pool. So far its pure foundations.
export * from './errors.js';
export * from './hash.js';
export * from './options.js';
export * from './metadata.js';
export * from './ids.js';
export * from './reconcile.js';
