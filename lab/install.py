"""Installing the project into a node as an operator does: ONE entry point, ``install(node)``.

Two routes, chosen by ``GGL_INSTALL`` (``auto`` by default):

- ``venv``: docs/install.rst's venv route and its by-hand Ganeti steps,
  with pip fed from a wheelhouse downloaded on the host (a node has no
  network).  The shim is that page's own ``ganeti-shim`` block, run verbatim.
- ``deb``: the Debian packages built with ``scripts/build-deb.sh`` (``dpkg-buildpackage
  -us -uc -b`` of the committed tree) on the host and installed with
  ``apt-get install ./*.deb`` inside the node (its
  Debian dependencies are in the root file system already).

``auto`` takes ``deb`` when the tree has a ``debian/`` folder.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys

from tests.support import documented, ganeti_env

from . import config
from .node import Node

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.abspath(os.environ.get("GGL_SOURCE", REPO))
"""The tree installed into the nodes: this checkout, or ``GGL_SOURCE``, a checkout with a fix taken out
(committed: the packages are built from its HEAD), to see the scenarios catch the bug it fixed."""
DEPS = ("twisted>=23.10", "psutil>=5.9", "prometheus_client>=0.17", "jsonschema>=4.18")
PLATFORM = ("--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
            "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
            "--platform", "manylinux_2_28_x86_64", "--platform", "any")  # fmt: skip
SHIM_FILES = (
    "__init__.py", "client.py", "ganeti_storage.py",
    "core/__init__.py", "core/errors.py", "core/holders.py", "core/volume.py", "core/results.py",
)  # fmt: skip
"""What Ganeti's side imports of the package (docs/install.rst, the by-hand route, step 1)."""


def route() -> str:
    chosen = os.environ.get("GGL_INSTALL", "auto")
    if chosen == "auto":
        chosen = "deb" if os.path.isdir(os.path.join(SOURCE, "debian")) else "venv"
    if chosen == "venv" and config.RELEASE != "bookworm":
        raise RuntimeError("the venv route runs the documented Debian 12 steps (Python 3.11's paths): Debian 13 nodes take the deb route")
    return chosen


def wheelhouse() -> str:
    """The project's wheel (built now: the tree changes every commit) plus its dependencies (cached)."""
    tag = hashlib.sha256(" ".join(DEPS + PLATFORM).encode()).hexdigest()[:12]
    deps = os.path.join(config.CACHE, f"wheels-{tag}")
    if not os.path.isdir(deps):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", deps + ".new", *PLATFORM, *DEPS], check=True)
        os.rename(deps + ".new", deps)
    out = os.path.join(config.BASE, "wheelhouse")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(deps, out)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, SOURCE],
                   check=True, capture_output=True)  # fmt: skip
    return out


def build_debs(name: str, *options: str) -> list[str]:
    """scripts/build-deb.sh of the committed tree into BASE/NAME, on the nodes' own Debian release.

    The host's release builds them directly; another (Debian 13 nodes on this Debian 12 host)
    builds them with its own tools in its cached tree (scripts/in-root.sh), into the checkout.
    """
    out = os.path.join(config.BASE, name)
    shutil.rmtree(out, ignore_errors=True)
    argv = ["bash", "scripts/build-deb.sh", *options]
    if config.RELEASE == ganeti_env.codename():
        argv += ["--out", out]
    else:
        inside = os.path.join(SOURCE, "build", f"lab-{config.PREFIX}-{name}")
        argv = ["bash", "scripts/in-root.sh", config.RELEASE, *argv, "--out", inside]
    r = subprocess.run(argv, cwd=SOURCE, capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"{' '.join(argv)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    if out not in argv:
        shutil.move(inside, out)
    return sorted(glob.glob(os.path.join(out, "*.deb")))


def debs() -> list[str]:
    """The Debian packages of the committed tree, built once per run; the .deb files."""
    found = glob.glob(os.path.join(config.BASE, "debs", "*.deb"))
    return sorted(found) if found else build_debs("debs")


def stage(node: Node, files: dict[str, str], inside: str = "/root/lab-install") -> str:
    """Copy host files into the node's folder ``inside`` (emptied first); returns that folder's path inside."""
    shutil.rmtree(node.path(inside), ignore_errors=True)
    for dst, src in files.items():
        target = node.path(os.path.join(inside, dst))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, target)
    return inside


