"""Every audit scenario under examples/audits runs as an acceptance test against expected.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.validators import validator_for

from polyfence import api
from polyfence.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(
    p for p in (ROOT / "examples" / "audits").iterdir() if (p / "expected.yaml").exists()
)
SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())


def _findings(report: dict[str, Any], waived: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for check in report["checks"]:
        for f in check["findings"]:
            if f["status"] == "fail" and (f["waiver"] is not None) == waived:
                out.setdefault(check["id"], []).append(f["resource"])
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_findings(scenario: Path) -> None:
    expected = yaml.safe_load((scenario / "expected.yaml").read_text())
    report = api.audit([str(scenario / "cluster")], config=str(scenario / "audit.yaml")).to_dict()
    Draft202012Validator(SCHEMA, format_checker=FormatChecker()).validate(report)
    status = {c["id"]: c["status"] for c in report["checks"]}
    for check_id, want in expected.get("status", {}).items():
        assert status[check_id] == want, (check_id, status[check_id])
    want_failing = {k: sorted(v) for k, v in (expected.get("failing") or {}).items()}
    assert _findings(report, waived=False) == want_failing
    want_waived = {k: sorted(v) for k, v in (expected.get("waived") or {}).items()}
    assert _findings(report, waived=True) == want_waived
    severities = {f["resource"]: f["severity"] for c in report["checks"] for f in c["findings"]}
    for resource, sev in (expected.get("severities") or {}).items():
        assert severities[resource] == sev
    # every failing check names evidence a person can follow
    for check in report["checks"]:
        for f in check["findings"]:
            if f["status"] == "fail" and check["level"] == "semantic" and f["connections"]:
                assert f["connections"][0]["explanation"], (check["id"], f["resource"])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_cli_gate_and_rerender(scenario: Path, tmp_path: Path) -> None:
    expected = yaml.safe_load((scenario / "expected.yaml").read_text())
    out = tmp_path / "report.json"
    args = ["audit", str(scenario / "cluster"), "--config", str(scenario / "audit.yaml")]
    result = CliRunner().invoke(
        cli, [*args, "--format", "json", "-o", str(out), "--fail-on", "low", "-q"]
    )
    assert result.exit_code == (4 if expected.get("failing") else 0), result.stderr
    html = tmp_path / "report.html"
    again = CliRunner().invoke(cli, ["report", str(out), "--format", "html", "-o", str(html)])
    assert again.exit_code == 0, again.stderr
    assert 'id="findings"' in html.read_text()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_renders_every_format(scenario: Path, data: Path) -> None:
    report = api.audit([str(scenario / "cluster")], config=str(scenario / "audit.yaml"))
    sarif_schema = json.loads(
        (data / "upstream-schemas" / "sarif" / "sarif-schema-2.1.0.json").read_text()
    )
    sarif = json.loads(report.render("sarif"))
    validator_for(sarif_schema)(sarif_schema).validate(sarif)  # the schema names its draft
    results = sarif["runs"][0]["results"]
    unwaived = sum(
        1
        for c in report.data["checks"]
        for f in c["findings"]
        if f["status"] == "fail" and not f["waiver"]
    )
    assert sum(1 for r in results if not r.get("suppressions")) == unwaived
    for fmt in ("md", "junit", "csv", "html"):
        assert report.render(fmt)
