// SPDX-License-Identifier: MIT
// Chooses the guest kernel: an installed /boot/vmlinuz-<ver> with /lib/modules/<ver>, or one
// unpacked from a Debian linux-image package into a cache directory (no root needed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** A kernel the VM can boot: its image and the host directory holding its modules (…/modules/<ver>). */
export interface KernelSpec {
  readonly version: string;
  readonly vmlinuz: string;
  readonly modulesDir: string;
}

/** Where to look for kernels. Defaults are the host's /boot and /lib/modules. */
export interface KernelSearchOptions {
  readonly bootDir?: string;
  readonly modulesRoot?: string;
  /** Extra unpacked package roots (each with boot/ and lib/modules/), e.g. from fetchKernelPackage. */
  readonly extraRoots?: readonly string[];
}

/** Compares kernel version strings numerically piece by piece ("6.12.9" < "6.12.10"). */
export function compareKernelVersions(a: string, b: string): number {
  const pa = a.split(/[^0-9A-Za-z]+/);
  const pb = b.split(/[^0-9A-Za-z]+/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx - ny;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

function modulesDirIn(root: string, version: string): string | undefined {
  for (const rel of ['lib/modules', 'usr/lib/modules']) {
    const d = join(root, rel, version);
    if (existsSync(d)) return d;
  }
  return undefined;
}

/** Lists kernels that have both an image and a modules directory, oldest first. */
export function listKernels(opts: KernelSearchOptions = {}): KernelSpec[] {
  const bootDir = opts.bootDir ?? '/boot';
  const modulesRoot = opts.modulesRoot ?? '/lib/modules';
  const found: KernelSpec[] = [];
  const scan = (boot: string, modRoot: (v: string) => string | undefined): void => {
    let names: string[];
    try {
      names = readdirSync(boot);
    } catch {
      return;
    }
    for (const n of names) {
      if (!n.startsWith('vmlinuz-')) continue;
      const version = n.slice('vmlinuz-'.length);
      const modulesDir = modRoot(version);
      if (modulesDir && existsSync(modulesDir) && statSync(modulesDir).isDirectory()) {
        found.push({ version, vmlinuz: join(boot, n), modulesDir });
      }
    }
  };
  scan(bootDir, (v) => join(modulesRoot, v));
  for (const root of opts.extraRoots ?? []) scan(join(root, 'boot'), (v) => modulesDirIn(root, v));
  return found.sort((a, b) => compareKernelVersions(a.version, b.version));
}

/**
 * Picks the kernel to boot.
 * - no selector: the newest kernel from listKernels();
 * - a path (contains '/'): that vmlinuz-<ver>; modules from <root>/lib/modules/<ver> next to its
 *   boot/ directory when present (an unpacked package), else <modulesRoot>/<ver>;
 * - otherwise a version string, matched exactly against listKernels().
 */
export function selectKernel(selector?: string, opts: KernelSearchOptions = {}): KernelSpec {
  const all = listKernels(opts);
  if (!selector) {
    const newest = all[all.length - 1];
    if (!newest) {
      throw new Error(
        `no bootable kernel: need ${opts.bootDir ?? '/boot'}/vmlinuz-<ver> with ${opts.modulesRoot ?? '/lib/modules'}/<ver> ` +
          '(install linux-image-amd64, or set DEVMAPPER_VM_KERNEL)',
      );
    }
    return newest;
  }
  if (selector.includes('/')) {
    const vmlinuz = resolve(selector);
    if (!existsSync(vmlinuz)) throw new Error(`kernel image ${vmlinuz} does not exist`);
    const m = /^vmlinuz-(.+)$/.exec(basename(vmlinuz));
    if (!m || !m[1]) throw new Error(`cannot tell the kernel version from ${vmlinuz} (expected a vmlinuz-<version> file name)`);
    const version = m[1];
    const modulesDir = modulesDirIn(dirname(dirname(vmlinuz)), version) ?? join(opts.modulesRoot ?? '/lib/modules', version);
    if (!existsSync(modulesDir)) throw new Error(`no modules for kernel ${version}: ${modulesDir} does not exist`);
    return { version, vmlinuz, modulesDir };
  }
  const hit = all.find((k) => k.version === selector);
  if (!hit) {
    throw new Error(`kernel ${selector} not found; available: ${all.map((k) => k.version).join(', ') || '(none)'}`);
  }
  return hit;
}

function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** Resolves a package name that may contain '*' (any run of non-'-' characters) to the newest match apt knows. */
export function resolvePackageName(pattern: string): string {
  if (!pattern.includes('*')) return pattern;
  const prefix = pattern.slice(0, pattern.indexOf('*'));
  // '*' does not match '-', so "linux-image-6.12.*-amd64-unsigned" picks no -rt- or -cloud- flavour.
  const re = new RegExp('^' + pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^-]*') + '$');
  const names = run('apt-cache', ['pkgnames', prefix]).split('\n').filter((n) => re.test(n));
  names.sort(compareKernelVersions);
  const best = names[names.length - 1];
  if (!best) throw new Error(`no package matches ${pattern} (run apt-get update?)`);
  return best;
}

/**
 * Downloads a Debian linux-image package with `apt-get download` (no root needed) and unpacks it
 * with `dpkg-deb -x` under `<cacheDir>/<package>/root`. Runs `depmod -b` because modules.dep is
 * normally generated by the package's postinst, which we do not run. Reuses an earlier unpack.
 * `pkgName` may contain '*' (e.g. "linux-image-6.12.*-amd64-unsigned"): the newest match is used.
 */
export function fetchKernelPackage(pkgName: string, cacheDir: string): KernelSpec {
  const name = resolvePackageName(pkgName);
  const base = join(resolve(cacheDir), name);
  const root = join(base, 'root');
  const found = (): KernelSpec | undefined => listKernels({ bootDir: join(base, 'nonexistent'), extraRoots: [root] }).pop();
  const done = join(base, '.complete');
  if (existsSync(done)) {
    const k = found();
    if (k) return k;
  }
  rmSync(base, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  run('apt-get', ['download', name], base);
  const deb = readdirSync(base).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${name} produced no .deb in ${base}`);
  run('dpkg-deb', ['-x', join(base, deb), root]);
  rmSync(join(base, deb));
  // depmod -b wants <root>/lib/modules; merged-/usr packages ship usr/lib/modules only.
  if (!existsSync(join(root, 'lib/modules')) && existsSync(join(root, 'usr/lib/modules'))) {
    symlinkSync('usr/lib', join(root, 'lib'));
  }
  const k = found();
  if (!k) throw new Error(`package ${name} has no boot/vmlinuz-<ver> with matching modules`);
  if (!existsSync(join(k.modulesDir, 'modules.dep'))) run(existsSync('/usr/sbin/depmod') ? '/usr/sbin/depmod' : 'depmod', ['-b', root, k.version]);
  mkdirSync(dirname(done), { recursive: true });
  run('touch', [done]);
  return k;
}
