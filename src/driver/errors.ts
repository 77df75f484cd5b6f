// SPDX-License-Identifier: MIT
// The driver layer's errors: the graph-driver verbs over a DeviceSet (driver.ts) and the tools for
// roots written by Docker's own devicemapper driver (docker-*.ts). Every class has one stable
// `code`, listed in DEVMAPPER_ERROR_CODES; `cause` always keeps the lower error.
import { DevmapperError } from '../errors.js';

/** Base class of the driver layer's errors (no code of its own). */
export abstract class DriverError extends DevmapperError {}
