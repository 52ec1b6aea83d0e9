"""Ganeti's real Python modules for tests: Debian's ganeti-3.0 and ganeti-3.1 packages, unpacked (not installed).

``apt-get download ganeti-X.Y`` and ``dpkg-deb -x`` into a cache folder outside
the test lab (the lab is wiped at every session), once per version; afterwards
this is a stat.  Nothing is installed system-wide and no Ganeti daemon runs:
the tests import ``ganeti.storage.base``, ``ganeti.backend`` & co. from the
unpacked tree.  Their third-party imports (pyOpenSSL, pyparsing, simplejson,
bitarray, pycurl) come from the ``test`` extra in pyproject.toml.

Each version comes from the suite of the running Debian release that carries
it (:data:`SUITES`: Debian 12 has 3.0 and, in bookworm-backports, 3.1; Debian 13
has only 3.1), through a private apt configuration whose sources are the
machine's own with the suite renamed (:func:`deb822_sources`), so the
machine's apt setup is never changed.

Standard library only: ``scripts/install-deps.sh`` runs it as a script.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

VERSIONS = ("3.0", "3.1")
SUITES = {
    "bookworm": {"3.0": "bookworm", "3.1": "bookworm-backports"},
    "trixie": {"3.1": "trixie"},
}
"""Which suite carries each Ganeti version, per Debian release (its codename)."""
CACHE = os.environ.get("GGM_GANETI_CACHE", "/var/cache/ganeti-gluster-mountd-tests")
APT_SOURCES = "/etc/apt/sources.list.d"


class Unavailable(Exception):
    """That Ganeti version cannot be had here: this Debian release carries no package of it, or this user cannot unpack it."""


def codename(os_release: str = "/etc/os-release") -> str:
    """The running Debian release's codename (bookworm, trixie)."""
    with open(os_release) as f:
        found = re.search(r"^VERSION_CODENAME=(\S+)$", f.read(), re.M)
    if found is None:
        raise RuntimeError(f"{os_release} names no VERSION_CODENAME")
    return found.group(1)


def deb822_sources(renames: dict[str, str]) -> str:
    """The machine's own deb822 stanzas with their suites renamed: the same mirrors, other suites.

    A suite the mapping does not name is left out, and so is a stanza left with none.
    """
    stanzas = []
    for path in sorted(glob.glob(os.path.join(APT_SOURCES, "*.sources"))):
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                listed = re.search(r"^Suites:(.*)$", stanza, re.M)
                suites = [renames[s] for s in listed.group(1).split() if s in renames] if listed else []
                if suites:
                    stanzas.append(re.sub(r"^Suites:.*$", "Suites: " + " ".join(suites), stanza.strip(), flags=re.M))
    if not stanzas:
        raise RuntimeError(f"no deb822 stanza in {APT_SOURCES}/*.sources names any of {sorted(renames)}")
    return "\n\n".join(stanzas) + "\n"


def _run(argv: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=600)


