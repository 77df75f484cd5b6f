// SPDX-License-Identifier: MIT
// devmapper's own version, read once from package.json (found by src/cli/package-root.ts).
import { packageVersion } from './package-root.js';

/** The `version` field of devmapper's package.json. */
export function libraryVersion(): string {
  return packageVersion();
}
