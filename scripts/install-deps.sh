#!/usr/bin/env bash
# Installs what ganeti-gluster-mountd and its tests need on Debian 12: the real GlusterFS server
# and client, fio (the data-path benchmark; Debian's links libgfapi, for its gfapi engines), iproute2 for the test namespaces, nftables to cut a server off (the partition tests),
# prometheus for promtool (the shipped alerting rules are tested with it), Debian's Python libraries (for the packages and
# `scripts/test.sh --debian`), the Debian packaging tools (scripts/build-deb.sh), and the Python
# package with its test extras from PyPI (for `scripts/test.sh`).  Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
apt_packages=(
  glusterfs-server glusterfs-client fio iproute2 nftables prometheus util-linux curl procps git
  # systemd-analyze for the packaged unit's check.
  systemd
  # Debian 12's libraries: what the package depends on, the test tools, and what Ganeti 3.0's and 3.1's
  # modules import in tests/test_ganeti_storage.py.
  python3-twisted python3-psutil python3-prometheus-client python3-jsonschema
  python3-pytest python3-pytest-twisted python3-pytest-timeout python3-hypothesis
  python3-openssl python3-pyparsing python3-simplejson python3-bitarray python3-pycurl
  # Building and checking the .debs.
  build-essential dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools lintian
)
# --list prints them (lab/rootfs.py builds the Debian 13 tree of scripts/in-root.sh from this list).
if [ "${1:-}" = --list ]; then
  printf '%s\n' "${apt_packages[@]}"
  exit 0
fi
missing=()
for pkg in "${apt_packages[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# --debian-only (scripts/test.sh --debian): Debian's libraries only, nothing from PyPI.
[ "${1:-}" = --debian-only ] || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'
# Ganeti's real Python modules for tests/test_ganeti_storage.py: Debian's ganeti-3.0 and (from
# bookworm-backports) ganeti-3.1 .debs, downloaded and unpacked once into a cache folder (no install).
python3 tests/support/ganeti_env.py >/dev/null
