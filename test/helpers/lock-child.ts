// SPDX-License-Identifier: MIT
// Child process of the cross-process root-lock tests (test/unit/deviceset/lock-processes.test.ts,
// test/privileged/deviceset-lock.test.ts). Reads one command a line on stdin, answers one line:
//   lock <root>      RootLock.acquire          → 'won' | 'lost <pid|null>' | 'error <text>'
//   unlock           release it                → 'released'
//   init <root>      DeviceSet.init            → 'won' | 'lost <pid|null>' | 'error <text>'
//   shutdown         shut that DeviceSet down  → 'released'
// argv[2] = 'fake' runs DeviceSet over its own FakeKernel (the lock is still the real flock on
// the real root), 'real' over the real kernel (VM). argv[3] = JSON array of dm.* options.
import { createInterface } from 'node:readline';
import { DeviceSet, DeviceSetLockedError, RootLock, type DeviceSetInit } from '../../src/deviceset/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../src/testing/index.js';

const mode = process.argv[2] === 'real' ? 'real' : 'fake';
const options = JSON.parse(process.argv[3] ?? '[]') as string[];
const fake = mode === 'fake' ? new FakeKernel({ sysfs: true, devDir: '/fakedev' }) : undefined;
const initOf = (): DeviceSetInit => ({ ...(fake ? fakeDeviceSetInit(fake, '/fakedev') : {}), options, log: () => undefined });
const say = (s: string): void => void process.stdout.write(`${s}\n`);

let lock: RootLock | undefined;
let set: DeviceSet | undefined;
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg = ''] = line.split(' ');
  try {
    if (cmd === 'lock') {
      lock = RootLock.acquire(arg);
      say('won');
    } else if (cmd === 'unlock') {
      lock?.release();
      lock = undefined;
      say('released');
    } else if (cmd === 'init') {
      set = await DeviceSet.init(arg, initOf());
      say('won');
    } else if (cmd === 'shutdown') {
      await set?.shutdown();
      set = undefined;
      say('released');
    } else say(`error unknown command ${line}`);
  } catch (err) {
    if (err instanceof DeviceSetLockedError) say(`lost ${err.pid}`);
    else say(`error ${String(err).replace(/\n/g, ' ')}`);
  }
}
fake?.dispose();
