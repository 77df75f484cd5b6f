// SPDX-License-Identifier: MIT
// SIGTERM to `devmapper ds init` while its mkfs.ext4 runs, against the real kernel: the CLI kills
// the mkfs child, the aborted init tears down the pool it created and releases the root lock, the
// process exits 143, and the next `ds init` / `ds status` (with the options saved before the
// init) succeed.
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RootLock, prefixFor } from '../../src/index.js';
import { privilegedSuite, testTmpDir, withSweep } from '../helpers/privileged.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = join(repo, 'bin/devmapper.js');
/** Generous: a node start in the TCG guest takes 6 s on a quiet host, up to a minute on a busy one. */
const DEADLINE_MS = 300_000;
/** Large enough that mkfs.ext4 (lazy_itable_init=0, lazy_journal_init=0: it writes every inode table and the journal) runs for seconds. */
const OPTS = ['--opt', 'dm.loopdatasize=1G', '--opt', 'dm.loopmetadatasize=16M', '--opt', 'dm.basesize=2G'];

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node bin/devmapper.js ARGS` as a child process. */
function start(args: string[]): { pid: number; done: Promise<Exit> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const done = new Promise<Exit>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
  if (child.pid === undefined) throw new Error('spawn failed');
  return { pid: child.pid, done };
}

async function dmx(...args: string[]): Promise<Exit> {
  return start(args).done;
}

/** [pid, ppid, comm] of every process, from /proc/<pid>/stat (proc(5): comm in parentheses, then state, ppid). */
function processes(): [number, number, string][] {
  const out: [number, number, string][] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push([Number(name), ppid, comm]);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const mkfsProcesses = (): [number, number, string][] => processes().filter(([, , comm]) => comm === 'mkfs.ext4');

function dmNames(prefix: string): string[] {
  const out = execFileSync('dmsetup', ['ls'], { encoding: 'utf8' });
  if (/No devices found/i.test(out)) return [];
  return out.split('\n').map((l) => l.split('\t')[0]?.trim() ?? '').filter((n) => n.startsWith(prefix));
}

const sig = privilegedSuite('cli-signals');
let dsRoot: string | undefined;

// Before withSweep's hook: DeviceSet devices are named by the root's inode, not the test marker.
sig.after(async () => {
  if (!dsRoot || !existsSync(dsRoot)) return;
  const prefix = prefixFor(statSync(dsRoot, { bigint: true }));
  if (dmNames(prefix).length === 0) return;
  await dmx('ds', 'shutdown', '--root', dsRoot);
  for (const n of dmNames(prefix).reverse()) execFileSync('dmsetup', ['remove', '--force', n]);
});
withSweep(sig);

sig('ds init: SIGTERM while mkfs.ext4 runs → mkfs killed, exit 143, lock released; the next ds init and ds status succeed', async () => {
  const root = join(testTmpDir(), 'sig-root');
  dsRoot = root;
  assert.equal(mkfsProcesses(), [], 'no mkfs.ext4 before the test');
  const cli = start(['ds', 'init', '--root', root, ...OPTS]);
  let exited: Exit | undefined;
  void cli.done.then((e) => (exited = e));
  // Poll /proc for a mkfs.ext4 child of the CLI process (a safety deadline, not a timing assumption).
  const t0 = Date.now();
  let mkfs: number | undefined;
  while (mkfs === undefined && exited === undefined && Date.now() - t0 < DEADLINE_MS) {
    mkfs = mkfsProcesses().find(([, ppid]) => ppid === cli.pid)?.[0];
    if (mkfs === undefined) await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(mkfs !== undefined, `no mkfs.ext4 child of the CLI seen (${exited ? `it exited ${exited.code}: ${exited.stderr}` : 'deadline'})`);
  process.kill(cli.pid, 'SIGTERM');
  const e = await cli.done;
  assert.is(e.signal, null, 'the CLI exited by itself, not killed by the signal');
  assert.is(e.code, 143, e.stderr);
  assert.match(e.stderr, /^devmapper: SIGTERM: stopping: .*\ndevmapper: EABORTED: DeviceSet\.init was aborted\nhint: stopped by SIGTERM: /);
  assert.equal(mkfsProcesses(), [], 'no mkfs.ext4 left running');
  RootLock.acquire(root).release(); // throws DeviceSetLockedError if the flock were still held
  const prefix = prefixFor(statSync(root, { bigint: true }));
  assert.equal(dmNames(prefix), [], 'the aborted init removed the pool it created');
  assert.equal(JSON.parse(readFileSync(join(root, 'cli-options.json'), 'utf8')), {
    formatVersion: 1,
    options: ['dm.loopdatasize=1G', 'dm.loopmetadatasize=16M', 'dm.basesize=2G'],
  });

  const again = await dmx('ds', 'init', '--root', root);
  assert.is(again.code, 0, again.stderr);
  const st = await dmx('ds', 'status', '--root', root, '--json');
  assert.is(st.code, 0, st.stderr);
  const status = JSON.parse(st.stdout) as { baseDeviceSize: number; baseDeviceFS: string; mode: string };
  assert.equal([status.baseDeviceSize, status.baseDeviceFS, status.mode], [2 * 1024 ** 3, 'ext4', 'rw']);
  const down = await dmx('ds', 'shutdown', '--root', root);
  assert.is(down.code, 0, down.stderr);
  assert.equal(dmNames(prefix), []);
});

sig.run();
