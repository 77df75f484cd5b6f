// SPDX-License-Identifier: MIT
// A DeviceSet root on a FakeKernel, driven through the CLI one "process" at a time.
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, type FsTools } from '../../../src/index.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';
import type { Deps } from '../../../src/cli/context.js';
import { cli, type CliOptions, type CliResult } from './harness.js';

export const MiB = 1024 * 1024;
export const INIT_OPTS = ['--opt', 'dm.loopdatasize=64M', '--opt', 'dm.loopmetadatasize=2M', '--opt', 'dm.basesize=16M', '--opt', 'dm.min_free_space=0%'];
export const SAVED = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];

/** A root on a FakeKernel; every `run` is one CLI process that exits without shutdown. */
export function world(opts: { tools?: (base: FsTools) => FsTools } = {}) {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const tmp = fs.mkdtempSync(join(tmpdir(), 'cli-ds-opts-'));
  const root = join(tmp, 'root');
  // A new DmControl / LoopControl per process: the fds of the last one died with it.
  let wiring = fakeDeviceSetInit(fake, '/fakedev');
  const opened: string[][] = [];
  const deps: Partial<Deps> = {
    dm: () => wiring.dm as never,
    openDeviceSet: async (r, options, log, signal) => {
      opened.push([...options]);
      const tools = opts.tools ? opts.tools(wiring.tools!) : wiring.tools!;
      return DeviceSet.init(r, { ...wiring, tools, options, log, ...(signal ? { signal } : {}) });
    },
  };
  /** The process died: the kernel closed its fds; its lock file names a dead pid. */
  const die = (): void => {
    fake.revive();
    wiring = fakeDeviceSetInit(fake, '/fakedev');
    const lock = join(root, 'devmapper.lock');
    if (fs.existsSync(lock)) fs.writeFileSync(lock, '2147483646 1\n');
  };
  const run = async (argv: string[], extra: Partial<Deps> = {}, cliOpts: CliOptions = {}): Promise<CliResult> => {
    const r = await cli(['ds', ...argv, '--root', root], { ...deps, ...extra }, cliOpts);
    die();
    return r;
  };
  const baseSize = async (): Promise<number> => {
    const l = await run(['list', '--json']);
    assert.is(l.code, 0, l.stderr);
    return (JSON.parse(l.stdout) as { id: string; size: number }[]).find((d) => d.id === '')!.size;
  };
  const file = join(root, 'cli-options.json');
  const saved = (): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));
  const dispose = (): void => {
    fake.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  return { fake, root, file, deps, opened, run, die, baseSize, saved, dispose };
}

