// SPDX-License-Identifier: MIT
// Nothing planted under a DeviceSet root is followed (issue #14 item 2): the safe-path.ts
// primitives, and DeviceSet.init on the FakeKernel with links and foreign or open directories
// where its files go. Every refusal is UnsafePathError (EUNSAFEPATH) and leaves the target as it was.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  constants as fsc,
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeviceSet,
  MetadataStore,
  UnsafePathError,
  assertOwnedDir,
  ensureOwnedDir,
  ensurePrivateMountDir,
  ensureRootDir,
  openNoFollow,
  readFileNoFollow,
  removePrivateMountDir,
  writeFileAtomicNoFollow,
  type UnsafePathReason,
} from '../../../src/deviceset/index.js';
import { BackingFileLinkError, LoopControl } from '../../../src/loop/index.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { FakeKernel, fakeDeviceSetInit } from '../../../src/testing/index.js';

/** A uid that owns nothing here (we run as root, so chown to it works). */
const OTHER_UID = 12345;
const VICTIM_TEXT = 'precious data\n';

let tmp = '';
const setup = (): void => {
  tmp = mkdtempSync(join(tmpdir(), 'ds-links-'));
};
const teardown = (): void => {
  rmSync(tmp, { recursive: true, force: true });
};

function unsafe(fn: () => unknown, path: string, reason: UnsafePathReason): UnsafePathError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, UnsafePathError);
    const e = err as UnsafePathError;
    assert.is(e.code, 'EUNSAFEPATH');
    assert.is(e.path, path);
    assert.is(e.reason, reason);
    return e;
  }
  assert.unreachable(`expected UnsafePathError (${reason}) for ${path}`);
  throw new Error('unreachable');
}

async function unsafeAsync(p: Promise<unknown>, path: string, reason: UnsafePathReason): Promise<UnsafePathError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, UnsafePathError);
    const e = err as UnsafePathError;
    assert.is(e.code, 'EUNSAFEPATH');
    assert.is(e.path, path);
    assert.is(e.reason, reason);
    return e;
  }
  assert.unreachable(`expected UnsafePathError (${reason}) for ${path}`);
  throw new Error('unreachable');
}

function victimFile(): string {
  const v = join(tmp, 'victim.db');
  writeFileSync(v, VICTIM_TEXT);
  return v;
}

function assertVictimUntouched(v: string): void {
  assert.is(statSync(v).size, VICTIM_TEXT.length);
  assert.is(readFileSync(v, 'utf8'), VICTIM_TEXT);
}

// ------------------------------------------------------------------------------ primitives

const prim = suite('deviceset/safe-path primitives');
prim.before.each(setup);
prim.after.each(teardown);

