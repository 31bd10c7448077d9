"""Scenario tests: internet ingress (K09) and egress (K10), the metadata service (K11), the
control plane (K12) and sensitive ports (K15) — decided by the engine, with witnesses."""

from __future__ import annotations

from polyfence.compliance.model import Severity, Status
from tests.compliance.scenario import (
    assert_object,
    assert_witness,
    default_deny,
    deploy,
    failing,
    finding,
    namespace,
    node,
    run,
    service,
)

NS = namespace("a", zone="web") + "\n---\n" + namespace("b", zone="cde")
CDE = {"zones": [{"name": "cde", "namespace_labels": {"zone": "cde"}, "sensitive": True}]}
WEB = deploy("a", "web", ports=[("http", 8080)])
DB = deploy("b", "db", ports=[5432])
LB = service("a", "web-lb", {"app": "web"}, 443, "http", type="LoadBalancer")
WEB_IN = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{ipBlock: {cidr: 0.0.0.0/0}}]
    ports: [{port: 8080}]
"""

# ---------------------------------------------------------------- K09


def test_k09_load_balancer_to_pod_open_to_internet_fails() -> None:
    result = run("NSEG-K09", NS, WEB, DB, LB, WEB_IN)
    assert result.status is Status.FAIL
    f = failing(result)["a/web[Deployment]"]
    assert f.severity is Severity.HIGH
    assert "TCP 8080" in f.message and "Service a/web-lb (LoadBalancer)" in f.message
    assert_object(f, "Service", "web-lb")
    assert_object(f, "NetworkPolicy", "web-in", "/spec/ingress/0")
    conn = f.connections[0]
    assert conn.dst == "a/web[Deployment]" and conn.port == 8080 and conn.verdict == "allowed"
    assert any("a/web-in" in step for step in conn.explanation)


def test_k09_named_target_port_resolved() -> None:
    """targetPort "http" is containerPort 8080: the 443 service port is not the pod's port."""
    result = run("NSEG-K09", NS, WEB, DB, LB, WEB_IN)
    assert failing(result)["a/web[Deployment]"].observed == "TCP 8080"


def test_k09_public_workload_passes() -> None:
    result = run("NSEG-K09", NS, WEB, DB, LB, WEB_IN, config={"public_workloads": ["a/web"]})
    assert result.status is Status.PASS
    f = finding(result, "a/web[Deployment]")
    assert f.status is Status.PASS and "approved public workload" in f.message


def test_k09_pod_allowing_only_cluster_is_not_exposed() -> None:
    result = run("NSEG-K09", NS, WEB, DB, LB, WEB_IN.replace("0.0.0.0/0", "10.0.0.0/8"))
    assert result.status is Status.PASS
    assert not result.findings


def test_k09_sensitive_zone_is_critical_and_clusterip_is_not_published() -> None:
    db_lb = service("b", "db-lb", {"app": "db"}, 5432, type="NodePort")
    db_internal = service("b", "db", {"app": "db"}, 5432)
    result = run("NSEG-K09", NS, WEB, DB, db_lb, db_internal, config=CDE)
    f = failing(result)["b/db[Deployment]"]
    assert f.severity is Severity.CRITICAL
    assert "db-lb" in f.message and "Service b/db " not in f.message
    clusterip_only = run("NSEG-K09", NS, WEB, DB, db_internal, config=CDE)
    assert clusterip_only.status is Status.PASS and not clusterip_only.findings


# ---------------------------------------------------------------- K10 / K11

EGRESS_EXCEPT_METADATA = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress, namespace: a}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]
"""
EGRESS_CLUSTER_ONLY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress, namespace: a}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {}}]
"""


def test_k10_internet_egress_fails_with_witness() -> None:
    result = run("NSEG-K10", NS, WEB, DB, EGRESS_EXCEPT_METADATA, default_deny("b"))
    assert result.status is Status.FAIL
    f = failing(result)["a/web[Deployment]"]
    assert f.severity is Severity.MEDIUM
    assert_object(f, "NetworkPolicy", "egress", "/spec/egress/0")
    assert f.connections[0].src == "a/web[Deployment]" and f.connections[0].explanation
    assert finding(result, "namespace/b").status is Status.PASS


def test_k10_sensitive_zone_is_high() -> None:
    result = run("NSEG-K10", NS, WEB, DB, default_deny("a"), config=CDE)
    f = failing(result)["b/db[Deployment]"]
    assert f.severity is Severity.HIGH
    assert_witness(f, "b/db[Deployment]", f.connections[0].dst)


