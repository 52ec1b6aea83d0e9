"""The unit file: verified by systemd where systemd-analyze exists, and the settings the design needs."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "ganeti-gluster-mountd.service"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_unit_keeps_fuse_clients_and_host_mounts() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert "KillMode" not in service, "systemd's default: the FUSE clients live in scopes of their own, not here"
    assert "ganeti.service" in unit()["Unit"]["Before"].split(), "Debian 12 runs Ganeti's daemons under ganeti.service"
    for key in ("PrivateMounts", "PrivateTmp", "ProtectSystem", "ProtectHome", "MountFlags"):
        assert key not in service, f"{key} would hide the mounts from the hypervisor"


def test_documentation_names_the_man_pages() -> None:
    pages = unit()["Unit"]["Documentation"].split()
    assert pages[0] == "man:ganeti-gluster-mountd(8)", "the daemon's own man page first"
    assert all(page.startswith("man:") for page in pages)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    daemon = shutil.which("ganeti-gluster-mountd")
    if analyze is None or daemon is None:
        pytest.skip("systemd-analyze or the installed daemon is missing")
    # Point ExecStart at where pip put the daemon on this machine.
    text = UNIT.read_text().replace("/usr/local/bin/ganeti-gluster-mountd", os.path.realpath(daemon))
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    # --man=no: the man pages of Documentation= are installed by the package (tests/test_debian_package.py checks them).
    result = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, check=False)
    problems = [line for line in result.stderr.splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not problems, result.stderr
