// SPDX-License-Identifier: MIT
// Builds (and caches) the tiny initramfs that boots the test VM: static busybox, the virtio/9p
// modules needed to mount the host's root over virtio-9p, and an /init that chroots into it.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpio, encodeCpio, type CpioEntry } from './cpio.js';
import type { KernelSpec } from './kernel.js';
import { readModuleTables, readModuleUncompressed, resolveLoadOrder } from './modules.js';

/** Modules the initramfs itself needs: PCI virtio transport, 9p over virtio, the 9p filesystem. */
export const INITRAMFS_MODULES: readonly string[] = ['virtio_pci', '9pnet_virtio', '9p'];

/** Bump when the archive layout changes in a way the hash inputs would not notice. */
const FORMAT = 'devmapper-vm-initramfs-2';

/**
 * The guest's PID 1. Everything run-specific (which shares to mount where, which modules to
 * modprobe, the marker nonce) comes from /dmvm/config.sh on the per-run 9p share, so the archive
 * only depends on the kernel and this text and can be cached across runs.
 */
export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot /dmvm /usr/bin /usr/sbin /sbin
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
MARK='@@devmapper-vm@@'
fail() {
  echo "devmapper-vm init: $*"
  echo "$MARK \${DMVM_NONCE:-none} EXIT 125"
  [ -d /dmvm/. ] && echo 125 > /dmvm/exit-status
  sync
  poweroff -f
  sleep 10
}
while read -r m; do
  insmod "/modules/$m" || fail "insmod $m failed"
done < /modules/order
O9P='trans=virtio,version=9p2000.L,msize=262144'
mount -t 9p -o "$O9P" dmvmrun /dmvm || fail "cannot mount the per-run share"
. /dmvm/config.sh || fail "cannot read /dmvm/config.sh"
mount -t 9p -o "ro,$O9P,cache=loose" hostroot /newroot || fail "cannot mount the host root"
mount -t proc proc /newroot/proc || fail "mount proc"
mount -t sysfs sysfs /newroot/sys || fail "mount sys"
mount -t devtmpfs devtmpfs /newroot/dev || fail "mount dev"
mount -t tmpfs -o "size=$DMVM_TMP_SIZE,mode=1777" tmpfs /newroot/tmp || fail "mount tmp"
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "mount run"
mkdir -p /newroot/run/dmvm
mount -o bind /dmvm /newroot/run/dmvm || fail "bind the per-run share"
# A non-recursive bind of the cached read-only host root, taken before the shares cover parts of
# it: read-only subtrees of the checkout (node_modules, dist) are served from here, see below.
mkdir -p /hostro
mount -o bind /newroot /hostro || fail "bind the host root view"
# Shares go on after /tmp and /run so a checkout under /tmp (e.g. a CI clone) stays visible;
# their mount points may then need creating inside those tmpfs.
i=0
while [ "$i" -lt "$DMVM_NSHARES" ]; do
  eval "tag=\\$DMVM_SHARE_TAG_$i; dir=\\$DMVM_SHARE_DIR_$i"
  [ -d "/newroot$dir" ] || mkdir -p "/newroot$dir"
  mount -t 9p -o "$O9P" "$tag" "/newroot$dir" || fail "cannot mount share $tag at $dir"
  i=$((i + 1))
done
for p in $DMVM_RO_CACHED; do
  if [ -d "/hostro$p" ] && [ -d "/newroot$p" ]; then
    mount -o bind "/hostro$p" "/newroot$p" || fail "bind the cached read-only view of $p"
  fi
done
if [ -n "$DMVM_MODULES_SRC" ]; then
  mount -t tmpfs -o mode=755 tmpfs "/newroot$DMVM_MODULES_ROOT" || fail "tmpfs over $DMVM_MODULES_ROOT"
  mkdir -p "/newroot$DMVM_MODULES_ROOT/$DMVM_KVER"
  mount -o bind "/newroot$DMVM_MODULES_SRC" "/newroot$DMVM_MODULES_ROOT/$DMVM_KVER" || fail "bind modules"
fi
# Kernel-initiated module loads (request_module, e.g. a dm target on first use) run
# /proc/sys/kernel/modprobe in PID 1's root, which is this initramfs: forward them into the chroot.
printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' > /sbin/modprobe
chmod 755 /sbin/modprobe
echo /sbin/modprobe > /proc/sys/kernel/modprobe
if [ -n "$DMVM_GUEST_MODULES" ]; then
  chroot /newroot /sbin/modprobe -a $DMVM_GUEST_MODULES || fail "modprobe $DMVM_GUEST_MODULES failed"
