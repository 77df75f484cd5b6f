// SPDX-License-Identifier: MIT
// The gate, naming and hygiene helpers for privileged (real-kernel) tests.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { suite, type Test } from 'uvu';

/** Every dm device a test creates carries this marker in its name (and uuid, when it has one). */
export const TEST_MARKER = 'dmtest-delme';
/** Opt-in variable: privileged suites only run when it is set to a non-empty value other than 0. */
export const PRIVILEGED_ENV = 'DEVMAPPER_PRIVILEGED';
/** Root of every temp dir privileged tests make; loop devices backed by files under it are swept. */
export const TEST_TMP_ROOT = '/tmp/devmapper-dmtest';

/**
 * True in the CI matrix's udev cell: the VM runner started systemd-udevd in the guest and set
 * DEVMAPPER_VM_UDEV=1 (src/vm/runner.ts). Then udev must be running for the whole run (checked by
 * privilegedProblems) and no marked /dev/mapper node may be a block node we made (withSweep).
 */
export const UDEV_CELL = process.env['DEVMAPPER_VM_UDEV'] === '1';

/**
 * In the udev cell: waits until systemd-udevd has handled every queued event. udev's rules open a
 * block device on its change events (blkid; the inotify "watch" option makes a close after a
 * write one), so a delete right after activity may find the device open and defer, by design.
 * A test that asserts an exact outcome ('deleted', nothing pending) settles first. udevadm acts
 * inside the guest's chroot only when told to (SYSTEMD_IGNORE_CHROOT). A no-op without udev.
 */
export function udevSettle(): void {
  if (!UDEV_CELL) return;
  execFileSync('udevadm', ['settle'], { env: { ...process.env, SYSTEMD_IGNORE_CHROOT: '1' }, stdio: 'ignore', timeout: 120_000 });
}

let counter = 0;
/** A unique, marked dm name: `foo` → `foo-dmtest-delme-<pid>-<n>`. */
export function testName(base: string): string {
  return `${base}-${TEST_MARKER}-${process.pid}-${++counter}`;
}

let runDir: string | undefined;
/** This process's temp dir under TEST_TMP_ROOT (created on first use), e.g. for loop backing files. */
export function testTmpDir(): string {
  // The sweeper empties TEST_TMP_ROOT after each suite, and all suites share one process.
  if (!runDir || !existsSync(runDir)) {
    mkdirSync(TEST_TMP_ROOT, { recursive: true });
    runDir = mkdtempSync(join(TEST_TMP_ROOT, `run-${process.pid}-`));
  }
  return runDir;
}

export function privilegedOptedIn(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[PRIVILEGED_ENV];
  return v !== undefined && v !== '' && v !== '0';
}

/**
 * What is wrong with this machine for privileged tests (empty when nothing is). Checked only
 * when opted in: then a problem is a failure, never a skip.
 */
export function privilegedProblems(): string[] {
  const problems: string[] = [];
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) problems.push('not running as root');
  if (!existsSync('/dev/mapper/control')) problems.push('/dev/mapper/control is missing (no device-mapper: modprobe dm-mod, or use npm run test:vm)');
  else {
    // The node can exist without a driver behind it (dmsetup's package creates it): opening it
    // then fails with ENODEV, so only a successful open proves device-mapper is there.
    try {
      closeSync(openSync('/dev/mapper/control', 'r+'));
    } catch (err) {
      problems.push(`/dev/mapper/control cannot be opened (${(err as NodeJS.ErrnoException).code}): no device-mapper driver in this kernel; use npm run test:vm`);
    }
  }
  if (!existsSync('/dev/loop-control')) problems.push('/dev/loop-control is missing (modprobe loop)');
  if (UDEV_CELL && !existsSync('/run/udev/control')) problems.push('DEVMAPPER_VM_UDEV=1 but systemd-udevd is not running (/run/udev/control is missing)');
  return problems;
}

