// SPDX-License-Identifier: MIT
// The devmapper CLI against the real kernel, as scripts use it: every command is a separate
// `node bin/devmapper.js ...` process. Every command runs at least once; --json outputs are
// validated against src/cli/schemas.ts; bad input gets the documented exit code and message,
// and each refusal leaves the kernel (dm ls, loop ls) and the DeviceSet root as they were.
import * as assert from 'uvu/assert';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { SCHEMAS } from '../../src/cli/schemas.js';
import { prefixFor } from '../../src/index.js';
import { run } from '../../src/cli/main.js';
import { privilegedSuite, testName, testTmpDir, withSweep } from '../helpers/privileged.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = join(repo, 'bin/devmapper.js');

/** Generous: a guest on an oversubscribed TCG host can take tens of seconds per node start. */
const COMMAND_TIMEOUT_MS = 300_000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function dmx(...args: string[]): Promise<Run> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; killed?: boolean; signal?: string | null }) | null;
      // A non-numeric code means it did not exit by itself: killed (timeout) or not started.
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : 99;
      res({ code, stdout, stderr: code === 99 ? `${stderr}[not exited: ${e?.killed ? `killed by ${e.signal} after ${COMMAND_TIMEOUT_MS} ms` : e?.message}]` : stderr });
    });
  });
}

/**
 * The same CLI code in this process: `run()` from src/cli/main.ts with the real DmControl and
 * LoopControl, exactly what bin/devmapper.js calls. A node start in the TCG guest costs 6 s on a
 * quiet host and 30-60 s on a busy one (ESM loading of ~350 files over 9p), so only the commands
 * whose point is the process boundary run as child processes: every `ds` command (a restart
 * between commands), `loop attach` (the binding outlives the process), and a few exit-code and
 * --json checks through the real bin.
 */
