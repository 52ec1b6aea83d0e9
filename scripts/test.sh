#!/usr/bin/env bash
# Installs everything and runs the whole test suite, the real Gluster server included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec python3 -m pytest -p no:cacheprovider "$@"
