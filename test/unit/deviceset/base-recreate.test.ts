// A base device that has to be recreated (left uninitialized by an earlier run) gets a new
// filesystem uuid. A crash after its mkfs and before the new uuid is saved must not leave the old
// uuid behind in the deviceset record, or every later init fails with BaseUuidMismatchError.
// The crash sweep cannot see this: its fake blkid answers one constant uuid.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet, MetadataStore, type CrashPointName } from '../../../src/deviceset/index.js';
import { FakeKernel, fakeDeviceSetInit, fakeFsTools } from '../../../src/testing/index.js';

test('recreated base: crash before its uuid is saved; the next init adopts the new uuid', async () => {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  const root = mkdtempSync(join(tmpdir(), 'ds-base-recreate-'));
  let mkfsCount = 0;
  const base = fakeFsTools(fake);
  const tools = {
    ...base,
    mkfs: async (...a: Parameters<typeof base.mkfs>) => {
      mkfsCount++;
      await base.mkfs(...a);
    },
    uuid: async () => `uuid-${mkfsCount}`,
  };
  const options = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];
  const init = (crashAt?: CrashPointName) =>
    DeviceSet.init(root, {
      ...fakeDeviceSetInit(fake, '/fakedev'),
      tools,
      options,
      log: () => {},
      crashPoint: (name) => {
        if (name === crashAt) throw new Error(`simulated death at ${name}`);
      },
    });
  try {
    const first = await init();
    await first.shutdown();
    const store = new MetadataStore(root);
    assert.is((await store.loadAll()).deviceSet?.baseFilesystemUuid, 'uuid-1');
    // An earlier run left the base uninitialized: the next init deletes and recreates it.
    const rec = (await store.loadAll()).devices.get('');
    assert.ok(rec);
    await store.saveDevice({ ...rec, initialized: false });
    await init('base:before-uuid-save').then(
      () => assert.unreachable('the crash point should have stopped init'),
      (e: unknown) => assert.match(String(e), /simulated death/),
    );
    assert.is(mkfsCount, 2, 'the base was recreated (mkfs ran again)');
    const again = await init();
    const loaded = await new MetadataStore(root).loadAll();
    assert.is(loaded.deviceSet?.baseFilesystemUuid, 'uuid-2');
    assert.is(loaded.devices.get('')?.filesystemUuid, 'uuid-2');
    await again.shutdown();
  } finally {
    fake.dispose();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
