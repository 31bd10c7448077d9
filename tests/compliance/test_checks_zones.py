"""Scenario tests: forbidden flows (K07), the approved flow inventory (K08) and drift against a
baseline (K21, through ``api.audit`` with a config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from polyfence import api
from polyfence.compliance.model import Severity, Status
from tests.compliance.scenario import (
    assert_object,
    assert_witness,
    default_deny,
    deploy,
    failing,
    finding,
    namespace,
    run,
)

NS = namespace("a", zone="web") + "\n---\n" + namespace("b", zone="cde")
WEB = deploy("a", "web", ports=[80])
FRONT = deploy("a", "front", ports=[80])
DB = deploy("b", "db", ports=[5432])
CLUSTER = (NS, WEB, FRONT, DB)
ZONES: dict[str, Any] = {
    "zones": [
        {"name": "web", "namespace_labels": {"zone": "web"}},
        {"name": "cde", "namespace_labels": {"zone": "cde"}, "sensitive": True},
    ]
}
DB_FROM_FRONT = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-in, namespace: b}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {zone: web}}, podSelector: {matchLabels: {app: front}}}]
    ports: [{port: 5432}]
"""
FORBID_CDE = dict(
    ZONES, forbidden_flows=[{"from": "*", "to": "zone:cde", "except": ["a/front"], "reason": "PCI"}]
)

# ---------------------------------------------------------------- K07


def test_k07_not_applicable_without_forbidden_flows() -> None:
    assert run("NSEG-K07", *CLUSTER, config=ZONES).status is Status.NOT_APPLICABLE


def test_k07_forbidden_flow_open_fails_critical() -> None:
    result = run("NSEG-K07", *CLUSTER, config=FORBID_CDE)
    assert result.status is Status.FAIL
    f = finding(result, "flow/*->zone:cde")
    assert f.status is Status.FAIL and f.severity is Severity.CRITICAL
    assert "(PCI)" in f.message
    assert_object(f, "AuditConfig", "forbidden_flows[0]", "/forbidden_flows/0")
    assert f.objects[0].file == "audit.yaml"
    assert_witness(f, "a/web[Deployment]", "b/db[Deployment]")
    # the internet is a party of `*`: one witness comes from a public address
    assert any(c.dst == "b/db[Deployment]" and "/" not in c.src for c in f.connections[1:])
    # the excepted front end is never a witness
    assert all(c.src != "a/front[Deployment]" for c in f.connections)


def test_k07_only_excepted_front_end_reaches_cde_passes() -> None:
    result = run("NSEG-K07", *CLUSTER, DB_FROM_FRONT, config=FORBID_CDE)
    assert result.status is Status.PASS
    assert finding(result, "flow/*->zone:cde").status is Status.PASS


def test_k07_witness_explanation_names_the_allowing_policy() -> None:
    loose = DB_FROM_FRONT.replace(", podSelector: {matchLabels: {app: front}}", "")
    result = run("NSEG-K07", *CLUSTER, loose, config=FORBID_CDE)
    f = failing(result)["flow/*->zone:cde"]
    assert_witness(f, "a/web[Deployment]", "b/db[Deployment]")
    assert f.connections[0].port == 5432
    assert_object(f, "NetworkPolicy", "db-in", "/spec/ingress/0")


def test_k07_internet_party_and_ports() -> None:
    cfg = dict(ZONES, forbidden_flows=[{"from": "internet", "to": "zone:cde", "ports": [5432]}])
    open_db = run("NSEG-K07", *CLUSTER, config=cfg)
    f = failing(open_db)["flow/internet->zone:cde"]
    assert f.connections[0].dst == "b/db[Deployment]" and f.connections[0].port == 5432
    assert run("NSEG-K07", *CLUSTER, DB_FROM_FRONT, config=cfg).status is Status.PASS


def test_k07_flow_between_workloads_of_one_class_ignores_self() -> None:
    """A pod's connection to itself is never denied and never a counterexample."""
    cfg = dict(ZONES, forbidden_flows=[{"from": "zone:cde", "to": "zone:cde"}])
    assert run("NSEG-K07", *CLUSTER, config=cfg).status is Status.PASS


