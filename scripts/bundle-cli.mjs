// SPDX-License-Identifier: MIT
// The CLI as bin/devmapper.js runs it: dist/src/cli (tsc's output) bundled by esbuild into
// dist/cli, one ESM entry (main.js) plus a chunk per command group and per shared layer, split at
// the CLI's own lazy import() boundaries. Why: Node 20's ESM loader costs about 1 ms per module on
// a host and ~40 ms in the TCG test guest (resolve, URL, stat, async read per file); a `ds`
// command loaded 108 modules, `loop ls` 33 (test/unit/cli/startup.test.ts lists them). Bundled,
// each is a handful of files. The library's entry points (dist/src) stay unbundled.
// koffi (native) and @solana/buffer-layout (CommonJS, loaded with createRequire) stay external.
// Input source maps (tsc's, with inlined sources) are followed, so the bundle's maps point at src/.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/cli');
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: join(root, 'dist/src/cli/main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi', '@solana/buffer-layout'],
  sourcemap: 'linked',
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
console.log(`bundle-cli: ${outputs.length} files in dist/cli from ${Object.keys(result.metafile.inputs).length} modules`);
