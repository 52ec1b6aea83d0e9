"""The documentation: it builds with Sphinx (warnings as errors), and its references match the code.

The API reference is generated from rpc_schema/ and errors.py, the configuration reference holds
every setting, the runbook one section per shipped alert, and the README stays the operator's front
page whose test command CI runs verbatim.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glusterd_mgr.app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
RULES = ROOT / "examples" / "ganeti-gluster-mountd.rules.yml"
MAN_PAGES = ("ganeti-gluster-mountd.8", "gluster-mountctl.8", "gluster-mountd.toml.5")


def test_api_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_api_doc", ROOT / "scripts" / "gen_api_doc.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = (DOCS / "api.rst").read_text()
    assert gen.updated(text) == text, "docs/api.rst is out of date: run python3 scripts/gen_api_doc.py"
    for method in ("volume.acquire", "volume.release", "volume.statvfs", "disk.create", "disk.remove", "disk.grow", "disk.info", "status"):
        assert f"``{method}``\n" in text


def documented_settings() -> dict[str, str]:
    """Each entry of the shared settings fragment (both man pages include it): key -> its text."""
    text = (DOCS / "man" / "settings.inc").read_text()
    entries = re.split(r"^(?=``\w+`` = )", text, flags=re.MULTILINE)[1:]
    return {entry.split("``", 2)[1]: entry for entry in entries}


def test_configuration_reference_holds_every_setting_and_nothing_else() -> None:
    documented = documented_settings()
    settings = [f.name for f in dataclasses.fields(Settings)]
    assert list(documented) == settings, "docs/man/settings.inc and glusterd_mgr/app/settings.py differ (order too)"
    for name, entry in documented.items():
        assert f"``--{name.replace('_', '-')}``" in entry, f"{name}: its flag is not named"
        meaning = entry.split("\n", 1)[1]
        assert len(meaning.split()) >= 8, f"{name}: a meaning, not just a default"
    example = (ROOT / "examples" / "gluster-mountd.toml").read_text()
    for name in settings:
        assert re.search(rf"^#? ?{name} = ", example, re.MULTILINE), f"examples/gluster-mountd.toml lacks {name}"


def alerts() -> dict[str, str]:
    """Each shipped alert: name -> its runbook_url."""
    text = RULES.read_text()
    found = dict(re.findall(r'^\s*- alert: (\w+)\n(?:.*\n)*?\s*runbook_url: "([^"]+)"', text, re.MULTILINE))
    assert len(found) == len(re.findall(r"^\s*- alert: ", text, re.MULTILINE)), "every alert has a runbook_url"
    return found


def runbook_sections() -> list[str]:
    return re.findall(r"^(\w+)\n-+\n", (DOCS / "runbook.rst").read_text(), re.MULTILINE)


def test_runbook_has_one_section_per_alert_and_each_url_points_at_its_own() -> None:
    urls = alerts()
    assert sorted(runbook_sections()) == sorted(urls), "docs/runbook.rst sections and the shipped alerts differ"
    for name, url in urls.items():
        assert url.endswith(f"/runbook.html#{name.lower()}"), f"{name}: runbook_url {url} is not its section"


def test_readme_is_the_operators_front_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "the README is a front page: the rest belongs in docs/"
    for needed in ("bash scripts/demo.sh", "--enabled-disk-templates", "-D gluster:host=", "file-storage-paths",
                   "backup_volfile_servers", "gnt-instance add -t gluster", "gluster-mountctl status"):  # fmt: skip
        assert needed in text, f"the README does not say {needed}"
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert (ROOT / link.split("#")[0]).exists(), f"the README links to {link}, which is not in the repository"
    assert not re.search(r"\bissue \d+", text) and not re.search(COMMIT, text), "no issue numbers or commit hashes"


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    fences = re.findall(r"^```\w*\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    command = next(line for block in fences for line in block.splitlines() if "test" in line)
    assert command in (ROOT / ".ci" / "run").read_text(), f"{command!r} is not in .ci/run"


# A hexadecimal word of 7 to 40 digits with letters and figures, not part of a UUID.
COMMIT = r"(?<![-\w])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![-\w])"
USER_PAGES = ("index", "install", "operations", "runbook", "troubleshooting", "api", "how-it-works", "changelog")


def test_user_pages_carry_no_issue_numbers_or_commit_hashes() -> None:
    pages = [DOCS / f"{name}.rst" for name in USER_PAGES] + sorted((DOCS / "man").glob("*"))
    pages += sorted((DOCS / "development").glob("*.rst"))
    for page in pages:
        text = page.read_text()
        assert not re.search(r"\bissue \d+", text), f"{page.name} names an issue"
        assert not re.search(COMMIT, text), f"{page.name} names a commit"


def sphinx_build(builder: str, out: Path) -> None:
    if importlib.util.find_spec("sphinx") is None:
        if os.environ.get("CI"):
            pytest.fail("Sphinx is missing: scripts/install-deps.sh installs Debian's python3-sphinx")
        pytest.skip("needs Sphinx (Debian's python3-sphinx)")
    built = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", builder, str(DOCS), str(out)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr


def test_docs_build_as_html_without_a_warning(tmp_path: Path) -> None:
    sphinx_build("html", tmp_path)
    runbook = (tmp_path / "runbook.html").read_text()
    for name in alerts():
        assert f'id="{name.lower()}"' in runbook, f"no anchor for {name} in the built runbook"


def test_man_pages_build_and_man_finds_nothing_to_warn_about(tmp_path: Path) -> None:
    sphinx_build("man", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".5", ".8")) == sorted(MAN_PAGES)
    wanted = {page: ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]
              for page in MAN_PAGES}  # fmt: skip
    wanted["ganeti-gluster-mountd.8"].append("SIGNALS")
    for page, sections in wanted.items():
        text = (tmp_path / page).read_text().replace("\\", "")
        headings = set(re.findall(r'^\.SH "?([A-Z ]+?)"?$', text, re.MULTILINE))
        assert not set(sections) - headings, f"{page} lacks {sorted(set(sections) - headings)}"
        if page != "gluster-mountctl.8":
            for name in documented_settings():
                assert f"--{name.replace('_', '-')}" in text, f"{page} does not explain --{name}"
    if shutil.which("man") is None:
        pytest.skip("needs man (Debian's man-db) for its warnings")
    for page in MAN_PAGES:
        checked = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", str(tmp_path / page)],
                                 capture_output=True, text=True, check=False, env={**os.environ, "MANWIDTH": "80"})  # fmt: skip
        assert checked.returncode == 0 and not checked.stderr.strip(), f"{page}: {checked.stderr}"
