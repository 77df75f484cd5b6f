// SPDX-License-Identifier: MIT
// Used by scripts/test-all.sh: prints the final "unit:", "vm:" and "total:" lines and sets the
// exit status. Usage: summarize.js <unit-log> <unit-exit-code> <vm-summary-json|-> <vm-exit-code>
import { existsSync, readFileSync } from 'node:fs';
import { parseUvuSummary, summaryLine } from './summary.js';

const [unitLog = '', unitRc = '1', vmJson = '-', vmRc = '1'] = process.argv.slice(2);
const unit = existsSync(unitLog) ? parseUvuSummary(readFileSync(unitLog, 'utf8')) : undefined;
const unitPassed = unit?.passed ?? 0;
let unitFailed = unit?.failed ?? 0;
if ((!unit || Number(unitRc) !== 0) && unitFailed === 0) unitFailed = 1;

let vmPassed = 0;
let vmFailed = 1;
if (vmJson !== '-' && existsSync(vmJson)) {
  const v = JSON.parse(readFileSync(vmJson, 'utf8')) as { passed: number; failed: number };
  vmPassed = v.passed;
  vmFailed = v.failed;
}
if (Number(vmRc) !== 0 && vmFailed === 0) vmFailed = 1;

console.log(summaryLine('unit', unitPassed, unitFailed));
console.log(summaryLine('vm', vmPassed, vmFailed));
console.log(summaryLine('total', unitPassed + vmPassed, unitFailed + vmFailed));
process.exitCode = unitFailed + vmFailed > 0 ? 1 : 0;