fi
if [ "$DMVM_UDEV" = 1 ]; then
  # systemd-udevd from the host root, inside the chroot: /run/udev lands on the guest's tmpfs.
  # SYSTEMD_IGNORE_CHROOT: PID 1's root is this initramfs, so udevadm would think it runs in a
  # chroot and ignore trigger/settle (systemd src/basic/virt.c running_in_chroot()).
  chroot /newroot /bin/sh -c 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_IGNORE_CHROOT=1
    for u in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd; do [ -x "$u" ] && break; done
    [ -x "$u" ] || { echo "no systemd-udevd on the host root (install the udev package)"; exit 1; }
    "$u" --daemon || exit 1
    udevadm trigger --action=add && udevadm settle --timeout=120 && [ -e /run/udev/control ]' \\
    || fail "cannot start systemd-udevd"
fi
echo "$MARK $DMVM_NONCE START"
chroot /newroot /bin/sh /run/dmvm/cmd.sh < /dev/null
rc=$?
echo "$rc" > /dmvm/exit-status
sync
echo "$MARK $DMVM_NONCE EXIT $rc"
poweroff -f
sleep 10
`;

/** True when the ELF file has no PT_INTERP program header, i.e. it is statically linked. */
export function isStaticElf(bytes: Buffer): boolean {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2) return false;
  const phoff = Number(bytes.readBigUInt64LE(0x20));
  const phentsize = bytes.readUInt16LE(0x36);
  const phnum = bytes.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (bytes.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

export interface InitramfsOptions {
  readonly kernel: KernelSpec;
  /** Directory for cached archives. */
  readonly cacheDir: string;
  /** A statically linked busybox. Default /bin/busybox (Debian's busybox-static). */
  readonly busybox?: string;
  readonly modules?: readonly string[];
}

export interface Initramfs {
  readonly path: string;
  readonly cached: boolean;
  readonly modules: readonly string[];
}

/** Builds the archive, or returns the cached one whose hash inputs match. */
export function buildInitramfs(opts: InitramfsOptions): Initramfs {
  const busybox = opts.busybox ?? '/bin/busybox';
  if (!existsSync(busybox)) throw new Error(`${busybox} is missing (install busybox-static)`);
  const { deps, builtin } = readModuleTables(opts.kernel.modulesDir);
  const order = resolveLoadOrder(opts.modules ?? INITRAMFS_MODULES, deps, builtin);
  const files = order.map((m) => join(opts.kernel.modulesDir, m.path));
  const h = createHash('sha256');
  const st = (f: string): string => {
    const s = statSync(f);
    return `${f}:${s.size}:${s.mtimeMs}`;
  };
  for (const part of [FORMAT, opts.kernel.version, INIT_SCRIPT, st(busybox), ...files.map(st)]) h.update(part + '\0');
  const hash = h.digest('hex').slice(0, 16);
  const path = join(opts.cacheDir, `initramfs-${opts.kernel.version}-${hash}.cpio`);
  const names = files.map((f) => f.slice(f.lastIndexOf('/') + 1).replace(/\.(xz|zst|gz)$/, ''));
  if (existsSync(path)) return { path, cached: true, modules: names };

  const bb = readFileSync(busybox);
  if (!isStaticElf(bb)) throw new Error(`${busybox} is dynamically linked; the initramfs needs busybox-static`);
  const entries: CpioEntry[] = [
    cpio.dir('bin'),
    cpio.dir('dev'),
    cpio.charDev('dev/console', 5, 1),
    cpio.charDev('dev/null', 1, 3, 0o666),
    cpio.dir('modules'),
    cpio.dir('proc'),
    cpio.dir('sys'),
    cpio.dir('newroot'),
    cpio.dir('dmvm'),
    cpio.file('bin/busybox', bb, 0o755),
    cpio.symlink('bin/sh', 'busybox'),
    cpio.file('init', Buffer.from(INIT_SCRIPT), 0o755),
    cpio.file('modules/order', Buffer.from(names.join('\n') + '\n')),
  ];
  files.forEach((f, i) => entries.push(cpio.file(`modules/${names[i]}`, readModuleUncompressed(f))));
  mkdirSync(opts.cacheDir, { recursive: true });
  const stale = `initramfs-${opts.kernel.version}-`;
  for (const f of readdirSync(opts.cacheDir)) {
    if (f.startsWith(stale) && f.endsWith('.cpio')) rmSync(join(opts.cacheDir, f), { force: true });
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, encodeCpio(entries));
  renameSync(tmp, path);
  return { path, cached: false, modules: names };
}
