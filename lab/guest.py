"""A KVM guest that needs no OS image: Debian's kernel and a busybox initramfs whose /init checks its disk.

The kernel comes from ``linux-image-amd64`` (``apt-get download`` on the host,
cached), the initramfs is ``busybox-static`` plus the virtio modules and
``guest_init.sh``.  Ganeti boots it through the kvm hypervisor's
``kernel_path``/``initrd_path``; the guest prints ``LABIO round=N errors=E`` on
its serial console, which the lab reads from Ganeti's console socket.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile

from . import config

MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk")
INIT = os.path.join(os.path.dirname(__file__), "guest_init.sh")
LINE = re.compile(r"LABIO round=(\d+) errors=(\d+) boot=([0-9a-f-]{36})(?: [^\r\n]*)?\r?\n")  # whole lines only
SECTORS = re.compile(r"LABIO round=\d+ errors=\d+ boot=[0-9a-f-]{36} [^\r\n]*\bsectors=(\d+)\r?\n")


def _sh(*argv: str, cwd: str | None = None) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=cwd).stdout


def kernel_package() -> str:
    """The versioned package linux-image-amd64 depends on (e.g. linux-image-6.1.0-57-amd64)."""
    out = _sh("apt-cache", "depends", "linux-image-amd64")
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("Depends:"))


def ensure() -> tuple[str, str]:
    """(vmlinuz, initrd) under the cache, built once per kernel package and init script."""
    pkg = kernel_package()
    with open(INIT, "rb") as f:
        tag = hashlib.sha256(f.read() + pkg.encode() + ",".join(MODULES).encode()).hexdigest()[:12]
    out = os.path.join(config.CACHE, f"guest-{tag}")
    vmlinuz, initrd = os.path.join(out, "vmlinuz"), os.path.join(out, "initrd.img")
    with config.cache_lock("guest"):
        if not os.path.exists(initrd):
            _build(pkg, out)
    return vmlinuz, initrd


def _build(pkg: str, out: str) -> None:
    """The kernel of ``pkg`` and an initramfs of busybox, MODULES and INIT into the folder ``out``."""
    with tempfile.TemporaryDirectory(dir=config.CACHE) as tmp:
        _sh("apt-get", "download", pkg, cwd=tmp)
        deb = glob.glob(os.path.join(tmp, "*.deb"))[0]
        _sh("dpkg-deb", "-x", deb, os.path.join(tmp, "k"))
        kdir = os.path.join(tmp, "k")
        root = os.path.join(tmp, "initrd")
        for d in ("bin", "proc", "sys", "dev", "tmp", "lib/modules"):
            os.makedirs(os.path.join(root, d))
        shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
        for applet in ("sh", "mount", "insmod", "cat", "usleep", "sleep", "yes", "head", "dd", "cmp", "echo"):
            os.symlink("busybox", os.path.join(root, "bin", applet))
        for i, mod in enumerate(MODULES):
            found = glob.glob(os.path.join(kdir, "lib/modules/*/kernel/**", f"{mod}.ko*"), recursive=True)
            if not found:
                continue  # built into this kernel
            data = open(found[0], "rb").read()
            if found[0].endswith(".xz"):
                import lzma

                data = lzma.decompress(data)
            with open(os.path.join(root, "lib/modules", f"{i:02d}-{mod}.ko"), "wb") as f:
                f.write(data)
        shutil.copy(INIT, os.path.join(root, "init"))
        os.chmod(os.path.join(root, "init"), 0o755)
        cpio = subprocess.run("find . | cpio -o -H newc --quiet", shell=True, cwd=root, check=True, capture_output=True).stdout
        os.makedirs(out + ".new", exist_ok=True)
        shutil.copy(glob.glob(os.path.join(kdir, "boot", "vmlinuz-*"))[0], os.path.join(out + ".new", "vmlinuz"))
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
            gz.write(cpio)
        with open(os.path.join(out + ".new", "initrd.img"), "wb") as f:
            f.write(buf.getvalue())
        os.rename(out + ".new", out)


def parse(text: str) -> list[tuple[int, int, str]]:
    """Every report line in a piece of console output: (round, errors, boot id)."""
    return [(int(m[1]), int(m[2]), m[3]) for m in LINE.finditer(text)]


def sectors(text: str) -> list[int]:
    """The disk's size (512-byte sectors) the guest's kernel saw at each report line."""
    return [int(m[1]) for m in SECTORS.finditer(text)]


if __name__ == "__main__":
    print(ensure())
