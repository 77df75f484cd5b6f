// SPDX-License-Identifier: MIT
// devmapper's own version, read once from package.json (dist/src/cli → the package root).
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The `version` field of devmapper's package.json. */
export function libraryVersion(): string {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return cached;
}