def install_venv(node: Node, wheels: str) -> None:
    d = stage(node, {
        "wheels": wheels,
        "systemd/ganeti-gluster-mountd.service": os.path.join(SOURCE, "systemd", "ganeti-gluster-mountd.service"),
        "examples/gluster-mountd.toml": os.path.join(SOURCE, "examples", "gluster-mountd.toml"),
        **{f"glusterd_mgr/{f}": os.path.join(SOURCE, "glusterd_mgr", f) for f in SHIM_FILES},
    })  # fmt: skip
    # docs/install.rst's venv route, pip pointed at the wheelhouse.
    node.sh(f"""set -e
cd {d}
export PIP_NO_INDEX=1 PIP_FIND_LINKS={d}/wheels PIP_DISABLE_PIP_VERSION_CHECK=1
apt-get install -y -q glusterfs-client python3-venv
python3 -m venv /opt/ganeti-gluster-mountd
/opt/ganeti-gluster-mountd/bin/pip install -q ganeti-gluster-mountd
ln -sf /opt/ganeti-gluster-mountd/bin/ganeti-gluster-mountd /opt/ganeti-gluster-mountd/bin/gluster-mountctl /usr/local/bin/
install -m 0644 systemd/ganeti-gluster-mountd.service /etc/systemd/system/
install -m 0644 examples/gluster-mountd.toml /etc/ganeti/gluster-mountd.toml
grep -qx /var/run/ganeti/gluster /etc/ganeti/file-storage-paths || echo /var/run/ganeti/gluster >> /etc/ganeti/file-storage-paths
systemctl daemon-reload && systemctl enable --now ganeti-gluster-mountd
gluster-mountctl status
install -d /usr/local/lib/python3.11/dist-packages/glusterd_mgr/core
for f in {" ".join(SHIM_FILES)}; do
    install -m 0644 glusterd_mgr/$f /usr/local/lib/python3.11/dist-packages/glusterd_mgr/$f
done
""")
    node.sh("set -e\n" + documented.shell_block("ganeti-shim", SOURCE))
    _check_shim(node)


def install_deb(node: Node, packages: list[str]) -> None:
    d = stage(node, {os.path.basename(p): p for p in packages})
    names = " ".join(f"./{os.path.basename(p)}" for p in packages)
    # No network in a node: every dependency is in the root file system already, so
    # apt downloads nothing (apt 2.6's --no-download fails on ./x.deb, see docs/install.rst).
    node.sh(f"set -e; cd {d}; apt-get install -y -q {names}")
    node.run("systemctl", "is-active", "ganeti-gluster-mountd")
    _check_shim(node)


def gluster_class_module(node: Node, version: str | None = None) -> str:
    """The module of the class a Ganeti version's ``bdev.DEV_MAP["gluster"]`` is (the node's own version by default)."""
    where = f"/usr/share/ganeti/{version}" if version else config.NODE_RELEASE.ganeti_dir
    r = node.sh(f"cd {where} && python3 -c 'from ganeti.storage import bdev; print(bdev.DEV_MAP[\"gluster\"].__module__)'")
    return r.stdout.strip()


def _check_shim(node: Node) -> None:
    assert gluster_class_module(node) == "glusterd_mgr.ganeti_storage"
    # Debian 12 runs Ganeti's daemons under ganeti.service (there is no ganeti-noded.service).
    node.sh("if systemctl is-active -q ganeti; then systemctl restart ganeti; fi")


def prepare_artifacts() -> tuple[str, object]:
    """Host-side build for the chosen route, done once per run before the nodes need it."""
    r = route()
    return (r, debs()) if r == "deb" else (r, wheelhouse())


def install(node: Node, artifacts: tuple[str, object]) -> None:
    """Install the project on one node by the chosen route."""
    r, what = artifacts
    if r == "deb":
        install_deb(node, what)  # type: ignore[arg-type]
    else:
        install_venv(node, what)  # type: ignore[arg-type]
