// Which syscall DmControl tries first for /dev/mapper/NAME after a resume: mknod for a device it
// has just created (no node can exist yet), stat for any other resume (the node usually exists).
// Either way a wrong guess costs one failed syscall and the outcome is the same (nodes.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DmControl, zeroTarget } from '../../../src/dm/index.js';
import { FakeKernel } from '../../../src/testing/index.js';

test('createDevice: mknod straight away; a later suspend/resume: stat finds the node, no mknod', async () => {
  const fake = new FakeKernel({ devDir: '/fakedev' });
  try {
    const dm = new DmControl({ syscalls: fake, devDir: '/fakedev', nodes: 'manage', udevControlPath: '/fakedev/no-udev' });
    await dm.version();
    const node = '/fakedev/mapper/order-test';
    const onNode = (): string[] => fake.calls.filter((c) => c.path === node).map((c) => `${c.syscall} ${c.result ?? ''}`);
    fake.clearCalls();
    await dm.createDevice('order-test', [zeroTarget(0n, 2048n)]);
    assert.equal(onNode(), ['mknod ok']);
    fake.clearCalls();
    await dm.deviceSuspend('order-test');
    await dm.deviceResume('order-test');
    assert.equal(onNode(), ['stat ok']);
    // Created with deviceCreate + tableLoad + deviceResume (how ThinDevice.activate does it): same.
    fake.clearCalls();
    await dm.deviceCreate('order-two');
    await dm.tableLoad('order-two', [zeroTarget(0n, 8n)]);
    await dm.deviceResume('order-two');
    assert.equal(fake.calls.filter((c) => c.path === '/fakedev/mapper/order-two').map((c) => `${c.syscall} ${c.result ?? ''}`), ['mknod ok']);
    await dm.deviceRemove('order-test');
    await dm.deviceRemove('order-two');
    dm.close();
  } finally {
    fake.dispose();
  }
});

test.run();
