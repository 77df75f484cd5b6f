// SPDX-License-Identifier: MIT
// Turns a BenchResults JSON into the printed report: the per-operation table with ratios, the
// targets with PASS/MISS, the growth table with its ratios, and the event-loop lag table.
import { dsCliChecks } from './ds-cli.js';
import type { BenchResults, GrowthPoint, OpResult } from './results.js';
import { fmtRatio, fmtSummary, fmtUs, type Summary } from './stats.js';

/** One target check. `ok` null = could not be judged (a side is missing). */
export interface TargetCheck {
  readonly what: string;
  readonly ok: boolean | null;
  readonly detail: string;
}

export const TARGETS = {
  kernelVsFloor: 1.1,
  lightVsFloor: 3,
  lightVsLibdm: 1,
  loopVsFloor: 1.2,
  cliVsOurs: 20,
  lagMs: 10,
  /** Per-device costs count as flat while the largest size costs at most this × the smallest. */
  flat: 1.5,
  /** Whole-set costs: log-log growth exponent between consecutive sizes (1 = linear), with noise allowance. */
  exponent: 1.1,
} as const;

function ratio(a: Summary | undefined, b: Summary | undefined): number | null {
  if (!a || !b || b.median <= 0) return null;
  return a.median / b.median;
}

function verdict(ok: boolean | null): string {
  return ok === null ? 'n/a' : ok ? 'PASS' : 'MISS';
}

/** The targets that apply to one operation row. */
export function opChecks(op: OpResult): TargetCheck[] {
  const { ours, floor, libdm, cli } = op.impl;
  const out: TargetCheck[] = [];
  const vsFloor = ratio(ours, floor);
  const limit = op.cls === 'kernel' ? TARGETS.kernelVsFloor : op.cls === 'light' ? TARGETS.lightVsFloor : op.cls === 'loop' ? TARGETS.loopVsFloor : null;
  if (limit !== null) {
    out.push({
      what: `${op.label}: ours ≤ ${limit}× C floor`,
      ok: vsFloor === null ? null : vsFloor <= limit,
      detail: vsFloor === null ? `floor ${op.unavailable.floor ?? 'missing'}` : fmtRatio(vsFloor),
    });
  }
  if (op.cls === 'light') {
    const vsLibdm = ratio(ours, libdm);
    out.push({
      what: `${op.label}: ours never slower than libdevmapper`,
      ok: vsLibdm === null ? null : vsLibdm <= TARGETS.lightVsLibdm,
      detail: vsLibdm === null ? `libdm ${op.unavailable.libdm ?? 'missing'}` : `ours/libdm ${fmtRatio(vsLibdm)}`,
    });
  }
  if (op.cls !== 'info' && op.cli) {
    const cliVsOurs = ratio(cli, ours);
    out.push({
      what: `${op.label}: ${op.cli} ≥ ${TARGETS.cliVsOurs}× slower than ours`,
      ok: cliVsOurs === null ? null : cliVsOurs >= TARGETS.cliVsOurs,
      detail: cliVsOurs === null ? `cli ${op.unavailable.cli ?? 'missing'}` : fmtRatio(cliVsOurs),
    });
  }
  return out;
}

/** A markdown table with padded columns. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function opsTable(r: BenchResults): string {
  const rows = r.ops.map((op) => {
    const { ours, floor, libdm, cli } = op.impl;
    const checks = opChecks(op);
    return [
      op.label,
      fmtSummary(ours),
      floor ? fmtSummary(floor) : 'n/a',
      libdm ? fmtSummary(libdm) : 'n/a',
      cli ? fmtSummary(cli) : 'n/a',
      fmtRatio(ratio(ours, floor)),
      fmtRatio(ratio(ours, libdm)),
      fmtRatio(ratio(cli, ours)),
      checks.length === 0 ? '—' : checks.map((c) => verdict(c.ok)).join(' '),
    ];
  });
  return table(
    ['operation', 'ours', 'C floor', 'libdevmapper', 'dmsetup/losetup', 'ours/floor', 'ours/libdm', 'cli/ours', 'targets'],
    rows,
  );
}

/** log(b/a) / log(nb/na): 1 = linear growth, < 1 = better than linear. */
export function exponent(a: number, b: number, na: number, nb: number): number {
  return Math.log(b / a) / Math.log(nb / na);
}

