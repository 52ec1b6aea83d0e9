#!/usr/bin/env bash
# Installs what ganeti-gluster-mountd's demo or its tests need, on a stock Debian 12 or 13 (as root).
# Nothing goes into the system Python with pip (Debian's is externally managed, PEP 668): Debian's
# python3-* packages, and PyPI's libraries only in a virtual environment of the checkout (.venv).
#   bash scripts/install-deps.sh --demo          what scripts/demo.sh runs: GlusterFS, iproute2 and
#                                                Debian's libraries of the daemon, nothing else
#   bash scripts/install-deps.sh --debian-only   everything the suite needs from Debian
#   bash scripts/install-deps.sh                 the same, plus .venv with PyPI's current libraries and
#                                                the package's test extras (prints the venv's python)
#   bash scripts/install-deps.sh --list          prints the suite's Debian packages (lab/rootfs.py
#                                                builds the Debian 13 tree of scripts/in-root.sh from it)
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
demo_packages=(
  glusterfs-server glusterfs-client iproute2 util-linux procps
  python3 python3-twisted python3-psutil python3-prometheus-client python3-jsonschema
)
apt_packages=(
  "${demo_packages[@]}"
  # The real GlusterFS server and client; fio for the data-path benchmark (Debian's links libgfapi,
  # for its gfapi engines); nftables to cut a server off (the partition tests); promtool (in
  # prometheus) for the shipped alerting rules; systemd-analyze for the packaged unit's check.
  fio nftables prometheus curl git ca-certificates systemd
  # The test tools from Debian, and what Ganeti 3.0's and 3.1's modules import in tests/test_ganeti_storage.py.
  python3-pytest python3-pytest-twisted python3-pytest-timeout python3-hypothesis
  python3-openssl python3-pyparsing python3-simplejson python3-bitarray python3-pycurl
  # The documentation and man pages (Sphinx, warnings as errors), and the virtual environment.
  python3-sphinx python3-venv
  # Building and checking the .debs.
  build-essential dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools lintian
)
mode=${1:-}
case "$mode" in
  --list) printf '%s\n' "${apt_packages[@]}"; exit 0 ;;
  --demo) apt_packages=("${demo_packages[@]}") ;;
  --debian-only | "") ;;
  *) echo "usage: $0 [--demo | --debian-only | --list]" >&2; exit 2 ;;
esac
missing=()
for pkg in "${apt_packages[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "$mode" = --demo ] && exit 0
# Ganeti's real Python modules for tests/test_ganeti_storage.py: Debian's ganeti-3.0 and (from
# bookworm-backports) ganeti-3.1 .debs, downloaded and unpacked once into a cache folder (no install).
/usr/bin/python3 tests/support/ganeti_env.py >/dev/null
[ "$mode" = --debian-only ] && exit 0
# PyPI's libraries in .venv, made from Debian's own Python (never whatever python3 comes first on
# PATH), the package installed editable; redone only when pyproject.toml changes.
venv=$PWD/.venv
stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$stamp" ]; then
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$stamp" > "$venv/.installed"
fi
