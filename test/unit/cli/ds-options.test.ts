// SPDX-License-Identifier: MIT
// `ds` options across processes, against a real DeviceSet on a FakeKernel: `--opt` on a later
// command never changes persistent state (keys that would are refused), `ds init` saves its
// options before DeviceSet.init (a crash in between leaves a usable root), and cli-options.json
// is written atomically and read strictly (corrupt, null, symlinked → EMETADATACORRUPT).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DM_OPTION_KEYS, RootLock } from '../../../src/index.js';
import { PERSISTENT_DM_KEYS, RUN_ONLY_DM_KEYS } from '../../../src/cli/commands/ds.js';
import { nodeOptionsFs, optionsFileText, type OptionsFs } from '../../../src/cli/options-file.js';
import type { Deps } from '../../../src/cli/context.js';
import { cli } from './harness.js';
import { INIT_OPTS, MiB, SAVED, world } from './ds-world.js';

test('every dm.* key the DeviceSet supports is either persistent or run-only, never both', () => {
  for (const k of DM_OPTION_KEYS) {
    const n = Number(PERSISTENT_DM_KEYS.includes(k.key)) + Number(RUN_ONLY_DM_KEYS.includes(k.key));
    assert.is(n, k.supported ? 1 : 0, k.key);
  }
  assert.is(PERSISTENT_DM_KEYS.length + RUN_ONLY_DM_KEYS.length, DM_OPTION_KEYS.filter((k) => k.supported).length);
});

