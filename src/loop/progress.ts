// SPDX-License-Identifier: MIT
// Progress reports of the loop layer's long work (a sparse file's creation, a chunked discard).

/** One progress report: `done` of `total` units (the stages of a sparse file, the chunks of a discard). */
export interface LoopProgressEvent {
  readonly step: 'sparse-file' | 'discard';
  readonly done: number;
  readonly total: number;
}

/** An `onProgress` option: called with done = 0 first, then after each unit, done = total last. */
export type LoopProgressCallback = (event: LoopProgressEvent) => void;
