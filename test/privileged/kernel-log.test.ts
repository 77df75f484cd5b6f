// SPDX-License-Identifier: MIT
// openKernelLog on the real /dev/kmsg: the cursor starts after the records already in the log
// (it reads and drops them with node:fs, no lseek through libc), and reads what is written later.
// Run: DEVMAPPER_PRIVILEGED=1 npx uvu dist/test/privileged 'kernel-log\.test\.js$' (as root).
import { appendFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { openKernelLog } from '../../src/deviceset/index.js';
import { privilegedSuite } from '../helpers/privileged.js';

const test = privilegedSuite('kernel log cursor (real /dev/kmsg)');

test('the cursor reads the records written after it opened, not those before', () => {
  const tag = `devmapper-kmsg-${process.pid}`;
  appendFileSync('/dev/kmsg', `${tag} before\n`);
  const cursor = openKernelLog();
  assert.ok(cursor !== null, '/dev/kmsg opens for root');
  try {
    appendFileSync('/dev/kmsg', `${tag} after\n`);
    const ours = cursor.read().filter((r) => r.text.startsWith(tag)).map((r) => r.text);
    assert.equal(ours, [`${tag} after`]);
    assert.equal(cursor.read(), []);
  } finally {
    cursor.close();
  }
});

test.run();
