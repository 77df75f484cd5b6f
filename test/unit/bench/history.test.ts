// SPDX-License-Identifier: MIT
// bench/lib/history.ts: the ratios a run records, the previous line of the same kind, and the
// comparison printed beside it (issue 21 §5).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  appendHistory,
  collectRatios,
  previousLine,
  readHistory,
  renderHistoryComparison,
  type HistoryLine,
} from '../../../bench/lib/history.js';
import type { NativeLoopResult } from '../../../bench/lib/native-loop.js';
import type { BenchResults, OpResult } from '../../../bench/lib/results.js';

const s = (median: number) => ({ n: 3, median, min: median, max: median });

function line(source: HistoryLine['source'], commit: string, ratios: Record<string, number>): HistoryLine {
  return { source, commit, dirty: false, date: '2026-12-07T05:00:00.000Z', kernel: '6.18.44', host: { name: 'h', cpu: 'c', cpus: 2, load1: 0.5 }, ratios };
}

test('collectRatios: vm ours/floor per op (ops without a floor skipped), native loop rows, startup without node -e 0', () => {
  const op = (id: string, ours?: number, floor?: number): OpResult => ({
    id,
    label: id,
    cls: 'kernel',
    impl: { ...(ours === undefined ? {} : { ours: s(ours) }), ...(floor === undefined ? {} : { floor: s(floor) }) },
    unavailable: {},
    notes: [],
  });
  const vm = { ops: [op('create_zero', 3640, 1160), op('ds_add', 16600), op('remove', 36.3, 36.1)] } as unknown as BenchResults;
  const loop = { rows: [{ id: 'loop_attach', ratio: 1.23456 }, { id: 'loop_detach', ratio: 4 }] } as unknown as NativeLoopResult;
  const startup = [
    { command: 'node -e 0', ratio: 1 },
    { command: 'devmapper loop ls', ratio: 2.5 },
  ];
  assert.equal(collectRatios({ vm, loop, startup }), {
    'vm:create_zero': 3.138,
    'vm:remove': 1.006,
    'native:loop_attach': 1.235,
    'native:loop_detach': 4,
    'startup:devmapper loop ls': 2.5,
  });
});

test('readHistory skips malformed lines; previousLine picks the latest of the same source; append adds one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-history-'));
  try {
    const file = join(dir, 'results', 'history.jsonl');
    appendHistory(line('bench', 'a1', { 'vm:x': 2 }), file);
    appendHistory(line('bench:overhead', 'b2', { 'native:loop_attach': 1.5 }), file);
    writeFileSync(file, `${readFileSync(file, 'utf8')}{not json\n\n`);
    appendHistory(line('bench:overhead', 'c3', { 'native:loop_attach': 1.4 }), file);
    const all = readHistory(file);
    assert.equal(all.map((l) => l.commit), ['a1', 'b2', 'c3']);
    assert.is(previousLine(all, 'bench')?.commit, 'a1');
    assert.is(previousLine(all, 'bench:overhead')?.commit, 'c3');
    assert.is(previousLine([], 'bench'), undefined);
    assert.equal(readHistory(join(dir, 'missing.jsonl')), []);
    assert.is(readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('{"')).length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('renderHistoryComparison: previous beside now, change in %, growth above 10 % flagged', () => {
  const prev = line('bench:overhead', 'aaaaaaaaaaaa', { 'native:loop_attach': 2, 'native:loop_detach': 5, 'startup:dm ls': 3 });
  const cur = line('bench:overhead', 'bbbbbbbbbbbb', { 'native:loop_attach': 2.3, 'native:loop_detach': 1, 'native:loop_status': 2 });
  assert.is(
    renderHistoryComparison(prev, cur),
    [
      'Previous bench:overhead run: aaaaaaaaaa, 2026-12-07T05:00:00.000Z, load 0.5; this run: bbbbbbbbbb, load 0.5.',
      '',
      '| ratio | previous | now | change |',
      '|---|---|---|---|',
      '| native:loop_attach | 2.00× | 2.30× | +15 % ▲ regression? |',
      '| native:loop_detach | 5.00× | 1.00× | -80 % |',
      '| native:loop_status | — | 2.00× |  |',
      '| startup:dm ls | 3.00× | — |  |',
    ].join('\n'),
  );
  assert.ok(renderHistoryComparison(undefined, cur).startsWith('No previous bench:overhead line in the history'));
});

test.run();
