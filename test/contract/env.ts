// SPDX-License-Identifier: MIT
// What a contract suite needs from a kernel: a Syscalls, backing block devices, marked names and
// cleanup. Implemented by the FakeKernel (test/unit/contract-fake.test.ts) and by the real kernel
// in the VM (test/privileged/contract-real.test.ts).
import type { Test } from 'uvu';
import { DmControl } from '../../src/dm/index.js';
import { IoctlError, type Syscalls } from '../../src/ioctl/index.js';
import { LoopControl, type LoopAttachment } from '../../src/loop/index.js';

export interface ContractEnv {
  readonly kind: 'fake' | 'real';
  readonly sys: Syscalls;
  /** Where /dev is for this kernel (the fake intercepts it). */
  readonly devDir: string;
  /** A DmControl on `sys` that manages /dev/mapper nodes itself (no udev in either world). */
  dm(sys?: Syscalls): DmControl;
  loops(): LoopControl;
  /** A new sparse backing file of `bytes` under the run's temp dir. */
  file(bytes: number): Promise<string>;
  /** A loop device over a new sparse file (handle held; closed by cleanup). */
  blockDevice(bytes: number): Promise<LoopAttachment>;
  /** A unique dm name carrying the test marker. */
  name(base: string): string;
  /** Opens a path through `sys`; closed by cleanup when still open. */
  open(path: string, flags: number): number;
  close(fd: number): void;
  /**
   * Writes one 4 KiB chunk at the start of each of `count` blocks of `blockBytes` from block
   * `first` of dm device `name`, and flushes: provisions those blocks on a thin device.
   * Rejects when the device refuses the writes (out of data space).
   */
  writeBlocks(name: string, first: number, count: number, blockBytes: number): Promise<void>;
  /** Waits (polling) until `check` holds, for kernel work done asynchronously (autoclear, deferred remove). */
  eventually(check: () => boolean | Promise<boolean>, ms?: number): Promise<boolean>;
  /** Removes everything this test made. */
  cleanup(): Promise<void>;
}

export type SuiteFactory = (name: string) => Test;
export type EnvFactory = () => ContractEnv | Promise<ContractEnv>;

/** Resolves the errno code a promise rejects with (following `cause`), or 'resolved'. */
export async function errnoOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'resolved';
  } catch (e) {
    for (let x: unknown = e, i = 0; x && i < 16; i++) {
      if (x instanceof IoctlError) return x.code;
      x = (x as { cause?: unknown }).cause;
    }
    return `not an IoctlError: ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
}

/** Shared base: tracks fds, attachments and dm names for cleanup. */
export abstract class BaseEnv implements ContractEnv {
  abstract readonly kind: 'fake' | 'real';
  abstract readonly sys: Syscalls;
  abstract readonly devDir: string;
  readonly #fds = new Set<number>();
  protected readonly attachments: LoopAttachment[] = [];
  protected readonly names = new Set<string>();
  #dm: DmControl | undefined;

  dm(sys?: Syscalls): DmControl {
    if (sys) return new DmControl({ syscalls: sys, devDir: this.devDir, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 } });
    this.#dm ??= new DmControl({ syscalls: this.sys, devDir: this.devDir, nodes: 'manage', removeRetry: { attempts: 1, delayMs: 0 } });
    return this.#dm;
  }
  abstract loops(): LoopControl;
  abstract file(bytes: number): Promise<string>;
  abstract writeBlocks(name: string, first: number, count: number, blockBytes: number): Promise<void>;
  abstract name(base: string): string;

  async blockDevice(bytes: number): Promise<LoopAttachment> {
    const a = await this.loops().attach(await this.file(bytes));
    this.attachments.push(a);
    return a;
  }

  open(path: string, flags: number): number {
    const fd = this.sys.open(path, flags);
    this.#fds.add(fd);
    return fd;
  }

  close(fd: number): void {
    this.#fds.delete(fd);
    this.sys.close(fd);
  }

  async eventually(check: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
    const end = Date.now() + ms;
    for (;;) {
      if (await check()) return true;
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Track a dm name for cleanup. */
  track(name: string): string {
    this.names.add(name);
    return name;
  }

  async cleanup(): Promise<void> {
    for (const fd of this.#fds) {
      try {
        this.sys.close(fd);
      } catch {
        /* gone */
      }
    }
    this.#fds.clear();
    const dm = this.dm();
    // Stacked devices go top-down: retry while progress is made.
    for (let left = [...this.names], progress = true; left.length > 0 && progress; ) {
      progress = false;
      for (const n of left) {
        try {
          await dm.deviceRemove(n, { retry: { attempts: 3, delayMs: 50 } });
          progress = true;
          this.names.delete(n);
        } catch (e) {
          if ((await errnoOf(Promise.reject(e))) === 'ENXIO') {
            this.names.delete(n);
            progress = true;
          }
        }
      }
      left = [...this.names];
    }
    dm.close();
    this.#dm = undefined;
    for (const a of this.attachments) {
      a.close();
      try {
        await a.detach();
      } catch {
        /* detached already (autoclear) */
      }
    }
    this.attachments.length = 0;
  }
}