/** A stand-in suite that swallows registrations and, on run(), registers one skip or one failure. */
function placeholderSuite(name: string, onRun: (real: Test) => void): Test {
  const noop = (): void => {};
  const hook = Object.assign(noop.bind(null), { each: noop });
  const fake = Object.assign((_n: string, _f: unknown) => {}, {
    only: noop,
    skip: noop,
    before: hook,
    after: hook,
    run: () => {
      const real = suite(name);
      onRun(real);
      real.run();
    },
  });
  return fake as unknown as Test;
}

/**
 * Returns a uvu suite for tests that need root and a real kernel.
 * - not opted in ($DEVMAPPER_PRIVILEGED unset): the suite's tests are not registered; one skipped
 *   test says how to enable them;
 * - opted in but not root, or /dev/mapper/control or /dev/loop-control missing: one test FAILS
 *   with the reasons (misconfiguration must never look like success);
 * - otherwise the real suite.
 */
export function privilegedSuite(name: string): Test {
  if (!privilegedOptedIn()) {
    return placeholderSuite(name, (real) => {
      const title = `${name}: privileged tests skipped; set ${PRIVILEGED_ENV}=1 and run as root with device-mapper (npm run test:vm does this in a VM)`;
      console.log(`  [skip] ${title}`);
      real.skip(title);
    });
  }
  const problems = privilegedProblems();
  if (problems.length > 0) {
    return placeholderSuite(name, (real) => {
      real(`${name}: privileged environment check`, () => {
        throw new Error(`${PRIVILEGED_ENV} is set but this environment cannot run privileged tests: ${problems.join('; ')}`);
      });
    });
  }
  return suite(name);
}