test('d2: a one-off --opt dm.basesize on ds create is refused; the base and the saved options stay; later commands work', async () => {
  const w = world();
  try {
    assert.is((await w.run(['init', ...INIT_OPTS])).code, 0);
    const before = fs.readFileSync(w.file, 'utf8');
    w.opened.length = 0;
    const r = await w.run(['create', 'a', '--opt', 'dm.basesize=32M']);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /^devmapper: EUSAGE: dm\.basesize changes the DeviceSet for good and cannot be given for one run: re-run 'devmapper ds init --root DIR' with the new value/);
    assert.equal(w.opened, [], 'refused before the DeviceSet was opened');
    assert.is(fs.readFileSync(w.file, 'utf8'), before);
    assert.is(await w.baseSize(), 16 * MiB);
    // Run-only keys apply to that run and are not saved.
    assert.is((await w.run(['create', 'b', '--opt', 'dm.min_free_space=5%', '--opt', 'dm.blkdiscard=false'])).code, 0);
    assert.equal(w.opened.at(-1), [...SAVED.filter((o) => !o.startsWith('dm.min_free_space')), 'dm.min_free_space=5%', 'dm.blkdiscard=false']);
    assert.is(fs.readFileSync(w.file, 'utf8'), before);
    assert.is((await w.run(['create', 'c'])).code, 0);
    assert.equal(w.opened.at(-1), SAVED);
    // ds init is the way to change a persistent key: it applies and saves it.
    assert.is((await w.run(['init', '--opt', 'dm.basesize=32M'])).code, 0);
    assert.equal(w.saved(), { formatVersion: 1, options: ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.min_free_space=0%', 'dm.basesize=32M'] });
    assert.is(await w.baseSize(), 32 * MiB);
    assert.is((await w.run(['create', 'd'])).code, 0);
  } finally {
    w.dispose();
  }
});

test('every persistent key given to a later command is named, and nothing is opened', async () => {
  const w = world();
  try {
    assert.is((await w.run(['init', ...INIT_OPTS])).code, 0);
    w.opened.length = 0;
    const r = await w.run(['status', '--opt', 'dm.fs=xfs', '--opt', 'dm.mountopt=noatime', '--opt', 'dm.LOOPDATASIZE=1G', '--opt', 'dm.mkfsarg=-q', '--opt', 'dm.mkfsarg=-v']);
    assert.is(r.code, 2);
    assert.match(r.stderr, /^devmapper: EUSAGE: dm\.fs, dm\.loopdatasize, dm\.mkfsarg change the DeviceSet for good/);
    assert.equal(w.opened, []);
    for (const key of PERSISTENT_DM_KEYS) {
      const k = await w.run(['list', '--opt', `${key}=x`]);
      assert.is(k.code, 2, key);
      assert.match(k.stderr, `EUSAGE: ${key} changes the DeviceSet for good`);
    }
    assert.equal(w.opened, []);
  } finally {
    w.dispose();
  }
});

test('a crash between DeviceSet.init and the end of ds init leaves a root the next command opens with the init options', async () => {
  const w = world();
  try {
    let crashes = 1;
    const crashAfterInit: Partial<Deps> = {
      openDeviceSet: async (r, options, log, signal) => {
        const ds = await w.deps.openDeviceSet!(r, options, log, signal);
        if (crashes-- > 0) throw new Error('simulated death right after DeviceSet.init');
        return ds;
      },
    };
    const r = await w.run(['init', ...INIT_OPTS], crashAfterInit);
    assert.is(r.code, 1);
    assert.match(r.stderr, 'simulated death');
    const c = await w.run(['create', 'a']);
    assert.is(c.code, 0, c.stderr);
    assert.equal(w.opened.at(-1), SAVED, 'opened with the options ds init was given, not the defaults');
    assert.is(await w.baseSize(), 16 * MiB);
    assert.is(fs.statSync(join(w.root, 'devicemapper', 'data')).size, 64 * MiB, 'the pool did not grow to the default 100G');
  } finally {
    w.dispose();
  }
});

test('ds init: the options file is saved before DeviceSet.init; a failed save opens nothing and leaves no file', async () => {
  const w = world();
  try {
    let fail = 1;
    const optionsFs: OptionsFs = {
      ...nodeOptionsFs,
      renameSync: (from, to) => {
        if (fail-- > 0) throw Object.assign(new Error('EIO: simulated i/o error, rename'), { code: 'EIO', errno: -5, syscall: 'rename' });
        nodeOptionsFs.renameSync(from, to);
      },
    };
    const r = await w.run(['init', ...INIT_OPTS], { optionsFs });
    assert.is(r.code, 1);
    assert.match(r.stderr, /^devmapper: EIO: /);
    assert.equal(w.opened, [], 'DeviceSet.init never ran');
    assert.equal(fs.readdirSync(w.root), [], 'no options file, no temp file');
    assert.is((await w.run(['list'])).code, 2, 'the root has no ds init yet');
    assert.is((await w.run(['init', ...INIT_OPTS], { optionsFs })).code, 0);
    assert.equal(w.saved(), { formatVersion: 1, options: SAVED });
  } finally {
    w.dispose();
  }
});

test('ds init refused before anything changed (base shrink, lock held) puts the previous options back', async () => {
  const w = world();
  try {
    assert.is((await w.run(['init', ...INIT_OPTS.slice(0, -4), '--opt', 'dm.basesize=32M'])).code, 0);
    const before = fs.readFileSync(w.file, 'utf8');
    const r = await w.run(['init', '--opt', 'dm.basesize=16M']);
    assert.is(r.code, 2);
    assert.match(r.stderr, /^devmapper: EDEVICESIZE: /);
    assert.is(fs.readFileSync(w.file, 'utf8'), before);
    assert.is((await w.run(['create', 'a'])).code, 0);
    // A live process holds the root: refused before the file is touched.
    const holder = RootLock.acquire(w.root);
    w.opened.length = 0;
    const locked = await cli(['ds', 'init', '--root', w.root, '--opt', 'dm.basesize=64M'], w.deps);
    holder.release();
    assert.is(locked.code, 4);
    assert.match(locked.stderr, /^devmapper: EDEVICESETLOCKED: /);
    assert.equal(w.opened, []);
    assert.is(fs.readFileSync(w.file, 'utf8'), before);
  } finally {
    w.dispose();
  }
});

test('cli-options.json: corrupt, null, non-object or symlinked is EMETADATACORRUPT (exit 1), before anything is opened', async () => {
  const w = world();
  try {
    fs.mkdirSync(w.root, { recursive: true });
    const cases: [string, RegExp][] = [
      ['{', /not valid JSON/],
      ['null', /is not a JSON object/],
      ['[]', /is not a JSON object/],
      ['"dm.basesize=16M"', /is not a JSON object/],
      ['{"formatVersion":1,"options":[1]}', /options must be an array of "dm\.key=value" strings/],
      ['{"formatVersion":1}', /options must be an array/],
      ['{"options":[]}', /formatVersion must be 1/],
      ['{"formatVersion":2,"options":[]}', /written by a newer devmapper \(format 2; this one reads 1\)/],
    ];
    for (const [text, why] of cases) {
      fs.writeFileSync(w.file, text);
      for (const cmd of [['list'], ['init']]) {
        const r = await w.run(cmd);
        assert.is(r.code, 1, `${cmd[0]} ${text}`);
        assert.match(r.stderr, new RegExp(`^devmapper: EMETADATACORRUPT: corrupt metadata file ${w.file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: [^/]`), text);
        assert.match(r.stderr, why, text);
      }
      assert.is(fs.readFileSync(w.file, 'utf8'), text, 'left as found');
    }
    // A symbolic link (here to a valid file) is refused, not followed.
    const elsewhere = join(w.root, '..', 'elsewhere.json');
    fs.writeFileSync(elsewhere, optionsFileText(SAVED));
    fs.rmSync(w.file);
    fs.symlinkSync(elsewhere, w.file);
    for (const cmd of [['list'], ['init']]) {
      const r = await w.run(cmd);
      assert.is(r.code, 1);
      assert.match(r.stderr, /^devmapper: EMETADATACORRUPT: .*: is a symbolic link, which devmapper never follows here/);
    }
    assert.is(fs.readlinkSync(w.file), elsewhere);
    // A directory under the name: not a regular file.
    fs.rmSync(w.file);
    fs.mkdirSync(w.file);
    const d = await w.run(['list']);
    assert.is(d.code, 1);
    assert.match(d.stderr, /EMETADATACORRUPT: .*: is not a regular file/);
    assert.equal(w.opened, []);
  } finally {
    w.dispose();
  }
});

test('cli-options.json is written through a temp file: O_EXCL|O_NOFOLLOW, write, fsync, close, rename, fsync of the directory', async () => {
  const w = world();
  try {
    fs.mkdirSync(w.root, { recursive: true });
    fs.writeFileSync(join(w.root, '.cli-options.json.tmp-stale'), 'left by a save that died');
    const log: string[] = [];
    const fds = new Map<number, string>();
    const name = (p: string): string => (p === w.root ? 'ROOT' : p.replace(`${w.root}/`, '').replace(/\.tmp-\d+-[0-9a-f]{8}$/, '.tmp-PID-RAND'));
    const { O_EXCL, O_NOFOLLOW, O_CREAT, O_DIRECTORY } = fs.constants;
    const optionsFs: OptionsFs = {
      ...nodeOptionsFs,
      openSync: (p, flags, mode) => {
        const fd = nodeOptionsFs.openSync(p, flags, mode);
        fds.set(fd, name(p));
        const f = [(flags & O_CREAT) !== 0 && 'CREAT', (flags & O_EXCL) !== 0 && 'EXCL', (flags & O_NOFOLLOW) !== 0 && 'NOFOLLOW', (flags & O_DIRECTORY) !== 0 && 'DIRECTORY'].filter(Boolean).join('|');
        log.push(`open ${name(p)} ${f}${mode === undefined ? '' : ` ${mode.toString(8)}`}`);
        return fd;
      },
      writeSync: (fd, d, o, l) => (log.push(`write ${fds.get(fd)}`), nodeOptionsFs.writeSync(fd, d, o, l)),
      fsyncSync: (fd) => (log.push(`fsync ${fds.get(fd)}`), nodeOptionsFs.fsyncSync(fd)),
      closeSync: (fd) => (log.push(`close ${fds.get(fd)}`), nodeOptionsFs.closeSync(fd)),
      renameSync: (a, b) => (log.push(`rename ${name(a)} ${name(b)}`), nodeOptionsFs.renameSync(a, b)),
      unlinkSync: (p) => (log.push(`unlink ${name(p)}`), nodeOptionsFs.unlinkSync(p)),
    };
    assert.is((await w.run(['init', ...INIT_OPTS], { optionsFs })).code, 0);
    assert.equal(log, [
      'unlink .cli-options.json.tmp-stale',
      'open .cli-options.json.tmp-PID-RAND CREAT|EXCL|NOFOLLOW 600',
      'write .cli-options.json.tmp-PID-RAND',
      'fsync .cli-options.json.tmp-PID-RAND',
      'close .cli-options.json.tmp-PID-RAND',
      'rename .cli-options.json.tmp-PID-RAND cli-options.json',
      'open ROOT DIRECTORY',
      'fsync ROOT',
      'close ROOT',
    ]);
    assert.is(fs.readFileSync(w.file, 'utf8'), optionsFileText(SAVED));
    assert.is(fs.statSync(w.file).mode & 0o777, 0o600);
    // Same options again: nothing to write.
    log.length = 0;
    assert.is((await w.run(['init'], { optionsFs })).code, 0);
    assert.equal(log.filter((l) => !l.startsWith('close') && !l.startsWith('open cli-options.json')), []);
  } finally {
    w.dispose();
  }
});

test.run();
