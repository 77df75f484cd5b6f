// SPDX-License-Identifier: MIT
// Boots a throwaway QEMU guest that sees the host's root read-only and the checkout (plus any
// extra shares) writable at the same absolute paths, runs one command as root and returns its
// exit status. The guest has real device-mapper and loop drivers and, unless `udev` is asked
// for, no udev (then nodes under /dev are only the kernel's devtmpfs ones and whatever we make).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { buildInitramfs } from './initramfs.js';
import { fetchKernelPackage, selectKernel, type KernelSpec } from './kernel.js';

/** PATH inside the guest (the directory of the host's node binary is prepended). */
export const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Modules the guest loads before running the command. */
export const DEFAULT_GUEST_MODULES: readonly string[] = ['dm-mod', 'dm-thin-pool', 'loop'];
/** Exit code reported when the run hit its timeout (as timeout(1) does). */
export const TIMEOUT_EXIT_CODE = 124;
/** Exit code reported when the guest died without reporting a status. */
export const NO_STATUS_EXIT_CODE = 125;

export interface RunInVmOptions {
  /**
   * Kernel: a KernelSpec, a version, a vmlinuz path, or "pkg:<debian package>" (fetched without
   * root into the cache). Default: $DEVMAPPER_VM_KERNEL, else the newest installed kernel.
   */
  readonly kernel?: KernelSpec | string;
  /** Guest RAM. Default 3072 MiB. */
  readonly memMb?: number;
  /** Guest CPUs. Default 2. */
  readonly cpus?: number;
  /** The checkout: shared writable at the same path, and the command's working directory. */
  readonly cwd: string;
  /** Extra host directories shared writable at the same absolute paths. */
  readonly shares?: readonly string[];
  /**
   * Directories inside `cwd` or a share (relative to `cwd`, or absolute; e.g. 'node_modules',
   * 'dist') that the guest only reads: they are
   * served from the read-only host-root view, which the guest mounts with cache=loose, instead of
   * the uncached writable share. Module loading is thousands of small lookups; over the uncached
   * share importing @sinclair/typebox alone took 38 s in the TCG guest, against ~4 s for the whole
   * library through the cached view. Writes under these paths fail with EROFS. Default: none.
   */
  readonly readOnlyCached?: readonly string[];
  readonly command: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Receives guest console output (marker lines removed). Default: written to process.stdout. */
  readonly onOutput?: (text: string) => void;
  /** Cache for initramfs archives and fetched kernels. Default <cwd>/.cache/vm. */
  readonly cacheDir?: string;
  /** Modules to modprobe in the guest. Default dm-mod, dm-thin-pool, loop. */
  readonly guestModules?: readonly string[];
  /** QEMU binary. Default qemu-system-x86_64. */
  readonly qemu?: string;
  /** Accelerator: 'tcg' (default, works everywhere) or 'kvm'. Default $DEVMAPPER_VM_ACCEL or tcg. */
  readonly accel?: 'tcg' | 'kvm';
  /**
   * Start the host root's systemd-udevd in the guest before the command (`/run/udev` on the
   * guest's tmpfs), replay coldplug events (`udevadm trigger --action=add`) and wait for them
   * (`udevadm settle`). The daemon keeps running during the command. Default: true when
   * $DEVMAPPER_VM_UDEV is 1. The command then sees DEVMAPPER_VM_UDEV=1 and
   * SYSTEMD_IGNORE_CHROOT=1 (the guest chroots into the host root, and udevadm's trigger, settle
   * and control verbs do nothing in a chroot unless told to: systemd src/udev/udevadm-*.c,
   * running_in_chroot()).
   */
  readonly udev?: boolean;
}

export interface RunInVmResult {
  /** The guest command's exit status; 124 on timeout; 125 if the guest never reported one. */
  readonly exitCode: number;
  /** Milliseconds from spawning QEMU to the guest starting the command (-1 if it never did). */
  readonly bootMs: number;
  readonly totalMs: number;
  readonly timedOut: boolean;
  readonly kernel: KernelSpec;
}

