// SPDX-License-Identifier: MIT
// npm run test:vm: the privileged suite in ONE guest boot, as root, with real device-mapper: one
// cell of the CI matrix (scripts/test-all.sh runs every cell).
//   --kernel K        the guest kernel (as DEVMAPPER_VM_KERNEL: version, vmlinuz path, pkg:<name>)
//   --udev            start systemd-udevd in the guest (as DEVMAPPER_VM_UDEV=1)
//   --files REGEX     which test/privileged files run (uvu's pattern; default every *.test.js)
//   --quick-crash     deviceset.test.js kills at its representative subset of crash points
//                     (DEVMAPPER_DS_QUICK_CRASH=1) instead of at every one
//   --summary-file F  also write the counts, kernel, udev mode and times as JSON (see CellSummary)
// Prints "vm[<kernel>]: N passed, M failed" (or "vm[<kernel>, udev]: …") last; exits non-zero on
// any failure, a timeout, or zero tests.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInVm, type RunInVmResult } from '../../src/vm/index.js';
import { cellLabel, parseUvuProgress, parseUvuSummary, summaryLine, type CellSummary } from './summary.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
// Cell 1 (every file) took 27 min on 2026-12-06 with other engineers' builds and guests on the
// same 2 cores (load 6), ~15 min idle; the limit only catches a hung guest, so it leaves room
// for load: 50 min. The cells run one at a time.
const timeoutMs = Number(process.env['DEVMAPPER_VM_TIMEOUT_MS'] ?? 50 * 60 * 1000);
const memMb = process.env['DEVMAPPER_VM_MEM_MB'] ? Number(process.env['DEVMAPPER_VM_MEM_MB']) : undefined;
// util.parseArgs, strict: an unknown flag or `--help` must not boot a full run by accident.
const USAGE =
  'usage: node dist/test/vm/run-privileged.js [--kernel K] [--udev] [--files REGEX] [--quick-crash] [--tag NAME] [--summary-file F]\n' +
    '  --tag NAME  names the cell in its summary line: vm[<kernel>, udev, NAME]\n' +
    '  REGEX is matched against file names under dist/test/privileged; end it with \\.test\\.js$ (the .d.ts files are there too)';
function parseCli() {
  return parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: false,
    options: {
      kernel: { type: 'string' },
      udev: { type: 'boolean' },
      files: { type: 'string' },
      'quick-crash': { type: 'boolean' },
      'summary-file': { type: 'string' },
      tag: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
let parsed: ReturnType<typeof parseCli>;
try {
  parsed = parseCli();
} catch (e) {
  console.error(`run-privileged: ${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (parsed.values.help) {
  console.log(USAGE);
  process.exit(0);
}
const summaryFile = parsed.values['summary-file'];
const kernel = parsed.values.kernel ?? (process.env['DEVMAPPER_VM_KERNEL'] || undefined);
const udev = parsed.values.udev === true || process.env['DEVMAPPER_VM_UDEV'] === '1';
const files = parsed.values.files ?? '\\.test\\.js$';
const quickCrash = parsed.values['quick-crash'] === true;
const tag = parsed.values.tag;

let captured = '';
const started = Date.now();
// When each test file's header appeared in the guest output (host clock): where a cell's time goes.
const fileStarts: { file: string; at: number }[] = [];
let pending = '';
function noteFiles(t: string): void {
  pending += t;
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    // eslint-disable-next-line no-control-regex
    const m = /^([\w.-]+\.test\.js)$/.exec(line.replace(/\x1b\[[0-9;]*m/g, '').trim());
    if (m) fileStarts.push({ file: m[1]!, at: Date.now() });
  }
}
let result: RunInVmResult | undefined;
let setupError: string | undefined;

/** The host's DEVMAPPER_TEST_* variables (opt-in test sizes such as DEVMAPPER_TEST_AUTOEXTEND=issue), passed to the guest as they are. */
function testKnobs(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('DEVMAPPER_TEST_') && e[1] !== undefined));
}
try {
  result = await runInVm({
    ...(kernel ? { kernel } : {}),
    udev,
    // The guest only reads these: serve them through the cached read-only view (see runInVm).
    readOnlyCached: ['node_modules', 'dist'],
    cwd: repo,
    command: ['node', 'node_modules/uvu/bin.js', 'dist/test/privileged', files],
    env: { DEVMAPPER_PRIVILEGED: '1', ...(quickCrash ? { DEVMAPPER_DS_QUICK_CRASH: '1' } : {}), ...(process.env['CI'] ? { CI: process.env['CI'] } : {}), ...testKnobs() },
    timeoutMs,
    ...(memMb ? { memMb } : {}),
    onOutput: (t) => {
      captured += t;
      noteFiles(t);
      process.stdout.write(t);
    },
  });
} catch (err) {
  // No kernel, no QEMU, no initramfs: the cell failed before booting. It must still be counted.
  setupError = err instanceof Error ? err.message : String(err);
}

const s = parseUvuSummary(captured);
// Without a footer (timeout, crash), count what the finished suites reported; the run itself then
// adds one failure below.
const progress = s ? undefined : parseUvuProgress(captured);
const passed = s?.passed ?? progress?.passed ?? 0;
let failed = s?.failed ?? (progress ? progress.total - progress.passed : 0);
const problems: string[] = [];
if (setupError !== undefined) problems.push(`the VM could not start: ${setupError}`);
if (result?.timedOut) problems.push(`the VM timed out after ${timeoutMs} ms (exit ${result.exitCode})`);
if (result && !s) problems.push('no uvu summary in the guest output (the test run crashed or never started)');
else if (s && s.total === 0) problems.push('the VM ran zero tests');
if (result && result.exitCode !== 0 && failed === 0) problems.push(`the guest command exited ${result.exitCode}`);
if (problems.length > 0) failed += 1;

const label = cellLabel(result?.kernel.version ?? kernel ?? 'default kernel', udev, tag);
if (result) {
  console.log(
    `[devmapper vm] ${label}: kernel ${result.kernel.version}${udev ? ' with systemd-udevd' : ', no udev'}; files /${files}/; ` +
      `boot to first command ${result.bootMs} ms; total ${result.totalMs} ms; guest exit ${result.exitCode}`,
  );
}
if (fileStarts.length > 0) {
  const end = Date.now();
  const per = fileStarts.map((f, i) => ({ file: f.file, s: ((fileStarts[i + 1]?.at ?? end) - f.at) / 1000 }));
  per.sort((a, b) => b.s - a.s);
  console.log(`[devmapper vm] ${label}: seconds per file: ${per.map((f) => `${f.file} ${f.s.toFixed(0)}`).join(', ')}`);
}
for (const p of problems) console.log(`[devmapper vm] FAILED: ${p}`);
if (progress && progress.suites > 0) {
  console.log(
    `[devmapper vm] before that, ${progress.suites} suites finished: ${progress.passed} of ${progress.total} tests passed ` +
      '(counted below, with one failure for the unfinished run)',
  );
}
if (summaryFile) {
  const cell: CellSummary = {
    label,
    kernel: result?.kernel.version ?? kernel ?? '',
    udev,
    files,
    passed,
    failed,
    exitCode: result?.exitCode ?? -1,
    timedOut: result?.timedOut ?? false,
    ms: Date.now() - started,
  };
  writeFileSync(summaryFile, JSON.stringify(cell) + '\n');
}
console.log(summaryLine(label, passed, failed));
process.exitCode = problems.length > 0 || failed > 0 || result?.exitCode !== 0 ? 1 : 0;
