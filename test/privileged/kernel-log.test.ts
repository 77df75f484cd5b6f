// SPDX-License-Identifier: MIT
// openKernelLog on the real /dev/kmsg: the cursor is put after the records already in the log by
// one lseek(fd, 0, SEEK_END) through the real seam (no fallback to reading them), and reads
// exactly what is written later; /dev/kmsg's lseek answers as kernel/printk/printk.c says.
// Run: DEVMAPPER_PRIVILEGED=1 npx uvu dist/test/privileged 'kernel-log\.test\.js$' (as root).
import { appendFileSync, promises as fsp, constants } from 'node:fs';
import * as assert from 'uvu/assert';
import { openKernelLog, type KmsgRecord } from '../../src/deviceset/index.js';
import { IoctlError, realSyscalls, SEEK_END } from '../../src/ioctl/index.js';
import { privilegedSuite } from '../helpers/privileged.js';

const test = privilegedSuite('kernel log cursor (real /dev/kmsg)');

test('the cursor reads exactly the records written after it opened: the marker, nothing older', async () => {
  const tag = `devmapper-kmsg-${process.pid}`;
  // The sequence number of a record written just before the cursor opens, read through a first cursor.
  const probe = await openKernelLog();
  assert.ok(probe !== null, '/dev/kmsg opens for root');
  appendFileSync('/dev/kmsg', `<6>${tag} before\n`);
  const before = (await probe.read()).find((r) => r.text === `${tag} before`);
  await probe.close();
  assert.ok(before !== undefined, 'the first cursor saw the record written after it opened');
  assert.ok(before.seq > 100n, `the log holds the boot's records (seq ${before.seq}), so there was something to skip`);

  const lseeks: string[] = [];
  const real = realSyscalls();
  const sys = {
    lseek: (fd: number, offset: bigint, whence: number): number => {
      const r = real.lseek!(fd, offset, whence);
      lseeks.push(`${offset} ${whence} -> ${r}`);
      return r;
    },
  };
  const cursor = await openKernelLog({ sys });
  assert.ok(cursor !== null);
  try {
    assert.equal(lseeks, [`0 ${SEEK_END} -> 0`], 'one lseek(0, SEEK_END), answered 0: no fallback to reading');
    appendFileSync('/dev/kmsg', `<6>${tag} after\n`);
    const records: KmsgRecord[] = await cursor.read();
    assert.equal(records.filter((r) => r.text.startsWith(tag)).map((r) => `${r.level} ${r.text}`), [`6 ${tag} after`]);
    const older = records.filter((r) => r.seq <= before.seq).map((r) => `${r.seq} ${r.text}`);
    assert.equal(older, [], 'nothing from before the cursor opened');
    assert.equal(await cursor.read(), []);
  } finally {
    await cursor.close();
  }
});

test("/dev/kmsg's lseek: only offset 0 (else ESPIPE), and SEEK_CUR is refused with EINVAL", async () => {
  const file = await fsp.open('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const sys = realSyscalls();
    assert.is(sys.lseek!(file.fd, 0n, SEEK_END), 0);
    const errno = (offset: bigint, whence: number): string => {
      try {
        sys.lseek!(file.fd, offset, whence);
        return 'no error';
      } catch (err) {
        assert.instance(err, IoctlError);
        return `${(err as IoctlError).syscall} ${(err as IoctlError).code}`;
      }
    };
    assert.is(errno(1n, SEEK_END), 'lseek ESPIPE'); // devkmsg_llseek: `if (offset) return -ESPIPE`
    assert.is(errno(0n, 1 /* SEEK_CUR */), 'lseek EINVAL'); // the switch's default (commit 625d3449788f kept EINVAL)
  } finally {
    await file.close();
  }
});

test.run();
