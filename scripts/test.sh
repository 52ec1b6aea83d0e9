#!/usr/bin/env bash
# Installs everything, runs the unit tests of the core as an unprivileged user (no root, no Gluster
# needed), then the whole test suite as root, the real Gluster server included.  Works on a stock
# Debian 12 or 13: Debian's /usr/bin/python3, nothing pip-installed into it (scripts/install-deps.sh).
#   bash scripts/test.sh [PYTEST ARGS]            PyPI's libraries: a virtual environment of the
#                                                 checkout (.venv, made from /usr/bin/python3) with
#                                                 the package installed editable (-e '.[test]')
#   bash scripts/test.sh --debian [PYTEST ARGS]   the release's own libraries: /usr/bin/python3 with
#                                                 the python3-* packages, the package run in-tree
#   bash scripts/test.sh --nobody [PYTEST ARGS]   the whole suite as the unprivileged user nobody, with
#                                                 Debian's libraries (nobody cannot enter a root-only
#                                                 pyenv): what needs root or Gluster skips, saying why
# The Debian and nobody runs leave out tests/test_static.py (mypy and ruff are development tools that
# are not Debian packages here; the PyPI run has them) and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
debian=0
nobody=0
case "${1:-}" in
  --debian) debian=1; shift ;;
  --nobody) debian=1; nobody=1; shift ;;
esac
if [ "$debian" = 1 ]; then bash scripts/install-deps.sh --debian-only; else bash scripts/install-deps.sh; fi
python=/usr/bin/python3
if [ "$debian" = 0 ]; then
  python=$PWD/.venv/bin/python
  export PATH="$PWD/.venv/bin:$PATH"   # the venv's ganeti-gluster-mountd and gluster-mountctl
fi
unprivileged=()
if [ "$(id -u)" = 0 ]; then
    unprivileged=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
# Runs "$@" as nobody in the checkout, or, where nobody cannot read it (a clone in /root), in a copy
# of it that nobody can read (no .git, .venv or build/), removed afterwards.
as_nobody() {
  if "${unprivileged[@]}" test -r "$PWD/pyproject.toml"; then
    "${unprivileged[@]}" "$@"
    return
  fi
  local copy rc=0
  copy=$(mktemp -d /tmp/ggm-as-nobody.XXXXXX)
  tar -c --exclude=./.git --exclude=./.venv --exclude=./build . | tar -x -C "$copy"
  chmod -R a+rX "$copy"
  (cd "$copy" && PYTHONPATH=$copy "${unprivileged[@]}" "$@") || rc=$?
  rm -rf "$copy"
  return "$rc"
}
if [ "$nobody" = 1 ]; then
  # In-tree, nothing written into the checkout (nobody may not): no bytecode, no pytest cache.
  # Without CI: under CI a test that finds no Gluster or promtool fails rather than skips, and
  # here their skipping is the point (the root runs have them).
  unset CI
  export PYTHONPATH=$PWD PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1
  unset PYTHONHOME
  as_nobody /usr/bin/python3 -m pytest -p no:cacheprovider --ignore=tests/test_static.py "$@"
  exit
fi
if [ "$(id -u)" = 0 ]; then
    # The venv may live where nobody cannot enter: then the system's python3 runs them.
    unprivileged_python=$python
    "${unprivileged[@]}" test -x "$unprivileged_python" || unprivileged_python=/usr/bin/python3
    PYTHONDONTWRITEBYTECODE=1 as_nobody "$unprivileged_python" -m pytest -p no:cacheprovider -q tests/unit
fi
if [ "$debian" = 1 ]; then
  # -I would also drop PYTHONPATH: instead clear what could bring in other modules than Debian's.
  export PYTHONPATH=$PWD PYTHONNOUSERSITE=1
  unset PYTHONHOME
  /usr/bin/python3 - <<'PY'
import importlib.metadata as m, sys
for name in ("twisted", "jsonschema", "prometheus_client", "psutil", "hypothesis", "pytest"):
    mod = __import__(name)
    where = getattr(mod, "__file__", "")
    if not where.startswith("/usr/lib/python3/dist-packages/"):
        sys.exit(f"{name} comes from {where}, not from Debian's python3-* packages")
print("Debian's libraries:", ", ".join(f"{d} {m.version(d)}" for d in ("twisted", "jsonschema", "prometheus-client", "psutil", "pytest", "hypothesis")))
PY
  exec /usr/bin/python3 -m pytest -p no:cacheprovider --ignore=tests/test_static.py "$@"
fi
exec "$python" -m pytest -p no:cacheprovider "$@"
