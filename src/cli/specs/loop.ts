// SPDX-License-Identifier: MIT
// `devmapper loop ...`: names, options and help of the commands (read at startup); the handlers
// are in commands/loop.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';
import { LOOP_COLUMNS, LOOP_COLUMNS_DEFAULT } from './constants.js';

const impl = () => import('../commands/loop.js');

const commands: CommandSpec<Ctx>[] = [
  {
    name: 'attach',
    summary: 'Bind FILE to a free loop device and print the device path.',
    positionals: [{ name: 'FILE' }],
    json: true,
    options: {
      'read-only': { type: 'boolean', short: 'r', description: 'Bind read-only.' },
      'direct-io': { type: 'boolean', description: 'Direct I/O to the backing file (best effort; --json says if it took).' },
      size: { type: 'string', value: 'SIZE', description: 'First create FILE sparse, or grow it, to SIZE (e.g. 512M = 512MB = 512MiB: binary units).' },
      offset: { type: 'string', value: 'SIZE', description: 'Start of the device inside FILE (multiple of 512; 1M = 1MB = 1048576).' },
      'size-limit': { type: 'string', value: 'SIZE', description: 'Device size limit (multiple of 512; binary units; default: to the end).' },
      'block-size': { type: 'string', value: 'N', description: 'Logical block size: 512, 1024, 2048 or 4096.' },
      partscan: { type: 'boolean', description: 'Let the kernel scan for partitions.' },
    },
    details:
      'Sizes are bytes with an optional BINARY unit, as Docker\'s RAMInBytes: 16M = 16MB = 16MiB = 16 MiB = 16777216\n' +
      'bytes (losetup would read 16MB as 16000000: give plain bytes when that is meant); k, g, t, p likewise, b = bytes.\n' +
      'The binding outlives this process: the CLI attaches with autoclear OFF (with autoclear the kernel would\n' +
      "detach the device as soon as this short-lived process closes its fd). Detach it with 'devmapper loop detach'.",
    examples: ['devmapper loop attach --size 256M /var/tmp/data.img', 'devmapper loop attach --read-only --json image.raw'],
    run: lazyRun(impl, 'attach'),
  },
  {
    name: 'detach',
    summary: 'Unbind a loop device (DEVICE: /dev/loopN, loopN or N), or with --all every bound one.',
    positionals: [{ name: 'DEVICE', optional: true }],
    options: { all: { type: 'boolean', description: 'Detach EVERY bound loop device of the host, not only ours (losetup -D). No DEVICE then.' } },
    details:
      'WARNING: --all detaches every bound loop device on this host, whoever attached it (snap and Docker loops,\n' +
      'other programs\' images), exactly as losetup -D; it asks nothing. Look at \'devmapper loop ls\' first.\n' +
      'A device still open elsewhere is detached by the kernel on its last close (a note says so). With --all, a\n' +
      'device that fails is reported and the others are still detached; the exit code is the first failure\'s.',
    run: lazyRun(impl, 'detach'),
  },
  {
    name: 'set-capacity',
    summary: "Make a loop device re-read its backing file's size after the file grew (losetup -c).",
    positionals: [{ name: 'DEVICE' }],
    details: 'LOOP_SET_CAPACITY: the device takes the new size of its backing file (minus the offset, up to the size limit).',
    examples: ['truncate -s 2G /var/tmp/data.img && devmapper loop set-capacity /dev/loop3'],
    run: lazyRun(impl, 'set-capacity'),
  },
  {
    name: 'ls',
    summary: 'List bound loop devices (--all: unbound ones too).',
    json: true,
    options: {
      all: { type: 'boolean', short: 'a', description: 'Include unbound devices.' },
      output: { type: 'string', short: 'O', value: 'COLUMNS', description: `losetup's columns, comma-separated (losetup --list -O; all: ${LOOP_COLUMNS_DEFAULT}).` },
      noheadings: { type: 'boolean', short: 'n', description: 'No heading line.' },
    },
    details:
      `Columns for -O (losetup's names): ${LOOP_COLUMNS.join(', ')}. With -O, or with --noheadings alone, the\n` +
      'output is losetup --list\'s: one space between columns, numbers right-aligned, sizes in bytes.',
    examples: ['devmapper loop ls -O NAME,BACK-FILE --noheadings', 'devmapper loop ls -O NAME,SIZELIMIT,OFFSET,RO'],
    run: lazyRun(impl, 'ls'),
  },
  {
    name: 'find',
    summary: 'The loop devices bound to FILE (matched by inode, like losetup -j).',
    positionals: [{ name: 'FILE' }],
    json: true,
    run: lazyRun(impl, 'find'),
  },
];

export const loopGroup: GroupSpec<Ctx> = {
  name: 'loop',
  summary: 'Loop devices (like losetup). Bindings made by the CLI persist until detached.',
  commands,
};
