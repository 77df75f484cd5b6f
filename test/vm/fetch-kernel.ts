// SPDX-License-Identifier: MIT
// Used by scripts/test-all.sh before the VM cells: makes a matrix kernel ready and prints the
// selector to boot it with, so the download is timed as its own stage and every cell that uses
// the kernel boots exactly the same one.
// Usage: fetch-kernel.js <selector>   (a version, a vmlinuz path, or pkg:<debian package pattern>)
// Prints `<selector for run-privileged --kernel> <kernel version>` on its last line.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchKernelPackage, resolvePackageName, selectKernel } from '../../src/vm/index.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const sel = process.argv[2] ?? '';
if (sel.startsWith('pkg:')) {
  // The same cache runInVm uses for pkg: kernels (<cwd>/.cache/vm/kernels).
  const name = resolvePackageName(sel.slice(4));
  const k = fetchKernelPackage(name, join(repo, '.cache/vm/kernels'));
  console.log(`pkg:${name} ${k.version}`);
} else {
  const k = selectKernel(sel || undefined);
  console.log(`${k.version} ${k.version}`);
}
