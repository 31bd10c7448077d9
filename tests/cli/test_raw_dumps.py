"""The bundled examples as the API server returns them give the verdicts the tidy files give.

Every example is turned into typed lists without item kinds, with the server's bookkeeping and
the objects a real cluster adds (tests/cli/raw_dump.py); connectivity, compare and the audit
must not change by a single connection, status or finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from polyfence.cli import cli
from tests.cli.raw_dump import raw_dump

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("example", ["shop", "egress-lockdown"])
def test_connectivity_is_the_same_on_the_raw_dump(example: str, tmp_path: Path) -> None:
    files = raw_dump([EXAMPLES / example], tmp_path / "dump")
    assert any(f.name.startswith("networkpolicys") for f in files)
    tidy_code, tidy, _ = run("connectivity", str(EXAMPLES / example), "--output-format", "json")
    raw_code, raw, err = run("connectivity", str(tmp_path / "dump"), "--output-format", "json")
    assert tidy_code == raw_code == 0, err
    assert json.loads(raw) == json.loads(tidy)
    assert "skipped" in err and "ConfigMap" in err and "Event" in err  # named, not silent
    code, out, err = run("compare", str(EXAMPLES / example), str(tmp_path / "dump"))
    assert code == 0, (out, err)
    assert out.startswith("equivalent on")


def _verdicts(report: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(c["id"], c["status"], len(c["findings"])) for c in report["checks"]]


@pytest.mark.parametrize("scenario", ["compliant", "pci", "mixed", "aws"])
def test_the_audit_is_the_same_on_the_raw_dump(scenario: str, tmp_path: Path) -> None:
    folder = EXAMPLES / "audits" / scenario
    raw_dump([folder / "cluster"], tmp_path / "dump")
    config = str(folder / "audit.yaml")
    code_a, tidy, err_a = run(
        "audit", str(folder / "cluster"), "--config", config, "--format", "json", "-q"
    )
    code_b, raw, err_b = run(
        "audit", str(tmp_path / "dump"), "--config", config, "--format", "json", "-q"
    )
    assert code_a == code_b == 0, (err_a, err_b)
    assert _verdicts(json.loads(raw)) == _verdicts(json.loads(tidy))