function tryRun(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** dm device names currently present that carry TEST_MARKER. */
export function markedDmDevices(): string[] {
  const out = tryRun('dmsetup', ['ls']);
  if (/No devices found/i.test(out)) return [];
  return out
    .split('\n')
    .map((l) => l.split('\t')[0]?.trim() ?? '')
    .filter((n) => n.includes(TEST_MARKER));
}

/** Loop devices whose backing file lies under TEST_TMP_ROOT, as [device, backing file] pairs. */
export function testLoopDevices(): [string, string][] {
  const out = tryRun('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  const root = existsSync(TEST_TMP_ROOT) ? realpathSync(TEST_TMP_ROOT) : TEST_TMP_ROOT;
  const pairs: [string, string][] = [];
  for (const line of out.split('\n')) {
    const m = /^(\S+)\s+(.*?)\s*$/.exec(line);
    if (!m || !m[1] || !m[2]) continue;
    const back = m[2].replace(/ \(deleted\)$/, '');
    if (back.startsWith(TEST_TMP_ROOT + '/') || back.startsWith(root + '/')) pairs.push([m[1], back]);
  }
  return pairs;
}

export interface SweepReport {
  readonly removedDm: string[];
  readonly detachedLoops: string[];
  readonly survivors: string[];
}

/**
 * Removes leftovers of earlier tests: dm devices named with TEST_MARKER (repeating while progress
 * is made, since stacked devices must go top-down) and loop devices backed by files under
 * TEST_TMP_ROOT. It deliberately uses independent tools (dmsetup, losetup), not this library:
 * a bug in our own remove or detach code must not be able to hide the leftovers it causes.
 */
export function sweep(): SweepReport {
  const removedDm: string[] = [];
  const detachedLoops: string[] = [];
  let left = markedDmDevices();
  for (let progress = true; left.length > 0 && progress; ) {
    progress = false;
    for (const name of left) {
      try {
        tryRun('dmsetup', ['remove', '--force', '--retry', name]);
        removedDm.push(name);
        progress = true;
      } catch {
        // still held open, or a lower device of one not yet removed: try again next round
      }
    }
    left = markedDmDevices();
  }
  for (const [dev] of testLoopDevices()) {
    try {
      tryRun('losetup', ['--detach', dev]);
      detachedLoops.push(dev);
    } catch {
      // reported below as a survivor
    }
  }
  const survivors = [...markedDmDevices(), ...testLoopDevices().map(([d, f]) => `${d} (${f})`)];
  if (survivors.length > 0) console.error(`sweep: could not remove test leftovers: ${survivors.join(', ')}`);
  return { removedDm, detachedLoops, survivors };
}

/**
 * Sweeps before the suite's first test and after its last one, and removes this process's
 * temp dir at the end. Survivors after the suite fail it.
 */
let afterHookFailed = false;
process.on('exit', () => {
  // uvu sets process.exitCode from its own count before the process exits; this runs after it.
  if (afterHookFailed) process.exitCode = 1;
});

/** The mounts at or below `dir` (from /proc/self/mountinfo), deepest first. */
function mountsUnder(dir: string): string[] {
  const unescape = (p: string): string => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => unescape(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes this process's run directory. A failed test can leave mounts in it (a dockerd killed
 * mid-start, a filesystem it mounted): those are below our own run directory, so they are ours;
 * unmount them and retry. Returns a problem to report, or undefined.
 */
function removeRunDir(dir: string): string | undefined {
  try {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  } catch (first) {
    const mounts = mountsUnder(dir);
    for (const m of mounts) {
      try {
        execFileSync('umount', [m], { stdio: 'ignore' });
      } catch {
        // reported below if the removal still fails
      }
    }
    try {
      rmSync(dir, { recursive: true, force: true });
      return `the run directory was still in use (${(first as Error).message}); unmounted ${mounts.length > 0 ? mounts.join(', ') : 'nothing'} and removed it`;
    } catch (second) {
      return `cannot remove the run directory ${dir}: ${(second as Error).message}; mounts below it: ${mountsUnder(dir).join(', ') || 'none'}`;
    }
  }
}

export function withSweep(s: Test): Test {
  let watcher: { w: FSWatcher; ours: Set<string> } | undefined;
  s.before(() => {
    sweep();
    if (UDEV_CELL) watcher = watchMapperNodes();
  });
  s.after(() => {
    watcher?.w.close();
    const fights = [...(watcher?.ours ?? [])];
    watcher = undefined;
    const problems: string[] = [];
    const { survivors } = sweep();
    if (runDir) {
      const dir = runDir;
      runDir = undefined;
      const left = removeRunDir(dir);
      if (left) problems.push(left);
    }
    if (survivors.length > 0) problems.push(`test leftovers survived the sweep: ${survivors.join(', ')}`);
    if (fights.length > 0) {
      problems.push(
        `udev is running, yet these /dev/mapper entries were block nodes, not udev's symlinks (made by us, or by a ` +
          `fallback after udev did not act in time): ${fights.join(', ')}`,
      );
    }
    // An `after` hook that throws makes uvu exit before it prints the suite's failed tests
    // (uvu's runner runs the hooks in a finally and loses the collected errors), hiding the
    // failure that caused the leftover. So report here and fail the process at exit instead:
    // the VM runner counts a non-zero guest exit as a failure.
    if (problems.length > 0) {
      for (const p of problems) console.error(`withSweep: ${p}`);
      afterHookFailed = true;
    }
  });
  return s;
}

const deliberateNodes = new Set<string>();
/** Tells the udev cell's watcher (see withSweep) that the test itself puts a block node at /dev/mapper/NAME. */
export function allowBlockNode(name: string): void {
  deliberateNodes.add(name);
}

/**
 * Under udev, /dev/mapper/NAME is udev's symlink to ../dm-N (10-dm.rules); a block node there was
 * made by someone else (DmControl's mknod fallback, or libdm's) and fights udev's. Watches
 * /dev/mapper (inotify on devtmpfs) and records every marked name seen as a block node. lstat runs
 * when the event is handled, so a node that is gone by then is missed: this can miss a fight, never
 * invent one.
 */
function watchMapperNodes(): { w: FSWatcher; ours: Set<string> } {
  const ours = new Set<string>();
  const w = watch('/dev/mapper', (_event, file) => {
    const name = file?.toString();
    if (!name || !name.includes(TEST_MARKER) || deliberateNodes.has(name)) return;
    try {
      if (lstatSync(`/dev/mapper/${name}`).isBlockDevice()) ours.add(name);
    } catch {
      // already gone
    }
  });
  return { w, ours };
}
