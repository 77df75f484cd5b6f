// SPDX-License-Identifier: MIT
// BatchWorker: the main-thread side of the batched-ioctl worker (issue #21 §1). A dedicated
// worker_threads thread (batch-thread.ts) owns the blocking calls of a batch: the main thread
// copies the steps' buffers into a SharedArrayBuffer arena, writes the steps into a shared Int32
// control block, wakes the thread with Atomics.notify and awaits its single answer with
// Atomics.waitAsync. One hop per batch instead of one libuv threadpool hop per `.async` call; the
// event loop never blocks. Layout and handshake: batch-protocol.ts.
//
// Lifecycle: the thread starts on the first run() (koffi is loaded there too), is unref()'d
// while idle so it never keeps the process alive, and ref()'d while a batch is in flight (a
// pending Atomics.waitAsync alone does not keep Node's event loop alive). close() lets it exit
// after the batch in flight, if any; it stays ref()'d for the moment it takes to leave.
import type { MessagePort, Worker } from 'node:worker_threads';
import { ioctlChannel, type IoctlChannelMessage } from './diagnostics.js';
import { BatchWorkerError, IoctlError } from './errors.js';
import { MAX_BATCH_STEPS, type BatchOutcome, type IoctlBatcher, type IoctlStep } from './batch.js';
import {
  CTL_BYTES,
  DONE,
  DURATIONS_BYTE_OFFSET,
  FAILED,
  INITIAL_ARENA_BYTES,
  KIND_INT,
  KIND_PTR,
  NSTEPS,
  OP,
  OP_EXIT,
  OP_RUN,
  OP_RUN_NEW_ARENA,
  RAN,
  READY,
  REQ,
  STEP_BASE,
  STEP_INTS,
  STOPPED,
  S_ERRNO,
  S_FD,
  S_INT,
  S_KIND,
  S_LENGTH,
  S_OFFSET,
  S_RC,
  S_REQUEST,
  S_STOP_MASK,
  S_STOP_OFFSET,
} from './batch-protocol.js';

/** Atomics.waitAsync (ES2024; Node ≥ 16), typed here because the project's lib is ES2022. */
type WaitAsync = (ta: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** Buffers are placed at 8-byte aligned offsets of the arena. */
const align8 = (n: number): number => (n + 7) & ~7;

/** Checks a batch before anything is sent: the worker takes only what it can pass through. */
function checkSteps(steps: readonly IoctlStep[]): void {
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_BATCH_STEPS)
    throw new RangeError(`a batch has 1 to ${MAX_BATCH_STEPS} steps, not ${Array.isArray(steps) ? steps.length : typeof steps}`);
  for (const [i, s] of steps.entries()) {
    if (!Number.isInteger(s.fd) || s.fd < 0 || s.fd > 0x7fffffff) throw new RangeError(`step ${i}: fd ${s.fd} is not a valid descriptor`);
    if (!Number.isInteger(s.request) || s.request < 0 || s.request > 0xffffffff) throw new RangeError(`step ${i}: request ${s.request} is not a u32`);
    const a = s.arg;
    if (!Buffer.isBuffer(a)) {
      const v = typeof a === 'bigint' ? a : BigInt(a);
      if (v < 0n || v > 0xffffffffn) throw new RangeError(`step ${i}: integer argument ${a} does not fit 32 bits (use ioctl for it)`);
    }
  }
}

/** The worker-thread batcher. Create one per DmControl (or other owner) and close it with it. */
export class BatchWorker implements IoctlBatcher {
  readonly #ctlSab = new SharedArrayBuffer(CTL_BYTES);
  readonly #ctl = new Int32Array(this.#ctlSab);
  readonly #durations = new Float64Array(this.#ctlSab, DURATIONS_BYTE_OFFSET);
  #arenaSab = new SharedArrayBuffer(INITIAL_ARENA_BYTES);
  #arena = Buffer.from(this.#arenaSab);
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  /** Resolves once the thread is ready; rejects when it could not start. */
  #ready: Promise<void> | undefined;
  /** Why the worker is gone (it died, or failed to start). */
  #dead: BatchWorkerError | undefined;
  #closed = false;
  #exited: Promise<void> = Promise.resolve();
  /** Batches queued or in flight. */
  #pending = 0;
  #tail: Promise<unknown> = Promise.resolve();

  /** True while a batch is queued or in flight. */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /** Resolves once the thread has exited (at once when it never started). */
  get exited(): Promise<void> {
    return this.#exited;
  }

  /** True once the thread has started and not died (for tests and diagnostics). */
  get running(): boolean {
    return this.#worker !== undefined && this.#dead === undefined;
  }

