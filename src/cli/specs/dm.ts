// SPDX-License-Identifier: MIT
// `devmapper dm ...`: names, options and help of the commands (read at startup); the handlers
// are in commands/dm.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';

const impl = () => import('../commands/dm.js');

const DEVICE_POS = [{ name: 'DEVICE', optional: true }] as const;
const REF_OPTIONS = {
  uuid: { type: 'string', value: 'UUID', description: 'Name the device by uuid instead of DEVICE.' },
  dev: { type: 'string', value: 'MAJ:MIN', description: 'Name the device by number instead of DEVICE.' },
} as const;

const TABLE_OPTIONS = {
  table: { type: 'string', multiple: true, value: '"START LEN TYPE PARAMS"', description: 'A table line (or several, newline-separated).' },
  'table-file': { type: 'string', value: 'FILE', description: "Read table lines from FILE ('-' = stdin)." },
  'read-only': { type: 'boolean', description: 'Load the table read-only.' },
} as const;

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'version',
    summary: "Library and kernel device-mapper driver versions.",
    json: true,
    run: lazyRun(impl, 'version'),
  },
  {
    name: 'ls',
    summary: 'List device-mapper devices.',
    json: true,
    options: {
      'name-prefix': { type: 'string', value: 'P', description: 'Only names starting with P.' },
      'uuid-prefix': { type: 'string', value: 'P', description: 'Only uuids starting with P.' },
    },
    run: lazyRun(impl, 'ls'),
  },
  {
    name: 'info',
    summary: "A device's state (DM_DEV_STATUS).",
    positionals: DEVICE_POS,
    options: { ...REF_OPTIONS, inactive: { type: 'boolean', description: 'Report on the inactive table.' } },
    json: true,
    run: lazyRun(impl, 'info'),
  },
  {
    name: 'table',
    summary: 'The live (or --inactive) table, as the kernel normalised it.',
    positionals: DEVICE_POS,
    options: { ...REF_OPTIONS, inactive: { type: 'boolean', description: 'Show the loaded, not yet resumed table.' } },
    json: true,
    run: lazyRun(impl, 'table'),
  },
  {
    name: 'status',
    summary: "Each target's status line.",
    positionals: DEVICE_POS,
    options: {
      ...REF_OPTIONS,
      inactive: { type: 'boolean', description: 'Status of the inactive table.' },
      noflush: { type: 'boolean', description: 'Do not commit (thin) metadata before answering.' },
    },
    json: true,
    run: lazyRun(impl, 'status'),
  },
  {
    name: 'create',
    summary: 'Create a device and, with a table, load and resume it.',
    positionals: [{ name: 'NAME' }],
    options: {
      ...TABLE_OPTIONS,
      uuid: { type: 'string', value: 'UUID', description: "The new device's uuid." },
      notable: { type: 'boolean', description: 'Create the device with no table (suspended, no node).' },
    },
    details:
      'Without --notable a table is required. If the load or the resume fails, the half-made device is removed again.\n' +
      'Without udev (the bundled VM) use /dev/dm-MINOR, or /dev/mapper/NAME, which devmapper creates itself.',
    examples: ['devmapper dm create zero1 --table "0 2048 zero"', 'devmapper dm create lin --table "0 2048 linear 7:0 0" --uuid LIN-1'],
    run: lazyRun(impl, 'create'),
  },
  {
    name: 'load',
    summary: "Load a table into a device's inactive slot (takes effect on resume).",
    positionals: DEVICE_POS,
    options: { ...REF_OPTIONS, ...TABLE_OPTIONS },
    run: lazyRun(impl, 'load'),
  },
  {
    name: 'suspend',
    summary: 'Suspend I/O to a device.',
    positionals: DEVICE_POS,
    options: {
      ...REF_OPTIONS,
      noflush: { type: 'boolean', description: 'Do not wait for in-flight I/O.' },
      nolockfs: { type: 'boolean', description: 'Do not freeze a mounted filesystem.' },
    },
    run: lazyRun(impl, 'suspend'),
  },
  {
    name: 'resume',
    summary: 'Resume a device, swapping in a loaded inactive table.',
    positionals: DEVICE_POS,
    options: REF_OPTIONS,
    run: lazyRun(impl, 'resume'),
  },
  {
    name: 'remove',
    summary: 'Remove a device (retried briefly while busy).',
    positionals: DEVICE_POS,
    options: { ...REF_OPTIONS, deferred: { type: 'boolean', description: 'If busy, remove on last close instead of failing.' } },
    run: lazyRun(impl, 'remove'),
  },
  {
    name: 'rename',
    summary: 'Rename a device, or set its uuid (--set-uuid) if it has none.',
    positionals: [{ name: 'DEVICE' }, { name: 'NEW_NAME', optional: true }],
    options: { 'set-uuid': { type: 'string', value: 'UUID', description: 'Set the uuid instead of renaming.' } },
    run: lazyRun(impl, 'rename'),
  },
  {
    name: 'message',
    summary: 'Send a message to the target at SECTOR; prints its reply, if any.',
    positionals: [{ name: 'DEVICE' }, { name: 'SECTOR' }, { name: 'MESSAGE', variadic: true }],
    json: true,
    examples: ['devmapper dm message pool 0 create_thin 1'],
    run: lazyRun(impl, 'message'),
  },
  {
    name: 'targets',
    summary: 'Target types the kernel has loaded, with versions.',
    json: true,
    run: lazyRun(impl, 'targets'),
  },
  {
    name: 'wait',
    summary: "Wait until a device's event counter differs from EVENT_NR (default: its current value).",
    positionals: [{ name: 'DEVICE' }, { name: 'EVENT_NR', optional: true }],
    json: true,
    details: 'The wait happens in the kernel and cannot be interrupted except by killing the process.',
    run: lazyRun(impl, 'wait'),
  },
];

export const dmGroup: GroupSpec<Ctx> = {
  name: 'dm',
  summary: 'Device-mapper devices at ioctl level (like dmsetup).',
  commands,
};
