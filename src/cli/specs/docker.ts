// SPDX-License-Identifier: MIT
// `devmapper docker ...`: names, options and help of the commands (read at startup); the
// handlers are in commands/docker.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';

const impl = () => import('../commands/docker.js');

const POOL = {
  type: 'string',
  value: 'NAME',
  description: "The root's external pool, when Docker ran with --storage-opt dm.thinpooldev=NAME (it must be live).",
} as const;

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'ls',
    summary: "List a Docker root's devices (records validated, read-only) and what of them is live.",
    positionals: [{ name: 'ROOT' }],
    options: { pool: POOL },
    json: true,
    details:
      "ROOT is Docker's devicemapper directory (e.g. /var/lib/docker/devicemapper). Every record is checked\n" +
      "against Docker's schema; all problems are listed at once (EDOCKERROOT). Docker's open transaction is\n" +
      'reported and left alone (dockerd rolls it back at its next start). Nothing is written.',
    examples: ['devmapper docker ls /var/lib/docker/devicemapper', 'devmapper docker ls --json /var/lib/docker/devicemapper'],
    run: lazyRun(impl, 'ls'),
  },
  {
    name: 'mount',
    summary: 'Mount layer ID (a device hash, or base) of a Docker root read-only at PATH.',
    positionals: [{ name: 'ROOT' }, { name: 'ID' }, { name: 'PATH' }],
    options: {
      pool: POOL,
      options: { type: 'string', value: 'OPTS', description: 'Extra mount data, e.g. noload (ext4 journal not replayed).' },
    },
    details:
      "The pool keeps Docker's name (<prefix>-pool): a pool left live by dockerd is adopted; otherwise it is\n" +
      "created read_only over loop devices of ROOT/devicemapper/{data,metadata}. The layer keeps Docker's name\n" +
      'and gets a read-only table; xfs is mounted with nouuid. Undo with `devmapper docker unmount`.',
    examples: ['devmapper docker mount /var/lib/docker/devicemapper 3f1c…e2 /mnt/layer'],
    run: lazyRun(impl, 'mount'),
  },
  {
    name: 'unmount',
    summary: "Unmount layer ID from PATH and release what 'docker mount' activated.",
    positionals: [{ name: 'ROOT' }, { name: 'ID' }, { name: 'PATH' }],
    options: { pool: POOL },
    details: 'Devices and pools that dockerd activated are left live; only those carrying our dm uuid are removed.',
    run: lazyRun(impl, 'unmount'),
  },
  {
    name: 'import',
    summary: 'Convert a Docker root in place into a DeviceSet root: same pool, thin ids, data and names.',
    positionals: [{ name: 'ROOT' }],
    options: { pool: { ...POOL, description: "The root's external pool, when Docker ran with --storage-opt dm.thinpooldev=NAME." } },
    json: true,
    details:
      "dockerd must be stopped. Every record is checked first; all problems are listed at once (EDOCKERIMPORT) and\n" +
      "nothing is written then. Our records are written into ROOT/metadata.importing/, then Docker's metadata/ is\n" +
      'renamed to metadata.docker-<time> and ours to metadata/ (a crash leaves the Docker root or a complete import;\n' +
      'run the command again to finish). The set keeps the kernel names docker-MAJ:MIN-INO-*. Docker\'s open\n' +
      'transaction is rolled back by the first open of the set. The options are saved in ROOT/cli-options.json,\n' +
      'so every `ds` command opens the set with --root ROOT. Undo with `devmapper docker restore ROOT`.',
    examples: ['devmapper docker import /var/lib/docker/devicemapper', 'devmapper ds status --root /var/lib/docker/devicemapper'],
    run: lazyRun(impl, 'import'),
  },
  {
    name: 'restore',
    summary: "Undo `docker import`: Docker's metadata/ back byte for byte, ours kept as metadata.devmapper-<time>.",
    positionals: [{ name: 'ROOT' }],
    details: 'Refused while a DeviceSet has the root open (its lock). Finishes a restore or undoes an import that a crash interrupted.',
    run: lazyRun(impl, 'restore'),
  },
];

export const dockerGroup: GroupSpec<Ctx> = {
  name: 'docker',
  summary: "Roots written by Docker's devicemapper driver: list, mount a layer read-only, unmount, import, restore.",
  commands,
};
