// SPDX-License-Identifier: MIT
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { moduleName, parseModulesBuiltin, parseModulesDep, resolveLoadOrder } from '../../../src/vm/modules.js';

// An excerpt of a real Debian 6.1 modules.dep (the initramfs modules), deliberately shuffled.
const DEP = `
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/net/9p/9pnet.ko:
kernel/fs/netfs/netfs.ko:
kernel/drivers/md/dm-thin-pool.ko.xz: kernel/drivers/md/persistent-data/dm-persistent-data.ko.xz kernel/drivers/md/dm-bio-prison.ko.xz kernel/drivers/md/dm-bufio.ko.xz kernel/drivers/md/dm-mod.ko.xz kernel/lib/libcrc32c.ko.xz
`;

test('moduleName strips directories and compression suffixes and folds dashes', () => {
  assert.is(moduleName('kernel/drivers/md/dm-thin-pool.ko.xz'), 'dm_thin_pool');
  assert.is(moduleName('kernel/fs/9p/9p.ko'), '9p');
  assert.is(moduleName('foo.ko.zst'), 'foo');
  assert.is(moduleName('dm-mod'), 'dm_mod');
});

test('parseModulesDep maps each module to its path and dependency names', () => {
  const deps = parseModulesDep(DEP);
  assert.equal(deps.get('virtio')!, { path: 'kernel/drivers/virtio/virtio.ko', deps: ['virtio_ring'] });
  assert.equal(deps.get('virtio_ring')!.deps, []);
  assert.is(deps.get('dm_thin_pool')!.path, 'kernel/drivers/md/dm-thin-pool.ko.xz');
});

test('load order puts every dependency before its user, each module once', () => {
  const order = resolveLoadOrder(['virtio_pci', '9pnet_virtio', '9p'], parseModulesDep(DEP)).map((m) => moduleName(m.path));
  assert.equal(order, [
    'virtio_pci_legacy_dev',
    'virtio_pci_modern_dev',
    'virtio_ring',
    'virtio',
    'virtio_pci',
    '9pnet',
    '9pnet_virtio',
    'netfs',
    'fscache',
    '9p',
  ]);
  assert.ok(order.indexOf('virtio_ring') < order.indexOf('virtio'), 'virtio_ring must load before virtio');
});

test('built-in modules are skipped; unknown modules throw with the chain', () => {
  const deps = parseModulesDep(DEP);
  const builtin = parseModulesBuiltin('kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n');
  const order = resolveLoadOrder(['9pnet_virtio'], deps, builtin).map((m) => moduleName(m.path));
  assert.equal(order, ['9pnet', '9pnet_virtio']);
  assert.throws(() => resolveLoadOrder(['dm-thin-pool'], deps), /dm_persistent_data .*needed by dm_thin_pool/);
  assert.throws(() => resolveLoadOrder(['nope'], deps), /nope is neither in modules.dep nor built in/);
});

test('a dependency cycle is reported, not looped on', () => {
  const deps = parseModulesDep('a.ko: b.ko\nb.ko: a.ko\n');
  assert.throws(() => resolveLoadOrder(['a'], deps), /cycle: a -> b -> a/);
});

test.run();
