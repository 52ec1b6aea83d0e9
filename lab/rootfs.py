"""The Debian 12 root file system every lab node is a copy of, built once and cached by its recipe's hash.

A cold ``mmdebstrap`` costs minutes (download and unpack of ~700 MB); CI runs
on the same machine, so the finished tree is kept under ``CACHE`` and reused
while the recipe (suite, variant, packages, hook, mmdebstrap version and the
host's apt sources) is unchanged.  Apt sources are the host's own deb822 file,
handed to mmdebstrap as its MIRROR argument: no mirror is named here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

from . import config

SUITE = "bookworm"
VARIANT = "apt"
HOST_SOURCES = "/etc/apt/sources.list.d/debian.sources"
PACKAGES = (
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
)
# Runs inside the new tree: no host keys baked in (each node makes its own), no
# first-boot surprises, root may log in by key.
CUSTOMIZE = r"""
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


def recipe() -> dict[str, object]:
    with open(HOST_SOURCES, "rb") as f:
        sources = hashlib.sha256(f.read()).hexdigest()
    version = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return {
        "suite": SUITE,
        "variant": VARIANT,
        "packages": sorted(PACKAGES),
        "customize": CUSTOMIZE,
        "mmdebstrap": version,
        "sources": sources,
    }


def key() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def path() -> str:
    return os.path.join(config.CACHE, f"rootfs-{key()}")


def ensure() -> tuple[str, float | None]:
    """The cached tree's path, built first if missing; the second value is the build's seconds (None: cache hit)."""
    target = path()
    if os.path.exists(os.path.join(target, ".complete")):
        return target, None
    os.makedirs(config.CACHE, exist_ok=True)
    tmp = f"{target}.building-{os.getpid()}"
    for old in os.listdir(config.CACHE):  # a killed build leaves a half tree
        if ".building-" in old:
            shutil.rmtree(os.path.join(config.CACHE, old), ignore_errors=True)
    start = time.monotonic()
    subprocess.run(
        [
            "mmdebstrap",
            f"--variant={VARIANT}",
            "--include=" + ",".join(PACKAGES),
            "--customize-hook=" + CUSTOMIZE,
            SUITE,
            tmp,
            HOST_SOURCES,
        ],
        check=True,
    )
    with open(os.path.join(tmp, ".complete"), "w") as f:
        json.dump(recipe(), f, indent=1)
    os.rename(tmp, target)
    for old in os.listdir(config.CACHE):  # keep only the current recipe's tree
        if old.startswith("rootfs-") and old != os.path.basename(target):
            shutil.rmtree(os.path.join(config.CACHE, old), ignore_errors=True)
    return target, time.monotonic() - start


if __name__ == "__main__":
    where, seconds = ensure()
    print(where, "cached" if seconds is None else f"built in {seconds:.0f} s", file=sys.stderr)