  run(steps: readonly IoctlStep[]): Promise<BatchOutcome> {
    if (this.#closed) return Promise.reject(new BatchWorkerError('the worker is closed'));
    try {
      checkSteps(steps);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#pending++;
    const p = this.#tail.then(() => this.#runNow(steps));
    this.#tail = p.then(
      () => this.#pending--,
      () => this.#pending--,
    );
    return p;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const exit = (): void => {
      if (this.#worker === undefined || this.#dead !== undefined) return;
      Atomics.store(this.#ctl, OP, OP_EXIT);
      Atomics.add(this.#ctl, REQ, 1);
      Atomics.notify(this.#ctl, REQ);
      // Ref'd until it has gone: the thread leaves its loop at once (no batch is in flight), and
      // this way `exited` resolves even when nothing else keeps the event loop alive.
      this.#worker.ref();
    };
    if (this.#pending === 0) exit();
    else void this.#tail.then(exit);
  }

  #start(): Promise<void> {
    if (this.#ready) return this.#ready;
    // node:worker_threads is fetched here, not imported: every process that imports src/ioctl
    // would pay for loading it (~1 ms at CLI startup), and only a batching DmControl starts a thread.
    const { MessageChannel, Worker } = process.getBuiltinModule('node:worker_threads');
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    this.#port = port1;
    const seen = Atomics.load(this.#ctl, DONE);
    const worker = new Worker(new URL('./batch-thread.js', import.meta.url), {
      workerData: { ctl: this.#ctlSab, arena: this.#arenaSab, port: port2 },
      transferList: [port2],
      stdout: false,
      stderr: false,
      // Not the parent's flags: the thread runs plain JS and koffi, and an inherited
      // `--input-type` (node --input-type=module -e …) makes the Worker fail to load at all.
      execArgv: [],
    });
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    const die = (reason: string, cause?: unknown): void => {
      if (this.#dead) return;
      this.#dead = new BatchWorkerError(reason, cause === undefined ? undefined : { cause });
      // Wake whoever waits for an answer that will not come.
      Atomics.add(this.#ctl, DONE, 1);
      Atomics.notify(this.#ctl, DONE);
    };
    worker.on('error', (e) => die('the worker thread failed', e));
    worker.on('exit', (code) => die(`the worker thread exited (code ${code})`));
    this.#ready = this.#await(seen).then(() => {
      if (this.#dead) throw this.#dead;
      if (Atomics.load(this.#ctl, READY) !== 1) throw new BatchWorkerError('the worker thread did not start');
    });
    return this.#ready;
  }

  /** Waits (without blocking the event loop) until DONE moves past `seen`; the worker is ref()'d meanwhile. */
  async #await(seen: number): Promise<void> {
    const w = this.#worker;
    w?.ref();
    try {
      const r = waitAsync(this.#ctl, DONE, seen);
      if (r.async) await r.value;
    } finally {
      w?.unref();
    }
  }

  async #runNow(steps: readonly IoctlStep[]): Promise<BatchOutcome> {
    if (this.#dead) throw this.#dead;
    await this.#start();
    if (this.#dead) throw this.#dead;
    const ctl = this.#ctl;
    // Lay the buffers out in the arena, growing it (a new SharedArrayBuffer sent over the port)
    // when they do not fit.
    let need = 0;
    for (const s of steps) if (Buffer.isBuffer(s.arg)) need = align8(need) + s.arg.length;
    let op = OP_RUN;
    if (need > this.#arena.length) {
      let size = this.#arena.length;
      while (size < need) size *= 2;
      this.#arenaSab = new SharedArrayBuffer(size);
      this.#arena = Buffer.from(this.#arenaSab);
      this.#port!.postMessage(this.#arenaSab);
      op = OP_RUN_NEW_ARENA;
    }
    const offsets: number[] = [];
    let at = 0;
    for (const [i, step] of steps.entries()) {
      const b = STEP_BASE + i * STEP_INTS;
      const a = step.arg;
      ctl[b + S_FD] = step.fd;
      ctl[b + S_REQUEST] = step.request | 0;
      ctl[b + S_RC] = 0;
      ctl[b + S_ERRNO] = 0;
      ctl[b + S_STOP_OFFSET] = step.stopIf?.offset ?? -1;
      ctl[b + S_STOP_MASK] = (step.stopIf?.mask ?? 0) | 0;
      if (Buffer.isBuffer(a)) {
        at = align8(at);
        a.copy(this.#arena, at);
        ctl[b + S_KIND] = KIND_PTR;
        ctl[b + S_OFFSET] = at;
        ctl[b + S_LENGTH] = a.length;
        offsets.push(at);
        at += a.length;
      } else {
        ctl[b + S_KIND] = KIND_INT;
        ctl[b + S_INT] = Number(a) | 0;
        offsets.push(-1);
      }
    }
    ctl[NSTEPS] = steps.length;
    ctl[OP] = op;
    const seen = Atomics.load(ctl, DONE);
    const traced = ioctlChannel.hasSubscribers;
    Atomics.add(ctl, REQ, 1);
    Atomics.notify(ctl, REQ);
    await this.#await(seen);
    if (this.#dead) throw this.#dead;

    const ran = ctl[RAN] ?? 0;
    const failed = ctl[FAILED] === 1;
    const last = failed ? ran : ran - 1;
    const results: number[] = [];
    for (let i = 0; i <= last && i < steps.length; i++) {
      const step = steps[i]!;
      const off = offsets[i]!;
      if (off >= 0) this.#arena.copy(step.arg as Buffer, 0, off, off + (step.arg as Buffer).length);
      const b = STEP_BASE + i * STEP_INTS;
      const rc = ctl[b + S_RC] ?? 0;
      if (traced) {
        const message: IoctlChannelMessage = { request: step.requestName, fd: step.fd, async: true, durationMs: this.#durations[i] ?? 0, errno: rc < 0 ? ctl[b + S_ERRNO] || 0 : 0 };
        ioctlChannel.publish(message);
      }
      if (i < ran) results.push(rc);
    }
    // Nothing of a request stays in shared memory once it is answered (a DM_SECURE_DATA_FLAG
    // table that was never sent, for one: the kernel wipes only what it copied in).
    this.#arena.fill(0, 0, at);
    if (failed) {
      const step = steps[ran]!;
      const errno = ctl[STEP_BASE + ran * STEP_INTS + S_ERRNO] || 0;
      return { results, error: new IoctlError({ syscall: 'ioctl', errno, fd: step.fd, request: step.requestName }) };
    }
    return ctl[STOPPED] === 1 ? { results, stopped: true } : { results };
  }
}
