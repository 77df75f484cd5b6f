// SPDX-License-Identifier: MIT
// The native, real-kernel loop rows of `npm run bench:overhead` (issue 21 §2): attach, status and
// detach through LoopControl against the C floor (bench/reference/floor.c `loop_serve`) on this
// machine's own loop driver, no VM, interleaved sample by sample in one run.
//
// Method. One floor process is started once and answers one timed request per line on a pipe, so
// no sample of either side follows a process spawn. Each sample is one cycle per side, the two
// interleaved phase by phase and alternating which side goes first: attach (ours: `attach(file, { autoclear: false, hold: false })`,
// what `losetup -f` does; the floor: open loop-control and the file, LOOP_CTL_GET_FREE, open the
// node, LOOP_CONFIGURE, three closes), status (open, LOOP_GET_STATUS64, close) and detach (open,
// LOOP_CLR_FD, close). Ours is timed in-process around the awaited call; the floor times itself
// with CLOCK_MONOTONIC around the same work. A warm-up of cycles runs first (JIT, page cache).
//
// Resources: one sparse backing file under a fresh run directory (mkdtemp in the OS temp dir).
// Every device either side attaches is recorded; at the end (also after a failure) the bench
// detaches what is still recorded, then every device whose backing file is provably the run's
// own file (LOOP_GET_STATUS64's inode and device against the file's), and removes the directory.
// It never detaches a loop device it did not attach.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, constants as fsc, existsSync, ftruncateSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOOP_CLR_FD,
  LOOP_CONFIGURE,
  LOOP_CONFIG_SIZE,
  LOOP_CTL_GET_FREE,
  LOOP_GET_STATUS64,
  LOOP_INFO64_SIZE,
  O_CLOEXEC,
  encodeLoopConfig,
  realSyscalls,
} from '../../src/ioctl/index.js';
import { LoopControl } from '../../src/loop/index.js';
import { BIN_DIR, compileC } from './cc.js';
import { median, summarize, type Summary } from './stats.js';
import { timingSyscalls } from './timing-syscalls.js';

/** Targets of issue 21 §2 for the native rows (ours/floor, medians in one run). */
export const NATIVE_LOOP_TARGETS = { loop_attach: 1.5, loop_detach: 1.2 } as const;

export type NativeLoopOpId = 'loop_attach' | 'loop_status' | 'loop_detach';

export interface NativeLoopRow {
  readonly id: NativeLoopOpId;
  readonly label: string;
  /** µs per call. */
  readonly ours: Summary;
  readonly floor: Summary;
  /** The floor's syscalls from Node: bare Syscalls calls, nothing of LoopControl. */
  readonly bare: Summary;
  /** ours.median / floor.median. */
  readonly ratio: number;
  /** bare.median / floor.median: what Node + koffi cost before any library code. */
  readonly bareRatio: number;
  /** The target ratio, when the issue sets one. */
  readonly target: number | undefined;
}

/** One call of ours in the profile pass: median µs over the profiled cycles. */
export interface ProfileRow {
  readonly op: NativeLoopOpId;
  readonly call: string;
  /** Calls of this name per operation. */
  readonly perOp: number;
  readonly medianUs: number;
}

export interface NativeLoopResult {
  /** Why the section did not run (not root, no loop driver, no cc); rows are then empty. */
  readonly skipped?: string;
  readonly kernel: string;
  readonly samples: number;
  readonly rows: NativeLoopRow[];
  /** Per-call breakdown of ours through a timing Syscalls proxy (a separate, untimed pass). */
  readonly profile: ProfileRow[];
  /** Retries and anything else worth reporting. */
  readonly notes: string[];
}

/** The profile row for an operation's time outside its Syscalls calls. */
const OUTSIDE = 'OUTSIDE (JS, realpath, sysfs stat)';

const LABELS: Record<NativeLoopOpId, string> = {
  loop_attach: 'loop attach (LOOP_CONFIGURE path, losetup -f)',
  loop_status: 'loop status (LOOP_GET_STATUS64)',
  loop_detach: 'loop detach (LOOP_CLR_FD)',
};

/** The floor's `loop_serve` process: one request line in, one answer line out. */
class FloorServer {
  readonly #child: ChildProcessWithoutNullStreams;
  #buf = '';
  #stderr = '';
  #waiters: { resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
  #exited: Error | undefined;

