// SPDX-License-Identifier: MIT
// Kernel module bookkeeping for the VM initramfs: modules.dep parsing, load order, decompression.
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** Module name as the kernel and modprobe see it: basename, no .ko[.xz|.zst|.gz], '-' folded to '_'. */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** Parsed modules.dep: module name → its relative path and the names of its direct and indirect deps. */
export interface ModuleDep {
  readonly path: string;
  readonly deps: readonly string[];
}

/** Parses the text of modules.dep ("kernel/a.ko: kernel/b.ko kernel/c.ko" per line). */
export function parseModulesDep(text: string): Map<string, ModuleDep> {
  const map = new Map<string, ModuleDep>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean).map(moduleName);
    map.set(moduleName(path), { path, deps });
  }
  return map;
}

/** Parses modules.builtin (one path per line) into a set of module names. */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.trim()).filter(Boolean).map(moduleName));
}

/**
 * Returns the modules to insmod, dependencies first, each once. The order is a depth-first
 * topological sort over each module's own modules.dep line, so it does not rely on how depmod
 * happened to order a dependency list. Built-in modules are dropped; an unknown module throws.
 */
export function resolveLoadOrder(
  wanted: readonly string[],
  deps: ReadonlyMap<string, ModuleDep>,
  builtin: ReadonlySet<string> = new Set(),
): ModuleDep[] {
  const order: ModuleDep[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string, from: string[]): void => {
    if (done.has(name) || builtin.has(name)) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle: ${[...from, name].join(' -> ')}`);
    const entry = deps.get(name);
    if (!entry) throw new Error(`kernel module ${name} is neither in modules.dep nor built in${from.length ? ` (needed by ${from.join(' -> ')})` : ''}`);
    visiting.add(name);
    for (const d of entry.deps) visit(d, [...from, name]);
    visiting.delete(name);
    done.add(name);
    order.push(entry);
  };
  for (const w of wanted) visit(moduleName(w), []);
  return order;
}

/** Reads modules.dep (and modules.builtin when present) from a /lib/modules/<ver> directory. */
export function readModuleTables(modulesDir: string): { deps: Map<string, ModuleDep>; builtin: Set<string> } {
  const depFile = join(modulesDir, 'modules.dep');
  if (!existsSync(depFile)) throw new Error(`${depFile} is missing (run depmod for this kernel)`);
  const deps = parseModulesDep(readFileSync(depFile, 'utf8'));
  const builtinFile = join(modulesDir, 'modules.builtin');
  const builtin = existsSync(builtinFile) ? parseModulesBuiltin(readFileSync(builtinFile, 'utf8')) : new Set<string>();
  return { deps, builtin };
}

/**
 * Returns a module's bytes as a plain ELF .ko. Debian's newer kernels ship .ko.xz or .ko.zst,
 * which busybox insmod cannot load, so they are decompressed here on the host with xz/zstd.
 */
export function readModuleUncompressed(file: string): Buffer {
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : file.endsWith('.gz') ? 'gzip' : null;
  if (!tool) return readFileSync(file);
  return execFileSync(tool, ['-dc', file], { maxBuffer: 256 * 1024 * 1024 });
}
