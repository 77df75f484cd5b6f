// SPDX-License-Identifier: MIT
// Crash injection: named points at every boundary between kernel calls and metadata writes.
/**
 * Every crash point the DeviceSet passes, in the order an operation reaches them. A point is
 * reached *before* the step it names. Tests kill the process at each one (see
 * {@link crashHook}; devmapper/testing's crashHookFromEnv) and check that the next init recovers.
 */
export const CRASH_POINTS = [
  // init
  'init:before-pool-create',
  'init:before-loop-close',
  'init:before-pool-grow',
  'init:before-probe',
  'init:before-reconcile-action',
  'init:before-deviceset-save',
  // base image
  'base:before-activate',
  'base:before-mkfs',
  'base:before-initialized',
  'base:before-uuid-save',
  'base:before-grow',
  // create_thin (base) and create_snap (addDevice), through the journal
  'create:before-intent',
  'create:before-message',
  'create:before-commit',
  'create:before-ready',
  'snapshot:before-intent',
  'snapshot:before-message',
  'snapshot:before-commit',
  'snapshot:before-ready',
  'add:before-grow',
  // a group commit (journal.ts) of two or more creates / snapshots / deletes: after every intent
  // is renamed, before their one directory fsync; after every message, before their one commit
  'batch:before-intent-sync',
  'batch:before-commit',
  // a filesystem grow (base or addDevice with a size), after its intent is saved
  'grow:before-mount',
  'grow:before-tool',
  'grow:before-unmount',
  'grow:before-size-save',
  // delete
  'delete:before-discard',
  'delete:before-deactivate',
  'delete:before-intent',
  'delete:before-message',
  'delete:before-commit',
  'delete:before-remove-record',
  // shutdown
  'shutdown:before-save',
  'shutdown:before-unmount',
  'shutdown:before-deactivate',
  'shutdown:before-pool-remove',
  'shutdown:before-unlock',
] as const;
export type CrashPointName = (typeof CRASH_POINTS)[number];

/** Called with a point's name before the step; a test hook may stop the process dead there. */
export type CrashHook = (name: CrashPointName) => void;

/** Where a crash hook stops: the k-th hit of a named point, or the n-th point hit overall. */
export type CrashSpec = { readonly kind: 'name'; readonly name: CrashPointName; readonly occurrence: number } | { readonly kind: 'index'; readonly index: number };

/** Parses `<point>[@k]` or `#n` (1-based). @throws Error naming the valid forms. */
export function parseCrashSpec(value: string): CrashSpec {
  const idx = /^#(\d+)$/.exec(value);
  if (idx) {
    const index = Number(idx[1]);
    if (index >= 1) return { kind: 'index', index };
  }
  const m = /^([a-z-]+:[a-z-]+)(?:@(\d+))?$/.exec(value);
  if (m && (CRASH_POINTS as readonly string[]).includes(m[1] ?? '')) {
    const occurrence = m[2] === undefined ? 1 : Number(m[2]);
    if (occurrence >= 1) return { kind: 'name', name: m[1] as CrashPointName, occurrence };
  }
  throw new Error(`crash point ${JSON.stringify(value)}: expected <point>[@k] or #n; points: ${CRASH_POINTS.join(', ')}`);
}

/**
 * A hook that counts hits and calls `die` at the spec'd one. `trace` receives every hit.
 * Pure apart from its callbacks, so tests can enumerate points without dying.
 */
export function crashHook(spec: CrashSpec | undefined, die: (name: CrashPointName) => void, trace?: (name: CrashPointName) => void): CrashHook {
  const hits = new Map<string, number>();
  let total = 0;
  return (name) => {
    trace?.(name);
    total++;
    const n = (hits.get(name) ?? 0) + 1;
    hits.set(name, n);
    if (!spec) return;
    if (spec.kind === 'index' ? total === spec.index : spec.name === name && spec.occurrence === n) die(name);
  };
}

/** SIGKILL ourselves: no finally blocks, no exit handlers, exactly like a power cut for our files. */
export function dieNow(): never {
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL to self is delivered before kill() returns on Linux; never reached.
  throw new Error('SIGKILL did not stop the process');
}

/**
 * The default hook of a DeviceSet: does nothing. Crash injection is for tests only and must be
 * asked for explicitly (`crashPoint`); nothing in the environment of a normal process turns it on
 * (devmapper/testing's crashHookFromEnv is the env-reading hook test children pass).
 */
export const noCrashHook: CrashHook = () => {};