  constructor(bin: string) {
    this.#child = spawn(bin, ['loop_serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stdout.setEncoding('utf8');
    this.#child.stderr.setEncoding('utf8');
    this.#child.stdout.on('data', (chunk: string) => {
      this.#buf += chunk;
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        this.#waiters.shift()?.resolve(line);
      }
    });
    this.#child.stderr.on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    const fail = (why: string): void => {
      this.#exited = new Error(`floor loop_serve ${why}${this.#stderr ? `: ${this.#stderr.trim()}` : ''}`);
      for (const w of this.#waiters.splice(0)) w.reject(this.#exited);
    };
    this.#child.on('error', (err) => fail(`could not run (${err.message})`));
    this.#child.on('exit', (code, signal) => fail(`exited (${signal ?? `status ${code}`})`));
  }

  request(line: string): Promise<string> {
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#child.stdin.write(`${line}\n`);
    });
  }

  /** Ends the process (EOF on stdin) and waits for it. */
  async close(): Promise<void> {
    if (this.#exited) return;
    const gone = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.#child.stdin.end();
    await gone;
  }
}

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root (loop devices)';
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control (loop driver not loaded)';
  return undefined;
}

/**
 * Runs the native loop rows. `samples` cycles per side after `warmup` cycles; `profileCycles`
 * more cycles of ours through the timing proxy for the per-call breakdown (0: none).
 */
