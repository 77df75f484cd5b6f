// SPDX-License-Identifier: MIT
// The CLI as bin/devmapper.js runs it: dist/src/cli (tsc's output) bundled by esbuild into
// dist/cli, one ESM entry (main.js) plus a chunk per command group and per shared layer, split at
// the CLI's own lazy import() boundaries. Why: Node 20's ESM loader costs about 1 ms per module on
// a host and ~40 ms in the TCG test guest (resolve, URL, stat, async read per file); a `ds`
// command loaded 108 modules, `loop ls` 33 (test/unit/cli/startup.test.ts lists them). Bundled,
// each is a handful of files. The library's entry points (dist/src) stay unbundled.
// koffi (native) stays external. @solana/buffer-layout (CommonJS, which src/ioctl/buffer-layout.ts
// loads with createRequire) is bundled in: the bundle's copy of that module imports it instead (the
// plugin below), so the CLI pays neither the CommonJS loader (package lookups, a 90 KB file with its
// comments) nor cjs-module-lexer; its one require('buffer') is answered by node:buffer.
// Input source maps (tsc's, with inlined sources) are followed, so the bundle's maps point at src/.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundled copy of dist/src/ioctl/buffer-layout.js: an import of the package, not createRequire. */
const bundleBufferLayout = {
  name: 'bundle-buffer-layout',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]src[\\/]ioctl[\\/]buffer-layout\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const from = "import { createRequire } from 'node:module';\nconst bl = createRequire(import.meta.url)('@solana/buffer-layout');\n";
      // Same line count, so tsc's source map of the file still lines up.
      const to = "import * as bl from '@solana/buffer-layout';\n\n";
      if (!text.includes(from)) throw new Error(`bundle-cli: ${args.path} no longer loads @solana/buffer-layout as expected; update this plugin`);
      return { contents: text.replace(from, to), loader: 'js', resolveDir: dirname(args.path) };
    });
    // buffer-layout's require('buffer'): ESM output has no require(), so it gets node:buffer's module.
    b.onResolve({ filter: /^buffer$/ }, (args) => (args.kind === 'require-call' ? { path: 'buffer', namespace: 'node-buffer' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'node-buffer' }, () => ({ contents: "export { Buffer } from 'node:buffer';\n", loader: 'js' }));
  },
};

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/cli');
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  // The BatchWorker's thread is a second entry: BatchWorker starts it as
  // new URL('./batch-thread.js', import.meta.url), which esbuild leaves as written, so the file must
  // sit next to the chunk that holds BatchWorker (every chunk is in dist/cli).
  entryPoints: { main: join(root, 'dist/src/cli/main.js'), 'batch-thread': join(root, 'dist/src/ioctl/batch-thread.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  plugins: [bundleBufferLayout],
  sourcemap: 'linked',
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
console.log(`bundle-cli: ${outputs.length} files in dist/cli from ${Object.keys(result.metafile.inputs).length} modules`);
