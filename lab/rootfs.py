"""Debian root file systems built with mmdebstrap once and cached by their recipe's hash.

Three kinds: the lab's node trees (every node is a copy of one; Debian 12 with
Ganeti 3.0 or Debian 13 with Ganeti 3.1, :data:`NODES`), the tree the test
suite runs in on Debian 13's libraries (:func:`suite_tree`, see
``scripts/in-root.sh``), and a fresh minimal Debian with git and python3, as a new user's
machine is (:func:`fresh_tree`, see ``scripts/demo-fresh.sh``).  A cold ``mmdebstrap`` costs a minute or more (download
and unpack of ~700 MB); CI runs on the same machine, so each finished tree is
kept under ``CACHE`` as ``rootfs-{name}-{hash}`` and reused while its recipe
(suite, variant, packages, hook, mmdebstrap version and apt sources) is
unchanged.  A new build replaces only the trees of its own name (and the
unnamed ``rootfs-{hash}`` of earlier versions), so the Debian 12 and 13 trees
live side by side.  Apt sources are the host's own
deb822 stanzas with the suite renamed (``ganeti_env.deb822_sources``): no mirror
is named here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from tests.support import ganeti_env

from . import config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "iputils-ping",
    "openssh-server",
    "openssh-client",
    "python3",
    "python3-venv",
    "ganeti",
    "qemu-system-x86",
    "qemu-block-extra",
    "cron",
    "glusterfs-client",
    "socat",
    "procps",
    "curl",
    "python3-twisted",
    "python3-psutil",
    "python3-prometheus-client",
    "python3-jsonschema",
    # The package's HTML documentation links Sphinx's JavaScript from Debian's package (dh_sphinxdoc).
    "libjs-sphinxdoc",
    # Ganeti's own QA suite of the node's release (lab/qa.py), and iptables, whose rules QA clears.
    "ganeti-testsuite",
    "iptables",
)
# Runs inside the new tree: no host keys baked in (each node makes its own), no
# first-boot surprises, root may log in by key.
NODE_HOOK = r"""
set -e
rm -f "$1"/etc/ssh/ssh_host_*
echo 'PermitRootLogin prohibit-password' > "$1"/etc/ssh/sshd_config.d/lab.conf
mkdir -p "$1"/root/.ssh && chmod 700 "$1"/root/.ssh
: > "$1"/etc/machine-id
ln -sf /dev/null "$1"/etc/systemd/system/systemd-networkd-wait-online.service
ln -sf /dev/null "$1"/etc/systemd/system/apt-daily.timer
ln -sf /dev/null "$1"/etc/systemd/system/apt-daily-upgrade.timer
ln -sf /dev/null "$1"/etc/systemd/system/e2scrub_all.timer
ln -sf /dev/null "$1"/etc/systemd/system/fstrim.timer
"""
# The suite's tree: the checkout is bind-mounted at its host path, owned by whoever owns it there.
SUITE_HOOK = r"""
set -e
chroot "$1" git config --system --add safe.directory '*'
"""
# A new user's machine: a minimal Debian with git and its own python3 (no pip), nothing of the project's.
FRESH_PACKAGES = ("git", "ca-certificates", "systemd", "python3")


def suite_packages() -> tuple[str, ...]:
    """What the suite needs from Debian: scripts/install-deps.sh's own list (one list for the host and the tree)."""
    listed = subprocess.run(["bash", os.path.join(REPO, "scripts", "install-deps.sh"), "--list"],
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return tuple(listed)


@dataclass(frozen=True)
class Recipe:
    """One cached tree: its name in the cache, the Debian release and what goes in."""

    name: str
    release: str
    packages: tuple[str, ...]
    hook: str = ""
    variant: str = "apt"

    def sources(self) -> str:
        """The host's deb822 stanzas for this release (the release and its -updates and -security suites)."""
        host = ganeti_env.codename()
        return ganeti_env.deb822_sources({f"{host}{s}": f"{self.release}{s}" for s in ("", "-updates", "-security")})

    def recipe(self) -> dict[str, object]:
        version = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True, check=True).stdout.strip()
        return {
            "suite": self.release,
            "variant": self.variant,
            "packages": sorted(self.packages),
            "customize": self.hook,
            "mmdebstrap": version,
            "sources": hashlib.sha256(self.sources().encode()).hexdigest(),
        }

    def path(self) -> str:
        key = hashlib.sha256(json.dumps(self.recipe(), sort_keys=True).encode()).hexdigest()[:16]
        return os.path.join(config.CACHE, f"rootfs-{self.name}-{key}")

    def ensure(self) -> tuple[str, float | None]:
        """The cached tree's path, built first if missing; the second value is the build's seconds (None: cache hit)."""
        target = self.path()
        if os.path.exists(os.path.join(target, ".complete")):
            return target, None
        with config.cache_lock(f"rootfs-{self.name}"):
            if os.path.exists(os.path.join(target, ".complete")):
                return target, None
            return target, self._build(target)

    def _build(self, target: str) -> float:
        """mmdebstrap into a temporary folder renamed into place; the seconds it took."""
        mine = f"rootfs-{self.name}-"
        for old in os.listdir(config.CACHE):  # a killed build of this name leaves a half tree
            if old.startswith(mine) and ".building-" in old:
                shutil.rmtree(os.path.join(config.CACHE, old), ignore_errors=True)
        tmp = f"{target}.building-{os.getpid()}"
        sources = f"{tmp}.sources"
        with open(sources, "w") as f:
            f.write(self.sources())
        start = time.monotonic()
        hooks = ["--customize-hook=" + self.hook] if self.hook else []
        try:
            subprocess.run(
                ["mmdebstrap", f"--variant={self.variant}", "--include=" + ",".join(self.packages),
                 *hooks, self.release, tmp, sources],
                check=True,
            )  # fmt: skip
        finally:
            os.unlink(sources)
        with open(os.path.join(tmp, ".complete"), "w") as f:
            json.dump(self.recipe(), f, indent=1)
        os.rename(tmp, target)
        for old in os.listdir(config.CACHE):  # keep only this name's current tree (other names' stay), and no unnamed one
            if (old.startswith(mine) and old != os.path.basename(target)) or re.fullmatch(r"rootfs-[0-9a-f]{16}", old):
                shutil.rmtree(os.path.join(config.CACHE, old), ignore_errors=True)
        return time.monotonic() - start


