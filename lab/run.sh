#!/usr/bin/env bash
# The lab in one command (as root, Debian 12): clean what a killed run left,
# build or reuse the cached root file system, bring up three Gluster servers and
# a two-node Ganeti cluster, run every scenario, tear everything down, print
# the figures.  GGL_KEEP=1 leaves the lab up (GGL_REUSE=1 runs on it again;
# `python3 -m lab.cluster down` removes it).  Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
bash lab/install-deps.sh
python3 -m lab.cluster down   # leftovers of a killed run
python3 -c 'from lab import cluster, config; import os; p = cluster.figures_path(); os.path.exists(p) and os.unlink(p)'
python3 -m pytest -p no:cacheprovider -o addopts= -ra --durations=10 lab/scenarios "$@"
rc=$?
if [ "${GGL_KEEP:-0}" != 1 ]; then python3 -m lab.cluster down; fi
echo "== lab figures"
python3 -m lab.figures || true
exit $rc
