// SPDX-License-Identifier: MIT
// The metadata fs seam of the journal's fsync tests (journal-fsync.test.ts, journal-group.test.ts):
// counts file fsyncs, directory fsyncs, renames and unlinks, and can lose every name change since
// the last directory fsync (a power cut).
import { constants, existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { nodeMetadataFs, type MetadataFile, type MetadataFs } from '../../../src/deviceset/metadata.js';

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
 * nodeMetadataFs that tells file fsyncs from directory fsyncs (the file was opened O_DIRECTORY),
 * and remembers the renames and unlinks since the last directory fsync so that {@link powerCut}
 * can lose them all (the worst a crash may do to them; the file data was fsynced or is a temp).
 */
export class RecordingFs implements MetadataFs {
  /** `dead()` true: the process died, every later mutating call throws (as CountingMetadataFs). */
  constructor(
    readonly dead: () => boolean = () => false,
    /**
     * When set, a file fsync is held until `count` file fsyncs are held together (then all go on)
     * or `timeoutMs` passes: fsyncs issued one after another never fill it, concurrent ones do.
     */
    readonly syncBarrier?: { readonly count: number; readonly timeoutMs: number },
  ) {}
  /** The most file fsyncs in flight at once. */
  maxFileSyncsInFlight = 0;
  #fileSyncsInFlight = 0;
  #held: (() => void)[] = [];
  async #fileSync(sync: () => Promise<void>): Promise<void> {
    this.#fileSyncsInFlight++;
    this.maxFileSyncsInFlight = Math.max(this.maxFileSyncsInFlight, this.#fileSyncsInFlight);
    try {
      const barrier = this.syncBarrier;
      if (barrier) {
        await new Promise<void>((resolve) => {
          const go = (): void => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            this.#held = this.#held.filter((g) => g !== go);
            resolve();
          }, barrier.timeoutMs);
          this.#held.push(go);
          if (this.#held.length >= barrier.count) for (const g of this.#held.splice(0)) g();
        });
      }
      await sync();
    } finally {
      this.#fileSyncsInFlight--;
    }
  }
  #alive(what: string): void {
    if (this.dead()) throw new Error(`metadata ${what} after death`);
  }
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
  readonly mkdir = nodeMetadataFs.mkdir;
  readonly readdir = nodeMetadataFs.readdir;
  readonly readFile = nodeMetadataFs.readFile;
  async open(path: string, flags: number, mode?: number): Promise<MetadataFile> {
    this.#alive('open');
    const file = await nodeMetadataFs.open(path, flags, mode);
    const dir = (flags & constants.O_DIRECTORY) !== 0;
    return {
      write: (data, offset, length) => {
        this.#alive('write');
        return file.write(data, offset, length);
      },
      sync: () => {
        this.#alive('sync');
        if (dir) {
          this.cost.dirFsyncs++;
          this.pending = [];
          return file.sync();
        }
        this.cost.fileFsyncs++;
        return this.#fileSync(() => file.sync());
      },
      close: () => file.close(),
    };
  }
  async rename(from: string, to: string): Promise<void> {
    this.#alive('rename');
    this.cost.renames++;
    this.#remember(to);
    await nodeMetadataFs.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    this.#alive('unlink');
    this.cost.unlinks++;
    if (existsSync(path)) this.#remember(path);
    await nodeMetadataFs.unlink(path);
  }
}
