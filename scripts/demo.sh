#!/usr/bin/env bash
# The quick start, as root on a stock Debian 12 or 13: installs what the demo runs from Debian
# (GlusterFS, iproute2, the daemon's python3-* libraries), brings up a throwaway Gluster server in a
# network namespace, starts the daemon, acquires a volume, creates a disk and prints the state;
# exits non-zero unless the volume ended mounted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --demo
exec /usr/bin/python3 scripts/demo.py "$@"
