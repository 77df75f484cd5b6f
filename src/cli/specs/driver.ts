// SPDX-License-Identifier: MIT
// `devmapper driver ...`: names, options and help of the commands (read at startup); the
// handlers are in commands/driver.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';

const impl = () => import('../commands/driver.js');

const HOME = { type: 'string', value: 'DIR', description: "The driver's home: a DeviceSet root, mount points under DIR/mnt (required)." } as const;
const PARENT = { type: 'string', value: 'PARENT_ID', description: 'The parent layer (default: the base device).' } as const;
const SIZE = { type: 'string', value: 'SIZE', description: "The layer's size, as Docker's --storage-opt size= (never below the parent's)." } as const;
const LABEL = { type: 'string', value: 'LABEL', description: 'SELinux mount label (context="LABEL").' } as const;

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'init',
    summary: "Docker's Init: create (or open) the driver's DeviceSet, pool and base image; saves the options.",
    options: {
      home: HOME,
      opt: { type: 'string', multiple: true, value: 'dm.KEY=VALUE', description: "A DeviceSet option, laid over the saved ones and saved (as 'ds init')." },
    },
    examples: ['devmapper driver init --home /var/lib/dmdriver --opt dm.loopdatasize=1G --opt dm.basesize=64M'],
    run: lazyRun(impl, 'init'),
  },
  {
    name: 'create',
    summary: "Docker's Create: layer ID as a snapshot of --parent (default: the base image).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME, parent: PARENT, size: SIZE },
    run: lazyRun(impl, 'create'),
  },
  {
    name: 'create-rw',
    summary: "Docker's CreateReadWrite: a container's layer ID on --parent.",
    positionals: [{ name: 'ID' }],
    options: { home: HOME, parent: PARENT, size: SIZE, 'mount-label': LABEL },
    run: lazyRun(impl, 'create-rw'),
  },
  {
    name: 'get',
    summary: "Docker's Get: mount layer ID at HOME/mnt/ID (or count a reference) and print HOME/mnt/ID/rootfs.",
    positionals: [{ name: 'ID' }],
    options: { home: HOME, 'mount-label': LABEL },
    details: 'The mount outlives this process and counts as one reference for the next command (the mount table).',
    run: lazyRun(impl, 'get'),
  },
  {
    name: 'put',
    summary: "Docker's Put: drop a reference to layer ID; the last one unmounts it and removes HOME/mnt/ID.",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    run: lazyRun(impl, 'put'),
  },
  {
    name: 'remove',
    summary: "Docker's Remove: delete layer ID (a missing ID is no error; a mounted one is refused).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    run: lazyRun(impl, 'remove'),
  },
  {
    name: 'exists',
    summary: "Docker's Exists: whether layer ID has a record (prints true or false).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    json: true,
    run: lazyRun(impl, 'exists'),
  },
  {
    name: 'status',
    summary: "Docker's Status: the lines 'docker info' prints under Storage Driver: devicemapper.",
    options: { home: HOME },
    json: true,
    run: lazyRun(impl, 'status'),
  },
  {
    name: 'metadata',
    summary: "Docker's GetMetadata: DeviceId, DeviceSize and DeviceName of layer ID ('' = the base).",
    positionals: [{ name: 'ID' }],
    options: { home: HOME },
    json: true,
    run: lazyRun(impl, 'metadata'),
  },
  {
    name: 'cleanup',
    summary: "Docker's Cleanup: unmount every layer under HOME/mnt, deactivate, remove the pool (metadata stays).",
    options: { home: HOME },
    run: lazyRun(impl, 'cleanup'),
  },
];

export const driverGroup: GroupSpec<Ctx> = {
  name: 'driver',
  summary: "The seed's graph driver (Docker's devicemapper Driver): layers created, mounted, counted, removed.",
  details:
    "Each command is its own process over HOME (a DeviceSet root): 'driver init' creates it, the others open it\n" +
    "as it is (Docker's doInit false). A layer 'get' mounts stays mounted after the command; the next command\n" +
    "counts that mount as one reference, so one 'put' releases it. See docs/driver.md.",
  commands,
};
