"""The Debian packages: built from a clean ``git archive`` of HEAD, lintian-clean, with the right contents
and maintainer scripts; and the purge rule (the state folder goes only when nothing is held).

Select with ``-m debian``.  Building needs Debian 12's build tools (``scripts/install-deps.sh``
installs them) and takes about 10 s; what is not committed is not in the packages.
Installing them into a Debian 12 root file system with systemd (upgrade with a running guest,
removal restoring Ganeti's module) is the real-cluster lab's part.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from glusterd_mgr.core.holders import Change, Holder
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell.journal import JournalFile, encode_header
from glusterd_mgr.shell.node import JOURNAL_NAME
from glusterd_mgr.statecheck import verdict

from .support import ganeti_env
from .test_ganeti_storage import documented_shim

pytestmark = pytest.mark.debian

REPO = Path(__file__).resolve().parent.parent
DEBIAN = REPO / "debian"
DAEMON_PKG = "ganeti-gluster-mountd"
GANETI_PKG = "ganeti-gluster-mountd-ganeti"
SHIM = "/usr/share/ganeti-gluster-mountd-ganeti/gluster.py"
SHIMS = "/usr/libexec/ganeti-gluster-mountd-ganeti/ganeti-shims"
CONFFILE = "/etc/ganeti/gluster-mountd.toml"
UNIT = ("lib/systemd/system/ganeti-gluster-mountd.service" if ganeti_env.codename() == "bookworm"
        else "usr/lib/systemd/system/ganeti-gluster-mountd.service")  # fmt: skip
"""Where the building release's debhelper puts units (Debian 13 merged /lib into /usr/lib)."""
STATE = "/var/lib/ganeti-gluster-mountd"


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload, no-any-return]


class Deb:
    def __init__(self, path: Path, scratch: Path) -> None:
        self.path = path
        self.tree = scratch / path.stem / "tree"
        self.control = scratch / path.stem / "DEBIAN"
        self.tree.mkdir(parents=True)
        for argv in (["dpkg-deb", "-x", str(path), str(self.tree)], ["dpkg-deb", "-e", str(path), str(self.control)]):
            got = run(argv)
            assert got.returncode == 0, got.stderr
        with tarfile.open(
            fileobj=subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(path)], stdout=subprocess.PIPE).stdout, mode="r|"
        ) as t:
            self.members = {m.name.removeprefix("./").rstrip("/"): m for m in t}

    def field(self, name: str) -> str:
        return run(["dpkg-deb", "-f", str(self.path), name]).stdout.strip()

    def script(self, name: str) -> str:
        return (self.control / name).read_text()


class Built:
    def __init__(self, out: Path, debs: dict[str, Deb]) -> None:
        self.out = out
        self.debs = debs

    def __getitem__(self, name: str) -> Deb:
        return self.debs[name]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if shutil.which("dpkg-buildpackage") is None:
        pytest.fail("dpkg-buildpackage is missing: run scripts/install-deps.sh")
    out = tmp_path_factory.mktemp("deb")
    got = run(["bash", str(REPO / "scripts" / "build-deb.sh"), "--out", str(out)], cwd=REPO)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    debs = {p.name.split("_")[0]: p for p in out.glob("*.deb")}
    assert set(debs) == {DAEMON_PKG, GANETI_PKG}, debs
    scratch = tmp_path_factory.mktemp("unpacked")
    return Built(out, {name: Deb(path, scratch) for name, path in debs.items()})


