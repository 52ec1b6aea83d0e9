"""The shipped Prometheus alerting rules: they pass promtool's own tests, and every metric they (and those
tests) name is one the daemon exports, so a renamed metric breaks this test, not an operator's pager."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .unit.test_metrics import node

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "examples" / "ganeti-gluster-mountd.rules.yml"
RULE_TESTS = ROOT / "tests" / "fixtures" / "alert_rules_test.yml"
OURS = re.compile(r"\bganeti_gluster_[a-z_]+\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: scripts/install-deps.sh installs Debian's prometheus")
        pytest.skip("needs promtool (Debian's prometheus package)")
    return found


def test_the_rules_are_valid_and_pass_their_unit_tests() -> None:
    tool = promtool()
    checked = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([tool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def exported() -> set[str]:
    """Every series name a scrape of the daemon can hold: its collector and registries, rendered."""
    names: set[str] = set()
    for family in text_string_to_metric_families(node().render().decode()):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.parametrize("source", [RULES, RULE_TESTS], ids=lambda p: p.name)
def test_every_metric_named_is_one_the_daemon_exports(source: Path) -> None:
    named = set(OURS.findall(source.read_text()))
    assert named, "the rules name the daemon's metrics"
    missing = named - exported()
    assert not missing, f"{source.name} names metrics the daemon does not export: {sorted(missing)}"


def test_every_alert_has_a_test() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.MULTILINE))
    tested = set(re.findall(r"^\s*alertname: (\w+)", RULE_TESTS.read_text(), re.MULTILINE))
    assert alerts and alerts == tested, f"untested: {sorted(alerts - tested)}; unknown: {sorted(tested - alerts)}"


def rules() -> list[dict[str, str]]:
    """Each alert's name, severity and annotations, read from the rules as written."""
    found = []
    for chunk in re.split(r"^\s*- alert: ", RULES.read_text(), flags=re.MULTILINE)[1:]:
        fields = dict(re.findall(r'^\s*(severity|summary|description|runbook_url): "?(.*?)"?$', chunk, re.MULTILINE))
        found.append({"alert": chunk.split("\n", 1)[0].strip(), **fields})
    return found


def test_alerts_follow_the_monitoring_mixin_conventions() -> None:
    assert rules()
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"GlusterMountd(?:[A-Z][a-z]+)*", name), f"{name}: CamelCase with the one prefix GlusterMountd"
        assert rule.get("severity") in ("critical", "warning"), f"{name}: a severity label"
        summary = rule.get("summary", "")
        assert summary.endswith(".") and "{{" not in summary and summary[:1].isupper(), f"{name}: a static sentence as summary"
        assert "{{ $labels.instance }}" in rule.get("description", ""), f"{name}: a templated description"
        assert rule.get("runbook_url", "").startswith("file:///usr/share/doc/ganeti-gluster-mountd/html/runbook.html#")


def test_the_scrape_example_is_a_valid_configuration_for_the_rules(tmp_path: Path) -> None:
    tool = promtool()
    scrape = (ROOT / "examples" / "prometheus-scrape.yml").read_text()
    assert "job_name: ganeti-gluster-mountd" in scrape, "the job name the rules expect"
    # The example names the rules where an operator puts them; checked here against the shipped file.
    (tmp_path / "prometheus.yml").write_text(scrape.replace("/etc/prometheus/ganeti-gluster-mountd.rules.yml", str(RULES)))
    checked = subprocess.run([tool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
