// SPDX-License-Identifier: MIT
// `devmapper vm -- CMD...`: run a command as root in a QEMU-booted kernel with device-mapper and
// loop (src/vm runInVm). The current directory is shared writable and is the command's cwd.
// The command's options and help are specs/vm.ts; this module is loaded when it runs.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import type { Handler } from '../args.js';
import type { Ctx } from '../context.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { parseUintArg } from '../output.js';
import { VM_PACKAGES } from '../specs/constants.js';

/** Where `devmapper vm` caches initramfs archives and fetched kernels. */
export function vmCacheDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env['DEVMAPPER_VM_CACHE']) return env['DEVMAPPER_VM_CACHE'];
  const base = env['XDG_CACHE_HOME'] || join(env['HOME'] || homedir(), '.cache');
  return join(base, 'devmapper', 'vm');
}

/** True when `bin` is an executable on PATH (or an existing path). */
export function onPath(bin: string, env: Readonly<Record<string, string | undefined>>): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (env['PATH'] ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, bin)));
}

/**
 * What the guest reads through the cached read-only view: each --cached DIR, plus this package's
 * own node_modules and dist when they lie inside a shared directory. Loading devmapper over the
 * uncached writable share costs ~35 s per node process under TCG; through the cache, ~4 s.
 */
function cachedDirs(cwd: string, shares: readonly string[], extra: readonly string[]): string[] {
  const pkgRoot = packageRoot();
  const roots = [cwd, ...shares].map((s) => resolve(cwd, s));
  const own = ['node_modules', 'dist']
    .map((d) => join(pkgRoot, d))
    .filter((d) => roots.some((r) => d.startsWith(`${r}/`)));
  return [...new Set([...extra.map((d) => resolve(cwd, d)), ...own])];
}

export const handlers = {
  async vm(ctx, p) {
  const cmd = 'vm';
  const mem = p.options['mem'] as string | undefined;
  const cpus = p.options['cpus'] as string | undefined;
  const timeout = p.options['timeout'] as string | undefined;
  const kernel = p.options['kernel'] as string | undefined;
  const env: Record<string, string> = {};
  for (const kv of (p.options['env'] as string[] | undefined) ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(kv);
    if (!m) throw new UsageError(`--env: '${kv}' is not NAME=VALUE`, cmd);
    env[m[1]!] = m[2]!;
  }
  const memMb = mem === undefined ? undefined : parseUintArg(mem, '--mem', cmd, 1 << 20);
  if (memMb !== undefined && memMb < 256) throw new UsageError('--mem: at least 256 MiB', cmd);
  const nCpus = cpus === undefined ? undefined : parseUintArg(cpus, '--cpus', cmd, 64);
  if (nCpus === 0) throw new UsageError('--cpus: at least 1', cmd);
  const timeoutS = timeout === undefined ? 1800 : parseUintArg(timeout, '--timeout', cmd, 7 * 24 * 3600);
  if (timeoutS === 0) throw new UsageError('--timeout: at least 1 second', cmd);
  if (!onPath('qemu-system-x86_64', ctx.env))
    throw new EnvironmentError('qemu-system-x86_64 is not installed', `as root: apt-get install ${VM_PACKAGES}`);
  ctx.progress('booting the VM (about 5 s with TCG)');
  let result;
  try {
    result = await ctx.deps.runInVm({
      cwd: ctx.cwd,
      command: [...p.rest],
      shares: (p.options['share'] as string[] | undefined) ?? [],
      readOnlyCached: cachedDirs(ctx.cwd, (p.options['share'] as string[] | undefined) ?? [], (p.options['cached'] as string[] | undefined) ?? []),
      env,
      timeoutMs: timeoutS * 1000,
      cacheDir: vmCacheDir(ctx.env),
      onOutput: (t) => ctx.stdout(t),
      ...(kernel !== undefined ? { kernel } : {}),
      ...(memMb !== undefined ? { memMb } : {}),
      ...(nCpus !== undefined ? { cpus: nCpus } : {}),
      ...(p.options['kvm'] ? { accel: 'kvm' as const } : {}),
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new EnvironmentError(`the VM could not start: ${msg}`, `the VM needs ${VM_PACKAGES} (as root: apt-get install ${VM_PACKAGES}), or pick a kernel with --kernel`, { cause: e });
  }
  if (result.timedOut && !ctx.quiet) ctx.stderr(`devmapper: vm: timed out after ${timeoutS} s\n`);
  return result.exitCode;
  },
} satisfies Record<string, Handler<Ctx>>;
