// SPDX-License-Identifier: MIT
// The node:diagnostics_channel channel of the DeviceSet: one message per step (journal writes,
// pool messages, activation, mkfs, discard, grow, mount), and progress of chunked work. It sits
// above the dm channel (`devmapper:dm`, src/dm/diagnostics.ts), which sees the ioctls of a step.
/**
 * # Tracing the DeviceSet's steps
 *
 * The steps are traced where they cross a seam the DeviceSet already has, so the code that runs
 * them (journal.ts, activation.ts, base-image.ts) is not changed by tracing: the metadata store,
 * the pool object, the Activation object and the FsTools are wrapped once, when the DeviceSet is
 * built ({@link traceStore}, {@link tracePool}, {@link traceActivation}, {@link traceTools}).
 * A wrapped method checks `hasSubscribers` once per call; with no subscriber it calls the
 * original and nothing else (no clock read, no message object).
 */
import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

/** Every DeviceSet step, once it finished or failed; and progress of chunked work. */
export const DEVICESET_CHANNEL = 'devmapper:deviceset';

/**
 * A step's name:
 * - `journal-intent`: the durable intent record of a create (`creating`) or delete (`deleting`);
 * - `journal-record`: any other record write (a create's `ready` record after its commit, an undo,
 *   a deferred deletion, recovery);
 * - `journal-remove`: a record removed (a delete's, after its commit; an undone create);
 * - `journal-deviceset`: the deviceset record written (on an external pool this is the commit);
 * - `create-thin`, `create-snap`, `delete-thin`, `set-transaction-id`: the pool messages
 *   (`set-transaction-id` is the commit on a pool this DeviceSet owns);
 * - `pool-resize`: the pool's table reloaded at a new size (resizePool, autoextend, init);
 * - `grow-data`: resizePool's or autoextend's whole growth of the loopback data file;
 * - `activate`, `deactivate`: the thin device's dm device made or removed;
 * - `discard`: BLKDISCARD of a device before its deletion (dm.blkdiscard);
 * - `mkfs`, `grow-filesystem`: the external tools;
 * - `mount`, `unmount`.
 */
export type DeviceSetStep =
  | 'journal-intent'
  | 'journal-record'
  | 'journal-remove'
  | 'journal-deviceset'
  | 'create-thin'
  | 'create-snap'
  | 'delete-thin'
  | 'set-transaction-id'
  | 'pool-resize'
  | 'grow-data'
  | 'activate'
  | 'deactivate'
  | 'discard'
  | 'mkfs'
  | 'grow-filesystem'
  | 'mount'
  | 'unmount';

/** Chunked work that reports progress: a sparse file's creation or growth, a discard, a pool's growth. */
export type ProgressStep = 'sparse-file' | 'discard' | 'grow-data';

/** One progress report: `done` of `total` units (chunks or stages: see the step). */
export interface ProgressEvent {
  readonly step: ProgressStep;
  readonly done: number;
  readonly total: number;
}

/** The `onProgress` option of chunked work; called with done = 0 first and done = total last. */
export type ProgressCallback = (event: ProgressEvent) => void;

/** What {@link DEVICESET_CHANNEL} publishes for a finished (or failed) step. */
export interface DeviceSetStepMessage {
  readonly kind: 'step';
  readonly step: DeviceSetStep;
  /** The device's hash ('' = the base device), or null for a step of the pool or the set. */
  readonly hash: string | null;
  /** Wall time of the step, in milliseconds. */
  readonly durationMs: number;
  /** null on success, else the thrown error's `code` (its `name` when it has no string code). */
  readonly code: string | null;
}

/** What {@link DEVICESET_CHANNEL} publishes for progress of chunked work. */
export interface DeviceSetProgressMessage extends ProgressEvent {
  readonly kind: 'progress';
  /** As in {@link DeviceSetStepMessage.hash}. */
  readonly hash: string | null;
}