export async function measureNativeLoop(opts: { samples: number; warmup: number; profileCycles: number }): Promise<NativeLoopResult> {
  const kernel = (await import('node:os')).release();
  const skipped = skipReason() ?? (compileC('floor.c', 'floor') || undefined);
  if (skipped) return { skipped, kernel, samples: 0, rows: [], profile: [], notes: [] };

  const runDir = mkdtempSync(join(tmpdir(), 'devmapper-bench-loop-'));
  const file = join(runDir, 'backing.img');
  const fd = openSync(file, 'w', 0o600);
  try {
    ftruncateSync(fd, 8 << 20); // sparse 8 MiB: nothing is read or written through the devices
  } finally {
    closeSync(fd);
  }
  const fileStat = statSync(file, { bigint: true });
  const loops = new LoopControl();
  /** Devices attached by either side and not yet detached. */
  const bound = new Set<string>();
  const floor = new FloorServer(join(BIN_DIR, 'floor'));
  const notes: string[] = [];
  type Who = 'ours' | 'floor' | 'bare';
  const times: Record<Who, Record<NativeLoopOpId, number[]>> = {
    ours: { loop_attach: [], loop_status: [], loop_detach: [] },
    floor: { loop_attach: [], loop_status: [], loop_detach: [] },
    bare: { loop_attach: [], loop_status: [], loop_detach: [] },
  };
  let attempts = 0;
  const us = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1000;

  // One sample: the two sides interleaved phase by phase (attach, attach, status, status, detach,
  // detach), the side that goes first alternating per sample. Whole cycles back to back were tried
  // first and were unfair: the attach right after a teardown of the same device waits in the
  // kernel (LOOP_CONFIGURE took 317 µs median there against ~100–140 µs otherwise, natively on
  // 6.18), and only ours could start that quickly (the floor's next request crosses a pipe).
  type Side = { attach(): Promise<[number, string]>; status(path: string): Promise<number>; detach(path: string): Promise<number> };
  const oursSide: Side = {
    async attach() {
      const t0 = process.hrtime.bigint();
      const a = await loops.attach(file, { autoclear: false, hold: false });
      const t = us(t0);
      attempts += a.attempts - 1;
      return [t, a.path];
    },
    async status(path) {
      const t0 = process.hrtime.bigint();
      await loops.status(path);
      return us(t0);
    },
    async detach(path) {
      const t0 = process.hrtime.bigint();
      await loops.detach(path);
      return us(t0);
    },
  };
  const floorSide: Side = {
    async attach() {
      const [ns, path] = (await floor.request(`attach ${file}`)).split(' ');
      if (!path) throw new Error(`floor loop_serve: unexpected attach answer '${ns}'`);
      return [Number(ns) / 1000, path];
    },
    async status(path) {
      return Number(await floor.request(`status ${path}`)) / 1000;
    },
    async detach(path) {
      return Number(await floor.request(`detach ${path}`)) / 1000;
    },
  };
  // The floor's own syscall sequence from Node: bare Syscalls calls (koffi, all synchronous) with
  // prebuilt buffers, nothing of LoopControl. What any Node library pays before doing its own work.
  const sc = realSyscalls();
  const cfg = Buffer.alloc(LOOP_CONFIG_SIZE);
  const info = Buffer.alloc(LOOP_INFO64_SIZE);
  const bareSide: Side = {
    async attach() {
      const t0 = process.hrtime.bigint();
      const lc = sc.open('/dev/loop-control', fsc.O_RDWR | O_CLOEXEC);
      const bfd = sc.open(file, fsc.O_RDWR | O_CLOEXEC);
      const path = `/dev/loop${sc.ioctl(lc, LOOP_CTL_GET_FREE, 0, 'LOOP_CTL_GET_FREE')}`;
      const dfd = sc.open(path, fsc.O_RDWR | O_CLOEXEC);
      encodeLoopConfig({ fd: bfd, info: { lo_file_name: file } }, cfg);
      try {
        sc.ioctl(dfd, LOOP_CONFIGURE, cfg, 'LOOP_CONFIGURE');
      } finally {
        sc.close(dfd);
        sc.close(bfd);
        sc.close(lc);
      }
      return [us(t0), path];
    },
    async status(path) {
      const t0 = process.hrtime.bigint();
      const fd = sc.open(path, fsc.O_RDONLY | O_CLOEXEC);
      try {
        sc.ioctl(fd, LOOP_GET_STATUS64, info, 'LOOP_GET_STATUS64');
      } finally {
        sc.close(fd);
      }
      return us(t0);
    },
    async detach(path) {
      const t0 = process.hrtime.bigint();
      const fd = sc.open(path, fsc.O_RDONLY | O_CLOEXEC);
      try {
        sc.ioctl(fd, LOOP_CLR_FD, 0, 'LOOP_CLR_FD');
      } finally {
        sc.close(fd);
      }
      return us(t0);
    },
  };
  const sides = { ours: oursSide, floor: floorSide, bare: bareSide } as const;
  const sample = async (i: number, rec: boolean): Promise<void> => {
    // Rotate who goes first: ours, floor, bare / floor, bare, ours / bare, ours, floor.
    const names = (['ours', 'floor', 'bare'] as const).map((_, k, a) => a[(k + i) % 3]!);
    const order = names.map((n) => [n, sides[n]] as const);
    const paths: Partial<Record<Who, string>> = {};
    // Every timed operation, of every side, follows one pipe round trip to the floor process: the
    // floor's requests always do, and an operation that followed another one at once was slower
    // by several times on a loaded host (ours 1.1–1.7 ms against 0.37 ms after a round trip, 2 CPUs
    // at load 15: the kernel's work after the previous loop operation was still running).
    const gap = (): Promise<string> => floor.request('ping -');
    for (const [who, side] of order) {
      await gap();
      const [t, path] = await side.attach();
      bound.add(path);
      paths[who] = path;
      if (rec) times[who].loop_attach.push(t);
    }
    for (const [who, side] of order) {
      await gap();
      const t = await side.status(paths[who]!);
      if (rec) times[who].loop_status.push(t);
    }
    for (const [who, side] of order) {
      await gap();
      const t = await side.detach(paths[who]!);
      bound.delete(paths[who]!);
      if (rec) times[who].loop_detach.push(t);
    }
  };

  const profile: ProfileRow[] = [];
  try {
    for (let i = 0; i < opts.warmup; i++) await sample(i, false);
    for (let i = 0; i < opts.samples; i++) await sample(i, true);
    if (opts.profileCycles > 0) {
      const timing = timingSyscalls(realSyscalls());
      const profiled = new LoopControl({ syscalls: timing.sys });
      const perOp: Record<NativeLoopOpId, Map<string, number[][]>> = { loop_attach: new Map(), loop_status: new Map(), loop_detach: new Map() };
      // Each profiled operation follows one pipe round trip, like the timed samples (without it
      // LOOP_CONFIGURE waits for the teardown just before). Besides each Syscalls call, the row
      // OUTSIDE is the operation's wall time minus its calls: our JavaScript, and the work that
      // does not go through Syscalls (realpath(3) in attach, the sysfs stat in detach).
      const gap = (): Promise<string> => floor.request('ping -');
      for (let i = 0; i < opts.profileCycles; i++) {
        await gap();
        timing.take();
        let t0 = process.hrtime.bigint();
        const a = await profiled.attach(file, { autoclear: false, hold: false });
        const wallA = us(t0);
        bound.add(a.path);
        const callsA = timing.take();
        await gap();
        timing.take();
        t0 = process.hrtime.bigint();
        await profiled.status(a.path);
        const wallS = us(t0);
        const callsS = timing.take();
        await gap();
        timing.take();
        t0 = process.hrtime.bigint();
        await profiled.detach(a.path);
        const wallD = us(t0);
        bound.delete(a.path);
        const callsD = timing.take();
        for (const [op, calls, wall] of [['loop_attach', callsA, wallA], ['loop_status', callsS, wallS], ['loop_detach', callsD, wallD]] as const) {
          const byName = new Map<string, number[]>();
          for (const c of calls) byName.set(c.name, [...(byName.get(c.name) ?? []), c.us]);
          byName.set(OUTSIDE, [wall - calls.reduce((sum, c) => sum + c.us, 0)]);
          for (const [name, list] of byName) perOp[op].set(name, [...(perOp[op].get(name) ?? []), list]);
        }
      }
      for (const op of ['loop_attach', 'loop_status', 'loop_detach'] as const) {
        for (const [call, lists] of perOp[op]) {
          // Per cycle: the sum over this call's occurrences; the row shows the median of the sums.
          profile.push({ op, call, perOp: Math.round(median(lists.map((l) => l.length))), medianUs: median(lists.map((l) => l.reduce((s, x) => s + x, 0))) });
        }
      }
    }
  } finally {
    await floor.close().catch(() => undefined);
    const left = await cleanup(loops, bound, file, fileStat);
    if (left.length > 0) notes.push(`cleanup: ${left.join('; ')}`);
    rmSync(runDir, { recursive: true, force: true });
  }
  if (attempts > 0) notes.push(`ours lost ${attempts} GET_FREE → bind race(s) (retried)`);

  const rows: NativeLoopRow[] = (['loop_attach', 'loop_status', 'loop_detach'] as const).map((id) => {
    const ours = summarize(times.ours[id]);
    const fl = summarize(times.floor[id]);
    const bare = summarize(times.bare[id]);
    return {
      id,
      label: LABELS[id],
      ours,
      floor: fl,
      bare,
      ratio: ours.median / fl.median,
      bareRatio: bare.median / fl.median,
      target: id === 'loop_status' ? undefined : NATIVE_LOOP_TARGETS[id],
    };
  });
  return { kernel, samples: opts.samples, rows, profile, notes };
}

