#!/usr/bin/env bash
# Sets up and runs the main job: installs everything, brings up a throwaway
# Gluster server, starts the daemon, acquires a volume, creates a disk, prints
# the state.  Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec python3 scripts/demo.py "$@"
