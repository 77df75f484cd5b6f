// SPDX-License-Identifier: MIT
// `devmapper pool ...` and `devmapper thin ...`: names, options and help of the commands (read at
// startup); the handlers are in commands/thin.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';
import { POOL_FEATURES } from './constants.js';

const poolImpl = async () => ({ handlers: (await import('../commands/thin.js')).poolHandlers });
const thinImpl = async () => ({ handlers: (await import('../commands/thin.js')).thinHandlers });

const POOL_POS = [{ name: 'POOL' }] as const;

const poolCommands: CommandSpec<Ctx>[] = [
  {
    name: 'create',
    summary: 'Create and activate a thin pool on two block devices.',
    positionals: [{ name: 'NAME' }],
    options: {
      metadata: { type: 'string', value: 'DEV', description: 'Metadata device: a path or MAJ:MIN (never a file; attach a loop first).' },
      data: { type: 'string', value: 'DEV', description: 'Data device: a path or MAJ:MIN.' },
      'block-size': { type: 'string', value: 'N', description: 'Data block size: sectors (default 128 = 64 KiB), or bytes with a unit (64K).' },
      'low-water': { type: 'string', value: 'BLOCKS', description: 'Free data blocks below which the kernel raises an event (default 0).' },
      feature: { type: 'string', multiple: true, value: 'F', description: `Pool feature: ${Object.keys(POOL_FEATURES).join(', ')}.` },
      'zero-metadata': { type: 'boolean', description: 'Zero the first 4 KiB of the metadata device first (a new pool).' },
      'reuse-metadata': { type: 'boolean', description: 'The metadata device already holds this pool (re-activation).' },
      length: { type: 'string', value: 'SIZE', description: 'Pool length (default: the whole data device in whole blocks).' },
      uuid: { type: 'string', value: 'UUID', description: "The pool device's dm uuid." },
    },
    details: 'A new pool needs a blank metadata device: pass --zero-metadata to clear an old one. Nothing prompts.',
    examples: ['devmapper pool create pool --metadata /dev/loop0 --data /dev/loop1 --zero-metadata'],
    run: lazyRun(poolImpl, 'create'),
  },
  {
    name: 'status',
    summary: "A pool's parsed status: transaction id, data and metadata usage, mode.",
    positionals: POOL_POS,
    json: true,
    run: lazyRun(poolImpl, 'status'),
  },
  {
    name: 'message',
    summary: 'Send a raw pool message (create_thin, create_snap, delete, set_transaction_id, ...).',
    positionals: [{ name: 'POOL' }, { name: 'MESSAGE', variadic: true }],
    details: 'The kernel errno decides the exit code: EEXIST (id in use) → 4, ENODATA (no such id) → 3, others → 5.',
    examples: ['devmapper pool message pool set_transaction_id 0 1', 'devmapper pool message pool reserve_metadata_snap'],
    run: lazyRun(poolImpl, 'message'),
  },
  {
    name: 'resize',
    summary: 'Grow the pool to the data device size (or --length), e.g. after growing its loop file.',
    positionals: POOL_POS,
    options: { length: { type: 'string', value: 'SIZE', description: 'New pool length (whole data blocks).' } },
    run: lazyRun(poolImpl, 'resize'),
  },
  {
    name: 'remove',
    summary: 'Remove the pool device (refused while thin devices are active). Metadata stays on disk.',
    positionals: POOL_POS,
    run: lazyRun(poolImpl, 'remove'),
  },
];

const thinCommands: CommandSpec<Ctx>[] = [
  {
    name: 'create',
    summary: 'Create an empty thin device ID in POOL (create_thin).',
    positionals: [{ name: 'POOL' }, { name: 'ID' }],
    run: lazyRun(thinImpl, 'create'),
  },
  {
    name: 'snap',
    summary: 'Snapshot thin ORIGIN_ID as new thin ID (create_snap).',
    positionals: [{ name: 'POOL' }, { name: 'ID' }, { name: 'ORIGIN_ID' }],
    options: { origin: { type: 'string', value: 'NAME', description: "The origin's active dm device: suspended around the snapshot (required if it is active)." } },
    run: lazyRun(thinImpl, 'snap'),
  },
  {
    name: 'delete',
    summary: 'Delete thin ID and free its blocks (irreversible; it must not be active).',
    positionals: [{ name: 'POOL' }, { name: 'ID' }],
    run: lazyRun(thinImpl, 'delete'),
  },
  {
    name: 'activate',
    summary: 'Activate thin ID as dm device NAME of --size.',
    positionals: [{ name: 'POOL' }, { name: 'ID' }, { name: 'NAME' }],
    options: {
      size: { type: 'string', value: 'SIZE', description: 'Virtual size (bytes with unit, or Ns for sectors). Required.' },
      'read-only': { type: 'boolean', description: 'Activate read-only.' },
      'external-origin': { type: 'string', value: 'DEV', description: 'Read-only external origin device.' },
      uuid: { type: 'string', value: 'UUID', description: "The thin device's dm uuid." },
    },
    examples: ['devmapper thin activate pool 1 thin1 --size 1G'],
    run: lazyRun(thinImpl, 'activate'),
  },
  {
    name: 'deactivate',
    summary: "Remove thin dm device NAME of POOL (its data stays in the pool).",
    positionals: [{ name: 'POOL' }, { name: 'NAME' }],
    run: lazyRun(thinImpl, 'deactivate'),
  },
  {
    name: 'status',
    summary: 'Mapped sectors of active thin device NAME of POOL.',
    positionals: [{ name: 'POOL' }, { name: 'NAME' }],
    json: true,
    run: lazyRun(thinImpl, 'status'),
  },
];

export const poolGroup: GroupSpec<Ctx> = {
  name: 'pool',
  summary: 'Thin pools (dm thin-pool targets).',
  commands: poolCommands,
};

export const thinGroup: GroupSpec<Ctx> = {
  name: 'thin',
  summary: 'Thin devices inside a pool: create, snapshot, delete, activate.',
  commands: thinCommands,
};
