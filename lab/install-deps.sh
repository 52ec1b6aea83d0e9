#!/usr/bin/env bash
# What the lab needs on a fresh Debian 12 host (as root): mmdebstrap and
# systemd-nspawn to build and boot the nodes, glusterd for the three servers,
# busybox-static and cpio for the guest's initramfs, dpkg-dev for the .deb route,
# pytest with pytest-timeout for the scenarios.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
pkgs=(mmdebstrap systemd-container glusterfs-server glusterfs-client iproute2 nftables util-linux
      busybox-static cpio openssh-client dpkg-dev debhelper python3-psutil python3-pytest
      python3-pytest-timeout python3-pip git)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian packages' build dependencies (debian/control), for the .deb install route.
if [ -d debian ] && ! dpkg-checkbuilddeps >/dev/null 2>&1; then
  apt-get update -qq
  apt-get build-dep -y -qq ./ >/dev/null
fi
command -v lintian >/dev/null || apt-get install -y -qq lintian >/dev/null