prim('ensureOwnedDir: creates 0700, accepts it again, refuses a link, a file, another owner, group/other write', () => {
  const d = join(tmp, 'd');
  assert.is(ensureOwnedDir(d), true);
  assert.is(statSync(d).mode & 0o777, 0o700);
  assert.is(ensureOwnedDir(d), false);

  const target = join(tmp, 'target');
  mkdirSync(target, { mode: 0o700 });
  const link = join(tmp, 'link');
  symlinkSync(target, link);
  const e = unsafe(() => ensureOwnedDir(link), link, 'symlink');
  assert.is(e.found, 'a symbolic link');
  assert.equal(readdirSync(target), []);

  const file = join(tmp, 'file');
  writeFileSync(file, 'x');
  assert.is(unsafe(() => ensureOwnedDir(file), file, 'not-directory').found, 'a regular file');

  const open = join(tmp, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  assert.is(unsafe(() => ensureOwnedDir(open), open, 'mode').found, 'a directory with mode 0777, writable by group or others');
  chmodSync(open, 0o770);
  unsafe(() => assertOwnedDir(open), open, 'mode');
  chmodSync(open, 0o755);
  assertOwnedDir(open); // readable by others is fine; only writing lets them swap entries

  const foreign = join(tmp, 'foreign');
  mkdirSync(foreign, { mode: 0o700 });
  chownSync(foreign, OTHER_UID, OTHER_UID);
  assert.is(unsafe(() => ensureOwnedDir(foreign), foreign, 'owner').found, `a directory owned by uid ${OTHER_UID}`);
});

prim('ensureRootDir: a missing root is created 0700 with its parents; a linked root resolves to its real path', () => {
  const root = join(tmp, 'a', 'b', 'root');
  assert.is(ensureRootDir(root), root);
  assert.is(statSync(root).mode & 0o777, 0o700);
  assert.is(statSync(join(tmp, 'a')).mode & 0o777, 0o700);

  const link = join(tmp, 'root-link');
  symlinkSync(root, link);
  assert.is(ensureRootDir(link), root);

  const dangling = join(tmp, 'dangling');
  symlinkSync(join(tmp, 'nowhere'), dangling);
  unsafe(() => ensureRootDir(dangling), dangling, 'symlink');
  assert.is(existsSync(join(tmp, 'nowhere')), false);

  // A link to someone else's directory: the real directory is what is checked.
  const theirs = join(tmp, 'theirs');
  mkdirSync(theirs, { mode: 0o700 });
  chownSync(theirs, OTHER_UID, OTHER_UID);
  const toTheirs = join(tmp, 'to-theirs');
  symlinkSync(theirs, toTheirs);
  unsafe(() => ensureRootDir(toTheirs), theirs, 'owner');
});

prim('openNoFollow / readFileNoFollow: a link is refused (ELOOP kept as cause), a FIFO refused without blocking', () => {
  const v = victimFile();
  const link = join(tmp, 'link');
  symlinkSync(v, link);
  const e = unsafe(() => openNoFollow(link, fsc.O_RDWR), link, 'symlink');
  assert.is((e.cause as { code?: string }).code, 'ELOOP');
  unsafe(() => readFileNoFollow(link), link, 'symlink');
  assert.is(readFileNoFollow(v).toString('utf8'), VICTIM_TEXT);

  const fifo = join(tmp, 'fifo');
  execFileSync('mkfifo', [fifo]);
  assert.is(unsafe(() => readFileNoFollow(fifo), fifo, 'not-regular').found, 'a FIFO');
  unsafe(() => openNoFollow(tmp, fsc.O_RDONLY, undefined, 'file'), tmp, 'not-regular');
  unsafe(() => openNoFollow(v, fsc.O_RDONLY, undefined, 'directory'), v, 'not-directory');
  assertVictimUntouched(v);
});

prim('writeFileAtomicNoFollow replaces a link at the path with a file; the link target is untouched', () => {
  const v = victimFile();
  const p = join(tmp, 'cli-options.json');
  symlinkSync(v, p);
  writeFileAtomicNoFollow(p, '{"options":[]}\n');
  assert.ok(lstatSync(p).isFile());
  assert.is(lstatSync(p).mode & 0o777, 0o600);
  assert.is(readFileSync(p, 'utf8'), '{"options":[]}\n');
  assertVictimUntouched(v);
  assert.equal(readdirSync(tmp).sort(), ['cli-options.json', 'victim.db']);
  // The directory itself a link: refused before anything is written.
  const dirLink = join(tmp, 'dir-link');
  mkdirSync(join(tmp, 'real'));
  symlinkSync(join(tmp, 'real'), dirLink);
  unsafe(() => writeFileAtomicNoFollow(join(dirLink, 'x'), 'y'), dirLink, 'symlink');
  assert.equal(readdirSync(join(tmp, 'real')), []);
});

prim('ensurePrivateMountDir: mnt/ and the mount point are private real directories; removal is rmdir only', () => {
  const root = join(tmp, 'root');
  mkdirSync(root, { mode: 0o700 });
  const m = ensurePrivateMountDir(root, '.grow-base');
  assert.is(m, join(root, 'mnt', '.grow-base'));
  assert.is(statSync(join(root, 'mnt')).mode & 0o777, 0o700);
  assert.is(statSync(m).mode & 0o777, 0o700);
  assert.is(ensurePrivateMountDir(root, '.grow-base'), m); // a crash leftover is reused
  writeFileSync(join(m, 'inside'), 'x');
  try {
    removePrivateMountDir(m);
    assert.unreachable('a non-empty mount point must not be emptied');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ENOTEMPTY');
  }
  assert.is(readFileSync(join(m, 'inside'), 'utf8'), 'x');
  unlinkSync(join(m, 'inside'));
  removePrivateMountDir(m);
  removePrivateMountDir(m); // gone already: fine
  assert.is(existsSync(m), false);

  // A planted link at the mount point, or at mnt/ itself.
  const target = join(tmp, 'elsewhere');
  mkdirSync(target, { mode: 0o700 });
  symlinkSync(target, join(root, 'mnt', '.grow-x'));
  unsafe(() => ensurePrivateMountDir(root, '.grow-x'), join(root, 'mnt', '.grow-x'), 'symlink');
  const root2 = join(tmp, 'root2');
  mkdirSync(root2, { mode: 0o700 });
  symlinkSync(target, join(root2, 'mnt'));
  unsafe(() => ensurePrivateMountDir(root2, '.grow-base'), join(root2, 'mnt'), 'symlink');
  assert.equal(readdirSync(target), []);

  for (const bad of ['', '.', '..', 'a/b']) {
    assert.throws(() => ensurePrivateMountDir(root, bad), (e: unknown) => e instanceof InvalidArgumentError);
  }
});

prim('MetadataStore refuses a linked metadata dir and a linked record', async () => {
  const victimDir = join(tmp, 'victim-dir');
  mkdirSync(victimDir, { mode: 0o700 });
  const root = join(tmp, 'root');
  mkdirSync(root, { mode: 0o700 });
  symlinkSync(victimDir, join(root, 'metadata'));
  await unsafeAsync(new MetadataStore(root).loadAll(), join(root, 'metadata'), 'symlink');
  await unsafeAsync(new MetadataStore(root).saveDeviceSet({ formatVersion: 1, nextDeviceId: 1, options: [] }), join(root, 'metadata'), 'symlink');
  assert.equal(readdirSync(victimDir), []);

  const root2 = join(tmp, 'root2');
  const store = new MetadataStore(root2);
  await store.saveDeviceSet({ formatVersion: 1, nextDeviceId: 1, options: [] });
  const v = victimFile();
  symlinkSync(v, join(root2, 'metadata', 'base'));
  await unsafeAsync(store.loadAll(), join(root2, 'metadata', 'base'), 'symlink');
  assertVictimUntouched(v);
});

// ----------------------------------------------------------------------------- DeviceSet

const OPTIONS = ['dm.loopdatasize=64M', 'dm.loopmetadatasize=2M', 'dm.basesize=16M', 'dm.min_free_space=0%'];

interface World {
  fake: FakeKernel;
  root: string;
  init(): Promise<DeviceSet>;
  /** Backing files of the fake's bound loop devices. */
  boundFiles(): string[];
}

function world(root = join(tmp, 'root')): World {
  const fake = new FakeKernel({ sysfs: true, devDir: '/fakedev' });
  worlds.push(fake);
  return {
    fake,
    root,
    init: () => DeviceSet.init(root, { ...fakeDeviceSetInit(fake, '/fakedev'), options: OPTIONS, log: () => {}, crashPoint: () => {} }),
    boundFiles: () => fake.loops().flatMap((l) => (l.backingFile === undefined ? [] : [l.backingFile])),
  };
}
const worlds: FakeKernel[] = [];

const ds = suite('deviceset/links: DeviceSet.init');
ds.before.each(setup);
ds.after.each(() => {
  for (const f of worlds.splice(0)) f.dispose();
  teardown();
});

ds('a link at devicemapper/data is refused; the victim keeps its size and content and is not bound', async () => {
  const w = world();
  const v = victimFile();
  mkdirSync(join(w.root, 'devicemapper'), { recursive: true, mode: 0o700 });
  symlinkSync(v, join(w.root, 'devicemapper', 'data'));
  const e = await unsafeAsync(w.init(), join(w.root, 'devicemapper', 'data'), 'symlink');
  assert.instance(e.cause, BackingFileLinkError);
  assertVictimUntouched(v);
  assert.equal(w.boundFiles(), []);
  assert.equal(w.fake.devices(), []);
  assert.ok(lstatSync(join(w.root, 'devicemapper', 'data')).isSymbolicLink());
});

ds('a link at devicemapper/metadata is refused; the victim is untouched and nothing stays bound', async () => {
  const w = world();
  const v = victimFile();
  mkdirSync(join(w.root, 'devicemapper'), { recursive: true, mode: 0o700 });
  symlinkSync(v, join(w.root, 'devicemapper', 'metadata'));
  await unsafeAsync(w.init(), join(w.root, 'devicemapper', 'metadata'), 'symlink');
  assertVictimUntouched(v);
  assert.equal(w.boundFiles(), []);
  assert.equal(w.fake.devices(), []);
});

ds('devicemapper/ as a link to another directory is refused before anything is created in it', async () => {
  const w = world();
  const elsewhere = join(tmp, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  mkdirSync(w.root, { mode: 0o700 });
  symlinkSync(elsewhere, join(w.root, 'devicemapper'));
  await unsafeAsync(w.init(), join(w.root, 'devicemapper'), 'symlink');
  assert.equal(readdirSync(elsewhere), []);
  assert.equal(readdirSync(w.root), ['devicemapper']); // not even metadata/ was made
  assert.equal(w.boundFiles(), []);
});

ds('metadata/ as a link to another directory is refused; nothing is written there', async () => {
  const w = world();
  const elsewhere = join(tmp, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  writeFileSync(join(elsewhere, 'keep'), 'k');
  mkdirSync(w.root, { mode: 0o700 });
  symlinkSync(elsewhere, join(w.root, 'metadata'));
  await unsafeAsync(w.init(), join(w.root, 'metadata'), 'symlink');
  assert.equal(readdirSync(elsewhere), ['keep']);
  assert.is(readFileSync(join(elsewhere, 'keep'), 'utf8'), 'k');
  assert.equal(readdirSync(w.root), ['metadata']);
});

ds('a metadata record replaced by a link is refused, not read; the victim is untouched', async () => {
  const w = world();
  const first = await w.init();
  await first.shutdown();
  const v = victimFile();
  const record = join(w.root, 'metadata', 'base');
  unlinkSync(record);
  symlinkSync(v, record);
  await unsafeAsync(w.init(), record, 'symlink');
  assertVictimUntouched(v);
  assert.ok(lstatSync(record).isSymbolicLink());
});

ds('a group/other-writable devicemapper/ is refused before anything is created', async () => {
  const w = world();
  mkdirSync(join(w.root, 'devicemapper'), { recursive: true, mode: 0o700 });
  chmodSync(join(w.root, 'devicemapper'), 0o777);
  const e = await unsafeAsync(w.init(), join(w.root, 'devicemapper'), 'mode');
  assert.is(e.found, 'a directory with mode 0777, writable by group or others');
  assert.equal(readdirSync(join(w.root, 'devicemapper')), []);
  assert.equal(readdirSync(w.root), ['devicemapper']);
});

ds('a root owned by another uid is refused before anything is created in it', async () => {
  const w = world();
  mkdirSync(w.root, { mode: 0o700 });
  chownSync(w.root, OTHER_UID, OTHER_UID);
  const e = await unsafeAsync(w.init(), w.root, 'owner');
  assert.is(e.found, `a directory owned by uid ${OTHER_UID}`);
  assert.equal(readdirSync(w.root), []);
});

ds('a metadata/ owned by another uid is refused', async () => {
  const w = world();
  mkdirSync(join(w.root, 'metadata'), { recursive: true, mode: 0o700 });
  chownSync(join(w.root, 'metadata'), OTHER_UID, OTHER_UID);
  await unsafeAsync(w.init(), join(w.root, 'metadata'), 'owner');
  assert.equal(readdirSync(w.root), ['metadata']);
});

ds('a regular root works as before: created 0700, pool on its loop files, restarts', async () => {
  const w = world();
  const set = await w.init();
  assert.is(set.root, w.root);
  assert.is(statSync(w.root).mode & 0o777, 0o700);
  assert.equal(w.boundFiles().sort(), [join(w.root, 'devicemapper', 'data'), join(w.root, 'devicemapper', 'metadata')]);
  assert.is(statSync(join(w.root, 'devicemapper', 'data')).size, 64 * 1024 * 1024);
  await set.shutdown();
  const again = await w.init();
  assert.equal((await again.status()).dataLoopback, join(w.root, 'devicemapper', 'data'));
  await again.shutdown();
});

ds('a root given through a link is used by its real path', async () => {
  const real = join(tmp, 'real-root');
  mkdirSync(real, { mode: 0o700 });
  const link = join(tmp, 'root-link');
  symlinkSync(real, link);
  const w = world(link);
  const set = await w.init();
  assert.is(set.root, realpathSync(real));
  assert.equal(w.boundFiles().sort(), [join(real, 'devicemapper', 'data'), join(real, 'devicemapper', 'metadata')]);
  await set.shutdown();
});

ds('LoopControl.attach noFollow on the FakeKernel: a real link is refused, its target not bound', async () => {
  const w = world();
  const loops: LoopControl = fakeDeviceSetInit(w.fake, '/fakedev').loops;
  const v = victimFile();
  const link = join(tmp, 'link');
  symlinkSync(v, link);
  try {
    await loops.attach(link, { noFollow: true });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, BackingFileLinkError);
  }
  assert.equal(w.boundFiles(), []);
  const h = await loops.attach(link); // without noFollow the link is followed, as before
  assert.equal(w.boundFiles(), [realpathSync(v)]);
  h.close();
});

prim.run();
ds.run();
