// SPDX-License-Identifier: MIT
// Helpers that ThinPool (pool.ts) and ThinDevice (thin-device.ts) share for reading a live dm
// table and rolling back a half-made device. They live apart from both classes so that neither
// file imports the other for them (no pool.ts ↔ thin-device.ts import cycle).
import type { ThinDm, ThinDmTarget } from './dm-port.js';
import { UnexpectedTargetError } from './errors.js';

/** Remove retries when rolling back a half-made device (as DmControl.createDevice does). @internal */
export const ROLLBACK_RETRY = Object.freeze({ retry: Object.freeze({ attempts: 5, delayMs: 100 }) });

/** The single target of `name`'s live table, checked to be of `type`. @internal */
export async function singleTarget(dm: ThinDm, name: string, type: string, options: { mode: 'status' | 'table'; noflush?: boolean }): Promise<ThinDmTarget> {
  return theOnlyTarget(name, type, await dm.tableStatus(name, options));
}

/** The single target of `targets` (`name`'s table), checked to be of `type`. @internal */
export function theOnlyTarget(name: string, type: string, targets: readonly ThinDmTarget[]): ThinDmTarget {
  const only = targets[0];
  if (targets.length !== 1 || only === undefined || only.type !== type) {
    throw new UnexpectedTargetError(name, type, targets.map((t) => t.type));
  }
  return only;
}
