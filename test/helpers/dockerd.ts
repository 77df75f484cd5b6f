// SPDX-License-Identifier: MIT
// One dockerd cycle for the privileged tests against the real Docker (issue #15): Debian's
// dockerd 20.10 (devicemapper graph driver over libdevmapper) started as root in the VM guest.
//
//   const d = await startDockerd({ dataRoot, execRoot: '/run/dmtest-delme-docker', storageOpts: ['dm.loopdatasize=1G'] });
//   try {
//     d.docker('import', tar, 'dmtest-delme:1');
//     const pairs = d.info();                  // docker info's DriverStatus pairs
//     assert.is(await d.stop(), 0, d.log());   // SIGTERM; dockerd removes its pool
//   } finally {
//     await d.close();                         // SIGKILL if still running; unmounts /etc/docker
//   }
//
// startDockerd prepares the host first (idempotent): udev (libdevmapper's udev sync; the VM
// runner's --udev starts it already), a tmpfs on /etc/docker (dockerd writes its key there; the
// host root is read-only in the guest) and cgroup2 on /sys/fs/cgroup. A dockerd that exits or
// never answers rejects startDockerd with its log in the message.
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/cli/main.js';
import { treeDigest } from './tree-digest.js';

export const DOCKERD = '/usr/sbin/dockerd';
export const DOCKER = '/usr/bin/docker'; // Debian's 20.10 client (a newer one may come first in PATH)
export const DOCKER_TOOLS: readonly string[] = [DOCKERD, DOCKER, '/usr/bin/containerd', '/usr/sbin/runc', '/usr/sbin/thin_dump', '/usr/bin/udevadm'];
// udevadm's trigger/settle do nothing inside a chroot unless told (the guest chroots into the host root).
export const UDEV_ENV: NodeJS.ProcessEnv = { ...process.env, SYSTEMD_IGNORE_CHROOT: '1' };

/** Runs a tool, returns its stdout; throws (with its stderr) on a non-zero exit. */
export const sh = (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): string =>
  // The timeout bounds a hung tool (e.g. a udev-sync wait that never ends); it asserts no duration.
  execFileSync(cmd, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, timeout: 300_000 });

/** The tools of DOCKER_TOOLS that are not installed (scripts/setup.sh installs them). */
export const missingDockerTools = (): string[] => DOCKER_TOOLS.filter((b) => !existsSync(b));

/** Waits for udev's queue, when udev runs. */
export function udevSettleIfRunning(): void {
  if (existsSync('/run/udev/control')) sh('udevadm', ['settle'], UDEV_ENV);
}

/**
 * A digest of a file's content, read in 4 MiB chunks: sha256 over the chunks, where an all-zero
 * chunk (the holes of the sparse 1 GiB data file, mostly) is fed as a marker instead of 4 MiB of
 * zeros. It still changes with any byte of the file; the TCG guest spends seconds instead of
 * ~2 minutes per pass on the data file.
 */
