// SPDX-License-Identifier: MIT
// `devmapper demo`: the main job end to end: ds init → base image → snapshot → mount → write a
// file → status, each step a separate `devmapper ds ...` process (as a script would run them).
// Runs on this machine when it has device-mapper and root; otherwise inside the bundled VM.
// The command's options and help are specs/demo.ts; this module is loaded when it runs.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Handler } from '../args.js';
import type { Ctx } from '../context.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { handlers as vmHandlers, onPath } from './vm.js';

/** bin/devmapper.js of this installation. */
export function binPath(): string {
  return join(packageRoot(), 'bin', 'devmapper.js');
}

/** Why this machine cannot run the demo directly ([] = it can). */
export function hostProblems(env: Readonly<Record<string, string | undefined>>): string[] {
  const problems: string[] = [];
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) problems.push('not running as root');
  try {
    closeSync(openSync('/dev/mapper/control', 'r+'));
  } catch (e) {
    problems.push(`/dev/mapper/control cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'}): no device-mapper in this kernel`);
  }
  if (!existsSync('/dev/loop-control')) problems.push('/dev/loop-control is missing (no loop driver)');
  for (const tool of ['mkfs.ext4', 'blkid']) if (!onPath(tool, env)) problems.push(`${tool} is missing (apt-get install e2fsprogs util-linux)`);
  return problems;
}

/** The demo's options for its DeviceSet: small, so it runs in seconds. */
export const DEMO_OPTIONS = ['dm.loopdatasize=512M', 'dm.loopmetadatasize=16M', 'dm.basesize=64M', 'dm.fs=ext4'];

function runStep(ctx: Ctx, title: string, args: readonly string[]): Promise<void> {
  ctx.stdout(`\n$ devmapper ${args.join(' ')}\n`);
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [binPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (t: string) => ctx.stdout(t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => ctx.stderr(t));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res() : rej(new DemoStepError(title, code ?? 1))));
  });
}

/** A demo step failed; its own error is already on stderr. Exits with the step's code. */
export class DemoStepError extends Error {
  readonly code = 'EDEMOSTEP';
  readonly exitCode: number;
  constructor(step: string, exitCode: number) {
    super(`demo step '${step}' failed with exit code ${exitCode}`);
    this.exitCode = exitCode;
  }
}

async function runHere(ctx: Ctx, root: string, keep: boolean): Promise<number> {
  const r = ['--root', root];
  const mnt = join(root, 'mnt', 'demo1'); // Docker's layout: <root>/mnt/<id>
  ctx.stdout(`devmapper demo: a DeviceSet at ${root} (loop files ${DEMO_OPTIONS.join(' ')})\n`);
  try {
    await runStep(ctx, 'init', ['ds', 'init', ...r, ...DEMO_OPTIONS.flatMap((o) => ['--opt', o])]);
    await runStep(ctx, 'list', ['ds', 'list', ...r]);
    await runStep(ctx, 'create', ['ds', 'create', ...r, 'demo1']);
    mkdirSync(mnt, { recursive: true });
    await runStep(ctx, 'mount', ['ds', 'mount', ...r, 'demo1', mnt]);
    const file = join(mnt, 'hello.txt');
    writeFileSync(file, `hello from devmapper, ${new Date().toISOString()}\n`);
    ctx.stdout(`\n$ echo ... > ${file}; cat ${file}\n${readFileSync(file, 'utf8')}`);
    await runStep(ctx, 'list', ['ds', 'list', ...r]);
    await runStep(ctx, 'status', ['ds', 'status', ...r]);
    if (keep) {
      ctx.stdout(`\ndevmapper demo: kept. Clean up with:\n  devmapper ds unmount --root ${root} demo1 ${mnt}\n  devmapper ds shutdown --root ${root}\n`);
      return 0;
    }
    await runStep(ctx, 'unmount', ['ds', 'unmount', ...r, 'demo1', mnt]);
    await runStep(ctx, 'remove', ['ds', 'remove', ...r, 'demo1']);
    await runStep(ctx, 'shutdown', ['ds', 'shutdown', ...r]);
    rmSync(root, { recursive: true, force: true });
    ctx.stdout('\ndevmapper demo: OK (everything removed again)\n');
    return 0;
  } catch (e) {
    if (e instanceof DemoStepError) {
      ctx.stderr(`devmapper: demo: ${e.message}; the DeviceSet is left at ${root} for inspection\n`);
      return e.exitCode;
    }
    throw e;
  }
}

export const handlers = {
  async demo(ctx, p) {
  const where = (p.options['where'] as string | undefined) ?? 'auto';
  if (!['auto', 'host', 'vm'].includes(where)) throw new UsageError(`--where: '${where}' is not auto, host or vm`, 'demo');
  const given = p.options['root'] as string | undefined;
  const keep = p.options['keep'] === true;
  const problems = hostProblems(ctx.env);
  if (where === 'host' || (where === 'auto' && problems.length === 0)) {
    if (problems.length > 0)
      throw new EnvironmentError(`this machine cannot run the demo: ${problems.join('; ')}`, "run it in the VM instead: 'devmapper demo --where vm'");
    const root = given !== undefined ? resolve(ctx.cwd, given) : mkdtempSync(join(tmpdir(), 'devmapper-demo-'));
    return runHere(ctx, root, keep);
  }
  if (keep) throw new UsageError('--keep only makes sense on the host (the VM is thrown away)', 'demo');
  ctx.stdout(`devmapper demo: this machine cannot run it directly (${problems.join('; ')}); running it in the VM\n`);
  const guestRoot = given ?? '/tmp/devmapper-demo';
  const args = ['--', process.execPath, binPath(), 'demo', '--where', 'host', '--root', guestRoot];
  const parsed = { options: { timeout: '900', ...(ctx.quiet ? { quiet: true } : {}) }, args: {}, rest: args.slice(1) };
  return (await vmHandlers.vm(ctx, parsed)) ?? 0;
  },
} satisfies Record<string, Handler<Ctx>>;
