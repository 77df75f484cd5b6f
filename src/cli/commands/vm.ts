// SPDX-License-Identifier: MIT
// `devmapper vm -- CMD...`: run a command as root in a QEMU-booted kernel with device-mapper and
// loop (src/vm runInVm). The current directory is shared writable and is the command's cwd.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec } from '../args.js';
import type { Ctx } from '../context.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { parseUintArg } from '../output.js';

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

/** The Debian packages the VM needs, for messages. */
export const VM_PACKAGES = 'qemu-system-x86 linux-image-amd64 busybox-static kmod';

/**
 * What the guest reads through the cached read-only view: each --cached DIR, plus this package's
 * own node_modules and dist when they lie inside a shared directory. Loading devmapper over the
 * uncached writable share costs ~35 s per node process under TCG; through the cache, ~4 s.
 */
function cachedDirs(cwd: string, shares: readonly string[], extra: readonly string[]): string[] {
  const pkgRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
  const roots = [cwd, ...shares].map((s) => resolve(cwd, s));
  const own = ['node_modules', 'dist']
    .map((d) => join(pkgRoot, d))
    .filter((d) => roots.some((r) => d.startsWith(`${r}/`)));
  return [...new Set([...extra.map((d) => resolve(cwd, d)), ...own])];
}

export const vmCommand: CommandSpec<Ctx> = {
  name: 'vm',
  summary: 'Run CMD as root inside a QEMU-booted kernel with device-mapper and loop.',
  rest: { name: 'CMD', required: true },
  options: {
    kernel: { type: 'string', value: 'K', description: 'Kernel version, vmlinuz path, or pkg:<debian package> (default: newest installed).' },
    mem: { type: 'string', value: 'MB', description: 'Guest RAM in MiB (default 3072; the guest /tmp is a tmpfs of 75%).' },
    cpus: { type: 'string', value: 'N', description: 'Guest CPUs (default 2).' },
    share: { type: 'string', multiple: true, value: 'DIR', description: 'Also share DIR writable at the same path.' },
    timeout: { type: 'string', value: 'S', description: 'Kill the guest after S seconds (default 1800); exit status 124.' },
    env: { type: 'string', multiple: true, value: 'K=V', description: 'Set an environment variable for CMD.' },
    kvm: { type: 'boolean', description: 'Use KVM instead of TCG emulation.' },
    cached: {
      type: 'string',
      multiple: true,
      value: 'DIR',
      description: "Serve DIR (inside the current dir or a --share) read-only from the guest's cached view: much faster module loading; writes there fail.",
    },
  },
  details:
    'The host root is visible read-only; the current directory (and each --share) is shared writable at the same\n' +
    'path and is the working directory. The exit status is CMD\'s; 124 = timeout, 125 = the guest died.\n' +
    'There is no udev in the guest: use /dev/dm-N, or /dev/mapper/NAME nodes that devmapper creates itself.\n' +
    `Needs: ${VM_PACKAGES} (scripts/setup.sh installs them). Cache: $DEVMAPPER_VM_CACHE or ~/.cache/devmapper/vm.`,
  examples: ['devmapper vm -- devmapper dm version', 'devmapper vm --mem 1024 --timeout 600 -- npm run test:privileged'],
  async run(ctx, p) {
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
      throw new EnvironmentError('qemu-system-x86_64 is not installed', `as root: apt-get install ${VM_PACKAGES} (or run scripts/setup.sh)`);
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
      throw new EnvironmentError(`the VM could not start: ${msg}`, `the VM needs ${VM_PACKAGES}; as root run scripts/setup.sh, or pick a kernel with --kernel`, { cause: e });
    }
    if (result.timedOut && !ctx.quiet) ctx.stderr(`devmapper: vm: timed out after ${timeoutS} s\n`);
    return result.exitCode;
  },
};
