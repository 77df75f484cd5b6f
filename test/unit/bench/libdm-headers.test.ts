// SPDX-License-Identifier: MIT
// bench/lib/libdm-headers.ts: a full bench run as root installs libdevmapper-dev when its header is
// missing (apt-get update only after a failed install); smoke runs and other users install nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureLibdmHeaders, LIBDM_HEADER, type LibdmInstallDeps } from '../../../bench/lib/libdm-headers.js';

function world(o: { header: boolean; root: boolean; installs: (number | null)[]; providesAfter?: number }): { deps: LibdmInstallDeps; calls: string[] } {
  const calls: string[] = [];
  let present = o.header;
  let installs = 0;
  const deps: LibdmInstallDeps = {
    exists: (p) => p === LIBDM_HEADER && present,
    isRoot: o.root,
    run: (cmd, args) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (args[0] !== 'install') return 0;
      const status = o.installs[installs++] ?? 100;
      if (status === 0 && installs >= (o.providesAfter ?? 1)) present = true;
      return status;
    },
  };
  return { deps, calls };
}

test('header present: nothing runs, the column is available', () => {
  const w = world({ header: true, root: true, installs: [] });
  assert.is(ensureLibdmHeaders(false, w.deps), '');
  assert.equal(w.calls, []);
});

test('full run as root, header missing: apt-get install, no update when it succeeds', () => {
  const w = world({ header: false, root: true, installs: [0] });
  assert.is(ensureLibdmHeaders(false, w.deps), '');
  assert.equal(w.calls, ['apt-get install -y --no-install-recommends libdevmapper-dev']);
});

test('full run as root, first install fails: apt-get update, then install again', () => {
  const w = world({ header: false, root: true, installs: [100, 0], providesAfter: 2 });
  assert.is(ensureLibdmHeaders(false, w.deps), '');
  assert.equal(w.calls, ['apt-get install -y --no-install-recommends libdevmapper-dev', 'apt-get update', 'apt-get install -y --no-install-recommends libdevmapper-dev']);
});

test('full run as root, install fails twice: the column is n/a with the reason', () => {
  const w = world({ header: false, root: true, installs: [100, 100] });
  assert.is(ensureLibdmHeaders(false, w.deps), 'apt-get install libdevmapper-dev did not provide /usr/include/libdevmapper.h');
  assert.is(w.calls.length, 3);
});

test('smoke run or another user: nothing is installed, the reason says what to run', () => {
  const smoke = world({ header: false, root: true, installs: [0] });
  assert.is(ensureLibdmHeaders(true, smoke.deps), 'libdevmapper-dev is not installed on the host (as root: apt-get install libdevmapper-dev)');
  assert.equal(smoke.calls, []);
  const user = world({ header: false, root: false, installs: [0] });
  assert.match(ensureLibdmHeaders(false, user.deps), /a full run as root installs it$/);
  assert.equal(user.calls, []);
});

test.run();
