// SPDX-License-Identifier: MIT
// The metadata fs seam of the journal's fsync tests (journal-fsync.test.ts, journal-group.test.ts):
// counts file fsyncs, directory fsyncs, renames and unlinks, and can lose every name change since
// the last directory fsync (a power cut).
import { constants, existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { nodeMetadataFs, type MetadataFs } from '../../../src/deviceset/metadata.js';

/** What one stretch of work cost on the metadata directory. */
export interface Cost {
  fileFsyncs: number;
  dirFsyncs: number;
  renames: number;
  unlinks: number;
}

/** A name change not yet made durable by a directory fsync: what the name held before (or nothing). */
interface Pending {
  readonly name: string;
  readonly before: string | undefined;
}

/**
 * nodeMetadataFs that tells file fsyncs from directory fsyncs (the fd was opened O_DIRECTORY),
 * and remembers the renames and unlinks since the last directory fsync so that {@link powerCut}
 * can lose them all (the worst a crash may do to them; the file data was fsynced or is a temp).
 */
export class RecordingFs implements MetadataFs {
  /** `dead()` true: the process died, every later mutating call throws (as CountingMetadataFs). */
  constructor(readonly dead: () => boolean = () => false) {}
  #alive(what: string): void {
    if (this.dead()) throw new Error(`metadata ${what} after death`);
  }
  readonly dirFds = new Set<number>();
  pending: Pending[] = [];
  #remember(name: string): void {
    this.pending.push({ name, before: existsSync(name) ? readFileSync(name, 'utf8') : undefined });
  }
  /** Loses every name change since the last directory fsync, newest first. */
  powerCut(): string[] {
    const lost = this.pending.map((p) => p.name.slice(p.name.lastIndexOf('/') + 1));
    for (const p of this.pending.reverse()) {
      if (p.before === undefined) {
        if (existsSync(p.name)) unlinkSync(p.name);
      } else writeFileSync(p.name, p.before);
    }
    this.pending = [];
    return lost;
  }
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
    this.#alive('openSync');
    const fd = nodeMetadataFs.openSync(path, flags, mode);
    if ((flags & constants.O_DIRECTORY) !== 0) this.dirFds.add(fd);
    return fd;
  }
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number {
    this.#alive('writeSync');
    return nodeMetadataFs.writeSync(fd, data, offset, length);
  }
  fsyncSync(fd: number): void {
    this.#alive('fsyncSync');
    if (this.dirFds.has(fd)) {
      this.cost.dirFsyncs++;
      this.pending = [];
    } else this.cost.fileFsyncs++;
    nodeMetadataFs.fsyncSync(fd);
  }
  closeSync(fd: number): void {
    this.dirFds.delete(fd);
    nodeMetadataFs.closeSync(fd);
  }
  renameSync(from: string, to: string): void {
    this.#alive('renameSync');
    this.cost.renames++;
    this.#remember(to);
    nodeMetadataFs.renameSync(from, to);
  }
  unlinkSync(path: string): void {
    this.#alive('unlinkSync');
    this.cost.unlinks++;
    if (existsSync(path)) this.#remember(path);
    nodeMetadataFs.unlinkSync(path);
  }
}
