#!/usr/bin/env bash
# Installs what this project needs on a Debian machine. Idempotent and quick when all is present.
#  - npm ci when node_modules is missing or older than package-lock.json;
#  - the VM test substrate's Debian packages (as root: apt-get; otherwise: says what to install);
#  - apt's package lists must know the second CI kernel (linux-image-6.12.*-amd64-unsigned, in
#    bookworm-security/main and later; scripts/test-all.sh fetches it without root into
#    .cache/vm/kernels): as root, apt-get update when they do not.
set -euo pipefail
cd "$(dirname "$0")/.."

# cryptsetup-bin: veritysetup, the hash-tree oracle of test/privileged/targets-crypt-verity.test.ts; keyutils: keyctl, to put a logon key in the keyring for its crypt keyring test.
# udev: systemd-udevd and udevadm for the udev matrix cell (its rules for dm nodes come with dmsetup).
# docker.io (20.10, with containerd and runc): the real dockerd with its devicemapper graph driver,
# the oracle of test/privileged/docker.test.ts (the guest runs the host root's /usr/sbin/dockerd).
PKGS=(qemu-system-x86 linux-image-amd64 busybox-static e2fsprogs xfsprogs dmsetup thin-provisioning-tools cryptsetup-bin keyutils kmod xz-utils udev docker.io containerd runc)
KERNEL2_PATTERN=${DEVMAPPER_CI_KERNEL2:-pkg:linux-image-6.12.*-amd64-unsigned}

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  touch node_modules
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PKGS[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
  done
else
  echo "setup: not a Debian system (no dpkg-query); the VM suite needs: ${PKGS[*]}" >&2
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: as root, run:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi

# The second CI kernel: only a package pattern needs apt's lists (a version or a path does not).
if [[ "$KERNEL2_PATTERN" == pkg:* ]]; then
  re="^$(printf '%s' "${KERNEL2_PATTERN#pkg:}" | sed -e 's/[.+]/\\&/g' -e 's/\*/[^-]*/g')\$"
  prefix=${KERNEL2_PATTERN#pkg:}
  prefix=${prefix%%\**}
  # grep -c, not -q: -q would stop reading early and pipefail would count apt-cache's SIGPIPE.
  known() { [ "$(apt-cache pkgnames "$prefix" 2>/dev/null | grep -Ec "$re")" -gt 0 ]; }
  if ! known; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "setup: apt knows no package matching ${KERNEL2_PATTERN#pkg:}; as root, run: apt-get update" >&2
      exit 1
    fi
    echo "setup: apt-get update (no package matching ${KERNEL2_PATTERN#pkg:} in apt's lists)"
    apt-get update
    known || { echo "setup: no package matches ${KERNEL2_PATTERN#pkg:}: the apt sources need bookworm-security (or a newer suite)" >&2; exit 1; }
  fi
fi