async function inproc(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY: false, env: process.env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

/**
 * Which runner: `ds` commands run as child processes (each one a restart of the DeviceSet; the
 * root lock is per process), as does anything marked `@`; everything else runs in this process
 * unless marked... `!` forces in-process (for ds commands refused before the DeviceSet opens).
 */
function exec(args: string[]): Promise<Run> {
  if (args[0] === '!') return inproc(...args.slice(1));
  if (args[0] === '@') return dmx(...args.slice(1));
  return args[0] === 'ds' ? dmx(...args) : inproc(...args);
}

/** Runs and asserts exit 0. */
async function ok(...args: string[]): Promise<string> {
  const r = await exec(args);
  assert.is(r.code, 0, `devmapper ${args.join(' ')} → ${r.code}\n${r.stderr}`);
  return r.stdout;
}

/** Runs with --json, asserts exit 0 and the schema of `key`. */
async function json<T>(key: keyof typeof SCHEMAS, ...args: string[]): Promise<T> {
  const text = await ok(...args, '--json');
  const v = JSON.parse(text) as unknown;
  const errors = [...Value.Errors(SCHEMAS[key] as TSchema, v)].map((e) => `${e.path}: ${e.message}`);
  assert.equal(errors, [], `${key}: ${text}`);
  return v as T;
}

/** Asserts the exit code, the `devmapper: CODE: ...` + `hint:` shape and a substring. */
async function refused(code: number, text: string, ...args: string[]): Promise<void> {
  const r = await exec(args);
  assert.is(r.code, code, `devmapper ${args.join(' ')}: want ${code}, got ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, /^devmapper: E[A-Z0-9]+: .+\n(cause: .*\n)*hint: .+\n$/, r.stderr);
  assert.match(r.stderr, text);
}

/** The kernel state a refusal must not change. */
async function kernelState(): Promise<string> {
  const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
  const dm = sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'name,major,minor,events,uuid,attr,tables_loaded']);
  const loops = sh('losetup', ['--list', '--noheadings', '-O', 'NAME,BACK-FILE,RO,AUTOCLEAR']);
  return `${dm}\n${loops}`;
}

/** Files under a DeviceSet root: records by content, loop files by size. The lock file is transient. */
function rootState(root: string): string {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = relative(root, p);
      const st = statSync(p);
      if (st.isDirectory()) {
        if (rel === 'mnt') continue;
        out.push(`${rel}/`);
        walk(p);
      } else if (rel === 'devmapper.lock') continue;
      else if (rel.startsWith('devicemapper/')) out.push(`${rel} ${st.size}`);
      else out.push(`${rel} ${readFileSync(p, 'utf8')}`);
    }
  };
  walk(root);
  return out.join('\n');
}

async function unchanged(root: string | undefined, fn: () => Promise<void>): Promise<void> {
  const k = await kernelState();
  const r = root ? rootState(root) : '';
  await fn();
  assert.is(await kernelState(), k, 'the kernel state changed');
  if (root) assert.is(rootState(root), r, 'the root directory changed');
}

const cli = privilegedSuite('cli');
let dsRoot: string | undefined;

// Registered before withSweep's hook so it runs first: DeviceSet devices are named by the root's
// inode, not the test marker, and the sweeper cannot detach loop devices a live pool holds.
cli.after(async () => {
  if (!dsRoot || !existsSync(dsRoot)) return;
  const prefix = prefixFor(statSync(dsRoot, { bigint: true }));
  const mine = async (): Promise<string[]> =>
    (JSON.parse((await inproc('dm', 'ls', '--json')).stdout) as { name: string }[]).map((d) => d.name).filter((n) => n.startsWith(prefix));
  if ((await mine()).length === 0) return;
  await dmx('ds', 'shutdown', '--root', dsRoot);
  for (const n of (await mine()).reverse()) await inproc('dm', 'remove', n);
});
withSweep(cli);

// `!` first = in this process; otherwise a child process. Every command runs as a child once.
cli('help, version, targets, bad command lines', async () => {
  assert.match(await ok('@', 'dm', 'create', '--help'), 'Usage: devmapper dm create');
  assert.match(await ok('!', '--help'), 'Usage: devmapper');
  const v = await json<{ driver: string; library: string }>('dm version', '@', 'dm', 'version');
  assert.match(v.driver, /^4\.\d+\.\d+$/);
  assert.match(await ok('!', 'dm', 'version'), 'Driver version:');
  const t = await json<{ name: string }[]>('dm targets', 'dm', 'targets');
  assert.ok(t.some((x) => x.name === 'thin-pool'), JSON.stringify(t));
  await unchanged(undefined, async () => {
    await refused(2, "unknown option '--frob'", '@', 'dm', 'ls', '--frob');
    await refused(2, "unknown command 'dm frob'", '!', 'dm', 'frob');
    await refused(2, 'missing --table', '!', 'dm', 'create', testName('x'));
    await refused(2, 'EINVALIDARG', '!', 'dm', 'create', testName('x'), '--table', '0 100');
    await refused(2, 'EINVALIDARG', '!', 'dm', 'create', testName('x'), '--table', '0 100 zero\n50 10 zero');
    await refused(2, 'EUSAGE', '!', 'loop', 'attach', '/tmp/x', '--size', '10Q');
    await refused(2, 'SIZE', '!', 'ds', 'resize', '--root', '/tmp/nowhere', 'huge');
  });
});

cli('dm: create, ls, info, table, status, load, suspend, resume, rename, wait, message, remove', async () => {
  const name = testName('cli-zero');
  const uuid = `${name}-uuid`;
  await ok('dm', 'create', name, '--table', '0 2048 zero', '--uuid', uuid);
  const ls = await json<{ name: string; uuid: string | null; major: number; minor: number }[]>('dm ls', 'dm', 'ls');
  const mine = ls.find((d) => d.name === name);
  assert.ok(mine, JSON.stringify(ls));
  assert.is(mine.uuid, uuid);
  assert.match(await ok('!', 'dm', 'ls'), name);
  const info = await json<{ activeTable: boolean; suspended: boolean; minor: number }>('dm info', 'dm', 'info', name);
  assert.ok(info.activeTable && !info.suspended);
  await json('dm info', '!', 'dm', 'info', '--uuid', uuid);
  await json('dm info', '!', 'dm', 'info', '--dev', `${mine.major}:${mine.minor}`);
  assert.equal(await json('dm table', 'dm', 'table', name), [{ start: 0, length: 2048, type: 'zero', params: '' }]);
  assert.is(await ok('!', 'dm', 'table', name), '0 2048 zero\n');
  await json('dm status', 'dm', 'status', name);
  await ok('dm', 'load', name, '--table', '0 1024 zero\n1024 1024 error');
  assert.ok((await json<{ inactiveTable: boolean }>('dm info', '!', 'dm', 'info', name)).inactiveTable);
  assert.equal((await json<unknown[]>('dm table', '!', 'dm', 'table', name, '--inactive')).length, 2);
  await ok('dm', 'suspend', name);
  assert.ok((await json<{ suspended: boolean }>('dm info', '!', 'dm', 'info', name)).suspended);
  await ok('dm', 'resume', name);
  assert.is(await ok('!', 'dm', 'table', name), '0 1024 zero\n1024 1024 error\n');
  const renamed = testName('cli-renamed');
  await ok('dm', 'rename', name, renamed);
  const before = await json<{ eventNr: number }>('dm info', '!', 'dm', 'info', renamed);
  const w = await json<{ info: { name: string } }>('dm wait', 'dm', 'wait', renamed, String(before.eventNr + 1000));
  assert.is(w.info.name, renamed);
  await unchanged(undefined, async () => {
    await refused(4, 'EDMDEVICEEXISTS', 'dm', 'create', renamed, '--table', '0 8 zero');
    await refused(3, 'EDEVICENOTFOUND', '@', 'dm', 'info', name);
    await refused(3, 'EDEVICENOTFOUND', '!', 'dm', 'remove', testName('ghost'));
    await refused(3, 'EDEVICENOTFOUND', '!', 'dm', 'table', '--uuid', 'no-such-uuid-dmtest-delme');
    await refused(5, 'EINVAL', 'dm', 'message', renamed, '0', 'hello');
    await refused(5, 'EINVAL', '!', 'dm', 'create', testName('bad'), '--table', '0 8 nosuchtarget');
    // An over-long type (> 15 bytes) is refused before the kernel, as bad input.
    await refused(2, 'EINVALIDARG', '!', 'dm', 'create', testName('bad'), '--table', '0 8 no-such-target-type');
  });
  await ok('dm', 'remove', renamed);
  assert.not.match(await ok('!', 'dm', 'ls'), renamed);
  const nt = testName('cli-notable');
  await ok('!', 'dm', 'create', nt, '--notable');
  assert.not.ok((await json<{ activeTable: boolean }>('dm info', '!', 'dm', 'info', nt)).activeTable);
  await ok('!', 'dm', 'rename', nt, '--set-uuid', `${nt}-u`);
  await ok('!', 'dm', 'remove', nt);
});

cli('loop: attach persists after the process exits (autoclear off), ls, find, detach', async () => {
  const file = join(testTmpDir(), 'cli-loop.img');
  await unchanged(undefined, async () => {
    await refused(3, 'EBACKINGNOTFOUND', 'loop', 'attach', join(testTmpDir(), 'missing.img'));
    await refused(2, 'EBACKINGNOTREGULAR', '!', 'loop', 'attach', testTmpDir());
    await refused(2, 'EINVALIDARG', '!', 'loop', 'attach', file, '--size', '1M', '--offset', '100');
  });
  assert.not.ok(existsSync(file), 'a refused attach does not create the file');
  const a = await json<{ path: string; autoclear: boolean; backingFile: string }>('loop attach', '@', 'loop', 'attach', file, '--size', '16M');
  assert.is(a.autoclear, false);
  // The attaching process has exited: another one still sees the binding.
  const ls = await json<{ path: string; backingFile: string | null; sizeBytes: number }[]>('loop ls', 'loop', 'ls');
  const entry = ls.find((l) => l.path === a.path);
  assert.ok(entry, JSON.stringify(ls));
  assert.is(entry.sizeBytes, 16 << 20);
  assert.match(await ok('!', 'loop', 'ls'), a.path);
  assert.equal((await json<{ path: string }[]>('loop find', 'loop', 'find', file)).map((m) => m.path), [a.path]);
  assert.match(await ok('!', 'loop', 'find', file), a.path);
  const ro = await json<{ path: string; readOnly: boolean }>('loop attach', '!', 'loop', 'attach', file, '--read-only', '--direct-io');
  assert.ok(ro.readOnly);
  await ok('!', 'loop', 'detach', ro.path);
  await ok('loop', 'detach', a.path.replace('/dev/', ''));
  assert.equal(await json('loop find', '!', 'loop', 'find', file), []);
  await refused(3, 'ELOOPNOTBOUND', '!', 'loop', 'detach', a.path);
  await json('loop ls', '!', 'loop', 'ls', '--all');
});

cli('pool and thin: create, status, message, thin create/activate/status/snap/deactivate/delete, remove', async () => {
  const dir = testTmpDir();
  const meta = (await ok('!', 'loop', 'attach', join(dir, 'cli-meta.img'), '--size', '8M')).trim();
  const data = (await ok('!', 'loop', 'attach', join(dir, 'cli-data.img'), '--size', '128M')).trim();
  const pool = testName('cli-pool');
  await refused(2, 'EUSAGE', '!', 'pool', 'create', pool, '--metadata', meta, '--data', data, '--feature', 'warp');
  await ok('pool', 'create', pool, '--metadata', meta, '--data', data, '--zero-metadata', '--feature', 'skip_block_zeroing');
  const st = await json<{ transactionId: number; dataBlockSize: number; kind: string }>('pool status', 'pool', 'status', pool);
  assert.is(st.kind, 'working');
  assert.is(st.dataBlockSize, 128);
  assert.match(await ok('!', 'pool', 'status', pool), 'TXID');
  await ok('thin', 'create', pool, '1');
  const thin = testName('cli-thin');
  await ok('thin', 'activate', pool, '1', thin, '--size', '32M');
  const ts = await json<{ deviceId: number; lengthSectors: number; mappedSectors: number }>('thin status', 'thin', 'status', pool, thin);
  assert.is(ts.deviceId, 1);
  assert.is(ts.lengthSectors, 65536);
  await ok('thin', 'snap', pool, '2', '1', '--origin', thin);
  await ok('pool', 'message', pool, 'set_transaction_id', '0', '1');
  assert.is((await json<{ transactionId: number }>('pool status', '!', 'pool', 'status', pool)).transactionId, 1);
  await unchanged(undefined, async () => {
    await refused(4, 'ETHINIDINUSE', '!', 'thin', 'create', pool, '1');
    await refused(3, 'ETHINIDNOTFOUND', '!', 'thin', 'delete', pool, '99');
    await refused(2, 'EUSAGE', '!', 'thin', 'create', pool, 'one');
    await refused(2, 'EUSAGE', '!', 'thin', 'activate', pool, '1', testName('t'), '--size', '1000');
    await refused(4, 'EPOOLBUSY', '!', 'pool', 'remove', pool);
    await refused(4, 'EEXIST', '!', 'pool', 'message', pool, 'create_thin', '2');
    await refused(3, 'EDEVICENOTFOUND', '!', 'pool', 'status', testName('nopool'));
  });
  await ok('thin', 'deactivate', pool, thin);
  await ok('thin', 'delete', pool, '2');
  await ok('!', 'thin', 'delete', pool, '1');
  await ok('pool', 'resize', pool);
  await ok('pool', 'remove', pool);
  await ok('!', 'loop', 'detach', meta);
  await ok('!', 'loop', 'detach', data);
});

cli('ds: init, list, create, mount, write, status, refusals, unmount, remove, resize, shutdown, restart', async () => {
  const root = join(testTmpDir(), 'ds-root');
  dsRoot = root;
  await refused(2, 'dm.basesize', '!', 'ds', 'init', '--root', root, '--opt', 'dm.basesize=tiny');
  assert.not.ok(existsSync(join(root, 'cli-options.json')), 'a refused init saves nothing');
  await ok('ds', 'init', '--root', root, '--opt', 'dm.loopdatasize=256M', '--opt', 'dm.loopmetadatasize=8M', '--opt', 'dm.basesize=64M');
  assert.match(readFileSync(join(root, 'cli-options.json'), 'utf8'), 'dm.loopdatasize=256M');
  // Later commands need only --root (each is a new process: a restart between every command).
  assert.match(await ok('ds', 'list', '--root', root), '(base)');
  await ok('ds', 'create', '--root', root, 'c1');
  await ok('ds', 'create', '--root', root, 'c2', '--parent', 'c1', '--size', '96M');
  const mnt = join(root, 'mnt', 'c1');
  mkdirSync(mnt, { recursive: true });
  await ok('ds', 'mount', '--root', root, 'c1', mnt);
  writeFileSync(join(mnt, 'hello.txt'), 'hello\n');
  await ok('ds', 'mount', '--root', root, 'c1', mnt); // already there: a no-op
  const list = await json<{ id: string; mountPoint: string | null; active: boolean; size: number }[]>('ds list', 'ds', 'list', '--root', root);
  assert.equal(list.map((d) => [d.id, d.mountPoint]), [['', null], ['c1', mnt], ['c2', null]]);
  assert.equal([list[0]!.size, (list[0] as { initialized?: boolean }).initialized], [64 << 20, true]);
  assert.is(list[2]!.size, 96 << 20);
  const s = await json<{ baseDeviceSize: number; baseDeviceFS: string; transactionId: number }>('ds status', 'ds', 'status', '--root', root);
  assert.is(s.baseDeviceSize, 64 << 20);
  assert.is(s.baseDeviceFS, 'ext4');
  await unchanged(root, async () => {
    await refused(4, 'EDEVICEEXISTS', 'ds', 'create', '--root', root, 'c1');
    await refused(3, 'EUNKNOWNDEVICE', 'ds', 'create', '--root', root, 'c9', '--parent', 'ghost');
    await refused(3, 'EUNKNOWNDEVICE', 'ds', 'remove', '--root', root, 'ghost');
    await refused(2, 'EUSAGE', '!', 'ds', 'create', '--root', root, 'c9', '--size', '1Q');
    await refused(4, 'EDEVICEINUSE', 'ds', 'remove', '--root', root, 'c1');
    await refused(4, 'EDEVICEINUSE', 'ds', 'mount', '--root', root, 'c1', join(root, 'elsewhere'));
    await refused(2, 'not mounted', 'ds', 'unmount', '--root', root, 'c2', mnt);
    await refused(2, 'ds init', '!', 'ds', 'list', '--root', join(testTmpDir(), 'never-initialised'));
  });
  await ok('ds', 'unmount', '--root', root, 'c1', mnt);
  assert.not.ok(existsSync(join(mnt, 'hello.txt')));
  await ok('ds', 'mount', '--root', root, 'c1', mnt);
  assert.is(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'hello\n', 'data survived unmount/mount');
  await ok('ds', 'unmount', '--root', root, 'c1', mnt);
  await ok('ds', 'remove', '--root', root, 'c2');
  await ok('ds', 'resize', '--root', root, '320M');
  assert.is(statSync(join(root, 'devicemapper', 'data')).size, 320 << 20);
  await ok('ds', 'mount', '--root', root, 'c1', mnt);
  await ok('ds', 'shutdown', '--root', root);
  const prefix = prefixFor(statSync(root, { bigint: true }));
  const after = await json<{ name: string }[]>('dm ls', 'dm', 'ls');
  assert.equal(after.filter((d) => d.name.startsWith(prefix)), [], 'shutdown unmounted and removed everything');
  // Restart after a shutdown: the pool comes back from its metadata, the device with its data.
  assert.equal((await json<{ id: string }[]>('ds list', 'ds', 'list', '--root', root)).map((d) => d.id), ['', 'c1']);
  await ok('ds', 'mount', '--root', root, 'c1', mnt);
  assert.is(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'hello\n');
  await ok('ds', 'unmount', '--root', root, 'c1', mnt);
  await ok('ds', 'remove', '--root', root, 'c1');
  await ok('ds', 'shutdown', '--root', root);
});

cli.run();
