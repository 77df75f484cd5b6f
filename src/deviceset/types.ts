// SPDX-License-Identifier: MIT
// Types shared by the DeviceSet's modules (device-set.ts imports them; they import nothing of it).

/** Log levels of {@link DeviceSetInit.log}. */
export type DeviceSetLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The DeviceSet's log sink. */
export type DeviceSetLog = (level: DeviceSetLogLevel, message: string) => void;

/** Where the pool's data and metadata come from. */
export interface PoolSource {
  readonly owned: boolean;
  readonly dataFile: string | null;
  readonly metadataFile: string | null;
  dataDevice: string | null;
  metadataDevice: string | null;
}
