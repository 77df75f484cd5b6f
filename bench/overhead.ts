// SPDX-License-Identifier: MIT
// npm run bench:overhead — what our JavaScript costs per call, natively on this machine, against a
// stub kernel (a Syscalls whose ioctl answers at once). No VM, no root, no device-mapper.
//
// Why: in the TCG guest every JavaScript instruction is emulated, so the VM rows mix our code's
// cost with the emulator's (and with V8's JIT state: a path run a few dozen times stays in the
// interpreter). These rows isolate the library's own work per call on real hardware, where the
// kernel side (µs for light requests, ms for create/remove) is what the C floor measures.
// The numbers are ns per call: the median of 7 rounds after a warm-up.
//
// A second section runs on the real kernel: loop attach/status/detach, ours against the C floor,
// natively on this machine's loop driver (bench/lib/native-loop.ts; needs root, skipped otherwise).
import { DmControl, zeroTarget } from '../src/dm/index.js';
import * as io from '../src/ioctl/index.js';
import { parseThinPoolStatus } from '../src/thin/index.js';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { DEVICESET_CHANNEL, StepTracer, traceStep } from '../src/deviceset/diagnostics.js';
import { appendHistory, collectRatios, HISTORY_FILE, previousLine, readHistory, renderHistoryComparison, runContext, type HistoryLine } from './lib/history.js';
import { measureNativeLoop, renderNativeLoop, type NativeLoopResult } from './lib/native-loop.js';
import { measureStartup, renderStartup } from './startup.js';
import { measureHop, renderHop } from './lib/hop.js';
import { stubKernel } from './lib/stub-kernel.js';

const SMOKE = process.argv.includes('--smoke');
const ROUNDS = SMOKE ? 2 : 7;

async function nsPerCall(n: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.min(n, 5000); i++) await fn(i);
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn(i);
    rounds.push(Number(process.hrtime.bigint() - t) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[rounds.length >> 1] ?? Number.NaN;
}

export interface OverheadRow {
  readonly op: string;
  readonly ns: number;
}

export async function measureOverhead(): Promise<OverheadRow[]> {
  const sys = stubKernel();
  const dm = new DmControl({ syscalls: sys, devDir: '/nonexistent-dev', nodes: 'none' });
  const managed = new DmControl({ syscalls: sys, devDir: '/nonexistent-dev', nodes: 'manage', udevControlPath: '/nonexistent-udev' });
  const k = SMOKE ? 0.02 : 1;
  const n = (x: number): number => Math.max(10, Math.round(x * k));
  const table = [zeroTarget(0n, 2048n)];
  const statx = Buffer.alloc(io.STATX_SIZE, 7);
  const rows: OverheadRow[] = [];
  const add = async (op: string, count: number, fn: (i: number) => unknown): Promise<void> => {
    rows.push({ op, ns: await nsPerCall(n(count), fn) });
  };
  await add('DmControl.version()', 200_000, () => dm.version());
  await add('DmControl.listDevices(), 101 entries', 20_000, () => dm.listDevices());
  await add("DmControl.createDevice(zero), nodes: 'none' (3 ioctls)", 50_000, (i) => dm.createDevice(`d${i & 1023}`, table));
  await add("DmControl.createDevice(zero), nodes: 'manage' (+ mknod)", 50_000, (i) => managed.createDevice(`d${i & 1023}`, table));
  await add('DmControl.deviceRemove()', 100_000, (i) => dm.deviceRemove(`d${i & 1023}`));
  await add('tableStatus + parseThinPoolStatus (pool status)', 50_000, async () => parseThinPoolStatus(((await dm.tableStatus('pool'))[0] ?? { params: '' }).params));
  await add('DmControl.targetMessage(create_thin)', 100_000, (i) => dm.targetMessage('pool', 0n, `create_thin ${i}`));
  await add('decodeStatx (every stat/fstat)', 1_000_000, () => io.decodeStatx(statx));
  await measureStepChannel(add);
  return rows;
}

