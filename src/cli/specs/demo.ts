// SPDX-License-Identifier: MIT
// `devmapper demo`: options and help (read at startup); the handler is in commands/demo.ts,
// loaded with import() only when the command runs.
import { lazyRun, type CommandSpec } from '../args.js';
import type { Ctx } from '../context.js';
import { VM_PACKAGES } from './constants.js';

const impl = () => import('../commands/demo.js');

export const demoCommand: CommandSpec<Ctx> = {
  name: 'demo',
  summary: 'Provision a DeviceSet end to end (init, base image, snapshot, mount, write, status).',
  options: {
    where: { type: 'string', value: 'W', description: "'auto' (default): here if this machine has device-mapper and root, else in the VM; 'host'; 'vm'." },
    root: { type: 'string', value: 'DIR', description: 'DeviceSet root (default: a new temp dir; in the VM under its /tmp).' },
    keep: { type: 'boolean', description: 'Leave the device mounted and the pool up (host only).' },
  },
  details:
    "Every step is a separate 'devmapper ds ...' process, so the demo also shows the DeviceSet surviving restarts.\n" +
    `The VM needs the Debian packages ${VM_PACKAGES} (as root: apt-get install ${VM_PACKAGES}); the host needs root, device-mapper, loop and e2fsprogs.`,
  examples: ['devmapper demo', 'devmapper demo --where vm', 'sudo devmapper demo --where host --keep --root /var/tmp/dmdemo'],
  run: lazyRun(impl, 'demo'),
};