/**
 * Absolute paths of the read-only cached directories that exist on the host. Each entry is
 * relative to `cwd` or absolute, must lie inside `cwd` or one of `shares` (only those are
 * covered by a writable share worth bypassing), and must have no whitespace (the guest script
 * splits on spaces) and no '.' or '..' segments.
 */
export function readOnlyCachedPaths(cwd: string, dirs: readonly string[], shares: readonly string[] = [cwd]): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    const abs = d.startsWith('/') ? d : join(cwd, d);
    const inside = [cwd, ...shares].some((s) => abs.startsWith(`${s.replace(/\/$/, '')}/`));
    if (d === '' || /\s/.test(d) || d.split('/').some((p) => p === '..' || p === '.') || !inside)
      throw new Error(`runInVm: readOnlyCached entry ${JSON.stringify(d)} must be a plain path inside cwd or a share`);
    if (existsSync(abs)) out.push(abs);
  }
  return out;
}

/** Quotes a string for POSIX sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The script the guest runs (as root, under chroot into the host root): env, cd, exec. */
export function guestCommandScript(cwd: string, command: readonly string[], env: Readonly<Record<string, string>>, path: string): string {
  if (command.length === 0) throw new Error('runInVm: empty command');
  const lines = ['#!/bin/sh', `export PATH=${shQuote(path)}`, 'export HOME=/tmp'];
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw new Error(`runInVm: bad environment variable name ${JSON.stringify(k)}`);
    lines.push(`export ${k}=${shQuote(v)}`);
  }
  lines.push(`cd ${shQuote(cwd)} || exit 125`, `exec ${command.map(shQuote).join(' ')}`, '');
  return lines.join('\n');
}

function resolveKernel(k: RunInVmOptions['kernel'], cacheDir: string): KernelSpec {
  const sel = k ?? process.env['DEVMAPPER_VM_KERNEL'] ?? undefined;
  if (typeof sel === 'object') return sel;
  if (sel && sel.startsWith('pkg:')) return fetchKernelPackage(sel.slice(4), join(cacheDir, 'kernels'));
  return selectKernel(sel || undefined);
}

/**
 * Boots the guest, runs `command` as root in `cwd`, streams console output, and resolves with the
 * command's exit status. The per-run directory (command script, config, exit status) is a
 * separate writable 9p share, so nothing run-specific goes through kernel-command-line quoting.
 */
