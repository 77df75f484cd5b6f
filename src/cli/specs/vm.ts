// SPDX-License-Identifier: MIT
// `devmapper vm`: options and help (read at startup); the handler is in commands/vm.ts, loaded
// with import() only when the command runs (it loads the VM code, src/vm, only then too).
import { lazyRun, type CommandSpec } from '../args.js';
import type { Ctx } from '../context.js';
import { VM_PACKAGES } from './constants.js';

const impl = () => import('../commands/vm.js');

export const vmCommand: CommandSpec<Ctx> = {
  name: 'vm',
  summary: 'Run CMD as root inside a QEMU-booted kernel with device-mapper and loop.',
  rest: { name: 'CMD', required: true },
  options: {
    kernel: { type: 'string', value: 'K', description: 'Kernel version, vmlinuz path, or pkg:<debian package> (default: newest installed).' },
    mem: { type: 'string', value: 'MB', description: 'Guest RAM in MiB (default 3072; the guest /tmp is a tmpfs of 75%).' },
    cpus: { type: 'string', value: 'N', description: 'Guest CPUs (default 2).' },
    share: { type: 'string', multiple: true, value: 'DIR', description: 'Also share DIR writable at the same path.' },
    timeout: { type: 'string', value: 'S', description: 'Kill the guest after S seconds (default 1800); exit status 124.' },
    env: { type: 'string', multiple: true, value: 'K=V', description: 'Set an environment variable for CMD.' },
    kvm: { type: 'boolean', description: 'Use KVM instead of TCG emulation.' },
    cached: {
      type: 'string',
      multiple: true,
      value: 'DIR',
      description: "Serve DIR (inside the current dir or a --share) read-only from the guest's cached view: much faster module loading; writes there fail.",
    },
  },
  details:
    'The host root is visible read-only; the current directory (and each --share) is shared writable at the same\n' +
    'path and is the working directory. The exit status is CMD\'s; 124 = timeout, 125 = the guest died.\n' +
    'There is no udev in the guest: use /dev/dm-N, or /dev/mapper/NAME nodes that devmapper creates itself.\n' +
    `Needs the Debian packages ${VM_PACKAGES} (as root: apt-get install ${VM_PACKAGES}). Cache: $DEVMAPPER_VM_CACHE or ~/.cache/devmapper/vm.`,
  examples: ['devmapper vm -- devmapper dm version', "devmapper vm --mem 1024 --timeout 600 -- sh -c 'devmapper dm ls; devmapper loop ls'"],
  run: lazyRun(impl, 'vm'),
};
