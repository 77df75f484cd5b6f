// SPDX-License-Identifier: MIT
// How many durable writes the journal costs (issue 21 §3): counts, through the metadata store's
// fs seam, the file fsyncs, directory fsyncs, renames and unlinks of the base setup (first init),
// one addDevice (a snapshot) and one deleteDevice on the FakeKernel, and pins them exactly.
// Before issue 21 (transaction → record → message → commit → record → clear, each write
// temp+fsync+rename+directory fsync): base setup 8 file + 9 dir fsyncs, addDevice 3 + 4,
// deleteDevice 2 + 4.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants } from 'node:fs';
import { nodeMetadataFs, type MetadataFs } from '../../../src/deviceset/metadata.js';
import { World } from '../sweep/harness.js';

/** What one stretch of work cost on the metadata directory. */
interface Cost {
  fileFsyncs: number;
  dirFsyncs: number;
  renames: number;
  unlinks: number;
}

/** nodeMetadataFs that tells file fsyncs from directory fsyncs (the fd was opened O_DIRECTORY). */
class RecordingFs implements MetadataFs {
  readonly dirFds = new Set<number>();
  cost: Cost = { fileFsyncs: 0, dirFsyncs: 0, renames: 0, unlinks: 0 };
  take(): Cost {
    const c = this.cost;
    this.cost = { fileFsyncs: 0, dirFsyncs: 0, renames: 0, unlinks: 0 };
    return c;
  }
  mkdirSync(path: string, options: { recursive: true; mode: number }): void {
    nodeMetadataFs.mkdirSync(path, options);
  }
  readdirSync(path: string): string[] {
    return nodeMetadataFs.readdirSync(path);
  }
  readFileSync(path: string): string {
    return nodeMetadataFs.readFileSync(path);
  }
  openSync(path: string, flags: number, mode?: number): number {
    const fd = nodeMetadataFs.openSync(path, flags, mode);
    if ((flags & constants.O_DIRECTORY) !== 0) this.dirFds.add(fd);
    return fd;
  }
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number {
    return nodeMetadataFs.writeSync(fd, data, offset, length);
  }
  fsyncSync(fd: number): void {
    if (this.dirFds.has(fd)) this.cost.dirFsyncs++;
    else this.cost.fileFsyncs++;
    nodeMetadataFs.fsyncSync(fd);
  }
  closeSync(fd: number): void {
    this.dirFds.delete(fd);
    nodeMetadataFs.closeSync(fd);
  }
  renameSync(from: string, to: string): void {
    this.cost.renames++;
    nodeMetadataFs.renameSync(from, to);
  }
  unlinkSync(path: string): void {
    this.cost.unlinks++;
    nodeMetadataFs.unlinkSync(path);
  }
}

test('durable writes per operation: base setup, one addDevice (snapshot), one deleteDevice', async () => {
  const w = new World();
  try {
    const fs = new RecordingFs();
    const set = await w.init({ metadataFs: fs });
    const setup = fs.take();
    await set.addDevice('a', '');
    const add = fs.take();
    await set.deleteDevice('a');
    const del = fs.take();
    await set.shutdown();
    const costs = { setup, add, del };
    if (process.env['DEVMAPPER_FSYNC_REPORT']) console.log(JSON.stringify(costs));
    assert.equal(costs, {
      setup: { fileFsyncs: 8, dirFsyncs: 9, renames: 8, unlinks: 1 },
      add: { fileFsyncs: 3, dirFsyncs: 4, renames: 3, unlinks: 1 },
      del: { fileFsyncs: 2, dirFsyncs: 4, renames: 2, unlinks: 2 },
    });
  } finally {
    w.dispose();
  }
});

test.run();
