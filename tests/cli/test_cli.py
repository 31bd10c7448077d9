"""The command line as users drive it: exit codes, one-line errors, atomic outputs, untouched inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from polyfence.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOOD = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: fe}}}], ports: [{port: 80}]}]
"""


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_convert_to_stdout_and_report(tmp_path: Path) -> None:
    src = tmp_path / "in.yaml"
    src.write_text(GOOD)
    report = tmp_path / "r.json"
    code, out, err = run("convert", "--to", "k8s", str(src), "--report", str(report))
    assert code == 0, err
    (doc,) = list(yaml.safe_load_all(out))
    assert doc["spec"]["policyTypes"] == ["Ingress"]
    data = json.loads(report.read_text())
    assert data["exact"] and data["verification"]["relation"] == "equivalent"
    assert src.read_text() == GOOD  # inputs are never modified


def test_convert_stdin_json_and_canonical_round_trip(tmp_path: Path) -> None:
    code, out, _ = run("convert", "--to", "canonical", "--output-format", "json", "-", input=GOOD)
    assert code == 0
    canonical = tmp_path / "c.json"
    canonical.write_text(out)
    code, out2, err = run("convert", "--from", "canonical", "--to", "kubernetes", str(canonical))
    assert code == 0, err
    assert yaml.safe_load(out2)["metadata"]["name"] == "web"


def test_output_directory(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run("convert", "--to", "kubernetes", str(EXAMPLES / "shop"), "-o", str(out_dir))
    assert code == 0, err
    assert sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.yaml")) == [
        "shop/NetworkPolicy-allow-dns.yaml",
        "shop/NetworkPolicy-api.yaml",
        "shop/NetworkPolicy-db.yaml",
        "shop/NetworkPolicy-default-deny.yaml",
        "shop/NetworkPolicy-frontend.yaml",
    ]


