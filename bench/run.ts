// SPDX-License-Identifier: MIT
// npm run bench [-- --smoke] [-- --out FILE] [-- --report FILE]
//
// 1. Compiles the C comparison programs on the host (bench/reference/floor.c always; libdm.c
//    against libdevmapper, whose -dev package a full run as root installs: lib/libdm-headers.ts)
//    into .cache/bench/.
// 2. Boots the VM ONCE and runs every benchmark in it (bench/guest.ts, as root).
// 3. Prints the report (tables, ratios, PASS/MISS per target) and the results path, then the
//    native host sections: JS overhead per call (overhead.ts), loop devices on the host's loop
//    driver against the floor (lib/native-loop.ts) and CLI startup (startup.ts).
// 4. Appends the run's ratios to bench/results/history.jsonl (not for --smoke or a failed run) and
//    prints them beside the previous full run's (lib/history.ts).
// `--report FILE` only re-prints the report of an earlier results file (no VM).
// Exit status: non-zero when the guest failed or any benchmark errored; a MISS is not a failure
// (benchmarks are not timed tests).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInVm } from '../src/vm/index.js';
import { BIN_DIR, compileC } from './lib/cc.js';
import { ensureLibdmHeaders } from './lib/libdm-headers.js';
import { renderReport } from './lib/report.js';
import { appendHistory, collectRatios, HISTORY_FILE, previousLine, readHistory, renderHistoryComparison, runContext, type HistoryLine } from './lib/history.js';
import { renderNativeLoop } from './lib/native-loop.js';
import { measureOverhead, nativeLoop, renderOverhead } from './overhead.js';
import { measureStartup, renderStartup } from './startup.js';
import type { BenchResults } from './lib/results.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const smoke = argv.includes('--smoke') || process.env['DEVMAPPER_BENCH_SMOKE'] === '1';

function printReport(file: string): BenchResults {
  const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  process.stdout.write('\n' + renderReport(r));
  console.log(`\nresults: ${file}`);
  return r;
}

const reportOnly = opt('--report');
if (reportOnly) {
  printReport(resolve(reportOnly));
  process.exit(0);
}

// Where and when (the load average is the host's before the VM starts).
const context = runContext();
const out = resolve(opt('--out') ?? join(repo, 'bench/results', smoke ? 'smoke.json' : 'latest.json'));
const binDir = BIN_DIR;
const floorErr = compileC('floor.c', 'floor');
if (floorErr) console.log(`[bench] the C floor could not be built (${floorErr}); floor columns will be n/a`);
let libdmUnavailable = ensureLibdmHeaders(smoke);
if (libdmUnavailable) rmSync(join(binDir, 'libdm'), { force: true });
else libdmUnavailable = compileC('libdm.c', 'libdm', ['-ldevmapper']);
if (libdmUnavailable) console.log(`[bench] libdm: n/a — ${libdmUnavailable}`);

rmSync(out, { force: true });
const guestOut = relative(repo, out).startsWith('..') ? out : relative(repo, out);
const timeoutMs = Number(process.env['DEVMAPPER_BENCH_TIMEOUT_MS'] ?? (smoke ? 10 : 60) * 60 * 1000);
const result = await runInVm({
  // The guest only reads these: serve them through the cached read-only view (see runInVm).
  readOnlyCached: ['node_modules', 'dist'],
  cwd: repo,
  command: ['node', '--expose-gc', 'dist/bench/guest.js', '--out', guestOut, '--bin', binDir, ...(smoke ? ['--smoke'] : [])],
  env: { BENCH_LIBDM_UNAVAILABLE: libdmUnavailable },
  shares: relative(repo, out).startsWith('..') ? [dirname(out)] : [],
  timeoutMs,
});
console.log(
  `[bench] kernel ${result.kernel.version}; boot ${result.bootMs} ms; total ${(result.totalMs / 1000).toFixed(1)} s; guest exit ${result.exitCode}`,
);
if (!existsSync(out)) {
  console.log(`[bench] FAILED: the guest wrote no results (${out})`);
  process.exit(1);
}
const r = printReport(out);
// Our JavaScript per call on this machine's real CPU, against a stub kernel: what the guest's
// emulated rows cannot separate from TCG (see bench/overhead.ts).
console.log('\n## JS overhead per call (natively on the host, stub kernel; no VM)\n');
console.log(renderOverhead(await measureOverhead()));
// Loop devices on the host's own loop driver, ours against the floor (bench/lib/native-loop.ts).
console.log('\n## Loop devices on the real kernel, natively (ours against the C floor, no VM)\n');
const loop = await nativeLoop(smoke);
console.log(renderNativeLoop(loop));
// The CLI's startup against Node's own, natively (bench/startup.ts; issue 21 item 4).
console.log('\n## CLI startup (natively on the host, wall time; no VM)\n');
const startup = measureStartup(smoke ? 3 : 20);
console.log(renderStartup(startup));
// The history (bench/lib/history.ts): a full run appends its line; the smoke run only shows it.
const line: HistoryLine = {
  source: 'bench',
  ...context,
  guestKernel: r.meta.kernel,
  ratios: collectRatios({ vm: r, loop, startup }),
};
console.log(`\n## History (${relative(repo, HISTORY_FILE)})\n`);
console.log(renderHistoryComparison(previousLine(readHistory(), 'bench'), line));
if (smoke) console.log('\n(smoke run: not appended)');
else if (result.exitCode !== 0 || r.errors.length > 0) console.log('\n(the run had errors: not appended)');
else {
  appendHistory(line);
  console.log(`\nappended to ${relative(repo, HISTORY_FILE)}`);
}
process.exitCode = result.exitCode !== 0 || r.errors.length > 0 ? 1 : 0;
