// SPDX-License-Identifier: MIT
// `loop ls -O COLUMNS --noheadings` (losetup --list -O) and the size syntax of `loop attach`
// (16MB = 16 MiB, Docker's RAMInBytes), through run() on the harness's fake LoopControl.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, fakeLoop, type Calls } from './harness.js';

test('loop ls -O: losetup columns, numbers right-aligned, --noheadings; lower-case names accepted', async () => {
  const loop = () => fakeLoop([]);
  let r = await cli(['loop', 'ls', '-O', 'NAME,SIZELIMIT,OFFSET,AUTOCLEAR,RO,BACK-FILE,DIO,LOG-SEC'], { loop });
  assert.equal([r.code, r.stderr], [0, '']);
  assert.is(r.stdout, 'NAME       SIZELIMIT OFFSET AUTOCLEAR RO BACK-FILE  DIO LOG-SEC\n/dev/loop3         0      0         0  0 /tmp/a.img   0     512\n');
  r = await cli(['loop', 'ls', '--output', 'name,back-file,maj:min,partscan', '--noheadings'], { loop });
  assert.is(r.stdout, '/dev/loop3 /tmp/a.img 7:3 0\n');
  // --noheadings alone: losetup --list's default columns.
  r = await cli(['loop', 'ls', '-n'], { loop });
  assert.is(r.stdout, '/dev/loop3 0 0 0 0 /tmp/a.img 0 512\n');
  for (const [argv, text] of [
    [['loop', 'ls', '-O', 'NAME,SIZE'], "-O: unknown column 'SIZE'"],
    [['loop', 'ls', '-O', 'NAME', '--json'], '-O and --noheadings are text views'],
  ] as const) {
    const bad = await cli([...argv], { loop });
    assert.is(bad.code, 2);
    assert.match(bad.stderr, text);
  }
});

test('sizes: 16M, 16MB, 16MiB, 16 MiB and 16mb are all 16 MiB; 512b is 512 bytes', async () => {
  for (const text of ['16M', '16MB', '16MiB', '16 MiB', '16mb', '16777216']) {
    const calls: Calls = [];
    const r = await cli(['loop', 'attach', '--offset', text, '/tmp/a.img'], { loop: () => fakeLoop(calls) });
    assert.is(r.code, 0, `${text}: ${r.stderr}`);
    assert.match(calls[0] ?? '', '"offset":"16777216n"', text);
  }
  const calls: Calls = [];
  await cli(['loop', 'attach', '--size-limit', '512b', '/tmp/a.img'], { loop: () => fakeLoop(calls) });
  assert.match(calls[0] ?? '', '"sizeLimit":"512n"');
});

test('loop attach --help and loop detach --help say what sizes and --all mean', async () => {
  const attach = (await cli(['loop', 'attach', '--help'])).stdout;
  assert.match(attach, "16M = 16MB = 16MiB = 16 MiB = 16777216");
  assert.match(attach, 'losetup would read 16MB as 16000000');
  const detach = (await cli(['loop', 'detach', '--help'])).stdout;
  assert.match(detach, 'WARNING: --all detaches every bound loop device on this host');
  const removeAll = (await cli(['dm', 'remove_all', '--help'])).stdout;
  assert.match(removeAll, 'Without --yes it prints the devices it would remove and');
});

test.run();