def test_lintian_reports_no_error(built: Built) -> None:
    changes = next(built.out.glob("*.changes"))
    got = run(["lintian", "--pedantic", str(changes)])
    tags = [line for line in got.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    errors = [line for line in tags if line.startswith("E: ")]
    assert not errors, got.stdout
    # Each warning kept is explained in the development docs: a new one fails here until it is.
    explained = (REPO / "docs" / "development" / "tests.rst").read_text()
    for line in tags:
        if line.startswith("W: "):
            tag = line.split()[2]
            assert f"``{tag}``" in explained, f"lintian warning {tag} is not explained in docs/development/tests.rst"
    assert not [line for line in tags if "manpage" in line or "man-page" in line], got.stdout


MAN_PAGES = ("man8/ganeti-gluster-mountd.8.gz", "man8/gluster-mountctl.8.gz", "man5/gluster-mountd.toml.5.gz")
DOC = "usr/share/doc/ganeti-gluster-mountd"


def test_man_pages_are_installed_and_man_finds_nothing_to_warn_about(built: Built) -> None:
    deb = built[DAEMON_PKG]
    for page in MAN_PAGES:
        assert f"usr/share/man/{page}" in deb.members, f"{page} is not in the package"
        if shutil.which("man") is None:
            continue  # tests/test_docs.py runs man on the built pages where man-db is installed
        checked = run(["man", "--warnings", "-E", "UTF-8", "-l", str(deb.tree / "usr" / "share" / "man" / page)])
        assert checked.returncode == 0 and not checked.stderr.strip(), f"{page}: {checked.stderr}"


def test_the_operators_documentation_is_shipped_and_the_notebook_is_not(built: Built) -> None:
    deb = built[DAEMON_PKG]
    for shipped in ("README.md", "html/index.html", "html/runbook.html", "html/install.html", "html/operations.html",
                    "html/troubleshooting.html", "html/api.html", "examples/ganeti-gluster-mountd.rules.yml",
                    "examples/prometheus-scrape.yml", "examples/gluster-mountd.toml"):  # fmt: skip
        assert f"{DOC}/{shipped}" in deb.members or f"{DOC}/{shipped}.gz" in deb.members, f"{shipped} is not shipped"
    notebook = [name for name in deb.members if name.startswith(f"{DOC}/") and ("development" in name or "faults" in name)]
    assert not notebook, f"the development notebook is shipped: {notebook[:5]}"
    assert len((REPO / "README.md").read_text().splitlines()) < 300


def test_daemon_package_contents(built: Built) -> None:
    deb = built[DAEMON_PKG]
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((deb.tree / UNIT).read_text())
    exec_start = unit["Service"]["ExecStart"].split()
    assert exec_start[0] == "/usr/bin/ganeti-gluster-mountd"
    assert exec_start[0].lstrip("/") in deb.members and deb.members[exec_start[0].lstrip("/")].mode & 0o111
    assert exec_start[1:] == ["--config", CONFFILE] and CONFFILE.lstrip("/") in deb.members
    assert "KillMode" not in unit["Service"], "systemd's default: the FUSE clients live in scopes of their own"
    assert "ganeti.service" in unit["Unit"]["Before"].split()
    for doc in unit["Unit"]["Documentation"].split():
        page = re.fullmatch(r"man:([\w.-]+)\(([1-8])\)", doc)
        assert page, f"Documentation= names man pages: {doc}"
        assert f"usr/share/man/man{page[2]}/{page[1]}.{page[2]}.gz" in deb.members, f"{doc} is not in the package"
    # The repo's unit, only with the package's paths.
    repo_unit = (REPO / "systemd" / "ganeti-gluster-mountd.service").read_text()
    assert (deb.tree / UNIT).read_text() == repo_unit.replace("/usr/local/bin/", "/usr/bin/")
    assert (deb.control / "conffiles").read_text().split() == [CONFFILE]
    assert (deb.tree / CONFFILE.lstrip("/")).read_text() == (REPO / "examples" / "gluster-mountd.toml").read_text()
    for name in ("ganeti-gluster-mountd", "gluster-mountctl"):
        assert f"usr/bin/{name}" in deb.members
    assert "usr/lib/python3/dist-packages/glusterd_mgr/rpc_schema/volume.acquire.json" in deb.members
    rules = "usr/share/doc/ganeti-gluster-mountd/examples/ganeti-gluster-mountd.rules.yml"
    assert (deb.tree / rules).read_text() == (REPO / "examples" / "ganeti-gluster-mountd.rules.yml").read_text(), "the alerting rules"
    depends = {d.strip().split()[0] for d in deb.field("Depends").split(",")}
    assert depends == {
        "glusterfs-client",
        "python3-jsonschema",
        "python3-prometheus-client",
        "python3-psutil",
        "python3-twisted",
        "python3:any",
        "libjs-sphinxdoc",  # the HTML documentation's scripts, shared with Debian's other Sphinx docs (dh_sphinxdoc)
    }
    # Restart (never stop-then-start) on upgrade; stop on remove.
    assert "deb-systemd-invoke $_dh_action 'ganeti-gluster-mountd.service'" in deb.script("postinst")
    prerm = deb.script("prerm")
    assert re.search(r'\[ "\$1" = remove \].*\n\s*deb-systemd-invoke stop', prerm)
    assert prerm.index("deb-systemd-invoke stop") < prerm.index("glusterd_mgr.statecheck"), (
        "the check must read a journal no daemon changes"
    )
    # Clients a version before scopes left inside the service leave it before a stop or restart kills them.
    postinst = deb.script("postinst")
    assert postinst.index("glusterd_mgr.rehome") < postinst.index("deb-systemd-invoke $_dh_action")
    assert prerm.index("glusterd_mgr.rehome") < prerm.index("deb-systemd-invoke stop")


def test_packaged_unit_passes_systemd_analyze_verify(built: Built, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian's systemd package)")
    deb = built[DAEMON_PKG]
    # The binary is not installed on this machine: point ExecStart at the unpacked package's.
    text = (deb.tree / UNIT).read_text().replace("/usr/bin/ganeti-gluster-mountd", str(deb.tree / "usr/bin/ganeti-gluster-mountd"))
    copy = tmp_path / "ganeti-gluster-mountd.service"
    copy.write_text(text)
    # Its Documentation= man pages are found among the package's own (systemd-analyze runs man).
    got = run([analyze, "verify", str(copy)], env={**os.environ, "MANPATH": str(deb.tree / "usr" / "share" / "man")})
    problems = [line for line in got.stderr.splitlines() if copy.name in line]
    assert got.returncode == 0 and not problems, got.stderr


def test_daemon_package_imports_on_debian_python(built: Built) -> None:
    """The packaged modules import with /usr/bin/python3 and Debian's libraries, and --help works."""
    site = built[DAEMON_PKG].tree / "usr/lib/python3/dist-packages"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)}
    code = "import glusterd_mgr.daemon, glusterd_mgr.app.schema as s; print(sorted(s.load())[0], glusterd_mgr.daemon.__file__)"
    got = run(["/usr/bin/python3", "-c", code], env=env, cwd="/")
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["disk.create", str(site / "glusterd_mgr" / "daemon.py")]
    got = run(["/usr/bin/python3", "-m", "glusterd_mgr.ctl", "--help"], env=env, cwd="/")
    assert got.returncode == 0 and "gluster-mountctl" in got.stdout, got.stderr


