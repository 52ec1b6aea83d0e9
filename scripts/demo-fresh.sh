#!/usr/bin/env bash
# The quick start as a new user meets it, as root on this host: in a fresh minimal Debian RELEASE
# (default trixie) with git and nothing else of the project's (lab/rootfs.py's fresh tree, a
# throwaway overlay on it: scripts/in-root.sh), clones this checkout's HEAD and runs
# `bash scripts/demo.sh` as the README says, with Debian's /usr/bin/python3 alone on PATH and no pip.
# Fails unless the demo ends with the volume mounted and pip is still absent; prints how long it took.
#   bash scripts/demo-fresh.sh [RELEASE]
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:-trixie}
bash scripts/in-root.sh --fresh "$release" bash -euc '
  repo=$1 release=$2
  no_pip() { if /usr/bin/python3 -m pip --version >/dev/null 2>&1; then echo "pip is installed: not a stock Debian" >&2; exit 1; fi; }
  no_pip
  [ "$(command -v python3)" = /usr/bin/python3 ]
  git -c safe.directory="*" clone -q "$repo" /root/ganeti-gluster-mountd
  cd /root/ganeti-gluster-mountd
  start=$(date +%s)
  bash scripts/demo.sh
  seconds=$(( $(date +%s) - start ))
  no_pip
  echo "== scripts/demo-fresh.sh: the demo took $seconds s on a fresh Debian $release root (its apt installs included)"
' demo-fresh "$PWD" "$release"