/**
 * The devmapper:deviceset channel (src/deviceset/diagnostics.ts): one DeviceSet step through a
 * traced seam method, bare, then traced with nobody subscribed (one `hasSubscribers` check), then
 * with one subscriber (clock reads, the message, the publish).
 */
async function measureStepChannel(add: (op: string, count: number, fn: (i: number) => unknown) => Promise<void>): Promise<void> {
  const bare = { createThin: (id: number): number => id };
  const traced = new StepTracer(() => 'h').tracePool({ createThin: (id: number): number => id });
  await add('DeviceSet step, untraced method (baseline)', 1_000_000, (i) => bare.createThin(i));
  await add('DeviceSet step, traced, no subscriber', 1_000_000, (i) => traced.createThin(i));
  const sink: unknown[] = [];
  const on = (m: unknown): void => void (sink[0] = m);
  subscribe(DEVICESET_CHANNEL, on);
  try {
    await add('DeviceSet step, traced, one subscriber', 1_000_000, (i) => traced.createThin(i));
    await add('traceStep(), one subscriber', 1_000_000, (i) => traceStep('mkfs', 'h', () => i));
  } finally {
    unsubscribe(DEVICESET_CHANNEL, on);
  }
}

export function renderOverhead(rows: readonly OverheadRow[]): string {
  const fmt = (ns: number): string => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
  const w = Math.max(...rows.map((r) => r.op.length), 9);
  const lines = [`| ${'operation'.padEnd(w)} | JS per call (native, stub kernel) |`, `|${'-'.repeat(w + 2)}|-----------------------------------|`];
  for (const r of rows) lines.push(`| ${r.op.padEnd(w)} | ${fmt(r.ns).padEnd(33)} |`);
  return lines.join('\n');
}

/** The hop cost of the blocking-call paths on this host's real kernel (bench/lib/hop.ts, issue #21 §1). */
async function printHop(): Promise<void> {
  console.log('\n### Hop cost: N cheap ioctls (FIONREAD), sync vs koffi .async vs one BatchWorker batch\n');
  console.log(renderHop(await measureHop({ smoke: SMOKE })));
}

/** The native loop rows: 300 interleaved samples after 100 warm-up cycles (smoke: 5 after 2). */
export function nativeLoop(smoke = SMOKE): Promise<NativeLoopResult> {
  return measureNativeLoop(smoke ? { samples: 5, warmup: 2, profileCycles: 0 } : { samples: 300, warmup: 100, profileCycles: 100 });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // --history: also time the CLI startup and append the native ratios to
  // bench/results/history.jsonl (source 'bench:overhead'), printed beside the previous such line.
  // --loop: the native loop rows alone (no stub-kernel table, no hop table; with --history, the
  // startup rows too, as the history line holds only those and the loop rows).
  const loopOnly = process.argv.includes('--loop');
  const history = process.argv.includes('--history') && !SMOKE;
  const context = runContext();
  const rows = loopOnly ? [] : await measureOverhead();
  const loop = await nativeLoop();
  const startup = history ? measureStartup(20) : undefined;
  if (process.argv.includes('--json')) console.log(JSON.stringify({ overhead: rows, loop, startup }));
  else {
    if (!loopOnly) console.log(renderOverhead(rows));
    console.log('\n## Loop devices on the real kernel, natively (ours against the C floor, no VM)\n');
    console.log(renderNativeLoop(loop));
    if (startup) console.log(`\n## CLI startup (natively, wall time)\n\n${renderStartup(startup)}`);
    if (!loopOnly) await printHop();
  }
  if (history) {
    const line: HistoryLine = { source: 'bench:overhead', ...context, ratios: collectRatios({ loop, startup }) };
    console.log(`\n## History\n\n${renderHistoryComparison(previousLine(readHistory(), 'bench:overhead'), line)}`);
    if (loop.skipped) console.log('\n(the loop rows were skipped: not appended)');
    else {
      appendHistory(line);
      console.log(`\nappended to ${HISTORY_FILE}`);
    }
  }
}
