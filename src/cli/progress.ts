// SPDX-License-Identifier: MIT
// Progress lines of long `ds` commands (init, resize): the DeviceSet's progress events, from an
// onProgress callback or the devmapper:deviceset channel, as `devmapper: <what> <done>/<total>...`
// lines on stderr. Only on a terminal and not under --quiet or --json (Ctx.progress decides).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { DEVICESET_CHANNEL, type DeviceSetChannelMessage, type ProgressEvent } from '../deviceset/index.js';
import type { Ctx } from './context.js';

const LABELS: Readonly<Record<ProgressEvent['step'], string>> = {
  'sparse-file': 'loopback file',
  discard: 'discarding',
  'grow-data': 'growing the pool',
};

/**
 * The progress callback of one command: a line per unit done (its start, done = 0, is the line
 * the command printed already). A sparse file's stages take microseconds, so only its end is shown.
 * Undefined when no line can be shown (not a terminal, --quiet or --json), so that nothing is
 * collected for nobody.
 */
export function progressLines(ctx: Ctx, json: boolean): ((e: ProgressEvent) => void) | undefined {
  if (!ctx.stderrIsTTY || ctx.quiet || json) return undefined;
  return (e) => {
    if (e.done === 0) return;
    if (e.step === 'sparse-file' && e.done < e.total) return;
    ctx.progress(`${LABELS[e.step]} ${e.done}/${e.total}`);
  };
}

/**
 * Shows the channel's progress events while `fn` runs (for work whose API has no onProgress,
 * such as DeviceSet.init's loopback files): subscribes only when a line can be shown.
 */
export async function withChannelProgress<T>(ctx: Ctx, json: boolean, fn: () => Promise<T>): Promise<T> {
  const show = progressLines(ctx, json);
  if (show === undefined) return fn();
  const on = (m: unknown): void => {
    const msg = m as DeviceSetChannelMessage;
    if (msg.kind === 'progress') show(msg);
  };
  subscribe(DEVICESET_CHANNEL, on);
  try {
    return await fn();
  } finally {
    unsubscribe(DEVICESET_CHANNEL, on);
  }
}
