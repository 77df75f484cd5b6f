// SPDX-License-Identifier: MIT
// The contract environment backed by FakeKernel: fake /dev, fake loops over real sparse files in a
// temp dir, a fake sysfs tree for LoopControl.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopControl, ensureSparseFile } from '../../src/loop/index.js';
import { FakeKernel } from '../../src/testing/index.js';
import { BaseEnv, type ContractEnv } from './env.js';

let fileCounter = 0;
let nameCounter = 0;

export class FakeEnv extends BaseEnv implements ContractEnv {
  readonly kind = 'fake' as const;
  readonly fake: FakeKernel;
  readonly devDir = '/dev';
  readonly #dir: string;

  constructor() {
    super();
    this.fake = new FakeKernel({ sysfs: true });
    this.#dir = mkdtempSync(join(tmpdir(), 'devmapper-contract-'));
  }

  get sys(): FakeKernel {
    return this.fake;
  }

  loops(): LoopControl {
    return new LoopControl({ syscalls: this.fake, sysfsRoot: this.fake.sysfsRoot ?? '/nonexistent', sleep: async () => {} });
  }

  async file(bytes: number): Promise<string> {
    const p = join(this.#dir, `backing-${++fileCounter}`);
    await ensureSparseFile(p, bytes);
    return p;
  }

  name(base: string): string {
    return this.track(`${base}-dmtest-delme-${++nameCounter}`);
  }

  async writeBlocks(name: string, first: number, count: number): Promise<void> {
    this.fake.writeThin(name, first, count);
  }

  override async eventually(check: () => boolean | Promise<boolean>, ms = 200): Promise<boolean> {
    return super.eventually(check, ms);
  }

  override async cleanup(): Promise<void> {
    await super.cleanup();
    this.fake.dispose();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
