"""Every example runs as an acceptance test, as the README shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from polyfence.cli import cli

ROOT = Path(__file__).resolve().parents[2]


CONVERT_EXAMPLES = [str(ROOT / "examples" / name) for name in ("shop", "egress-lockdown")]


def test_readme_main_job_converts_examples() -> None:
    result = CliRunner().invoke(cli, ["convert", "--to", "kubernetes", *CONVERT_EXAMPLES])
    assert result.exit_code == 0, result.stderr
    assert "exact" in result.stderr and "equivalent" in result.stderr


def test_migration_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "migrate.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "shop: 5 policies, exact=True, engine says equivalent" in proc.stdout
    assert (tmp_path / "shop.yaml").exists()


def test_readme_commands_are_the_ones_tested() -> None:
    first = (ROOT / "README.md").read_text().split("```sh", 1)[1].split("\n", 2)[1]
    assert "convert --to kubernetes examples/shop examples/egress-lockdown" in first
    assert "audit examples/audits/pci/cluster --config examples/audits/pci/audit.yaml" in first
