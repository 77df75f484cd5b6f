// SPDX-License-Identifier: MIT
// The slice of DmControl (src/dm) that ThinPool and ThinDevice use, as a structural interface:
// DmControl satisfies it (checked below at compile time), and unit tests pass a small fake that
// records calls.
import type { DeviceInfo, DmControl, TargetLine } from '../dm/index.js';

/** A device number as the dm layer reports it. */
export type ThinDmDevNum = DeviceInfo['dev'];

/**
 * The fields of DmControl's DeviceInfo that the thin layer reads: `dev`, `suspended`,
 * `activeTable` and `openCount` (for a pool, each active thin device holds it open once).
 */
export type ThinDmDeviceInfo = Pick<DeviceInfo, 'dev' | 'suspended' | 'activeTable' | 'openCount'>;

/** One table line, `start length type params` (DmControl's TargetLine). */
export type ThinDmTarget = TargetLine;

/**
 * What the thin layer needs from DmControl. Methods may return values or promises; results the
 * thin layer does not read are typed `unknown`. Devices are always named by their dm name.
 */
export interface ThinDm {
  deviceCreate(name: string, options?: { readonly uuid?: string }): unknown;
  tableLoad(name: string, targets: readonly ThinDmTarget[], options?: { readonly readOnly?: boolean }): unknown;
  deviceResume(name: string): ThinDmDeviceInfo | Promise<ThinDmDeviceInfo>;
  deviceSuspend(name: string, options?: { readonly noflush?: boolean; readonly skipLockfs?: boolean }): unknown;
  deviceRemove(name: string, options?: { readonly retry?: { readonly attempts: number; readonly delayMs: number } }): unknown;
  deviceInfo(name: string): ThinDmDeviceInfo | Promise<ThinDmDeviceInfo>;
  tableStatus(
    name: string,
    options?: { readonly mode?: 'status' | 'table'; readonly noflush?: boolean },
  ): readonly ThinDmTarget[] | Promise<readonly ThinDmTarget[]>;
  /**
   * Optional (DmControl has it): {@link tableStatus} with the reply header's device info, from one
   * ioctl. Without it the thin layer asks {@link deviceInfo} as well.
   */
  tableStatusWithInfo?(
    name: string,
    options?: { readonly mode?: 'status' | 'table'; readonly noflush?: boolean },
  ): Promise<{ readonly info: ThinDmDeviceInfo; readonly targets: readonly ThinDmTarget[] }>;
  targetMessage(name: string, sector: bigint, message: string): unknown;
  /**
   * Optional (DmControl has it): suspend `device`, message `target`, resume `device` in one batch.
   * `null`: it cannot batch now and sent nothing. Otherwise which step failed, if one did (the
   * steps after it were not sent; after 'message' the device is still suspended).
   */
  suspendMessageResume?(
    device: string,
    target: string,
    sector: bigint,
    message: string,
  ): Promise<{ readonly failed?: 'suspend' | 'message' | 'resume'; readonly error?: unknown } | null>;
}

/** Compile-time proof that the real DmControl fits the port (tsc fails here if it drifts). */
export type DmControlFitsThinDm = DmControl extends ThinDm ? true : never;
const dmControlFits: DmControlFitsThinDm = true;
void dmControlFits;