/**
 * Detaches what the run left bound: first the recorded paths, then any device whose backing file
 * is this run's file (by inode and device, from LOOP_GET_STATUS64: proof that we bound it). Returns
 * what could not be cleaned, as text.
 */
async function cleanup(loops: LoopControl, bound: Set<string>, file: string, st: { dev: bigint; ino: bigint }): Promise<string[]> {
  const problems: string[] = [];
  const ours = async (path: string): Promise<boolean> => {
    try {
      const s = await loops.status(path);
      return s.backingInode === st.ino && s.backingDevice === st.dev;
    } catch {
      return false; // unbound (or gone): nothing of ours there
    }
  };
  for (const path of bound) {
    if (!(await ours(path))) continue;
    await loops.detach(path).catch((e: unknown) => problems.push(`${path}: ${(e as Error).message}`));
  }
  for (const m of await loops.findByBackingFile(file)) {
    if (m.matchedBy !== 'inode') continue;
    await loops.detach(m.path).catch((e: unknown) => problems.push(`${m.path}: ${(e as Error).message}`));
  }
  return problems;
}

function fmt(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`;
}

export function renderNativeLoop(r: NativeLoopResult): string {
  if (r.skipped) return `(skipped: ${r.skipped})`;
  const lines = [
    `Kernel ${r.kernel}, ${r.samples} interleaved samples per side; median (min–max) per call.`,
    '',
    '| operation | ours | C floor | bare Node (info) | ours/floor | bare/floor | target |',
    '|---|---|---|---|---|---|---|',
  ];
  const cell = (s: Summary): string => `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
  for (const row of r.rows) {
    const verdict = row.target === undefined ? '(info)' : `≤ ${row.target}× ${row.ratio <= row.target ? 'PASS' : 'MISS'}`;
    lines.push(
      `| ${row.label} | ${cell(row.ours)} | ${cell(row.floor)} | ${cell(row.bare)} | ${row.ratio.toFixed(2)}× | ${row.bareRatio.toFixed(2)}× | ${verdict} |`,
    );
  }
  lines.push('', 'bare Node: the floor\'s syscall sequence through Syscalls (koffi, synchronous), nothing of LoopControl.');
  if (r.profile.length > 0) {
    lines.push('', 'Ours per call (timing Syscalls proxy, a separate pass, each operation after one pipe round trip as in the samples; sum per operation, median; OUTSIDE = wall time minus the calls, proxy cost included):', '', '| operation | call | calls | µs |', '|---|---|---|---|');
    for (const p of r.profile) lines.push(`| ${p.op} | ${p.call} | ${p.perOp} | ${p.medianUs.toFixed(1)} |`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
