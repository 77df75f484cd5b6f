// SPDX-License-Identifier: MIT
// The DeviceSet contract (test/contract/deviceset.ts) against FakeKernel. The same suite runs
// against the real kernel in the VM (test/privileged/deviceset-contract.test.ts).
import { suite } from 'uvu';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DmControl } from '../../src/dm/index.js';
import { S_IFBLK, S_IFMT } from '../../src/ioctl/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../src/testing/index.js';
import { registerDeviceSetContract, type DeviceSetContractEnv } from '../contract/deviceset.js';

const DEV = '/fakedev';

function fakeEnv(): DeviceSetContractEnv {
  const fake = new FakeKernel({ sysfs: true, devDir: DEV });
  const dir = mkdtempSync(join(tmpdir(), 'ds-contract-'));
  let n = 0;
  let dm: DmControl | undefined;
  return {
    kind: 'fake',
    root: () => {
      const r = join(dir, `root-${++n}`);
      mkdirSync(r, { mode: 0o700 });
      return r;
    },
    init: () => fakeDeviceSetInit(fake, DEV),
    dm: () => (dm ??= new DmControl({ devDir: DEV, syscalls: fake, sleep: async () => {}, udevRecheckMs: 0 })),
    nodeExists: (path) => {
      try {
        return (fake.stat(path).mode & S_IFMT) === S_IFBLK;
      } catch {
        return false;
      }
    },
    cleanup: async () => {
      dm?.close();
      fake.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

registerDeviceSetContract((name) => suite(`${name} (FakeKernel)`), fakeEnv);
