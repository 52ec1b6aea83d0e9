#!/usr/bin/env bash
# Installs what ganeti-gluster-mountd and its tests need on Debian 12: the real
# GlusterFS server and client, iproute2 for the test namespaces, and the Python
# package with its test extras.  Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for cmd in glusterd mount.glusterfs ip curl setsid nsenter; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq glusterfs-server glusterfs-client iproute2 util-linux curl procps >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'
# Ganeti 3.0's real Python modules for tests/test_ganeti_storage.py: Debian's
# ganeti-3.0 .deb, downloaded and unpacked once into a cache folder (no install).
python3 tests/ganeti_env.py >/dev/null
