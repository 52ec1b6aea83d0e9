"""Ganeti 3.0's real Python modules for tests: Debian's ganeti-3.0 package, unpacked (not installed).

``apt-get download ganeti-3.0`` and ``dpkg-deb -x`` into a cache folder outside
the test lab (the lab is wiped at every session), once; afterwards this is a
stat.  Nothing is installed system-wide and no Ganeti daemon runs: the tests
import ``ganeti.storage.base``, ``ganeti.backend`` & co. from the unpacked tree.
Their third-party imports (pyOpenSSL, pyparsing, simplejson, bitarray, pycurl)
come from the ``test`` extra in pyproject.toml.

Standard library only: ``scripts/install-deps.sh`` runs it as a script.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
import sys
import tempfile

PACKAGE = "ganeti-3.0"
CACHE = os.environ.get("GGM_GANETI_CACHE", "/var/cache/ganeti-gluster-mountd-tests")
TREE = os.path.join(CACHE, PACKAGE)
PYTHON_DIR = os.path.join(TREE, "usr", "share", "ganeti", "3.0")
MARKER = os.path.join(TREE, ".unpacked")


def _run(argv: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=600)


def ensure_unpacked() -> str:
    """The folder holding the ``ganeti`` package; downloads and unpacks it the first time."""
    if os.path.exists(MARKER):
        return PYTHON_DIR
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs on one machine unpack once
        if os.path.exists(MARKER):
            return PYTHON_DIR
        work = tempfile.mkdtemp(prefix="unpack-", dir=CACHE)
        try:
            got = _run(["apt-get", "download", PACKAGE], work)
            if got.returncode != 0:  # a fresh machine has no package lists yet
                _run(["apt-get", "update", "-qq"], work)
                got = _run(["apt-get", "download", PACKAGE], work)
            debs = glob.glob(os.path.join(work, f"{PACKAGE}_*.deb"))
            if got.returncode != 0 or len(debs) != 1:
                raise RuntimeError(f"apt-get download {PACKAGE} failed: {got.stderr.strip() or got.stdout.strip()}")
            tree = os.path.join(work, "tree")
            unpacked = _run(["dpkg-deb", "-x", debs[0], tree], work)
            if unpacked.returncode != 0 or not os.path.exists(os.path.join(tree, "usr/share/ganeti/3.0/ganeti/storage/base.py")):
                raise RuntimeError(f"dpkg-deb -x {debs[0]} gave no ganeti/storage/base.py: {unpacked.stderr.strip()}")
            with open(os.path.join(tree, ".unpacked"), "w") as f:
                f.write(os.path.basename(debs[0]) + "\n")
            shutil.rmtree(TREE, ignore_errors=True)
            os.rename(tree, TREE)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return PYTHON_DIR


def version() -> str:
    """The .deb the tree came from, e.g. ganeti-3.0_3.0.2-3_all.deb."""
    with open(MARKER) as f:
        return f.read().strip()


def activate() -> str:
    """Put the unpacked tree first on sys.path and check ``ganeti`` is imported from it, not from a copy."""
    path = ensure_unpacked()
    if path not in sys.path:
        sys.path.insert(0, path)
    import ganeti

    where = os.path.dirname(os.path.abspath(ganeti.__file__))
    if where != os.path.join(path, "ganeti"):
        raise RuntimeError(f"ganeti was imported from {where}, not from the unpacked {PACKAGE} at {path}")
    return path


if __name__ == "__main__":
    print(ensure_unpacked())
