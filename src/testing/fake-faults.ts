// SPDX-License-Identifier: MIT
// The FakeKernel's syscall boundary: every syscall is logged, passed to the onCall hooks, checked
// against an armed crash point and the failNext rules, and a KernelErrno thrown by a handler is
// turned into the IoctlError the real seam (src/ioctl/libc.ts) would throw. Not a kernel file: the
// fault-injection side of the fake.
import { BLK_REQUEST_NAMES, dmRequestName, LOOP_REQUEST_NAMES, type SyscallName } from '../ioctl/index.js';
import { KernelErrno, seamError, SimulatedCrash } from './errors.js';
import type { FailHandle, FailRule, FakeCall } from './fake-types.js';
import type { ArmedRule, FakeState, FaultsPort } from './fake-state.js';

/** The names a failNext `request` may use for this request: as given, and its C name (src/ioctl tables). */
export function requestNameOf(request: number, given: string): string[] {
  const names = new Set<string>([given]);
  const dm = dmRequestName(request);
  if (!dm.startsWith('0x')) names.add(dm);
  const other = LOOP_REQUEST_NAMES.get(request >>> 0) ?? BLK_REQUEST_NAMES.get(request >>> 0);
  if (other) names.add(other);
  return [...names];
}

export function describeCall(c: FakeCall): string {
  return [c.syscall, c.request, c.path, c.fd !== undefined ? `fd ${c.fd}` : undefined].filter(Boolean).join(' ');
}

/** Logging, hooks, crash points and scripted failures around every syscall. */
export class Faults implements FaultsPort {
  readonly #s: FakeState;

  constructor(s: FakeState) {
    this.#s = s;
  }

  /** Arms a failNext rule; the handle counts and cancels it. */
  arm(rule: FailRule): FailHandle {
    const armed: ArmedRule = { ...rule, left: rule.times ?? 1, skipLeft: rule.skip ?? 0 };
    this.#s.rules.push(armed);
    const rules = (): ArmedRule[] => this.#s.rules;
    return {
      get remaining() {
        return armed.left;
      },
      cancel: () => {
        this.#s.rules = rules().filter((r) => r !== armed);
      },
    };
  }

  /** Logs the call, runs the hooks, fires an armed crash point or a matching "before" rule. */
  begin(rec: FakeCall, names: readonly string[]): { rule: ArmedRule | undefined; crashAfterCall: boolean } {
    this.#s.calls.push(rec);
    for (const h of [...this.#s.hooks]) h(rec);
    let crashAfterCall = false;
    if (this.#s.crashed) {
      rec.result = 'crash';
      throw new SimulatedCrash(rec.index, 'before', describeCall(rec));
    }
    if (this.#s.crash && rec.index >= this.#s.crash.at) {
      if (this.#s.crash.when === 'before' || rec.index > this.#s.crash.at) {
        this.#s.crashed = true;
        rec.result = 'crash';
        throw new SimulatedCrash(rec.index, 'before', describeCall(rec));
      }
      crashAfterCall = true;
    }
    const rule = this.matchRule(rec, names);
    if (rule && (rule.when ?? 'before') === 'before') {
      rec.result = rule.errno;
      throw seamError(rule.errno, this.ctx(rec));
    }
    return { rule, crashAfterCall };
  }

  /** The first armed rule matching this call (consumes one of its `times`), if any. */
  matchRule(rec: FakeCall, names: readonly string[]): ArmedRule | undefined {
    for (const r of this.#s.rules) {
      if (r.left <= 0) continue;
      const syscall = r.syscall ?? (r.request ? 'ioctl' : undefined);
      if (syscall && syscall !== rec.syscall) continue;
      if (r.request && !names.includes(r.request)) continue;
      if (r.path !== undefined) {
        const p = rec.path ?? '';
        if (typeof r.path === 'string' ? r.path !== p : !r.path.test(p)) continue;
      }
      if (r.skipLeft > 0) {
        r.skipLeft--;
        continue;
      }
      r.left--;
      if (r.left <= 0) this.#s.rules = this.#s.rules.filter((x) => x !== r);
      return r;
    }
    return undefined;
  }

  /** The IoctlError context of a call (what the real seam reports). */
  ctx(rec: FakeCall): { syscall: SyscallName; request?: string; fd?: number; path?: string; dest?: string } {
    const c: { syscall: SyscallName; request?: string; fd?: number; path?: string; dest?: string } = { syscall: rec.syscall };
    if (rec.request !== undefined) c.request = rec.request;
    if (rec.fd !== undefined) c.fd = rec.fd;
    if (rec.path !== undefined) c.path = rec.path;
    if (rec.dest !== undefined) c.dest = rec.dest;
    return c;
  }

  /** After the handler: a crash point with `when: 'after'` or an "after" rule fires now. */
  end(rec: FakeCall, gate: { rule: ArmedRule | undefined; crashAfterCall: boolean }): void {
    if (gate.crashAfterCall) {
      this.#s.crashed = true;
      rec.result = 'crash';
      throw new SimulatedCrash(rec.index, 'after', describeCall(rec));
    }
    if (gate.rule) {
      rec.result = gate.rule.errno;
      throw seamError(gate.rule.errno, this.ctx(rec));
    }
    rec.result = 'ok';
  }

  /** A KernelErrno from a handler becomes the seam's IoctlError; anything else propagates. */
  fail(rec: FakeCall, e: unknown): never {
    if (e instanceof KernelErrno) {
      rec.result = e.code;
      throw seamError(e.code, this.ctx(rec));
    }
    throw e;
  }

  /** Runs a synchronous syscall handler inside the boundary. */
  syncCall<T>(info: Omit<FakeCall, 'index'>, fn: () => T, names: readonly string[] = []): T {
    const rec: FakeCall = { index: this.#s.callIndex++, ...info };
    const gate = this.begin(rec, names);
    let r: T;
    try {
      r = fn();
    } catch (e) {
      if (gate.crashAfterCall) this.end(rec, gate);
      return this.fail(rec, e);
    }
    this.end(rec, gate);
    return r;
  }

  /** Runs an asynchronous syscall handler (mount, umount2, poll, ioctlAsync) inside the boundary. */
  async asyncCall<T>(info: Omit<FakeCall, 'index'>, fn: () => T | Promise<T>, names: readonly string[] = []): Promise<T> {
    const rec: FakeCall = { index: this.#s.callIndex++, ...info };
    const gate = this.begin(rec, names);
    let r: T;
    try {
      r = await fn();
    } catch (e) {
      if (gate.crashAfterCall) this.end(rec, gate);
      return this.fail(rec, e);
    }
    this.end(rec, gate);
    return r;
  }
}
