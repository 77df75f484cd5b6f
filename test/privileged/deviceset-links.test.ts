// SPDX-License-Identifier: MIT
// Nothing planted under a DeviceSet root is followed, on the real kernel (issue #14 item 2): a
// symbolic link at ROOT/devicemapper/data or /metadata pointing at a victim file is refused with
// UnsafePathError; the victim keeps its bytes (sha256) and size, and no loop device is bound to it
// (losetup -j, an independent oracle, and LoopControl.findByBackingFile).
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceSet, UnsafePathError } from '../../src/deviceset/index.js';
import { LoopControl } from '../../src/loop/index.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

const test = withSweep(privilegedSuite('deviceset links (real kernel)'));
const OPTS = ['dm.loopdatasize=256M', 'dm.loopmetadatasize=16M', 'dm.basesize=64M'];
const quiet = { log: () => undefined };
let n = 0;

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const losetupJ = (file: string): string => execFileSync('losetup', ['-j', file], { encoding: 'utf8' }).trim();

/** A fresh root with a private devicemapper/ and a 1 MiB victim file next to it. */
function plant(which: 'data' | 'metadata'): { root: string; link: string; victim: string; sum: string } {
  const dir = join(testTmpDir(), `links-${++n}`);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'devicemapper'), { recursive: true, mode: 0o700 });
  const victim = join(dir, 'victim.db');
  writeFileSync(victim, randomBytes(1024 * 1024));
  const link = join(root, 'devicemapper', which);
  symlinkSync(victim, link);
  return { root, link, victim, sum: sha256(victim) };
}

for (const which of ['data', 'metadata'] as const) {
  test(`a link at devicemapper/${which} is refused; the victim is unchanged and not bound`, async () => {
    const { root, link, victim, sum } = plant(which);
    let followed: DeviceSet | undefined;
    try {
      followed = await DeviceSet.init(root, { options: OPTS, ...quiet });
    } catch (err) {
      assert.instance(err, UnsafePathError);
      assert.is((err as UnsafePathError).code, 'EUNSAFEPATH');
      assert.is((err as UnsafePathError).path, link);
    }
    if (followed) {
      // The defect: shut it down so that the sweep finds no leftovers, then fail.
      await followed.shutdown();
      assert.unreachable(`init followed the link: the victim is now ${statSync(victim).size} bytes`);
    }
    assert.is(sha256(victim), sum);
    assert.is(statSync(victim).size, 1024 * 1024);
    assert.is(losetupJ(victim), '');
    assert.equal(await new LoopControl().findByBackingFile(victim), []);

    // Without the link the same root works, on its own files.
    unlinkSync(link);
    const ds = await DeviceSet.init(root, { options: OPTS, ...quiet });
    try {
      const st = await ds.status();
      assert.is(st.dataLoopback, join(root, 'devicemapper', 'data'));
      assert.is((await new LoopControl().findByBackingFile(join(root, 'devicemapper', which))).length, 1);
      assert.is(losetupJ(victim), '');
    } finally {
      await ds.shutdown();
    }
    assert.is(sha256(victim), sum);
  });
}

test.run();
