// SPDX-License-Identifier: MIT
// bench/lib/ds-cli.ts: the issue 21 §4 targets over the `ds` command rows (ratios in one run).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dsCliChecks } from '../../../bench/lib/ds-cli.js';
import type { OpResult } from '../../../bench/lib/results.js';

const row = (id: string, median: number): OpResult => ({ id, label: id, cls: 'info', impl: { ours: { n: 3, median, min: median, max: median } }, unavailable: {}, notes: [] });

test('ds list and status against dm ls; ds create against 2× ds list plus one snapshot', () => {
  const checks = dsCliChecks([
    row('cli-dm-ls', 1_000_000),
    row('cli-ds-list', 1_900_000),
    row('cli-ds-status', 2_100_000),
    row('cli-ds-create', 3_850_000),
    row('ds-snapshot-kernel', 100_000),
  ]);
  assert.equal(
    checks.map((c) => [c.what, c.ok]),
    [
      ['ds list ≤ 2× dm ls (processes)', true],
      ['ds status ≤ 2× dm ls (processes)', false],
      ["ds create ≤ 2× ds list + one snapshot's kernel work", true],
    ],
  );
  assert.is(dsCliChecks([row('cli-dm-ls', 1), row('cli-ds-list', 1), row('cli-ds-create', 4), row('ds-snapshot-kernel', 1)])[2]?.ok, false, '4 > 2×1 + 1');
});

test('a missing row: the check cannot be judged; no rows at all: no checks', () => {
  const checks = dsCliChecks([row('cli-dm-ls', 1_000_000), row('cli-ds-list', 1_500_000)]);
  assert.equal(checks.map((c) => c.ok), [true, null, null]);
  assert.equal(dsCliChecks([row('dm-version', 5)]), []);
});

test.run();
