// SPDX-License-Identifier: MIT
// `devmapper loop ...`: names, options and help of the commands (read at startup); the handlers
// are in commands/loop.ts, loaded with import() only when one of them runs.
import { lazyRun, type CommandSpec, type GroupSpec } from '../args.js';
import type { Ctx } from '../context.js';

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
      size: { type: 'string', value: 'SIZE', description: 'First create FILE sparse, or grow it, to SIZE (e.g. 512M).' },
      offset: { type: 'string', value: 'BYTES', description: 'Start of the device inside FILE (multiple of 512).' },
      'size-limit': { type: 'string', value: 'BYTES', description: 'Device size limit (multiple of 512; default: to the end).' },
      'block-size': { type: 'string', value: 'N', description: 'Logical block size: 512, 1024, 2048 or 4096.' },
      partscan: { type: 'boolean', description: 'Let the kernel scan for partitions.' },
    },
    details:
      'The binding outlives this process: the CLI attaches with autoclear OFF (with autoclear the kernel would\n' +
      "detach the device as soon as this short-lived process closes its fd). Detach it with 'devmapper loop detach'.",
    examples: ['devmapper loop attach --size 256M /var/tmp/data.img', 'devmapper loop attach --read-only --json image.raw'],
    run: lazyRun(impl, 'attach'),
  },
  {
    name: 'detach',
    summary: 'Unbind a loop device (DEVICE: /dev/loopN, loopN or N), or with --all every bound one.',
    positionals: [{ name: 'DEVICE', optional: true }],
    options: { all: { type: 'boolean', description: 'Detach every bound loop device, not only ours (losetup -D). No DEVICE then.' } },
    details:
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
    options: { all: { type: 'boolean', short: 'a', description: 'Include unbound devices.' } },
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