/** Everything {@link DEVICESET_CHANNEL} publishes. */
export type DeviceSetChannelMessage = DeviceSetStepMessage | DeviceSetProgressMessage;

/** @internal The channel object (publishers only). */
export const deviceSetChannel = channel(DEVICESET_CHANNEL);

/** The `code` of a thrown value, as published. */
function codeOf(err: unknown): string {
  if (err !== null && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string') return name;
  }
  return 'Error';
}

/**
 * Runs `fn` as the step `step` of `hash`: published when it settled, if anyone subscribes.
 * `hash` is a function so that working it out costs nothing without a subscriber.
 */
export function traceStep<T>(step: DeviceSetStep, hash: string | null | (() => string | null), fn: () => T): T {
  if (!deviceSetChannel.hasSubscribers) return fn();
  const h = typeof hash === 'function' ? hash() : hash;
  const t0 = performance.now();
  const done = (code: string | null): void => {
    const msg: DeviceSetStepMessage = { kind: 'step', step, hash: h, durationMs: performance.now() - t0, code };
    deviceSetChannel.publish(msg);
  };
  let out: T;
  try {
    out = fn();
  } catch (err) {
    done(codeOf(err));
    throw err;
  }
  if (out instanceof Promise) {
    return out.then(
      (v: unknown) => {
        done(null);
        return v;
      },
      (err: unknown) => {
        done(codeOf(err));
        throw err;
      },
    ) as T;
  }
  done(null);
  return out;
}

/**
 * Publishes a progress event of `hash` on the channel (when anyone subscribes) and hands it to
 * `onProgress`. Returns the callback to give to the chunked work, or undefined when neither wants it.
 */
export function progressTo(hash: string | null, onProgress: ProgressCallback | undefined): ProgressCallback | undefined {
  if (!deviceSetChannel.hasSubscribers && onProgress === undefined) return undefined;
  return (e) => {
    if (deviceSetChannel.hasSubscribers) {
      const msg: DeviceSetProgressMessage = { kind: 'progress', step: e.step, hash, done: e.done, total: e.total };
      deviceSetChannel.publish(msg);
    }
    onProgress?.(e);
  };
}

/** `step` and `hash` of one call of a wrapped method, from its arguments; null = do not trace this call. */
type StepOf = (args: readonly unknown[]) => readonly [DeviceSetStep, string | null] | null;

/** Objects already wrapped (wrapping twice would publish every step twice). */
const wrapped = new WeakSet<object>();

/**
 * Replaces the methods named in `steps` on `obj` itself (own properties shadowing the
 * prototype's), each calling the original with `obj` as `this`: private fields keep working, and
 * the object's own calls of these methods are traced too. Returns `obj`.
 */
function wrapMethods<T extends object>(obj: T, steps: Readonly<Record<string, StepOf>>): T {
  if (wrapped.has(obj)) return obj;
  wrapped.add(obj);
  const o = obj as Record<string, unknown>;
  for (const [name, stepOf] of Object.entries(steps)) {
    const orig = o[name];
    if (typeof orig !== 'function') continue;
    const fn = orig as (...a: unknown[]) => unknown;
    o[name] = function traced(): unknown {
      // `arguments`, not a rest parameter: V8 passes it to apply without building an array.
      if (!deviceSetChannel.hasSubscribers) return fn.apply(obj, arguments as unknown as unknown[]);
      const args = Array.prototype.slice.call(arguments) as unknown[];
      const s = stepOf(args);
      if (s === null) return fn.apply(obj, args);
      return traceStep(s[0], s[1], () => fn.apply(obj, args));
    };
  }
  return obj;
}

/** The part of a device record the wrappers read. */
interface RecordLike {
  readonly hash: string;
  readonly deviceId: number;
  readonly state?: string;
  readonly deleted?: boolean;
}

/** Maps thin ids to hashes for the pool messages, and remembers the hash of the open operation. */
export class StepTracer {
  readonly #byId = new Map<number, string>();
  #opHash: string | null = null;
  /** Fallback lookup (the journal's records) for ids no record write named. */
  readonly #lookup: (id: number) => string | null;