def test_ganeti_package_ships_the_shim_and_what_places_it(built: Built) -> None:
    deb = built[GANETI_PKG]
    assert (deb.tree / SHIM.lstrip("/")).read_text() == (REPO / "ganeti-shim" / "gluster.py").read_text() == documented_shim()
    assert (deb.tree / SHIMS.lstrip("/")).read_text() == (REPO / "ganeti-shim" / "ganeti-shims").read_text()
    assert deb.members[SHIMS.lstrip("/")].mode & 0o111
    assert not [m for m in deb.members if m.startswith("usr/share/ganeti/")], "nothing in Ganeti's own folders: the helper places it"
    assert deb.field("Depends").split(", ")[0] == "ganeti-3.1 | ganeti-3.0"
    assert deb.field("Enhances") == "ganeti-3.0, ganeti-3.1"
    # postinst places the shim in every installed version (and again on the trigger); prerm gives them back.
    assert re.search(r'configure\|triggered\|abort-remove\)\n\s*"\$SHIMS" sync\n\s*"\$SHIMS" restart-noded\n', deb.script("postinst"))
    assert re.search(r'remove\)\n\s*"\$SHIMS" undo\n\s*"\$SHIMS" restart-noded\n', deb.script("prerm"))
    for name in ("postinst", "prerm"):
        assert f"SHIMS={SHIMS}\n" in deb.script(name)
    triggers = deb.script("triggers").splitlines()
    for path in ("/usr/share/ganeti", "/usr/lib/python3/dist-packages/glusterd_mgr"):
        assert f"interest-noawait {path}" in triggers