# ---------------------------------------------------------------- K08

APPROVED = dict(
    ZONES,
    approved_flows=[
        {"from": "a/front", "to": "zone:cde", "ports": [5432], "justification": "checkout"}
    ],
)
CLOSED = (default_deny("a"), default_deny("b"), DB_FROM_FRONT)
FRONT_OUT = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: front-out, namespace: a}
spec:
  podSelector: {matchLabels: {app: front}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {zone: cde}}}]
    ports: [{port: %s}]
"""


def test_k08_not_applicable_without_inventory() -> None:
    assert run("NSEG-K08", *CLUSTER, config=ZONES).status is Status.NOT_APPLICABLE


def test_k08_only_approved_flows_pass() -> None:
    result = run("NSEG-K08", *CLUSTER, *CLOSED, FRONT_OUT % 5432, config=APPROVED)
    assert result.status is Status.PASS, [f.message for f in result.findings]


def test_k08_unlisted_port_fails() -> None:
    db_any = DB_FROM_FRONT.replace("    ports: [{port: 5432}]\n", "")
    result = run(
        "NSEG-K08", *CLUSTER, *CLOSED[:2], db_any, FRONT_OUT % "5432}, {port: 22", config=APPROVED
    )
    f = failing(result)["flow/namespace:a->namespace:b"]
    assert_witness(f, "a/front[Deployment]", "b/db[Deployment]")
    assert f.connections[0].port == 22


def test_k08_internet_is_a_zone_and_blocked_approved_flow_is_info() -> None:
    result = run("NSEG-K08", *CLUSTER, config=APPROVED)
    assert "flow/internet->namespace:b" in failing(result)
    closed = run("NSEG-K08", *CLUSTER, default_deny("a"), default_deny("b"), config=APPROVED)
    assert closed.status is Status.PASS
    info = finding(closed, "flow/a/front->zone:cde")
    assert info.severity is Severity.INFO and "approved but blocked" in info.message
    assert_object(info, "AuditConfig", "approved_flows[0]", "/approved_flows/0")


# ---------------------------------------------------------------- K21 drift (via api.audit)

ALLOW_A_TO_B = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-a, namespace: b}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {zone: web}}}]
    ports: [{port: 5432}]
"""


def _write(path: Path, *parts: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n---\n".join(p.strip("\n") for p in parts) + "\n")
    return path


def _drift(tmp_path: Path, *current: str) -> dict[str, Any]:
    _write(
        tmp_path / "base" / "policies.yaml",
        default_deny("a", "Ingress"),
        default_deny("b", "Ingress"),
    )
    _write(tmp_path / "now" / "cluster.yaml", *CLUSTER, *current)
    cfg = dict(ZONES, baseline="base")
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(cfg))
    report = api.audit([str(tmp_path / "now")], config=str(tmp_path / "audit.yaml"))
    (check,) = [c for c in report.to_dict()["checks"] if c["id"] == "NSEG-K21"]
    return check  # type: ignore[no-any-return]


def test_k21_new_flow_into_sensitive_zone_fails_high(tmp_path: Path) -> None:
    check = _drift(
        tmp_path, default_deny("a", "Ingress"), default_deny("b", "Ingress"), ALLOW_A_TO_B
    )
    assert check["status"] == "fail"
    (f,) = [f for f in check["findings"] if f["status"] == "fail"]
    assert f["resource"] == "flow/namespace:a->namespace:b"
    assert f["severity"] == "high"
    conn = f["connections"][0]
    assert conn["src"].startswith("a/") and conn["dst"] == "b/db[Deployment]"
    assert conn["port"] == 5432 and conn["explanation"]
    assert any(o["name"] == "from-a" and o["pointer"] == "/spec/ingress/0" for o in f["objects"])


def test_k21_unchanged_passes(tmp_path: Path) -> None:
    check = _drift(tmp_path, default_deny("a", "Ingress"), default_deny("b", "Ingress"))
    assert check["status"] == "pass"
    assert check["findings"] == []


def test_k21_not_applicable_without_baseline() -> None:
    assert run("NSEG-K21", *CLUSTER).status is Status.NOT_APPLICABLE