export function contentDigest(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const zero = Buffer.alloc(4 << 20);
  try {
    const buf = Buffer.alloc(4 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      const chunk = buf.subarray(0, n);
      if (chunk.equals(zero.subarray(0, n))) h.update(`Z${n}`);
      else h.update(`D${n}`).update(chunk);
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Docker's data root, with the hole-skipping digest for its files. */
export const rootDigest = (dir: string): Record<string, string> => treeDigest(dir, contentDigest);

const ETC_DOCKER = '/etc/docker';
const isMountPoint = (path: string): boolean =>
  readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);

/** udev, /etc/docker on tmpfs, cgroup2; returns whether /etc/docker was mounted by this call. */
function prepareHost(): boolean {
  if (!existsSync('/run/udev/control')) {
    sh('/lib/systemd/systemd-udevd', ['--daemon'], UDEV_ENV);
    sh('udevadm', ['trigger', '--action=add'], UDEV_ENV);
    sh('udevadm', ['settle'], UDEV_ENV);
  }
  let mounted = false;
  if (!isMountPoint(ETC_DOCKER)) {
    sh('mount', ['-t', 'tmpfs', 'tmpfs', ETC_DOCKER]);
    mounted = true;
  }
  if (!readFileSync('/proc/mounts', 'utf8').includes(' /sys/fs/cgroup cgroup2 ')) sh('mount', ['-t', 'cgroup2', 'none', '/sys/fs/cgroup']);
  return mounted;
}

export interface DockerdOptions {
  /** dockerd's --data-root; its devicemapper root is `<dataRoot>/devicemapper`. */
  readonly dataRoot: string;
  /** dockerd's --exec-root (created); the socket and the pidfile go there. */
  readonly execRoot: string;
  /** Each one a `--storage-opt` (e.g. `dm.loopdatasize=1G`), in order. */
  readonly storageOpts: readonly string[];
}

export interface Dockerd {
  /** `unix://<execRoot>/docker.sock`. */
  readonly sock: string;
  /** The Debian client against this dockerd; returns its trimmed stdout, throws on failure. */
  docker(...args: string[]): string;
  /** `docker info`'s DriverStatus: the ordered [key, value] pairs of "Storage Driver: devicemapper". */
  info(): [string, string][];
  /** dockerd's stdout and stderr so far. */
  log(): string;
  /** SIGTERM and wait: dockerd's exit code (0 on a clean stop, which removes its pool). */
  stop(): Promise<number | null>;
  /** SIGKILL if still running, then unmount /etc/docker if startDockerd mounted it. Idempotent. */
  close(): Promise<void>;
}

/** Starts dockerd with the devicemapper driver and waits until it answers on its socket. */
export async function startDockerd(opts: DockerdOptions): Promise<Dockerd> {
  mkdirSync(opts.execRoot, { recursive: true });
  const mountedEtc = prepareHost();
  const sock = `unix://${opts.execRoot}/docker.sock`;
  let log = '';
  const child: ChildProcess = spawn(
    DOCKERD,
    [
      '--data-root', opts.dataRoot, '--exec-root', opts.execRoot, '--pidfile', join(opts.execRoot, 'docker.pid'), '-H', sock,
      '--storage-driver', 'devicemapper', ...opts.storageOpts.flatMap((o) => ['--storage-opt', o]),
      '--iptables=false', '--ip-masq=false', '--bridge=none',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => void (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => void (log += d.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((res) =>
    child.once('exit', (c) => {
      exitCode = c;
      res(c);
    }),
  );
  const docker = (...args: string[]): string => sh(DOCKER, ['-H', sock, ...args]).trim();
  let closed = false;
  const d: Dockerd = {
    sock,
    docker,
    info: () => JSON.parse(docker('info', '--format', '{{json .DriverStatus}}')) as [string, string][],
    log: () => log,
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM');
      return exited;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      if (exitCode === undefined) {
        child.kill('SIGKILL');
        await exited;
      }
      if (mountedEtc) {
        try {
          sh('umount', [ETC_DOCKER]);
        } catch {
          // already unmounted
        }
      }
    },
  };
  // Readiness: dockerd answers on its socket (or died, or never came up: then its log says why).
  // The limit is no timing assertion, only a bound on a hung daemon (it starts in ~15 s under TCG).
  try {
    const giveUp = Date.now() + 300_000;
    for (let up = false; !up; ) {
      if (exitCode !== undefined) assert.unreachable(`dockerd exited ${exitCode}:\n${log}`);
      if (Date.now() > giveUp) assert.unreachable(`dockerd did not answer on ${sock} within 300 s:\n${log}`);
      try {
        docker('version');
        up = true;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } catch (e) {
    await d.close();
    throw e;
  }
  return d;
}

/**
 * Removes the live dm devices whose names start with `prefix` (thin devices first, then names
 * ending in `-pool`): what a failed run may leave of a Docker root. Never anything else.
 */
export function removeDmDevices(prefix: string): void {
  const names = (): string[] => sh('dmsetup', ['ls']).split('\n').map((l) => l.split('\t')[0] ?? '').filter((n) => n.startsWith(prefix));
  for (const name of names()) if (!name.endsWith('-pool')) sh('dmsetup', ['remove', '--retry', name]);
  for (const name of names()) sh('dmsetup', ['remove', '--retry', name]);
}

/** sha256 of a buffer / of a file's content, hex. */
export const sum = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
export const sha256 = (path: string): string => sum(readFileSync(path));

/** `devmapper ARGV` run in this process (the CLI's `run`), its output collected. */
export async function devmapperCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY: false, env: process.env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

/** The known files the docker tests put through Docker: an image tarball of two, a third for `docker cp`. */
export interface KnownFiles {
  /** The image's files by path inside the image. */
  readonly files: Record<string, Buffer>;
  /** The tarball for `docker import`. */
  readonly tar: string;
  /** The file for `docker cp` into a container, at `/added.bin`. */
  readonly added: Buffer;
  readonly addedPath: string;
}

/** Writes the {@link KnownFiles} (random content) under `dir`. */
export function knownFiles(dir: string): KnownFiles {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  const files: Record<string, Buffer> = { 'hello.txt': randomBytes(1 << 20), 'sub/blob.bin': randomBytes(300 * 1024) };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(src, name), data);
  const tar = join(dir, 'image.tar');
  sh('tar', ['-C', src, '-cf', tar, 'hello.txt', 'sub']);
  const added = randomBytes(200 * 1024);
  const addedPath = join(dir, 'added.bin');
  writeFileSync(addedPath, added);
  return { files, tar, added, addedPath };
}

/**
 * The thin ids in a pool's metadata (a metadata file, bound read-only to a loop device for the
 * read, or a block device), sorted; with `check`, `thin_check` must pass first (sh throws on a
 * non-zero exit).
 */
export function thinDumpIds(metadata: string, opts: { check?: boolean } = {}): number[] {
  const isFile = statSync(metadata).isFile();
  const dev = isFile ? sh('losetup', ['--find', '--show', '--read-only', metadata]).trim() : metadata;
  let dump: string;
  try {
    if (opts.check) sh('thin_check', [dev]);
    dump = sh('thin_dump', [dev]);
  } finally {
    if (isFile) {
      sh('losetup', ['--detach', dev]);
      // udev may still hold the loop device it probed, which would defer the detach: wait for it.
      udevSettleIfRunning();
    }
  }
  return [...dump.matchAll(/<device dev_id="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
}
