// SPDX-License-Identifier: MIT
// The contract suites (test/contract) against the real kernel, as root in the VM. The same suites
// run against FakeKernel in the unit tests (test/unit/contract-fake.test.ts).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { realSyscalls } from '../../src/ioctl/index.js';
import { LoopControl, ensureSparseFile } from '../../src/loop/index.js';
import { BaseEnv, type ContractEnv } from '../contract/env.js';
import { registerDmContract } from '../contract/dm.js';
import { registerLoopContract } from '../contract/loop.js';
import { registerThinContract } from '../contract/thin.js';
import { privilegedSuite, sweep, testName, testTmpDir, withSweep } from '../helpers/privileged.js';

let fileCounter = 0;

class RealEnv extends BaseEnv implements ContractEnv {
  readonly kind = 'real' as const;
  readonly sys = realSyscalls();
  readonly devDir = '/dev';

  loops(): LoopControl {
    return new LoopControl();
  }

  async file(bytes: number): Promise<string> {
    const p = join(testTmpDir(), `contract-${process.pid}-${++fileCounter}`);
    await ensureSparseFile(p, bytes);
    return p;
  }

  name(base: string): string {
    return this.track(testName(base));
  }

  async writeBlocks(name: string, first: number, count: number, blockBytes: number): Promise<void> {
    const fd = openSync(`/dev/mapper/${name}`, 'r+');
    try {
      const chunk = Buffer.alloc(4096, 0xa5);
      for (let i = first; i < first + count; i++) writeSync(fd, chunk, 0, chunk.length, i * blockBytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  override async cleanup(): Promise<void> {
    await super.cleanup();
    sweep();
  }
}

const real = (name: string) => withSweep(privilegedSuite(`${name} (real kernel)`));
registerDmContract(real, () => new RealEnv());
registerLoopContract(real, () => new RealEnv());
registerThinContract(real, () => new RealEnv());