export function growthChecks(points: readonly GrowthPoint[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  if (points.length < 2) return out;
  const first = points[0]!;
  const last = points[points.length - 1]!;
  const flat = (what: string, a: number | null, b: number | null, from = first.thinCount, to = last.thinCount): void => {
    if (a === null || b === null) return;
    const f = b / a;
    out.push({ what: `${what}: flat per device (${from} → ${to}: ≤ ${TARGETS.flat}×)`, ok: f <= TARGETS.flat, detail: fmtRatio(f) });
  };
  flat('create_thin', first.createThinUs, last.createThinUs);
  const act = points.filter((p) => p.activateUs !== null);
  if (act.length >= 2) flat('thin activate', act[0]!.activateUs, act[act.length - 1]!.activateUs, act[0]!.thinCount, act[act.length - 1]!.thinCount);
  const lin = (what: string, get: (p: GrowthPoint) => number | null, n: (p: GrowthPoint) => number): void => {
    for (let i = 1; i < points.length; i++) {
      const a = points[i - 1]!;
      const b = points[i]!;
      const va = get(a);
      const vb = get(b);
      if (va === null || vb === null || n(a) === n(b)) continue;
      const e = exponent(va, vb, n(a), n(b));
      out.push({
        what: `${what}: ${n(a)} → ${n(b)} no faster than linear (exponent ≤ ${TARGETS.exponent})`,
        ok: e <= TARGETS.exponent,
        detail: `time ×${(vb / va).toFixed(2)} for size ×${(n(b) / n(a)).toFixed(1)} (exponent ${e.toFixed(2)})`,
      });
    }
  };
  lin('listDevices', (p) => p.listDevices.median, (p) => p.listed);
  lin('pool status', (p) => p.poolStatus.median, (p) => p.thinCount);
  const ds = points.filter((p) => p.deviceSet);
  if (ds.length >= 2) {
    const sub = (k: 'initUs' | 'statusUs' | 'listUs') => (p: GrowthPoint) => p.deviceSet?.[k] ?? null;
    lin('DeviceSet.init', sub('initUs'), (p) => p.thinCount);
    lin('DeviceSet.status', sub('statusUs'), (p) => p.thinCount);
    lin('DeviceSet.list', sub('listUs'), (p) => p.thinCount);
    flat('DeviceSet.addDevice', ds[0]!.deviceSet!.addDeviceUs, ds[ds.length - 1]!.deviceSet!.addDeviceUs, ds[0]!.thinCount, ds[ds.length - 1]!.thinCount);
  }
  lin('RSS', (p) => p.rssMiB, (p) => p.thinCount);
  return out;
}

function growthTable(r: BenchResults): string {
  const pts = r.growth.points;
  const rows = pts.map((p) => [
    String(p.thinCount),
    String(p.activeCount),
    String(p.listed),
    fmtUs(p.createThinUs),
    p.activateUs === null ? '—' : fmtUs(p.activateUs),
    fmtSummary(p.listDevices),
    p.listDevicesFloor ? fmtSummary(p.listDevicesFloor) : 'n/a',
    fmtRatio(ratio(p.listDevices, p.listDevicesFloor ?? undefined)),
    `${fmtUs(p.listDevices.median / Math.max(1, p.listed))}`,
    fmtSummary(p.poolStatus),
    p.rssMiB.toFixed(1),
    p === pts[0] ? '—' : `${(((p.rssMiB - pts[0]!.rssMiB) * 1024) / Math.max(1, p.thinCount - pts[0]!.thinCount)).toFixed(2)} KiB`,
    p.heapUsedMiB.toFixed(1),
  ]);
  let out = table(
    ['thin ids', 'active', 'listed', 'create_thin/dev', 'activate/dev', 'listDevices (ours)', 'listDevices (floor)', 'ours/floor', 'list per device', 'pool status', 'RSS MiB', 'RSS Δ/thin id', 'heap MiB'],
    rows,
  );
  const ds = pts.filter((p) => p.deviceSet);
  if (ds.length > 0) {
    out +=
      '\n\n' +
      table(
        ['thin ids', 'DeviceSet.init', 'status()', 'list()', 'addDevice'],
        ds.map((p) => [String(p.thinCount), fmtUs(p.deviceSet!.initUs), fmtUs(p.deviceSet!.statusUs), fmtUs(p.deviceSet!.listUs), fmtUs(p.deviceSet!.addDeviceUs)]),
      );
  }
  return out;
}

export function lagChecks(r: BenchResults): TargetCheck[] {
  return r.lag
    .filter((l) => !l.scenario.startsWith('idle'))
    .map((l) => ({ what: `event-loop lag ≤ ${TARGETS.lagMs} ms: ${l.scenario}`, ok: l.worstLagMs <= TARGETS.lagMs, detail: `worst ${l.worstLagMs.toFixed(2)} ms` }));
}

function lagTable(r: BenchResults): string {
  return table(
    ['scenario', 'in flight', 'blocking calls', 'worst lag', 'p99 lag', 'median lag', 'ticks', 'target'],
    r.lag.map((l) => [
      l.scenario,
      `${l.blockedMs.toFixed(0)} ms`,
      l.callMs ? `${l.callMs.n} × ${fmtSummary({ ...l.callMs, median: l.callMs.median * 1000, min: l.callMs.min * 1000, max: l.callMs.max * 1000 })}` : '—',
      `${l.worstLagMs.toFixed(2)} ms`,
      l.p99LagMs === undefined ? 'n/a' : `${l.p99LagMs.toFixed(2)} ms`,
      `${l.medianLagMs.toFixed(2)} ms`,
      String(l.ticks),
      l.scenario.startsWith('idle') ? '—' : verdict(l.worstLagMs <= TARGETS.lagMs),
    ]),
  );
}

/** The whole report as text (markdown tables). */
export function renderReport(r: BenchResults): string {
  const m = r.meta;
  const parts: string[] = [];
  parts.push(
    `devmapper bench — ${m.smoke ? 'SMOKE (tiny sizes; numbers mean nothing)' : 'full run'}, ${m.date}\n` +
      `guest: kernel ${m.kernel}, dm ioctl ${m.dmVersion}, node ${m.node}, ${m.cpus} vCPU, ${m.memMiB} MiB; libdm: ${m.libdm}; guest time ${(m.guestMs / 1000).toFixed(1)} s`,
  );
  parts.push('## Per operation (median (min–max) per operation)\n\n' + opsTable(r));
  const notes = r.ops.flatMap((o) => o.notes.map((n) => `- ${o.label}: ${n}`));
  const unavailable = r.ops.flatMap((o) => Object.entries(o.unavailable).filter(([, why]) => why.startsWith('failed')).map(([k, why]) => `- ${o.label} / ${k}: ${why}`));
  if (notes.length + unavailable.length > 0) parts.push([...notes, ...unavailable].join('\n'));
  parts.push('## Growth (one pool)\n\n' + growthTable(r) + (r.growth.notes.length ? '\n\n' + r.growth.notes.map((n) => `- ${n}`).join('\n') : ''));
  parts.push('## Event-loop lag (2 ms interval timer while blocking calls run through the async path)\n\n' + lagTable(r));
  const checks = [...r.ops.flatMap(opChecks), ...dsCliChecks(r.ops), ...growthChecks(r.growth.points), ...lagChecks(r)];
  const pass = checks.filter((c) => c.ok === true).length;
  const miss = checks.filter((c) => c.ok === false).length;
  const na = checks.filter((c) => c.ok === null).length;
  parts.push(
    `## Targets: ${pass} PASS, ${miss} MISS, ${na} n/a\n\n` + checks.map((c) => `${verdict(c.ok).padEnd(4)}  ${c.what} — ${c.detail}`).join('\n'),
  );
  if (r.errors.length > 0) parts.push('## ERRORS\n\n' + r.errors.map((e) => `- ${e}`).join('\n'));
  return parts.join('\n\n') + '\n';
}