BAD_INPUTS = {
    "not-yaml": ("a: [b\n", "not valid YAML"),
    "not-json": ('{"a": }', "not valid JSON"),
    "scalar": ("- 1\n- 2\n", "expected a mapping"),
    "unknown-kind": ("apiVersion: v9\nkind: Gizmo\nmetadata: {name: x}\n", "nothing to convert"),
    "policy-like-kind": (
        "apiVersion: crd.antrea.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: x}\n",
        "may carry network policy",
    ),
    "wrong-type": (GOOD.replace("{matchLabels: {app: web}}", "[1]"), "/spec/podSelector"),
    "unknown-field": (
        GOOD.replace("podSelector: {matchLabels: {app: web}}", "podSelector: {}\n  bogus: 1"),
        "bogus",
    ),
    "except-outside": (
        GOOD.replace(
            "{podSelector: {matchLabels: {app: fe}}}",
            "{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/8]}}",
        ),
        "/spec/ingress/0/from/0/ipBlock/except/0",
    ),
    "endport-below": (
        GOOD.replace("{port: 80}", "{port: 80, endPort: 70}"),
        "/spec/ingress/0/ports/0/endPort",
    ),
    "bad-cidr": (
        GOOD.replace("{podSelector: {matchLabels: {app: fe}}}", "{ipBlock: {cidr: 10.0.0.0/33}}"),
        "/spec/ingress/0/from/0/ipBlock/cidr",
    ),
    "bad-operator": (
        GOOD.replace("{matchLabels: {app: fe}}", "{matchExpressions: [{key: a, operator: Near}]}"),
        "operator",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_exit_3_one_line_no_output(name: str, tmp_path: Path) -> None:
    text, needle = BAD_INPUTS[name]
    src = tmp_path / ("in.json" if name == "not-json" else "in.yaml")
    src.write_text(text)
    out_file = tmp_path / "out.yaml"
    code, out, err = run("convert", "--to", "kubernetes", str(src), "-o", str(out_file))
    assert code == 3, (out, err)
    assert not out_file.exists() and out == ""
    lines = err.strip().splitlines()
    errors = [line for line in lines if not line.startswith("polyfence: note: skipped")]
    assert errors and all(line.startswith("polyfence: error: ") for line in errors)
    assert any(needle in line and str(src) in line for line in lines), lines
    assert "Traceback" not in err


def test_all_problems_in_all_files_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: [b\n")
    (tmp_path / "b.yaml").write_text(BAD_INPUTS["endport-below"][0])
    code, _, err = run("validate", str(tmp_path))
    assert code == 3
    assert "a.yaml" in err and "b.yaml[0]:/spec/ingress/0/ports/0/endPort" in err


def test_missing_file_and_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("convert", "--to", "kubernetes", str(tmp_path / "nope.yaml"))
    assert code == 3 and "cannot read" in err
    code, _, _ = run("convert", str(tmp_path))
    assert code == 2
    code, _, err = run("convert", "--to", "nosuch", str(tmp_path))
    assert code == 2 and "unknown format" in err


def test_widening_refused_exit_4_nothing_written(tmp_path: Path) -> None:
    canonical = {
        "apiVersion": "polyfence.dev/v1alpha1",
        "kind": "PolicySet",
        "tiers": [{"name": "default", "order": 1000000, "defaultAction": "deny"}],
        "policies": [
            {
                "format": "calico",
                "namespace": "prod",
                "name": "deny-then-allow",
                "tier": "default",
                "order": 100,
                "layer": "network",
                "labels": {},
                "subject": {"namespace": "prod", "selector": "all()"},
                "ingress": {
                    "governed": True,
                    "isolates": True,
                    "rules": [
                        {
                            "action": "deny",
                            "peers": [{"ip": {"nets": ["10.0.0.0/8"], "notNets": []}}],
                            "ports": "any",
                        },
                        {"action": "allow", "peers": "any", "ports": "any"},
                    ],
                },
                "egress": {"governed": False},
            }
        ],
    }
    src = tmp_path / "c.json"
    src.write_text(json.dumps(canonical))
    out_file = tmp_path / "out.yaml"
    report = tmp_path / "r.json"
    code, _, err = run(
        "convert", "--to", "kubernetes", str(src), "-o", str(out_file), "--report", str(report)
    )
    assert code == 4, err
    assert not out_file.exists()
    assert "deny-action" in err and "refused" in err
    assert json.loads(report.read_text())["widens"] is True
    code, _, err = run(
        "convert", "--to", "kubernetes", str(src), "-o", str(out_file), "--allow-widening"
    )
    assert code == 0 and out_file.exists()
    code, _, _ = run("convert", "--to", "kubernetes", str(src), "--allow-widening", "--exact")
    assert code == 4


def test_compare_equivalent_and_different(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(GOOD)
    b = tmp_path / "b.yaml"
    b.write_text(GOOD.replace("{port: 80}", "{port: 80, endPort: 81}"))
    code, out, _ = run("compare", str(a), str(a))
    assert code == 0 and out.startswith("equivalent")
    code, out, _ = run("compare", str(a), str(b), "--output-format", "json")
    assert code == 4
    data = json.loads(out)
    assert data["relation"] == "wider"
    assert data["witnesses"][0]["port"] == 81


def test_explain_and_connectivity() -> None:
    code, out, _ = run(
        "explain", str(EXAMPLES / "shop"), "--src", "shop/api", "--dst", "shop/db", "--port", "5432"
    )
    assert code == 0 and "ALLOWED" in out and "shop/db" in out
    code, out, _ = run(
        "explain",
        str(EXAMPLES / "shop"),
        "--src",
        "shop/frontend",
        "--dst",
        "shop/db",
        "--port",
        "5432/TCP",
    )
    assert code == 0 and "DENIED" in out
    code, out, _ = run("connectivity", str(EXAMPLES / "shop"), "--output-format", "json")
    assert code == 0
    conns = {(c["src"], c["dst"]): c["allowed"] for c in json.loads(out)["connections"]}
    assert conns[("shop/api[Deployment]", "shop/db[StatefulSet]")]["TCP"] == "5432"
    assert ("shop/frontend[Deployment]", "shop/db[StatefulSet]") not in conns
    assert conns[("shop/api[Deployment]", "203.0.113.0/25")]["TCP"] == "443"
    for fmt in ("csv", "dot", "text"):
        code, out, _ = run("connectivity", str(EXAMPLES / "shop"), "--output-format", fmt)
        assert code == 0 and "shop/api[Deployment]" in out


def test_formats_and_validate_lint(tmp_path: Path) -> None:
    code, out, _ = run("formats")
    assert code == 0 and "kubernetes" in out and "canonical" in out
    src = tmp_path / "p.yaml"
    src.write_text(GOOD.replace("  ingress:", "  egress: [{ports: [{port: 53}]}]\n  ingress:"))
    code, out, err = run("validate", str(src))
    assert code == 0 and "DNS also needs UDP" in err and "ok: 1 policies" in out


def _alias_bomb(levels: int = 9) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * 10)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias-bomb": _alias_bomb(),
    "cyclic": "apiVersion: v1\nkind: List\nitems: &x [*x]\n",
    "deep-json": "[" * 100000 + "]" * 100000,
    "binary": "\x00\x01\x02",
    "python-tag": "!!python/object/apply:os.system ['echo pwned']\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_cleanly(name: str, tmp_path: Path) -> None:
    src = tmp_path / ("in.json" if name == "deep-json" else "in.yaml")
    src.write_text(HOSTILE[name])
    code, out, err = run("convert", "--to", "kubernetes", str(src))
    assert code == 3, (code, out, err)
    assert "Traceback" not in err and err.startswith("polyfence: error: ")


def test_profile_changes_ipblock_semantics(tmp_path: Path) -> None:
    src = tmp_path / "p.yaml"
    src.write_text(
        GOOD.replace("{podSelector: {matchLabels: {app: fe}}}", "{ipBlock: {cidr: 10.0.0.0/8}}")
        + """---
apiVersion: v1
kind: Pod
metadata: {name: fe, namespace: prod, labels: {app: fe}}
spec: {containers: [{name: c}]}
status: {podIP: 10.1.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c}]}
status: {podIP: 10.1.1.2}
"""
    )
    args = ["explain", str(src), "--src", "prod/fe", "--dst", "prod/web", "--port", "80"]
    assert "ALLOWED" in run(*args)[1]
    assert "DENIED" in run(*args, "--profile", "cilium")[1]


def test_convert_help_names_every_target_format() -> None:
    from polyfence import translators

    code, out, _ = run("convert", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for name in translators.names():
        assert name in flat, name
