// SPDX-License-Identifier: MIT
// The DeviceSet contract (test/contract/deviceset.ts) on the real kernel, as root in the VM. The
// same suite runs against FakeKernel in the unit tests (test/unit/deviceset-contract-fake.test.ts).
import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DmControl } from '../../src/dm/index.js';
import { registerDeviceSetContract, type DeviceSetContractEnv } from '../contract/deviceset.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

let n = 0;

function realEnv(): DeviceSetContractEnv {
  let dm: DmControl | undefined;
  return {
    kind: 'real',
    root: () => {
      const r = join(testTmpDir(), `ds-contract-${process.pid}-${++n}`);
      mkdirSync(r, { recursive: true, mode: 0o700 });
      return r;
    },
    init: () => ({}),
    dm: () => (dm ??= new DmControl()),
    // /dev/mapper/NAME is our block node without udev and udev's symlink under it: follow it.
    nodeExists: (path) => {
      try {
        lstatSync(path);
        return true;
      } catch {
        return false;
      }
    },
    cleanup: async () => {
      dm?.close();
    },
  };
}

registerDeviceSetContract((name) => withSweep(privilegedSuite(`${name} (real kernel)`)), realEnv);
