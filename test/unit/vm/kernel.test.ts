// SPDX-License-Identifier: MIT
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareKernelVersions, listKernels, selectKernel } from '../../../src/vm/kernel.js';

const root = mkdtempSync(join(tmpdir(), 'devmapper-kernel-test-'));
const boot = join(root, 'boot');
const mods = join(root, 'lib/modules');
const pkgRoot = join(root, 'cache/linux-image-x/root');
mkdirSync(boot, { recursive: true });
mkdirSync(mods, { recursive: true });
const kernel = (dir: string, modDir: string | null, ver: string): void => {
  writeFileSync(join(dir, `vmlinuz-${ver}`), 'x');
  if (modDir) mkdirSync(join(modDir, ver), { recursive: true });
};
kernel(boot, mods, '6.1.0-9-amd64');
kernel(boot, mods, '6.1.0-57-amd64');
kernel(boot, null, '6.99.0-1-amd64'); // newest image, but no modules: not bootable for us
mkdirSync(join(mods, '7.0.0-1-amd64')); // modules without an image
mkdirSync(join(pkgRoot, 'boot'), { recursive: true });
kernel(join(pkgRoot, 'boot'), join(pkgRoot, 'usr/lib/modules'), '6.12.38+deb13-amd64');
const opts = { bootDir: boot, modulesRoot: mods };

test.after(() => rmSync(root, { recursive: true, force: true }));

test('versions compare numerically, piece by piece', () => {
  assert.ok(compareKernelVersions('6.1.0-9-amd64', '6.1.0-57-amd64') < 0);
  assert.ok(compareKernelVersions('6.12.9', '6.12.10') < 0);
  assert.ok(compareKernelVersions('6.12.1', '6.2.30') > 0);
  assert.is(compareKernelVersions('6.1.0-57-amd64', '6.1.0-57-amd64'), 0);
  assert.ok(compareKernelVersions('6.1', '6.1.1') < 0);
});

test('only kernels with matching modules are listed, oldest first', () => {
  assert.equal(listKernels(opts).map((k) => k.version), ['6.1.0-9-amd64', '6.1.0-57-amd64']);
});

test('default selection is the newest kernel that has modules', () => {
  const k = selectKernel(undefined, opts);
  assert.equal(k, { version: '6.1.0-57-amd64', vmlinuz: join(boot, 'vmlinuz-6.1.0-57-amd64'), modulesDir: join(mods, '6.1.0-57-amd64') });
});

test('unpacked package roots are searched too (usr/lib/modules layout)', () => {
  const k = selectKernel(undefined, { ...opts, extraRoots: [pkgRoot] });
  assert.is(k.version, '6.12.38+deb13-amd64');
  assert.is(k.modulesDir, join(pkgRoot, 'usr/lib/modules/6.12.38+deb13-amd64'));
});

test('a version selects that kernel; an unknown one lists what exists', () => {
  assert.is(selectKernel('6.1.0-9-amd64', opts).vmlinuz, join(boot, 'vmlinuz-6.1.0-9-amd64'));
  assert.throws(() => selectKernel('6.99.0-1-amd64', opts), /not found; available: 6.1.0-9-amd64, 6.1.0-57-amd64/);
});

test('a path selects that image; modules come from its package root', () => {
  const k = selectKernel(join(pkgRoot, 'boot/vmlinuz-6.12.38+deb13-amd64'), opts);
  assert.is(k.modulesDir, join(pkgRoot, 'usr/lib/modules/6.12.38+deb13-amd64'));
  assert.throws(() => selectKernel(join(boot, 'vmlinuz-6.99.0-1-amd64'), opts), /no modules for kernel 6.99.0-1-amd64/);
});

test('no kernel at all is a clear error', () => {
  assert.throws(() => selectKernel(undefined, { bootDir: join(root, 'none'), modulesRoot: mods }), /no bootable kernel/);
});

test.run();
