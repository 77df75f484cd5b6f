// SPDX-License-Identifier: MIT
// `devmapper ds ...`: names, options and help of the commands (read at startup); the handlers
// are in commands/ds.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';

const impl = () => import('../commands/ds.js');

const ROOT = { type: 'string', value: 'DIR', description: 'The DeviceSet root directory (required).' } as const;
const OPT = {
  type: 'string',
  multiple: true,
  value: 'dm.KEY=VALUE',
  description:
    'A run-only DeviceSet option for this run (not saved): dm.mountopt, dm.blkdiscard, dm.use_deferred_removal, ' +
    "dm.use_deferred_deletion, dm.min_free_space, dm.xfs_nospace_max_retries. Persistent keys are refused: use 'ds init'.",
} as const;
const COMMON = { root: ROOT, opt: OPT } as const;
const INIT_OPT = { ...OPT, description: 'A DeviceSet option; laid over the saved ones and saved (see docs/cli.md).' } as const;

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'init',
    summary: 'Create (or open) a DeviceSet: pool, base image (mkfs); saves the options under the root.',
    options: { root: ROOT, opt: INIT_OPT },
    details:
      'Later commands need only --root: the options are saved in DIR/cli-options.json (before the DeviceSet is\n' +
      'opened). Running init again on an existing root opens it with the saved options and the new ones laid\n' +
      'over them, and saves the result: the only way to change a persistent option (dm.basesize, dm.loop*size,\n' +
      'dm.fs, dm.mkfsarg, dm.blocksize, dm.datadev, dm.metadatadev, dm.thinpooldev). Supported options:\n',
    // The option table comes from the DeviceSet layer (DM_OPTION_KEYS): loaded for this help only.
    lazyDetails: async () => (await impl()).optionTable(),
    examples: ['devmapper ds init --root /var/lib/dmset --opt dm.loopdatasize=512M --opt dm.basesize=64M'],
    run: lazyRun(impl, 'init'),
  },
  {
    name: 'create',
    summary: 'Create device ID as a snapshot of --parent (default: the base image).',
    positionals: [{ name: 'ID' }],
    options: {
      ...COMMON,
      parent: { type: 'string', value: 'PARENT_ID', description: 'Snapshot this device instead of the base image.' },
      size: { type: 'string', value: 'SIZE', description: "Grow the new device's filesystem to SIZE (never below the parent's)." },
    },
    run: lazyRun(impl, 'create'),
  },
  {
    name: 'remove',
    summary: 'Delete device ID (refused while it is mounted; discards its blocks first).',
    positionals: [{ name: 'ID' }],
    options: COMMON,
    run: lazyRun(impl, 'remove'),
  },
  {
    name: 'mount',
    summary: 'Activate device ID and mount it at PATH (a no-op when already mounted there).',
    positionals: [{ name: 'ID' }, { name: 'PATH' }],
    options: { ...COMMON, options: { type: 'string', value: 'O', description: 'Extra mount options, comma-separated.' } },
    details: 'The mount outlives this process. A device is mounted in one place only; mounting it elsewhere is refused (exit 4).',
    run: lazyRun(impl, 'mount'),
  },
  {
    name: 'unmount',
    summary: 'Unmount device ID from PATH and deactivate it.',
    positionals: [{ name: 'ID' }, { name: 'PATH' }],
    options: COMMON,
    run: lazyRun(impl, 'unmount'),
  },
  {
    name: 'list',
    summary: 'List the devices (the base image has id "").',
    options: COMMON,
    json: true,
    run: lazyRun(impl, 'list'),
  },
  {
    name: 'status',
    summary: 'Pool and space usage (Docker\'s "docker info" storage section).',
    options: COMMON,
    json: true,
    run: lazyRun(impl, 'status'),
  },
  {
    name: 'resize',
    summary: 'Grow the loopback data file (and the pool) to SIZE.',
    positionals: [{ name: 'SIZE' }],
    options: COMMON,
    run: lazyRun(impl, 'resize'),
  },
  {
    name: 'shutdown',
    summary: "Unmount the set's devices, deactivate them and remove the pool (metadata stays).",
    options: COMMON,
    run: lazyRun(impl, 'shutdown'),
  },
];

export const dsGroup: GroupSpec<Ctx> = {
  name: 'ds',
  summary: 'A Docker-style DeviceSet: thin pool, base image, snapshots, mounts.',
  details:
    'Each command is its own process: it re-opens the DeviceSet at --root, does one thing and exits,\n' +
    "leaving the pool, active devices and mounts in the kernel. 'ds shutdown' tears them down.",
  commands,
};