class ScratchRoot:
    """A root with an empty dpkg database and the package's shim: dpkg-divert works there through DPKG_ROOT.

    Ganeti versions are "installed" and "removed" in it as dpkg would: their real gluster.py written
    or deleted under the name dpkg-divert says (the diverted one once this package diverts it).
    """

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "root"
        (self.root / "var/lib/dpkg/info").mkdir(parents=True)
        for name in ("diversions", "status"):
            (self.root / "var/lib/dpkg" / name).write_text("")
        shim = self.root / SHIM.lstrip("/")
        shim.parent.mkdir(parents=True)
        shutil.copy(REPO / "ganeti-shim" / "gluster.py", shim)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DPKG_ROOT": str(self.root)}

    @staticmethod
    def target(version: str) -> str:
        """Ganeti's module as its package names it (absolute)."""
        return "/" + ganeti_env.Ganeti(version).module("storage/gluster.py")

    def module(self, version: str) -> Path:
        return self.root / self.target(version).lstrip("/")

    def install_ganeti(self, version: str) -> bytes:
        """What dpkg unpacks of ganeti-X.Y; returns its gluster.py's bytes."""
        ganeti = ganeti_env.Ganeti(version)
        try:
            ganeti.ensure_unpacked()
        except ganeti_env.Unavailable as e:  # Debian 13: the lab's Debian 13 nodes install and remove the packages for real
            pytest.skip(f"{e}: the 3.0-then-3.1 sequence needs both")
        module = self.module(version)
        (module.parent / "__pycache__").mkdir(parents=True, exist_ok=True)
        (module.parent / "__pycache__" / "gluster.cpython-311.pyc").write_bytes(b"stale")
        unpacked = self.root / self.divert("--truename", self.target(version)).lstrip("/")
        shutil.copy(os.path.join(ganeti.tree, ganeti.module("storage/gluster.py")), unpacked)
        return unpacked.read_bytes()

    def remove_ganeti(self, version: str) -> None:
        """What dpkg removes of ganeti-X.Y: its gluster.py, under the name it has now."""
        (self.root / self.divert("--truename", self.target(version)).lstrip("/")).unlink()

    def divert(self, *args: str) -> str:
        got = run(["dpkg-divert", *args], env=self.env)
        assert got.returncode == 0, got.stderr
        return got.stdout.strip()

    def shims(self, action: str) -> None:
        got = run(["sh", str(REPO / "ganeti-shim" / "ganeti-shims"), action], env=self.env)
        assert got.returncode == 0, got.stderr

    def shimmed(self, version: str) -> bool:
        """Whether version's gluster.py is the shim under this package's diversion (with no stale bytecode left)."""
        if self.divert("--listpackage", self.target(version)) != GANETI_PKG:
            return False
        module = self.module(version)
        assert module.is_symlink() and os.readlink(module) == SHIM
        assert not (module.parent / "__pycache__" / "gluster.cpython-311.pyc").exists()
        return True

    def distrib(self, version: str) -> bytes:
        return self.module(version).with_name("gluster.py.distrib").read_bytes()


@pytest.mark.parametrize("by_hand_before", [False, True])
def test_shims_follow_every_ganeti_version(tmp_path: Path, by_hand_before: bool) -> None:
    """Ganeti 3.0; the package; 3.1 beside it (the trigger); 3.1 upgraded; 3.0 removed; the package removed."""
    root = ScratchRoot(tmp_path)
    own = {"3.0": root.install_ganeti("3.0")}
    (root.root / "usr/share/ganeti/default").symlink_to("3.0")  # Ganeti's link to the version in use
    if by_hand_before:  # the README's manual route was taken on this node before
        root.divert("--package", DAEMON_PKG, "--add", "--rename", "--divert", root.target("3.0") + ".distrib", root.target("3.0"))
        root.module("3.0").write_text(documented_shim())
    root.shims("sync")  # postinst configure
    assert root.shimmed("3.0") and root.distrib("3.0") == own["3.0"]
    assert len(root.divert("--list").splitlines()) == 1, "one diversion: not the default link's path"
    own["3.1"] = root.install_ganeti("3.1")  # gnt-cluster upgrade's first step; the trigger runs postinst again
    assert not root.shimmed("3.1")
    root.shims("sync")
    assert root.shimmed("3.0") and root.shimmed("3.1") and root.distrib("3.1") == own["3.1"]
    root.install_ganeti("3.1")  # an upgrade of ganeti-3.1 unpacks its file at the diverted name: the shim stays
    root.shims("sync")
    assert root.shimmed("3.1") and root.distrib("3.1") == own["3.1"]
    root.remove_ganeti("3.0")  # after the upgrade the old version goes; the trigger again
    root.shims("sync")
    assert "/3.0/" not in root.divert("--list") and not root.module("3.0").exists() and root.shimmed("3.1")
    root.shims("undo")  # prerm remove
    assert root.divert("--list") == ""
    assert root.module("3.1").read_bytes() == own["3.1"] and not root.module("3.1").is_symlink()
    assert not root.module("3.1").with_name("gluster.py.distrib").exists()


