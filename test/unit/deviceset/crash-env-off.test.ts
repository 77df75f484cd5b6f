// SPDX-License-Identifier: MIT
// Item 5 of issue #14: DEVMAPPER_CRASH_AT / DEVMAPPER_CRASH_TRACE are test hooks, not production
// switches. A DeviceSet that was not handed a crashPoint ignores them: with a valid point it does
// not SIGKILL itself, with a malformed value it does not fail, and it traces nothing. Each case
// runs in a child process (the old behaviour was a SIGKILL of the whole process).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { join } from 'node:path';
import { LockChild } from '../../helpers/lock-child-driver.js';

/** /dev/shm when there is one: DeviceSet fsyncs its metadata, which costs nothing on tmpfs. */
const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];

for (const at of ['init:before-deviceset-save', 'init:before-typo', '#1']) {
  test(`DEVMAPPER_CRASH_AT=${at} has no effect on a normal DeviceSet.init`, async () => {
    const tmp = mkdtempSync(join(TMP, 'dm-crash-env-'));
    const trace = join(tmp, 'trace');
    const child = new LockChild('fake', OPTIONS, { ...process.env, DEVMAPPER_CRASH_AT: at, DEVMAPPER_CRASH_TRACE: trace });
    try {
      assert.is(await child.ask(`init ${join(tmp, 'root')}`), 'won');
      assert.is(await child.ask('shutdown'), 'released');
      assert.is(await child.end(), 0);
      assert.not.ok(existsSync(trace), 'nothing traced');
    } finally {
      await child.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test.run();
