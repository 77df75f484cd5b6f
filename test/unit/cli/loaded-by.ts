// SPDX-License-Identifier: MIT
// Which modules a CLI invocation loads: runs it in a child `node --import load-recorder.js`, whose
// load hook appends every file: URL loaded to DEVMAPPER_LOAD_LOG. `via: 'bin'` runs
// bin/devmapper.js (the bundle in dist/cli); `via: 'src'` runs tsc's dist/src/cli/main.js the way
// bin did before the bundle, through a temporary entry file, so the lazy-import structure of the
// source (what the bundle splits on) stays pinned by startup.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root (this file runs as dist/test/unit/cli/loaded-by.js). */
export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const recorder = fileURLToPath(new URL('./load-recorder.js', import.meta.url));

export interface Loaded {
  /** Exit status of the CLI. */
  readonly status: number | null;
  readonly stdout: string;
  /** Every module loaded from a file inside the package (test files excepted), relative to its root, sorted. */
  readonly files: readonly string[];
  /** Every node: builtin imported by a module (not those Node loads for itself, nor require()d ones), sorted. */
  readonly builtins: readonly string[];
}

export function loadedBy(args: readonly string[], via: 'bin' | 'src' = 'src'): Loaded {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-startup-'));
  const log = join(dir, 'loaded.txt');
  try {
    let entry = join(repo, 'bin', 'devmapper.js');
    if (via === 'src') {
      entry = join(dir, 'entry.mjs');
      const main = pathToFileURL(join(repo, 'dist/src/cli/main.js')).href;
      writeFileSync(entry, `import { run } from ${JSON.stringify(main)};\nprocess.exitCode = await run(process.argv.slice(2));\n`);
    }
    const r = spawnSync(process.execPath, ['--import', recorder, entry, ...args], {
      cwd: repo,
      encoding: 'utf8',
      env: { ...process.env, DEVMAPPER_LOAD_LOG: log },
    });
    const urls = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    const files = urls
      .filter((u) => u.startsWith('file:'))
      .map((u) => relative(repo, fileURLToPath(u)))
      .filter((f) => !f.startsWith('dist/test/') && !f.startsWith('..'));
    const builtins = urls.filter((u) => u.startsWith('node:'));
    return { status: r.status, stdout: r.stdout, files: [...new Set(files)].sort(), builtins: [...new Set(builtins)].sort() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
