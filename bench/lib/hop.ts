// SPDX-License-Identifier: MIT
// The hop cost of a blocking-call path, natively on this machine (real kernel, no VM, no root):
// a sequence of N cheap ioctls (FIONREAD on a regular file: fs/ioctl.c do_vfs_ioctl() answers it
// from i_size without I/O) made (a) synchronously on the JS thread, (b) as N koffi `.async` calls
// (one libuv threadpool hop each, what Syscalls.ioctlAsync does), (c) as one batch through the
// BatchWorker (one Atomics.notify / Atomics.waitAsync hop for the whole sequence). What (b) and
// (c) add over (a) is the price of keeping the event loop free.
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as io from '../../src/ioctl/index.js';

/** FIONREAD (include/uapi/asm-generic/ioctls.h): bytes readable, an int written through the pointer. */
const FIONREAD = 0x541b;

export interface HopRow {
  readonly op: string;
  /** ns per sequence (median of the rounds). */
  readonly ns: number;
}

async function nsPer(n: number, rounds: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(n, 2000); i++) await fn();
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    out.push(Number(process.hrtime.bigint() - t) / n);
  }
  out.sort((a, b) => a - b);
  return out[out.length >> 1] ?? Number.NaN;
}

/** Rows for sequences of 1 and 3 ioctls (3 = create + load + resume, or suspend + message + resume). */
export async function measureHop(options: { smoke?: boolean } = {}): Promise<HopRow[]> {
  const rounds = options.smoke ? 2 : 7;
  const count = options.smoke ? 200 : 20_000;
  const sys = io.realSyscalls();
  const fd = openSync(fileURLToPath(import.meta.url), 'r');
  const batcher = new io.BatchWorker();
  const rows: HopRow[] = [];
  try {
    for (const n of [1, 3]) {
      const bufs = Array.from({ length: n }, () => Buffer.alloc(4));
      const steps: io.IoctlStep[] = bufs.map((b) => ({ fd, request: FIONREAD, arg: b, requestName: 'FIONREAD' }));
      rows.push({
        op: `${n} × ioctl, sync on the JS thread (blocks the loop)`,
        ns: await nsPer(count, rounds, () => {
          for (const b of bufs) sys.ioctl(fd, FIONREAD, b, 'FIONREAD');
        }),
      });
      rows.push({
        op: `${n} × Syscalls.ioctlAsync (koffi .async, ${n} threadpool hop${n > 1 ? 's' : ''})`,
        ns: await nsPer(count, rounds, async () => {
          for (const b of bufs) await sys.ioctlAsync(fd, FIONREAD, b, 'FIONREAD');
        }),
      });
      rows.push({
        op: `${n} × ioctl in one BatchWorker batch (1 hop)`,
        ns: await nsPer(count, rounds, async () => {
          const o = await batcher.run(steps);
          if (o.error) throw o.error;
        }),
      });
    }
  } finally {
    batcher.close();
    closeSync(fd);
  }
  return rows;
}

export function renderHop(rows: readonly HopRow[]): string {
  const fmt = (ns: number): string => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
  const w = Math.max(...rows.map((r) => r.op.length), 9);
  const lines = [`| ${'sequence'.padEnd(w)} | per sequence (native, real kernel) |`, `|${'-'.repeat(w + 2)}|------------------------------------|`];
  for (const r of rows) lines.push(`| ${r.op.padEnd(w)} | ${fmt(r.ns).padEnd(34)} |`);
  return lines.join('\n');
}