def fake_ganeti(tmp_path: Path, noded_running: bool, policy: int | None = None) -> tuple[Path, Path]:
    """The helper's restart-noded with daemon-util, systemd and policy-rc.d replaced by recorders."""
    log = tmp_path / "calls"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    du = bindir / "daemon-util"
    check = 0 if noded_running else 1
    du.write_text(
        f'#!/bin/sh\necho "daemon-util $*" >> {log}\n[ "$1" = check ] && exit {check}\n[ "$1" = use-systemctl ] && exit 1\nexit 0\n'
    )
    rcd = bindir / "invoke-rc.d"
    rcd.write_text(f"#!/bin/sh\nexit {104 if policy is None else policy}\n")
    for tool in (du, rcd):
        tool.chmod(0o755)
    script = (REPO / "ganeti-shim" / "ganeti-shims").read_text()
    script = script.replace("DU=/usr/lib/ganeti/daemon-util", f"DU={du}").replace("[ -d /run/systemd/system ]", "false")
    path = tmp_path / "ganeti-shims"
    path.write_text(script)
    return path, log


@pytest.mark.parametrize("running", [True, False])
def test_postinst_restarts_only_a_running_noded(tmp_path: Path, running: bool) -> None:
    script, log = fake_ganeti(tmp_path, noded_running=running)
    got = run(["sh", str(script), "restart-noded"], env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin"})
    assert got.returncode == 0, got.stderr
    calls = log.read_text().splitlines()
    if running:
        assert calls == ["daemon-util check ganeti-noded", "daemon-util stop ganeti-noded", "daemon-util start ganeti-noded"]
    else:
        assert calls == ["daemon-util check ganeti-noded"]


def test_postinst_honours_policy_rc_d(tmp_path: Path) -> None:
    script, log = fake_ganeti(tmp_path, noded_running=True, policy=101)
    got = run(["sh", str(script), "restart-noded"], env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin"})
    assert got.returncode == 0, got.stderr
    assert log.read_text().splitlines() == ["daemon-util check ganeti-noded"]
    assert "policy-rc.d forbids" in got.stderr


# -- the purge rule -----------------------------------------------------------------

BOOT = "6f1c3a52-9d1e-4b8a-8a51-2f0e3c9b7d10"
GV0 = VolumeSpec("gs1")
A = Holder("instance", "5c7d0b7e-1111-4b8a-8a51-2f0e3c9b7d10.0")
B = Holder("job", "job-7")


def this_boot() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def make_state(root: Path, changes: list[Change], boot: str = BOOT, raw: bytes | None = None) -> tuple[Path, Path]:
    state = root / "state"
    state.mkdir()
    boot_file = root / "boot_id"
    boot_file.write_text(BOOT + "\n")
    data = raw if raw is not None else encode_header(boot) + b"".join(c.encode() for c in changes)
    (state / JOURNAL_NAME).write_bytes(data)
    (state / "lock").write_bytes(b"")
    return state, boot_file


@pytest.mark.parametrize(
    ("changes", "boot", "raw", "want"),
    [
        ([], BOOT, None, "free"),
        ([Change("acquire", GV0, A, "/run/ganeti/gluster")], BOOT, None, "held 1"),
        (
            [Change("acquire", GV0, A, "/run/ganeti/gluster"), Change("acquire", GV0, B, "/run/ganeti/gluster"), Change("release", GV0, B)],
            BOOT,
            None,
            "held 1",
        ),
        ([Change("acquire", GV0, A, "/run/ganeti/gluster"), Change("release", GV0, A)], BOOT, None, "free"),
        ([Change("acquire", GV0, A, "/run/ganeti/gluster")], "0b5d2e11-7a4c-4e2f-9c3d-8e1f6a2b4c50", None, "free"),  # an earlier boot's
        ([], BOOT, b"", "free"),
        ([], BOOT, b'{"journal": 1, "boot_id": "' + BOOT.encode() + b'"}\n{"op":"acq', "free"),  # torn, never acknowledged
        ([], BOOT, b"not a journal\n", "unknown"),
        ([], BOOT, b'{"journal": 1, "boot_id": "' + BOOT.encode() + b'"}\ngarbage\n{"op":"release"}\n', "unknown"),
    ],
)
def test_statecheck_verdict(tmp_path: Path, changes: list[Change], boot: str, raw: bytes | None, want: str) -> None:
    state, boot_file = make_state(tmp_path, changes, boot, raw)
    assert verdict(str(state), str(boot_file)).startswith(want)


def test_statecheck_reads_what_the_journal_wrote(tmp_path: Path) -> None:
    """A journal written (and compacted) by JournalFile itself: the verdict follows its table."""
    state = tmp_path / "state"
    state.mkdir()
    boot_file = tmp_path / "boot_id"
    boot_file.write_text(BOOT)
    journal, _ = JournalFile.open(str(state / JOURNAL_NAME), BOOT)
    journal.append([Change("acquire", GV0, A, "/run/ganeti/gluster"), Change("acquire", GV0, B, "/run/ganeti/gluster")])
    journal.append([Change("release", GV0, B)])
    journal.close()
    assert verdict(str(state), str(boot_file)) == "held 1"
    journal, _ = JournalFile.open(str(state / JOURNAL_NAME), BOOT)  # compacts
    journal.append([Change("release", GV0, A)])
    journal.close()
    assert verdict(str(state), str(boot_file)) == "free"
    assert verdict(str(tmp_path / "absent"), str(boot_file)) == "free"


def maintainer_script(tmp_path: Path, name: str, state: Path) -> Path:
    """debian/ganeti-gluster-mountd.NAME with its paths pointed into tmp_path (no debhelper part in the source)."""
    text = (DEBIAN / f"{DAEMON_PKG}.{name}").read_text()
    assert STATE in text
    text = text.replace(STATE, str(state)).replace("/run/ganeti-gluster-mountd", str(tmp_path / "run"))
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("held", "kept"), [(True, True), (False, False)])
def test_remove_then_purge_keeps_a_held_state_folder(tmp_path: Path, held: bool, kept: bool) -> None:
    changes = [Change("acquire", GV0, A, "/run/ganeti/gluster")] + ([] if held else [Change("release", GV0, A)])
    state, _ = make_state(tmp_path, changes, boot=this_boot())  # prerm's check reads the kernel's boot id
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    (tmp_path / "run").mkdir()
    for name, arg in (("prerm", "remove"), ("postrm", "remove"), ("postrm", "purge")):
        got = run(["sh", str(maintainer_script(tmp_path, name, state)), arg], env=env)
        assert got.returncode == 0, got.stderr
    assert state.exists() == kept
    assert not (tmp_path / "run").exists()
    if kept:
        assert "held 1" in got.stderr and (state / JOURNAL_NAME).exists()


def test_purge_without_a_record_keeps_the_folder(tmp_path: Path) -> None:
    """No record from prerm (e.g. removed by a version without it): nothing is known, nothing is deleted."""
    state, _ = make_state(tmp_path, [])
    got = run(["sh", str(maintainer_script(tmp_path, "postrm", state)), "purge"], env={"PATH": "/usr/bin:/bin"})
    assert got.returncode == 0, got.stderr
    assert state.exists() and "no check was recorded" in got.stderr


def test_reinstall_forgets_the_removal_record(tmp_path: Path) -> None:
    state, _ = make_state(tmp_path, [])
    (state / "purge-verdict").write_text("free\n")
    got = run(["sh", str(maintainer_script(tmp_path, "postinst", state)), "configure", "0.1.0"], env={"PATH": "/usr/bin:/bin"})
    assert got.returncode == 0, got.stderr
    assert not (state / "purge-verdict").exists()


def test_statecheck_command_line(tmp_path: Path) -> None:
    state, _ = make_state(tmp_path, [Change("acquire", GV0, A, "/run/ganeti/gluster")], boot="another-boot")
    got = run([sys.executable, "-m", "glusterd_mgr.statecheck", str(state)], env={**os.environ, "PYTHONPATH": str(REPO)})
    assert got.returncode == 0 and got.stdout == "free\n", got.stderr
    got = run([sys.executable, "-m", "glusterd_mgr.statecheck"], env={**os.environ, "PYTHONPATH": str(REPO)})
    assert got.returncode == 2
