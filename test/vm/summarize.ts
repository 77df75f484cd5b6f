// SPDX-License-Identifier: MIT
// Used by scripts/test-all.sh: prints the final "unit:", one "vm[<kernel>(, udev)]:" line per
// matrix cell, and "total:" (all of them), and sets the exit status: any failure in any cell fails.
// Usage: summarize.js <unit-log> <unit-exit-code> [<cell-name> <cell-summary-json|-> <cell-exit-code>]...
// A cell whose JSON is missing (run-privileged.js crashed) counts as one failure under <cell-name>.
// A failed cell's report is printed again here, from the log beside its JSON (<job>.log next to
// <job>.json, as scripts/test-all.sh writes them): a CI record that keeps only the end of the
// output must still say which test failed and why (CI of bd9a3e7 showed "159 passed, 1 failed"
// for cell 1 and nothing else).
import { existsSync, readFileSync } from 'node:fs';
import { cellFailureReport, parseUvuSummary, summaryLine, uvuFailureReport, type CellSummary } from './summary.js';

const [unitLog = '', unitRc = '1', ...cellArgs] = process.argv.slice(2);
const unitText = existsSync(unitLog) ? readFileSync(unitLog, 'utf8') : '';
const unit = unitText ? parseUvuSummary(unitText) : undefined;
// The unit log is printed first and a CI record may keep only the end: repeat what failed here.
const unitReport = uvuFailureReport(unitText);
if (unitReport.length > 0) console.log(['summarize: the unit failures again (the log is above):', ...unitReport].join('\n'));
const unitPassed = unit?.passed ?? 0;
let unitFailed = unit?.failed ?? 0;
if ((!unit || Number(unitRc) !== 0) && unitFailed === 0) unitFailed = 1;

const lines: string[] = [summaryLine('unit', unitPassed, unitFailed)];
let passed = unitPassed;
let failed = unitFailed;
if (cellArgs.length === 0 || cellArgs.length % 3 !== 0) {
  lines.push(`summarize: expected <cell-name> <json> <exit-code> triples, got ${cellArgs.length} arguments`);
  failed += 1;
}
for (let i = 0; i + 2 < cellArgs.length; i += 3) {
  const [name = '?', json = '-', rc = '1'] = cellArgs.slice(i, i + 3);
  let cell: Partial<CellSummary> = {};
  if (json !== '-' && existsSync(json)) cell = JSON.parse(readFileSync(json, 'utf8')) as CellSummary;
  const p = cell.passed ?? 0;
  let f = cell.failed ?? 1;
  if (Number(rc) !== 0 && f === 0) f = 1;
  lines.push(summaryLine(cell.label ?? `vm[${name}]`, p, f));
  if (f > 0) {
    const log = json.replace(/\.json$/, '.log');
    const report = json !== '-' && log !== json && existsSync(log) ? cellFailureReport(readFileSync(log, 'utf8')) : ['(no log)'];
    console.log([`summarize: what failed in ${cell.label ?? `vm[${name}]`} again (its log is above):`, ...report].join('\n'));
  }
  passed += p;
  failed += f;
}
lines.push(summaryLine('total', passed, failed));
for (const l of lines) console.log(l);
process.exitCode = failed > 0 ? 1 : 0;
