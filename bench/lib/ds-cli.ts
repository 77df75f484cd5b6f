// SPDX-License-Identifier: MIT
// The `ds` commands end to end (issue 21 §4): each one a `devmapper` CLI process, spawn to exit,
// in the guest, against `devmapper dm ls` (the startup floor of a command that opens
// /dev/mapper/control) and the kernel work of one snapshot (create_snap + set_transaction_id,
// timed in-process on the bench's own pool). Every command after `ds init` reopens the set.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ThinPool } from '../../src/index.js';
import { timeCli } from './external.js';
import type { OpResult } from './results.js';
import type { TargetCheck } from './report.js';
import { fmtRatio, fmtUs } from './stats.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'devmapper.js');

/** Row ids, in the order they are reported. */
export const DS_CLI_IDS = ['cli-dm-ls', 'cli-ds-list', 'cli-ds-status', 'cli-ds-create', 'cli-ds-remove', 'ds-snapshot-kernel'] as const;

/** Targets of issue 21 §4, as ratios within one run. */
export const DS_CLI_TARGETS = { listVsDmLs: 2, statusVsDmLs: 2, createVsList: 2 } as const;

export interface DsCliDeps {
  readonly reps: number;
  /** A new, empty root directory path for the set. */
  readonly root: string;
  /** A pool of the bench's own and a thin id in it to snapshot (left inactive). */
  readonly pool: ThinPool;
  readonly originId: number;
  /** Free thin ids for the timed snapshots. */
  readonly firstFreeId: number;
  newOp(id: string, label: string): OpResult;
  put(op: OpResult, samplesUs: readonly number[]): void;
  log(message: string): void;
}

const devmapper = (args: readonly string[]): number => timeCli(process.execPath, [CLI, ...args]).us;

/**
 * Times `dm ls`, `ds list`, `ds status`, `ds create`, `ds remove` (each `reps` times, interleaved
 * round by round so that drift hits all alike) and one snapshot's kernel work. The set is made by
 * `ds init` first and stopped by `ds shutdown` at the end (its pool removed).
 */
export async function dsCliBenchmarks(d: DsCliDeps): Promise<void> {
  const rows = Object.fromEntries(
    [
      ['cli-dm-ls', '`devmapper dm ls` process'],
      ['cli-ds-list', '`devmapper ds list` process (reopens the set)'],
      ['cli-ds-status', '`devmapper ds status` process'],
      ['cli-ds-create', '`devmapper ds create` process (a snapshot of the base)'],
      ['cli-ds-remove', '`devmapper ds remove` process'],
      ['ds-snapshot-kernel', 'kernel work of one snapshot (create_snap + set_transaction_id, in-process)'],
    ].map(([id, label]) => [id, d.newOp(id!, label!)]),
  ) as Record<(typeof DS_CLI_IDS)[number], OpResult>;
  const root = ['--root', d.root];
  const initUs = devmapper(['ds', 'init', ...root, '--opt', 'dm.loopdatasize=512M', '--opt', 'dm.loopmetadatasize=16M', '--opt', 'dm.basesize=64M']);
  rows['cli-ds-list'].notes.push(`ds init (pool, base, mkfs) took ${fmtUs(initUs)}, not in the table`);
  try {
    devmapper(['ds', 'list', ...root]); // the first reopen after init, untimed
    const s: Record<string, number[]> = {};
    for (const id of DS_CLI_IDS) s[id] = [];
    let next = d.firstFreeId;
    let tx = await d.pool.status({ noflush: true });
    const txOf = (): bigint => (tx.kind === 'working' ? tx.transactionId : 0n);
    for (let i = 0; i < d.reps; i++) {
      s['cli-dm-ls']!.push(devmapper(['dm', 'ls']));
      s['cli-ds-list']!.push(devmapper(['ds', 'list', ...root]));
      s['cli-ds-status']!.push(devmapper(['ds', 'status', ...root]));
      s['cli-ds-create']!.push(devmapper(['ds', 'create', ...root, `bench${i}`]));
      s['cli-ds-remove']!.push(devmapper(['ds', 'remove', ...root, `bench${i}`]));
      const id = next++;
      const cur = txOf();
      const t0 = performance.now();
      await d.pool.createSnap(id, d.originId);
      await d.pool.setTransactionId(cur, cur + 1n);
      s['ds-snapshot-kernel']!.push((performance.now() - t0) * 1000);
      await d.pool.deleteThin(id);
      tx = await d.pool.status({ noflush: true });
    }
    for (const id of DS_CLI_IDS) d.put(rows[id], s[id]!);
  } finally {
    try {
      devmapper(['ds', 'shutdown', ...root]);
    } catch (e) {
      d.log(`ds shutdown: ${String(e)}`);
    }
  }
}

/** The §4 targets over the rows {@link dsCliBenchmarks} wrote (null ok when a row is missing). */
export function dsCliChecks(ops: readonly OpResult[]): TargetCheck[] {
  const med = (id: string): number | undefined => ops.find((o) => o.id === id)?.impl.ours?.median;
  const dmLs = med('cli-dm-ls');
  const list = med('cli-ds-list');
  const status = med('cli-ds-status');
  const create = med('cli-ds-create');
  const snap = med('ds-snapshot-kernel');
  if (list === undefined && dmLs === undefined) return [];
  const vs = (what: string, a: number | undefined, b: number | undefined, limit: number): TargetCheck => {
    const r = a !== undefined && b !== undefined && b > 0 ? a / b : null;
    return { what, ok: r === null ? null : r <= limit, detail: r === null ? 'a row is missing' : fmtRatio(r) };
  };
  const out = [
    vs(`ds list ≤ ${DS_CLI_TARGETS.listVsDmLs}× dm ls (processes)`, list, dmLs, DS_CLI_TARGETS.listVsDmLs),
    vs(`ds status ≤ ${DS_CLI_TARGETS.statusVsDmLs}× dm ls (processes)`, status, dmLs, DS_CLI_TARGETS.statusVsDmLs),
  ];
  const budget = list !== undefined && snap !== undefined ? DS_CLI_TARGETS.createVsList * list + snap : undefined;
  out.push({
    what: `ds create ≤ ${DS_CLI_TARGETS.createVsList}× ds list + one snapshot's kernel work`,
    ok: create === undefined || budget === undefined ? null : create <= budget,
    detail: create === undefined || budget === undefined ? 'a row is missing' : `${fmtUs(create)} against ${fmtUs(budget)} (${fmtRatio(create / budget)})`,
  });
  return out;
}
