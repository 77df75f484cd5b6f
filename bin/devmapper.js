#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The `devmapper` command. It runs the bundled CLI in dist/cli (npm run build: tsc, then
// scripts/bundle-cli.mjs), a few files instead of ~100 modules to load; or tsc's dist/src/cli
// when the bundle is missing or older than it (a bare `tsc` since the last `npm run build`), so a
// stale bundle never runs. Both are the same source, src/cli.
import { statSync } from 'node:fs';

const mtime = (rel) => {
  try {
    return statSync(new URL(rel, import.meta.url)).mtimeMs;
  } catch {
    return -1;
  }
};
const bundle = mtime('../dist/cli/main.js');
const entry = bundle >= 0 && bundle >= mtime('../dist/src/cli/main.js') ? '../dist/cli/main.js' : '../dist/src/cli/main.js';
const { run } = await import(entry);
process.exitCode = await run(process.argv.slice(2));
