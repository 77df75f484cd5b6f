// SPDX-License-Identifier: MIT
// Child process for the DeviceSet crash tests: runs a list of steps against one root, then exits
// 0. DEVMAPPER_CRASH_AT (read by DeviceSet) makes it SIGKILL itself at a crash point; the step
// 'kill' does so explicitly. Usage: node deviceset-child.js '<json {root, options, steps}>'
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { DeviceSet } from '../../src/deviceset/index.js';

type Step =
  | ['add', string, string, string?]
  | ['delete', string]
  | ['mount', string, string]
  | ['write', string, string]
  | ['unmount', string, string]
  | ['shutdown']
  | ['kill'];

const { root, options, steps } = JSON.parse(process.argv[2] ?? '{}') as { root: string; options: string[]; steps: Step[] };
const set = await DeviceSet.init(root, { options, log: () => undefined });
for (const step of steps) {
  switch (step[0]) {
    case 'add':
      await set.addDevice(step[1], step[2], step[3] ? { size: step[3] } : {});
      break;
    case 'delete':
      await set.deleteDevice(step[1], { sync: true });
      break;
    case 'mount':
      mkdirSync(step[2], { recursive: true });
      await set.mountDevice(step[1], step[2]);
      break;
    case 'write': {
      const fd = openSync(step[1], 'w');
      writeSync(fd, step[2]);
      fsyncSync(fd);
      closeSync(fd);
      break;
    }
    case 'unmount':
      await set.unmountDevice(step[1], step[2]);
      break;
    case 'shutdown':
      await set.shutdown();
      break;
    case 'kill':
      process.kill(process.pid, 'SIGKILL');
      break;
  }
}
process.stdout.write('child: done\n');
