// SPDX-License-Identifier: MIT
// The striped target on the real kernel (issue 18, "basics"): over 3 loop devices with legs that
// start at different offsets, every chunk written through the dm device lands on the member and at
// the offset striping prescribes (dm-stripe.c stripe_map_sector: chunk c goes to stripe c mod N,
// at leg offset + (c div N) × chunk), and reads back through dm; the table reads back as our
// encoder's text and as dmsetup prints it; the status (stripe_status) is parsed.
import * as assert from 'uvu/assert';
import { closeSync, openSync, readSync, truncateSync, writeSync, fsyncSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DmControl, formatStripedParams, formatTable, mapperPath, parseStripedStatus, stripedTarget, type DevNum, type StripedParams } from '../../src/dm/index.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';
import { rdevOf } from '../helpers/loop-files.js';

const test = withSweep(privilegedSuite('targets-striped'));
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    assert.is(readSync(fd, b, 0, length, offset), length);
    return b;
  } finally {
    closeSync(fd);
  }
}

const CHUNK = 16; // sectors: 8 KiB chunks
const CHUNK_BYTES = CHUNK * 512;
/** Leg offsets in sectors, different per leg so that a wrong offset shows. */
const OFFSETS = [0n, 64n, 128n];
const LEG_BYTES = 1 << 20;
const loops: { dev: string; file: string; num: DevNum }[] = [];
let dm: DmControl;

test.before(() => {
  dm = new DmControl();
  for (let i = 0; i < 3; i++) {
    const file = join(testTmpDir(), `striped-${i}.img`);
    closeSync(openSync(file, 'w'));
    truncateSync(file, LEG_BYTES);
    const dev = sh('losetup', ['-f', '--show', file]).trim();
    loops.push({ dev, file, num: rdevOf(dev) });
  }
});

test.after(() => {
  dm.close();
  for (const l of loops) spawnSync('losetup', ['-d', l.dev], { stdio: 'ignore' });
});

test('striped over 3 loop devices: each chunk on the right member at the right offset; table and status read back', async () => {
  const name = testName('striped');
  const p: StripedParams = { chunkSectors: CHUNK, stripes: loops.map((l, i) => ({ device: l.num, offset: OFFSETS[i]! })) };
  // Each leg gives (1 MiB - its largest offset) rounded to whole chunks; 3 legs × 12 chunks.
  const chunksPerLeg = 12;
  const length = BigInt(3 * chunksPerLeg * CHUNK);
  await dm.createDevice(name, [stripedTarget(0n, length, p)]);
  try {
    const path = mapperPath('/dev', name);
    const data = randomBytes(Number(length) * 512);
    const fd = openSync(path, 'r+');
    try {
      assert.is(writeSync(fd, data, 0, data.length, 0), data.length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // Through dm: what was written.
    assert.ok(readAt(path, 0, data.length).equals(data), 'reads back through dm');
    // On the members, through the loop devices' backing files (the loop devices have no cache of
    // their own over these writes: fsync on the dm device flushed them down).
    for (let c = 0; c < 3 * chunksPerLeg; c++) {
      const leg = c % 3;
      const at = (Number(OFFSETS[leg]!) + Math.floor(c / 3) * CHUNK) * 512;
      const want = data.subarray(c * CHUNK_BYTES, (c + 1) * CHUNK_BYTES);
      assert.ok(readAt(loops[leg]!.file, at, CHUNK_BYTES).equals(want), `chunk ${c} on leg ${leg} at byte ${at}`);
    }
    // Before each leg's offset, nothing was written (still the sparse file's zeroes).
    for (let leg = 1; leg < 3; leg++) assert.ok(readAt(loops[leg]!.file, 0, Number(OFFSETS[leg]!) * 512).every((b) => b === 0), `leg ${leg} below its offset`);

    const table = await dm.tableStatus(name, { mode: 'table' });
    assert.is(table[0]!.params, formatStripedParams(p));
    assert.is(sh('dmsetup', ['table', name]), formatTable(table), 'dmsetup table = our table text');
    const status = parseStripedStatus((await dm.tableStatus(name))[0]!.params);
    assert.equal(status, { devices: loops.map((l) => l.num), health: ['A', 'A', 'A'] });
    assert.is(sh('dmsetup', ['status', name]).trimEnd(), `0 ${length} striped 3 ${loops.map((l) => `${l.num.major}:${l.num.minor}`).join(' ')} 1 AAA`);
  } finally {
    await dm.deviceRemove(name);
  }
});

test.run();
