// SPDX-License-Identifier: MIT
// `devmapper dm ...`: names, options and help of the commands (read at startup); the handlers
// are in commands/dm.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';
import { INFO_FIELDS, INFO_FIELDS_DEFAULT } from './constants.js';

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
      target: { type: 'string', value: 'TYPE', description: 'Only devices whose live table has a TYPE target (dmsetup ls --target).' },
      tree: { type: 'boolean', description: 'Show the devices as a tree of what each one maps onto (dmsetup ls --tree; no --json: see dm deps --json).' },
    },
    run: lazyRun(impl, 'ls'),
  },
  {
    name: 'info',
    summary: "A device's state (DM_DEV_STATUS).",
    positionals: DEVICE_POS,
    options: {
      ...REF_OPTIONS,
      inactive: { type: 'boolean', description: 'Report on the inactive table.' },
      columns: { type: 'boolean', short: 'c', description: 'One line per device in columns (dmsetup info -c); without DEVICE: every device.' },
      output: { type: 'string', short: 'o', value: 'FIELDS', description: `With -c: comma-separated fields (default ${INFO_FIELDS_DEFAULT}).` },
      noheadings: { type: 'boolean', description: "With -c: no heading line, and unaligned ':'-separated values (as dmsetup)." },
      separator: { type: 'string', value: 'S', description: 'With -c: join the fields with S, unaligned (default: aligned columns).' },
    },
    json: true,
    details:
      `Fields for -o (dmsetup's names): ${INFO_FIELDS.join(', ')} (maj, min: major, minor).\n` +
      "attr is dmsetup's Stat: L (live table) I (inactive table) s (suspended) r/w (read-only or writable), '-' when not.\n" +
      '-c is a text view: --json (every field, one device) does not go with it.',
    examples: ['devmapper dm info -c', 'devmapper dm info -c -o name,attr,open --noheadings --separator :'],
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
    options: {
      ...REF_OPTIONS,
      deferred: { type: 'boolean', description: 'If busy, remove on last close instead of failing.' },
      force: { type: 'boolean', short: 'f', description: 'First replace the table with an error target, so I/O still queued or to come fails (dmsetup remove --force).' },
    },
    details:
      '--force loads an error table of the same size and resumes it, then removes; a device still open stays\n' +
      '(failing all I/O) unless --deferred is given too, which removes it on its last close.',
    run: lazyRun(impl, 'remove'),
  },
  {
    name: 'remove_all',
    summary: 'Remove EVERY device-mapper device on the host that is not open (needs --yes).',
    options: {
      yes: { type: 'boolean', description: 'Really do it. Without --yes the command only lists what it would remove, and fails.' },
      deferred: { type: 'boolean', description: 'Devices that are open are removed on their last close (DM_DEFERRED_REMOVE).' },
    },
    json: true,
    details:
      'Like dmsetup remove_all (DM_REMOVE_ALL), this removes every device of the host, not only those devmapper\n' +
      'made: LVM volumes, dm-crypt mappings, Docker pools. Without --yes it prints the devices it would remove and\n' +
      'fails (EUSAGE, exit 2), changing nothing. Open devices stay (with --deferred they go on last close).\n' +
      "dmsetup's remove_all --force (error tables for open devices) is not offered. /dev/mapper nodes of removed\n" +
      "devices are not touched: 'devmapper dm mknodes' afterwards does not remove them either.",
    examples: ['devmapper dm remove_all', 'devmapper dm remove_all --yes'],
    run: lazyRun(impl, 'remove_all'),
  },
  {
    name: 'clear',
    summary: "Drop a device's inactive (loaded, not resumed) table (DM_TABLE_CLEAR).",
    positionals: DEVICE_POS,
    options: REF_OPTIONS,
    run: lazyRun(impl, 'clear'),
  },
  {
    name: 'deps',
    summary: 'The devices a device maps onto (DM_TABLE_DEPS).',
    positionals: DEVICE_POS,
    options: { ...REF_OPTIONS, inactive: { type: 'boolean', description: 'Of the inactive table.' } },
    json: true,
    run: lazyRun(impl, 'deps'),
  },
  {
    name: 'mknodes',
    summary: 'Create or repair /dev/mapper/NAME for NAME, or for every device.',
    positionals: [{ name: 'NAME', optional: true }],
    details:
      'A correct node (or udev\'s symlink to one) is kept; a node for other numbers or a dangling link is replaced.\n' +
      'Unlike dmsetup mknodes, entries in /dev/mapper that no device names are left alone (never removed).',
    run: lazyRun(impl, 'mknodes'),
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
