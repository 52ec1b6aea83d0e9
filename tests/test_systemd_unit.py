"""The unit file: verified by systemd where systemd-analyze exists, and the settings the design needs."""

from __future__ import annotations

import configparser
import os
import re
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


EXPOSURE_AT_MOST = 5.0
NAMESPACED = ("PrivateMounts", "PrivateTmp", "PrivateDevices", "ProtectSystem", "ProtectHome", "ProtectProc", "ProtectKernelTunables")


def test_the_sandbox_scores_at_most_5_on_this_systemd(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: it is in scripts/install-deps.sh")
        pytest.skip("systemd-analyze is missing")
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)], capture_output=True, text=True, check=False)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    version = subprocess.run([analyze, "--version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    print(f"systemd-analyze security ({version}): {found.group(1)}")
    assert float(found.group(1)) <= EXPOSURE_AT_MOST, result.stdout


def test_every_sandbox_option_left_out_says_why() -> None:
    """The options that would take the mounts out of the host's namespace are named in the unit's comment, not set."""
    service, text = unit()["Service"], UNIT.read_text()
    left_out = text[text.index("# Left out, each for a reason:") :]
    for key in NAMESPACED:
        assert key not in service and f"{key}=" in left_out, key
    for key in ("NoNewPrivileges", "CapabilityBoundingSet", "SystemCallFilter", "RestrictAddressFamilies", "LimitNOFILE"):
        assert key in service, f"{key} is one of the options the design allows"
