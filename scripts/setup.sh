#!/usr/bin/env bash
# Installs what this project needs on a Debian machine. Idempotent and quick when all is present.
#  - npm ci when node_modules is missing or older than package-lock.json;
#  - the VM test substrate's Debian packages (as root: apt-get; otherwise: says what to install).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(qemu-system-x86 linux-image-amd64 busybox-static e2fsprogs xfsprogs dmsetup thin-provisioning-tools kmod xz-utils)

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
