#!/usr/bin/env bash
# Installs everything, runs the unit tests of the core as an unprivileged user (no root, no Gluster needed),
# then the whole test suite as root, the real Gluster server included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python="$(python3 -c 'import sys; print(sys.executable)')"
if [ "$(id -u)" = 0 ]; then
    # The interpreter may live under /root (pyenv), which nobody cannot enter: then the system's python3 runs them.
    unprivileged=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    "${unprivileged[@]}" test -x "$python" || python=/usr/bin/python3
    PYTHONDONTWRITEBYTECODE=1 "${unprivileged[@]}" "$python" -m pytest -p no:cacheprovider -q tests/unit
fi
exec python3 -m pytest -p no:cacheprovider "$@"