def test_k10_cluster_only_egress_passes() -> None:
    result = run("NSEG-K10", NS, WEB, DB, EGRESS_CLUSTER_ONLY, default_deny("b"))
    assert result.status is Status.PASS


def test_k10_egress_gateway_allowed() -> None:
    via_gateway = EGRESS_CLUSTER_ONLY.replace(
        "{namespaceSelector: {}}", "{ipBlock: {cidr: 203.0.113.0/24}}"
    )
    cfg = {"egress_gateways": ["203.0.113.0/24"]}
    assert (
        run("NSEG-K10", NS, WEB, DB, via_gateway, default_deny("b"), config=cfg).status
        is Status.PASS
    )
    assert run("NSEG-K10", NS, WEB, DB, via_gateway, default_deny("b")).status is Status.FAIL


def test_k11_metadata_reachable_without_policy() -> None:
    result = run("NSEG-K11", NS, WEB, DB, EGRESS_EXCEPT_METADATA)
    assert set(failing(result)) == {"b/db[Deployment]"}
    assert_witness(failing(result)["b/db[Deployment]"], "b/db[Deployment]", "169.254.169.254")


def test_k11_metadata_excepted_passes() -> None:
    result = run("NSEG-K11", NS, WEB, DB, EGRESS_EXCEPT_METADATA, default_deny("b"))
    assert result.status is Status.PASS and not result.findings


def test_k11_allowlisted_agent_passes() -> None:
    cfg = {"metadata_allowlist": ["b/*"]}
    result = run("NSEG-K11", NS, WEB, DB, EGRESS_EXCEPT_METADATA, config=cfg)
    assert result.status is Status.PASS
    assert "allow-listed" in finding(result, "b/db[Deployment]").message


# ---------------------------------------------------------------- K12

NODE = node("n1", "10.0.0.10")


def test_k12_kubelet_reachable_from_tenant_pods() -> None:
    result = run("NSEG-K12", NS, WEB, DB, NODE, default_deny("b"))
    assert result.status is Status.FAIL
    f = failing(result)["namespace/a"]
    assert_witness(f, "a/web[Deployment]", "n1[Node]")
    assert f.connections[0].port in (2379, 2380, 10250, 10257, 10259)
    assert finding(result, "namespace/b").status is Status.PASS


def test_k12_node_ports_denied_passes() -> None:
    result = run("NSEG-K12", NS, WEB, DB, NODE, EGRESS_CLUSTER_ONLY, default_deny("b"))
    assert result.status is Status.PASS


def test_k12_kube_system_pods_other_than_dns() -> None:
    ks = namespace("kube-system")
    metrics = deploy("kube-system", "metrics-server", ports=[4443])
    dns = deploy("kube-system", "coredns", {"k8s-app": "kube-dns"}, [53])
    base = (NS, ks, WEB, DB, NODE, dns, EGRESS_CLUSTER_ONLY, default_deny("b"))
    assert run("NSEG-K12", *base).status is Status.PASS
    result = run("NSEG-K12", *base, metrics)
    f = failing(result)["namespace/a"]
    assert_witness(f, "a/web[Deployment]", "kube-system/metrics-server[Deployment]")


def test_k12_unknown_without_nodes() -> None:
    assert run("NSEG-K12", NS, WEB, DB).status is Status.UNKNOWN


# ---------------------------------------------------------------- K15

BATCH = namespace("c") + "\n---\n" + deploy("c", "batch")
DB_FROM_WEB_ZONE = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-in, namespace: b}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {zone: web}}}]
    ports: [{port: 5432}]
"""


def test_k15_postgres_reachable_from_every_namespace_fails() -> None:
    result = run("NSEG-K15", NS, BATCH, WEB, DB)
    assert result.status is Status.FAIL
    f = finding(result, "b/db[Deployment]", "TCP/5432")
    assert f.status is Status.FAIL
    assert_object(f, "Deployment", "db")
    assert f.connections[0].dst == "b/db[Deployment]" and f.connections[0].port == 5432
    assert f.connections[0].explanation


def test_k15_postgres_from_one_namespace_passes() -> None:
    result = run("NSEG-K15", NS, BATCH, WEB, DB, DB_FROM_WEB_ZONE)
    assert result.status is Status.PASS
    assert finding(result, "b/db[Deployment]", "TCP/5432").status is Status.PASS


def test_k15_custom_sensitive_ports() -> None:
    result = run("NSEG-K15", NS, BATCH, WEB, DB, config={"sensitive_ports": [8080]})
    assert set(failing(result)) == {"a/web[Deployment]"}