  constructor(lookup: (id: number) => string | null) {
    this.#lookup = lookup;
  }

  #hashOfId(id: unknown): string | null {
    if (typeof id !== 'number') return null;
    return this.#byId.get(id) ?? this.#lookup(id);
  }

  /**
   * The metadata store (MetadataStore): `saveDevice`, `removeDevice`, `saveDeviceSet`. An intent
   * (a `creating` or `deleting` record not marked deleted) opens an operation: the pool messages
   * and commit that follow are published with its hash.
   */
  traceStore<T extends object>(store: T): T {
    return wrapMethods(store, {
      saveDevice: (a) => {
        const rec = a[0] as RecordLike;
        this.#byId.set(rec.deviceId, rec.hash);
        const intent = (rec.state === 'creating' || rec.state === 'deleting') && rec.deleted !== true;
        this.#opHash = intent ? rec.hash : null;
        return [intent ? 'journal-intent' : 'journal-record', rec.hash];
      },
      removeDevice: (a) => {
        this.#opHash = null;
        return ['journal-remove', a[0] as string];
      },
      saveDeviceSet: () => ['journal-deviceset', this.#opHash],
    });
  }

  /** A ThinPool: its messages and its resize. */
  tracePool<T extends object>(pool: T): T {
    return wrapMethods(pool, {
      createThin: (a) => ['create-thin', this.#hashOfId(a[0])],
      createSnap: (a) => ['create-snap', this.#hashOfId(a[0])],
      deleteThin: (a) => ['delete-thin', this.#hashOfId(a[0])],
      setTransactionId: () => ['set-transaction-id', this.#opHash],
      resize: () => ['pool-resize', null],
    });
  }
}

/** The DeviceSet's Activation object: activate, deactivate (every kind), discard. */
export function traceActivation<T extends object>(act: T): T {
  return wrapMethods(act, {
    activate: (a) => ['activate', (a[0] as RecordLike).hash],
    deactivate: (a) => ['deactivate', a[0] as string],
    removeUnlessBusy: (a) => ['deactivate', a[0] as string],
    quietDeactivate: (a) => ['deactivate', a[0] as string],
    discard: (a) => ['discard', (a[0] as RecordLike).hash],
  });
}

/**
 * The hash of a thin device's node path (`<dm node dir>/<prefix>-<hash>`, `<prefix>-base` for
 * the base device), or null for any other path. `basePath` is the base device's node path.
 */
export function hashOfNodePath(basePath: string): (device: string) => string | null {
  const stem = basePath.slice(0, -'base'.length);
  return (device) => {
    if (!device.startsWith(stem)) return null;
    const rest = device.slice(stem.length);
    return rest === 'base' ? '' : rest;
  };
}

/**
 * FsTools whose mkfs and grow are traced; `hashOf` names the device of a node path. A new object:
 * the given tools (often the shared realFsTools) are not changed. `probe` stays absent when the
 * given tools have none.
 */
export function traceTools<T extends { mkfs: (...a: never[]) => Promise<void>; grow: (...a: never[]) => Promise<void>; probe?: unknown }>(
  tools: T,
  hashOf: (device: string) => string | null,
): T {
  const t = tools as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  // Every method the tools have (own or inherited, a class's too), so that a member added to
  // FsTools later is passed through, not dropped; absent ones stay absent.
  for (let o: object | null = tools; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const key of Object.getOwnPropertyNames(o)) {
      const fn = t[key];
      if (key === 'constructor' || key in out || typeof fn !== 'function') continue;
      out[key] = (...a: unknown[]) => (fn as (...x: unknown[]) => unknown).apply(tools, a);
    }
  }
  return wrapMethods(out, {
    mkfs: (a) => ['mkfs', hashOf(a[1] as string)],
    grow: (a) => ['grow-filesystem', hashOf(a[1] as string)],
  }) as unknown as T;
}
