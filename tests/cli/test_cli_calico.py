"""The command line with Calico: convert both ways, compare across formats."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from polyfence.cli import cli

ROOT = Path(__file__).resolve().parents[2]
CALICO = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  selector: app == 'db'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'api' && projectcalico.org/orchestrator == 'k8s'}
    destination: {ports: [5432]}
  - action: Deny
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_k8s_examples_to_calico_and_back(tmp_path: Path) -> None:
    out = tmp_path / "calico.yaml"
    code, _, err = run("convert", "--to", "calico", str(ROOT / "examples" / "shop"), "-o", str(out))
    assert code == 0, err
    docs = list(yaml.safe_load_all(out.read_text()))
    assert {d["kind"] for d in docs} == {"NetworkPolicy"}
    assert all(d["spec"]["order"] == 1000 for d in docs)
    code, text, err = run("convert", "--from", "calico", "--to", "kubernetes", str(out))
    assert code == 0, err
    assert "exact" in err
    assert len(list(yaml.safe_load_all(text))) == len(docs)
    # the same policies in two formats are judged equivalent on the example's cluster
    code, text, _ = run(
        "compare",
        str(ROOT / "examples" / "shop"),
        str(out),
        "--inventory",
        str(ROOT / "examples" / "shop" / "cluster.yaml"),
    )
    assert code == 0 and text.startswith("equivalent")


def test_calico_to_k8s_with_harmless_deny(tmp_path: Path) -> None:
    src = tmp_path / "c.yaml"
    src.write_text(CALICO)
    code, text, err = run("convert", "--to", "k8s", str(src))
    assert code == 0, err
    (doc,) = yaml.safe_load_all(text)
    assert doc["spec"]["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
            "ports": [{"protocol": "TCP", "port": 5432}],
        }
    ]
    assert "deny rule dropped" in err


def test_calico_to_k8s_refuses_a_deny_that_matters(tmp_path: Path) -> None:
    src = tmp_path / "c.yaml"
    src.write_text(
        CALICO.replace("  - action: Deny\n", "").replace(
            "  ingress:\n",
            "  ingress:\n  - {action: Deny, source: {nets: [10.9.0.0/16]}}\n  - {action: Allow}\n",
        )
    )
    out = tmp_path / "k.yaml"
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(out))
    assert code == 4 and not out.exists()
    assert "deny-action" in err
    code, _, _ = run("convert", "--to", "k8s", str(src), "-o", str(out), "--allow-widening")
    assert code == 0 and out.exists()


def test_compare_across_formats_finds_the_difference(tmp_path: Path) -> None:
    calico = tmp_path / "c.yaml"
    calico.write_text(CALICO)
    k8s = tmp_path / "k.yaml"
    k8s.write_text(
        """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: 5432}, {port: 5433}]}]
"""
    )
    code, text, _ = run("compare", str(calico), str(k8s))
    assert code == 4 and text.startswith("wider")
    assert "TCP/5433" in text
