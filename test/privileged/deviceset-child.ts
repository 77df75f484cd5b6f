// SPDX-License-Identifier: MIT
// Child process for the DeviceSet crash tests: runs a list of steps against one root, then exits
// 0. DEVMAPPER_CRASH_AT (read here by devmapper/testing's crashHookFromEnv and passed to DeviceSet
// as crashPoint; a DeviceSet never reads it) makes it SIGKILL itself at a crash point; the step
// 'kill' does so explicitly. Usage: node deviceset-child.js '<json {root, options, steps}>'
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { DeviceSet } from '../../src/deviceset/index.js';
// crash-env.js directly, not the testing index (which loads the whole FakeKernel): ~18 fewer
// modules for each of the dozens of children, each ~40 ms to load in the TCG guest.
import { crashHookFromEnv } from '../../src/testing/crash-env.js';

type Step =
  | ['add', string, string, string?]
  | ['delete', string]
  | ['mount', string, string]
  | ['write', string, string]
  | ['unmount', string, string]
  | ['shutdown']
  | ['kill'];

const { root, options, steps } = JSON.parse(process.argv[2] ?? '{}') as { root: string; options: string[]; steps: Step[] };
const t0 = Date.now();
const debug = process.env['DEVMAPPER_DS_DEBUG'] ? (m: string) => process.stderr.write(`child +${Date.now() - t0}ms ${m}\n`) : () => undefined;
const envHook = crashHookFromEnv();
const set = await DeviceSet.init(root, { options, log: (l, m) => debug(`${l}: ${m}`), crashPoint: (p) => (debug(p), envHook(p)) });
debug('init done');
for (const step of steps) {
  debug(`step ${step.join(' ')}`);
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