NODES = {release: Recipe(f"node-{release}", release, NODE_PACKAGES, NODE_HOOK) for release in ("bookworm", "trixie")}
"""The lab's node trees, by Debian release (``GGL_RELEASE``)."""


def suite_tree(release: str) -> Recipe:
    """The tree the test suite runs in on ``release``'s libraries."""
    return Recipe(f"suite-{release}", release, suite_packages(), SUITE_HOOK)


def fresh_tree(release: str) -> Recipe:
    """A minimal ``release`` with git and python3, where the demo and the tests must work as a new user runs them."""
    return Recipe(f"fresh-{release}", release, FRESH_PACKAGES, variant="minbase")


TREES = {"suite": suite_tree, "fresh": fresh_tree}
"""The trees ``scripts/in-root.sh`` runs commands in, by kind."""


def ensure() -> tuple[str, float | None]:
    """This lab run's node tree (``GGL_RELEASE``)."""
    return NODES[config.RELEASE].ensure()


def path() -> str:
    """Where this lab run's node tree is (or will be) cached."""
    return NODES[config.RELEASE].path()


def key() -> str:
    """The hash of this lab run's node tree's recipe (what caches made from that tree are named by)."""
    return path().rsplit("-", 1)[1]


if __name__ == "__main__":
    # python3 -m lab.rootfs [suite|fresh RELEASE]: the lab's node tree, or the suite's or the fresh tree of RELEASE;
    # prints its path.
    recipe = TREES[sys.argv[1]](sys.argv[2]) if len(sys.argv) == 3 else NODES[config.RELEASE]
    where, seconds = recipe.ensure()
    print(where)
    print(recipe.name, "cached" if seconds is None else f"built in {seconds:.0f} s", file=sys.stderr)
