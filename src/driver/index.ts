// SPDX-License-Identifier: MIT
/**
 * `devmapper/driver`: the seed's graph driver above the DeviceSet (Docker's
 * `daemon/graphdriver/devmapper`: `Init(home, options)` → `NewDeviceSet` → `initDevmapper` →
 * `setupBaseImage`, then Create/Get/Put/Remove…), and the tools for roots written by Docker.
 */
export { DriverError } from './errors.js';
export * from './docker-errors.js';
export * from './docker-root.js';
export * from './docker-mount.js';