export async function runInVm(opts: RunInVmOptions): Promise<RunInVmResult> {
  const cwd = realpathSync(resolve(opts.cwd));
  const cacheDir = resolve(opts.cacheDir ?? join(cwd, '.cache/vm'));
  mkdirSync(cacheDir, { recursive: true });
  const kernel = resolveKernel(opts.kernel, cacheDir);
  const initramfs = buildInitramfs({ kernel, cacheDir });
  const memMb = opts.memMb ?? 3072;
  const nonce = randomBytes(8).toString('hex');
  const runDir = join(cacheDir, 'runs', `${process.pid}-${nonce}`);
  mkdirSync(runDir, { recursive: true });

  const shares = [cwd, ...(opts.shares ?? []).map((s) => realpathSync(resolve(s)))];
  for (const s of shares) {
    if (s === '/') throw new Error('runInVm: cannot share / writable');
  }
  const hostModulesRoot = realpathSync('/lib/modules');
  const kmodDir = realpathSync(kernel.modulesDir);
  const needBind = kmodDir !== join(hostModulesRoot, kernel.version);
  const guestPath = `${dirname(process.execPath)}:${GUEST_PATH}`;
  const udev = opts.udev ?? process.env['DEVMAPPER_VM_UDEV'] === '1';
  const env: Record<string, string> = { ...(opts.env ?? {}) };
  if (udev) Object.assign(env, { DEVMAPPER_VM_UDEV: '1', SYSTEMD_IGNORE_CHROOT: '1' });
  const cfg = [
    `DMVM_NONCE=${nonce}`,
    `DMVM_NSHARES=${shares.length}`,
    ...shares.flatMap((s, i) => [`DMVM_SHARE_TAG_${i}=share${i}`, `DMVM_SHARE_DIR_${i}=${shQuote(s)}`]),
    `DMVM_RO_CACHED=${shQuote(readOnlyCachedPaths(cwd, opts.readOnlyCached ?? [], shares).join(' '))}`,
    `DMVM_TMP_SIZE=75%`,
    `DMVM_KVER=${shQuote(kernel.version)}`,
    `DMVM_MODULES_ROOT=${shQuote(hostModulesRoot)}`,
    `DMVM_MODULES_SRC=${needBind ? shQuote(kmodDir) : "''"}`,
    `DMVM_GUEST_MODULES=${shQuote((opts.guestModules ?? DEFAULT_GUEST_MODULES).join(' '))}`,
    `DMVM_UDEV=${udev ? '1' : '0'}`,
    '',
  ];
  writeFileSync(join(runDir, 'config.sh'), cfg.join('\n'));
  writeFileSync(join(runDir, 'cmd.sh'), guestCommandScript(cwd, opts.command, env, guestPath), { mode: 0o755 });

  const accel = opts.accel ?? (process.env['DEVMAPPER_VM_ACCEL'] === 'kvm' ? 'kvm' : 'tcg');
  const ninep = (tag: string, path: string, ro: boolean): string[] => [
    '-virtfs',
    `local,path=${path.replace(/,/g, ',,')},mount_tag=${tag},security_model=none,multidevs=remap${ro ? ',readonly=on' : ''}`,
  ];
  const args = [
    '-accel', accel === 'kvm' ? 'kvm' : 'tcg,thread=multi',
    '-cpu', accel === 'kvm' ? 'host' : 'max',
    '-smp', String(opts.cpus ?? 2),
    '-m', String(memMb),
    '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-nodefaults',
    '-kernel', kernel.vmlinuz,
    '-initrd', initramfs.path,
    '-append', 'console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off',
    ...ninep('hostroot', '/', true),
    ...ninep('dmvmrun', runDir, false),
    ...shares.flatMap((s, i) => ninep(`share${i}`, s, false)),
  ];

  const out = opts.onOutput ?? ((t: string) => void process.stdout.write(t));
  const start = Date.now();
  let bootMs = -1;
  let markerExit: number | undefined;
  let timedOut = false;
  const qemu = spawn(opts.qemu ?? 'qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const markerRe = new RegExp(`^@@devmapper-vm@@ ${nonce} (START|EXIT (\\d+))\\s*$`);
  let pending = '';
  const onLine = (line: string): void => {
    const m = markerRe.exec(line);
    if (!m) return out(line + '\n');
    if (m[1] === 'START') bootMs = Date.now() - start;
    else markerExit = Number(m[2]);
  };
  qemu.stdout.setEncoding('utf8');
  qemu.stdout.on('data', (chunk: string) => {
    pending += chunk.replace(/\r/g, '');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  qemu.stderr.setEncoding('utf8');
  qemu.stderr.on('data', (chunk: string) => out(chunk));
  const timer = setTimeout(() => {
    timedOut = true;
    out(`\n[devmapper vm] timeout: the guest ran longer than ${opts.timeoutMs} ms; killing QEMU\n`);
    qemu.kill('SIGKILL');
  }, opts.timeoutMs);
  const qemuStatus = await new Promise<number | null>((res, rej) => {
    qemu.on('error', (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot start QEMU (${opts.qemu ?? 'qemu-system-x86_64'}): ${e.message}`, { cause: e }));
    });
    qemu.on('close', (code) => res(code));
  });
  clearTimeout(timer);
  if (pending) onLine(pending);
  const totalMs = Date.now() - start;

  let exitCode: number;
  const statusFile = join(runDir, 'exit-status');
  if (timedOut) {
    exitCode = TIMEOUT_EXIT_CODE;
  } else if (existsSync(statusFile) && /^\d+\s*$/.test(readFileSync(statusFile, 'utf8'))) {
    exitCode = Number(readFileSync(statusFile, 'utf8').trim());
  } else if (markerExit !== undefined) {
    exitCode = markerExit;
  } else {
    out(`\n[devmapper vm] the guest stopped without reporting an exit status (QEMU exit ${qemuStatus})\n`);
    exitCode = NO_STATUS_EXIT_CODE;
  }
  rmSync(runDir, { recursive: true, force: true });
  return { exitCode, bootMs, totalMs, timedOut, kernel };
}
