// SPDX-License-Identifier: MIT
// The root of this devmapper installation: the nearest directory above this module whose
// package.json is devmapper's. Found by walking up instead of a fixed '../../..', because the same
// code runs from dist/src/cli (tsc's output, the unit tests) and from the bundle in dist/cli
// (bin/devmapper.js; scripts/bundle-cli.mjs), at different depths.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { root: string; version: string } | undefined;

function find(): { root: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'devmapper') return { root: dir, version: typeof pkg.version === 'string' ? pkg.version : '0.0.0' };
    } catch {
      // no (readable) package.json here: keep walking up
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`devmapper's package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The directory holding devmapper's package.json (the package root). */
export function packageRoot(): string {
  cached ??= find();
  return cached.root;
}

/** The `version` field of devmapper's package.json. */
export function packageVersion(): string {
  cached ??= find();
  return cached.version;
}
