// SPDX-License-Identifier: MIT
// npm run test:vm: the whole privileged suite in ONE guest boot, as root, with real device-mapper.
// Prints "vm: N passed, M failed" last; exits non-zero on any failure, a timeout, or zero tests.
// `--summary-file F` also writes the counts as JSON for scripts/test-all.sh.
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInVm } from '../../src/vm/index.js';
import { parseUvuSummary, summaryLine } from './summary.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const timeoutMs = Number(process.env['DEVMAPPER_VM_TIMEOUT_MS'] ?? 20 * 60 * 1000);
const memMb = process.env['DEVMAPPER_VM_MEM_MB'] ? Number(process.env['DEVMAPPER_VM_MEM_MB']) : undefined;
const argv = process.argv.slice(2);
const sfIdx = argv.indexOf('--summary-file');
const summaryFile = sfIdx >= 0 ? argv[sfIdx + 1] : undefined;

let captured = '';
const result = await runInVm({
  // The guest only reads these: serve them through the cached read-only view (see runInVm).
  readOnlyCached: ['node_modules', 'dist'],
  cwd: repo,
  command: ['node', 'node_modules/uvu/bin.js', 'dist/test/privileged', '\\.test\\.js$'],
  env: { DEVMAPPER_PRIVILEGED: '1', ...(process.env['CI'] ? { CI: process.env['CI'] } : {}) },
  timeoutMs,
  ...(memMb ? { memMb } : {}),
  onOutput: (t) => {
    captured += t;
    process.stdout.write(t);
  },
});

const s = parseUvuSummary(captured);
const passed = s?.passed ?? 0;
let failed = s?.failed ?? 0;
const problems: string[] = [];
if (result.timedOut) problems.push(`the VM timed out after ${timeoutMs} ms (exit ${result.exitCode})`);
if (!s) problems.push('no uvu summary in the guest output (the test run crashed or never started)');
else if (s.total === 0) problems.push('the VM ran zero tests');
if (result.exitCode !== 0 && failed === 0) problems.push(`the guest command exited ${result.exitCode}`);
if (problems.length > 0 && failed === 0) failed = 1;

console.log(
  `[devmapper vm] kernel ${result.kernel.version}; boot to first command ${result.bootMs} ms; total ${result.totalMs} ms; guest exit ${result.exitCode}`,
);
for (const p of problems) console.log(`[devmapper vm] FAILED: ${p}`);
if (summaryFile) writeFileSync(summaryFile, JSON.stringify({ passed, failed, exitCode: result.exitCode, timedOut: result.timedOut }) + '\n');
console.log(summaryLine('vm', passed, failed));
process.exitCode = problems.length > 0 || failed > 0 || result.exitCode !== 0 ? 1 : 0;
