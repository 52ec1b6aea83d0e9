#!/usr/bin/env bash
# Builds the Debian packages (ganeti-gluster-mountd, ganeti-gluster-mountd-ganeti) from a clean
# export of a commit (git archive: uncommitted changes are not in them), then runs lintian on them.
#   bash scripts/build-deb.sh [--ref REF] [--out DIR] [--version V]     (defaults: HEAD, build/deb)
# --version builds the same tree as version V (the top entry of debian/changelog renamed), e.g.
# 0.1.0+up1 to exercise an upgrade over the packages of the same commit.
# Needs Debian 12's build tools (scripts/install-deps.sh installs them); no root needed.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=HEAD
version=
out=$PWD/build/deb
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) ref=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    *) echo "usage: $0 [--ref REF] [--out DIR] [--version V]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/ggmd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# safe.directory: a checkout owned by another user (the suite run as nobody on root's checkout) is read, never run.
git -c safe.directory="$PWD" archive --format=tar --prefix=src/ "$ref" | tar -x -C "$work"
if [ -n "$version" ]; then
  sed -i "1s/^ganeti-gluster-mountd ([^)]*)/ganeti-gluster-mountd ($version)/" "$work/src/debian/changelog"
fi
(cd "$work/src" && dpkg-checkbuilddeps && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
  tail -40 "$work/build.log" >&2
  echo "dpkg-buildpackage failed (log above)" >&2
  exit 1
}
mkdir -p "$out"
rm -f "$out"/ganeti-gluster-mountd*.deb "$out"/ganeti-gluster-mountd*.changes "$out"/ganeti-gluster-mountd*.buildinfo
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
cp "$work/build.log" "$out/build.log"
# lintian refuses nothing but errors; every warning it still prints is explained in docs/development/tests.rst ("Lintian").
lintian --pedantic --fail-on error "$out"/ganeti-gluster-mountd_*.changes | tee "$out/lintian.txt"
ls "$out"/*.deb
