#!/usr/bin/env bash
# Runs a command of this checkout inside a Debian root file system of another release, on this host
# (as root): how the suite runs on Debian 13's libraries from a Debian 12 machine.
#   bash scripts/in-root.sh RELEASE COMMAND [ARGS]     e.g. bash scripts/in-root.sh trixie bash scripts/test.sh --debian
#   bash scripts/in-root.sh --fresh RELEASE COMMAND [ARGS]   in a minimal RELEASE with git only (scripts/demo-fresh.sh)
# The tree (scripts/install-deps.sh's Debian packages, from RELEASE; or the minimal one) is built once
# with mmdebstrap and cached (lab/rootfs.py, `python3 -m lab.rootfs suite|fresh RELEASE`); each run
# gets a fresh overlay on it, thrown away at the end.  The command runs in mount and PID namespaces of its own with the tree as
# its root (pivot_root, not chroot: a process that enters a mount namespace made inside, as the
# tests' nsenter into glusterd's does, lands in the tree too): a /proc of its own, the host's /sys
# and /dev, a private /run and /tmp (its network namespaces and sockets stay its own), the
# checkout (and its git folder) at the same path as on the host, the host's network.  So the
# real-Gluster tests run there too, with the release's own glusterd and FUSE client; whatever the
# command leaves running (a killed test's glusterd, a FUSE client) dies with its PID namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=suite
if [ "${1:-}" = --fresh ]; then kind=fresh; shift; fi
[ $# -ge 2 ] || { echo "usage: $0 [--fresh] RELEASE COMMAND [ARGS]" >&2; exit 2; }
release=$1
shift
if ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi
tree=$(/usr/bin/python3 -m lab.rootfs "$kind" "$release")
repo=$PWD
common=$(cd "$(git rev-parse --git-common-dir)" && pwd)   # a worktree's git folder lives elsewhere
work=$(mktemp -d /var/tmp/ggm-in-root.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/upper" "$work/work" "$work/root"
# What the command may see of the caller's environment: the suite's own knobs and CI.
keep=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
while IFS= read -r var; do keep+=("$var"); done < <(env | grep -E '^(GGMT_|GGM_|CI=)' || true)
cmd=$(printf '%q ' "$@")
unshare --mount --pid --fork --propagation private -- bash -euc '
  work=$1 tree=$2 repo=$3 common=$4 cmd=$5; shift 5
  root=$work/root
  mount -t overlay overlay -o "lowerdir=$tree,upperdir=$work/upper,workdir=$work/work" "$root"
  mount -t proc proc "$root/proc"
  for d in sys dev; do mount --rbind "/$d" "$root/$d"; done
  mount -t tmpfs tmpfs "$root/run"
  mount -t tmpfs tmpfs "$root/tmp"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  for d in "$repo" "$common"; do mkdir -p "$root$d" && mount --bind "$d" "$root$d"; done
  mkdir -p "$root/.host"
  cd "$root"
  pivot_root . .host
  # PID 1 of the namespace stays this bash, which reaps what dies orphaned (a killed test'"'"'s FUSE
  # client), instead of becoming the command itself (a Python that never reaps them).
  exec chroot . env -i "$@" bash -c "umount -l /.host && rmdir /.host && cd $(printf %q "$repo") && { $cmd & wait \$!; }"
' in-root "$work" "$tree" "$repo" "$common" "$cmd" "${keep[@]}"