def download(package: str, suite: str, into: str) -> str:
    """``apt-get download`` of one package from one suite of this machine's mirror, with a private apt state."""
    state = os.path.join(into, "apt")
    for sub in ("parts", "lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(state, sub), exist_ok=True)
    with open(os.path.join(state, "parts", "suite.sources"), "w") as f:
        f.write(deb822_sources({codename(): suite}))
    options = [
        "-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={state}/parts",
        "-o", f"Dir::State::Lists={state}/lists", "-o", f"Dir::Cache={state}/cache", "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip
    for argv in (["apt-get", *options, "update", "-qq"], ["apt-get", *options, "download", package]):
        got = _run(argv, into)
        if got.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:1] + argv[-2:])} from {suite} failed: {got.stderr.strip() or got.stdout.strip()}")
    debs = glob.glob(os.path.join(into, f"{package}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"apt-get download {package} gave {debs}")
    return debs[0]


@dataclass(frozen=True)
class Ganeti:
    """One Ganeti version's package, unpacked under :data:`CACHE`."""

    version: str

    @property
    def package(self) -> str:
        return f"ganeti-{self.version}"

    @property
    def tree(self) -> str:
        return os.path.join(CACHE, self.package)

    @property
    def python_dir(self) -> str:
        """The folder holding the ``ganeti`` package (``/usr/share/ganeti/X.Y`` in the tree)."""
        return os.path.join(self.tree, "usr", "share", "ganeti", self.version)

    @property
    def marker(self) -> str:
        return os.path.join(self.tree, ".unpacked")

    def suite(self) -> str:
        """The suite carrying this version for the running release; Unavailable when none does."""
        release = codename()
        suite = SUITES.get(release, {}).get(self.version)
        if suite is None:
            raise Unavailable(f"Debian {release} carries no {self.package} package")
        return suite

    def ensure_unpacked(self) -> str:
        """:attr:`python_dir`; downloads and unpacks the package the first time."""
        if os.path.exists(self.marker):
            return self.python_dir
        suite = self.suite()
        try:
            os.makedirs(CACHE, exist_ok=True)
        except PermissionError:
            raise Unavailable(
                f"{CACHE} holds no {self.package} and this user (uid {os.getuid()}) cannot unpack it there: "
                "run scripts/install-deps.sh as root once, or point GGM_GANETI_CACHE at a folder this user may write"
            ) from None
        with open(os.path.join(CACHE, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs on one machine unpack once
            if os.path.exists(self.marker):
                return self.python_dir
            work = tempfile.mkdtemp(prefix="unpack-", dir=CACHE)
            try:
                deb = download(self.package, suite, work)
                tree = os.path.join(work, "tree")
                unpacked = _run(["dpkg-deb", "-x", deb, tree], work)
                if unpacked.returncode != 0 or not os.path.exists(os.path.join(tree, self.module("storage/base.py"))):
                    raise RuntimeError(f"dpkg-deb -x {deb} gave no ganeti/storage/base.py: {unpacked.stderr.strip()}")
                with open(os.path.join(tree, ".unpacked"), "w") as f:
                    f.write(os.path.basename(deb) + "\n")
                shutil.rmtree(self.tree, ignore_errors=True)
                os.rename(tree, self.tree)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return self.python_dir

    def module(self, name: str) -> str:
        """A module's path relative to the root, as the package installs it: ``usr/share/ganeti/X.Y/ganeti/NAME``."""
        return f"usr/share/ganeti/{self.version}/ganeti/{name}"

    def deb_name(self) -> str:
        """The .deb the tree came from, e.g. ganeti-3.0_3.0.2-3_all.deb."""
        with open(self.marker) as f:
            return f.read().strip()

    def activate(self) -> str:
        """Put the unpacked tree first on sys.path (another version's modules out) and check ``ganeti`` comes from it."""
        path = self.ensure_unpacked()
        for other in VERSIONS:
            sys.path[:] = [p for p in sys.path if p != Ganeti(other).python_dir]
        for name in [m for m in sys.modules if m == "ganeti" or m.startswith("ganeti.") or m == "glusterd_mgr.ganeti_storage"]:
            del sys.modules[name]
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:  # ``from parent import child`` would find the old one there
                vars(sys.modules[parent]).pop(child, None)
        sys.path.insert(0, path)
        import ganeti

        where = os.path.dirname(os.path.abspath(ganeti.__file__))
        if where != os.path.join(path, "ganeti"):
            raise RuntimeError(f"ganeti was imported from {where}, not from the unpacked {self.package} at {path}")
        return path


def available() -> list[Ganeti]:
    """The versions the running release carries."""
    return [Ganeti(v) for v in VERSIONS if v in SUITES.get(codename(), {})]


if __name__ == "__main__":
    for ganeti in available():
        print(ganeti.ensure_unpacked())
