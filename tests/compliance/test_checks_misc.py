"""Scenario tests: allow-all rules (K06) and port wildcards (K16), host networking (K13, K14),
namespace boundaries (K20), the mesh (K18, K19) and the connectivity map (K22)."""

from __future__ import annotations

import pytest

from polyfence.compliance.model import Status
from tests.compliance.scenario import assert_object, deploy, failing, finding, namespace, run

NS = namespace("a") + "\n---\n" + namespace("b")
CLUSTER = (NS, deploy("a", "web", ports=[80]), deploy("b", "db", ports=[5432]))


def np(ingress: str) -> str:
    return f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: rule, namespace: a}}
spec:
  podSelector: {{}}
  policyTypes: [Ingress]
  ingress:
  - {{from: [{{podSelector: {{matchLabels: {{app: x}}}}}}], ports: [{{port: 80}}]}}
  - {ingress}
"""


@pytest.mark.parametrize(
    "rule",
    [
        "{}",
        "{from: [{namespaceSelector: {}, podSelector: {}}]}",
        "{from: [{namespaceSelector: {}}]}",
        "{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}",
    ],
)
def test_k06_allow_all_rule_cited_by_pointer(rule: str) -> None:
    result = run("NSEG-K06", *CLUSTER, np(rule))
    assert result.status is Status.FAIL
    f = finding(result, "NetworkPolicy/a/rule", "ingress/1")
    assert_object(f, "NetworkPolicy", "rule", "/spec/ingress/1")


def test_k06_calico_allow_without_selector() -> None:
    cal = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: cal, namespace: a}
spec:
  selector: all()
  types: [Ingress]
  ingress:
  - action: Deny
    source: {nets: [192.0.2.0/24]}
  - action: Allow
"""
    f = finding(run("NSEG-K06", *CLUSTER, cal), "NetworkPolicy/a/cal", "ingress/1")
    assert_object(f, "NetworkPolicy", "cal", "/spec/ingress/1")


def test_k06_cilium_from_entities_all_and_world() -> None:
    cnp = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: open, namespace: a}
spec:
  endpointSelector: {}
  ingress: [{fromEntities: [all]}]
  egress: [{toEntities: [world]}]
"""
    result = run("NSEG-K06", *CLUSTER, cnp)
    assert set(failing(result)) == {"CiliumNetworkPolicy/a/open"}
    assert {f.key for f in result.findings} == {"ingress/0", "egress/0"}
    f = finding(result, "CiliumNetworkPolicy/a/open", "egress/0")
    assert_object(f, "CiliumNetworkPolicy", "open", "/spec/egress/0")


@pytest.mark.parametrize(
    "rule",
    [
        "{from: [{namespaceSelector: {}}], ports: [{port: 443}]}",
        "{from: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: 443}]}",
        "{from: [{podSelector: {}}]}",
    ],
)
def test_k06_passes_with_ports_or_narrow_peers(rule: str) -> None:
    assert run("NSEG-K06", *CLUSTER, np(rule)).status is Status.PASS


def test_k06_excluded_namespace_not_reported() -> None:
    ks_policy = np("{}").replace("namespace: a", "namespace: kube-system")
    assert run("NSEG-K06", *CLUSTER, ks_policy).status is Status.PASS


def test_k16_wide_cidr_without_ports() -> None:
    result = run("NSEG-K16", *CLUSTER, np("{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}"))
    f = finding(result, "NetworkPolicy/a/rule", "ingress/1")
    assert f.status is Status.FAIL and "10.0.0.0/8" in f.message
    assert_object(f, "NetworkPolicy", "rule", "/spec/ingress/1")


@pytest.mark.parametrize(
    "rule",
    [
        "{from: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: 443}]}",
        "{from: [{ipBlock: {cidr: 10.1.2.0/24}}]}",
        "{}",  # an allow-all is NSEG-K06's finding, not counted twice
    ],
)
def test_k16_passes(rule: str) -> None:
    assert run("NSEG-K16", *CLUSTER, np(rule)).status is Status.PASS


def test_k16_broad_prefix_configurable() -> None:
    rule = np("{from: [{ipBlock: {cidr: 10.1.2.0/24}}]}")
    assert run("NSEG-K16", *CLUSTER, rule, config={"broad_cidr_prefix": 24}).status is Status.FAIL


# ---------------------------------------------------------------- K13 / K14 / K20

AGENT = deploy("a", "agent", host_network=True)
PROXY = deploy("a", "proxy", ports=[8080], host_port=30080)


def test_k13_host_network() -> None:
    result = run("NSEG-K13", *CLUSTER, AGENT)
    f = failing(result)["a/agent[Deployment]"]
    assert_object(f, "Deployment", "agent", "/spec/template/spec/hostNetwork")
    allowed = run("NSEG-K13", *CLUSTER, AGENT, config={"host_network_allowlist": ["a/agent"]})
    assert allowed.status is Status.PASS
    assert run("NSEG-K13", *CLUSTER).status is Status.PASS


def test_k14_host_port() -> None:
    result = run("NSEG-K14", *CLUSTER, PROXY)
    f = failing(result)["a/proxy[Deployment]"]
    assert "TCP/30080" in f.message
    assert_object(f, "Deployment", "proxy")
    assert (
        run("NSEG-K14", *CLUSTER, PROXY, config={"host_port_allowlist": ["a/*"]}).status
        is Status.PASS
    )
    assert run("NSEG-K14", *CLUSTER).status is Status.PASS


def test_k20_default_namespace_and_zoneless_namespace() -> None:
    cfg = {"zones": [{"name": "apps", "namespaces": ["a"]}]}
    result = run("NSEG-K20", *CLUSTER, deploy("default", "legacy"), config=cfg)
    assert set(failing(result)) == {"namespace/default", "namespace/b"}
    assert_object(failing(result)["namespace/default"], "Deployment", "legacy")
    assert_object(failing(result)["namespace/b"], "Namespace", "b")
    cfg = {"zones": [{"name": "apps", "namespaces": ["a", "b"]}]}
    assert run("NSEG-K20", *CLUSTER, config=cfg).status is Status.PASS


# ---------------------------------------------------------------- K18 / K19

AP = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db-callers, namespace: b}
spec:
  selector: {matchLabels: {app: db}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/a/sa/web]}}]
"""
STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: b}
spec: {mtls: {mode: STRICT}}
"""
PERMISSIVE_DB = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db-legacy, namespace: b}
spec:
  selector: {matchLabels: {app: db}}
  mtls: {mode: PERMISSIVE}
"""


MESH = (
    namespace("a", **{"istio-injection": "enabled"})
    + "\n---\n"
    + namespace("b", **{"istio-injection": "enabled"}),
    deploy("a", "web", ports=[80]),
    deploy("b", "db", ports=[5432]),
)
ALLOW_NOTHING = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: istio-system}
spec: {}
"""
ALLOW_ALL_DB = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: everyone, namespace: b}
spec:
  selector: {matchLabels: {app: db}}
  rules: [{}]
"""


def test_k18_meshed_workload_without_allow_policy_fails() -> None:
    result = run("NSEG-K18", *MESH, AP)
    failed = failing(result)
    assert set(failed) == {"namespace/a"}  # b/db has an ALLOW policy, a/web has none
    assert "a/web" in failed["namespace/a"].message
    assert finding(result, "namespace/b").status is Status.PASS


def test_k18_mesh_wide_allow_nothing_passes() -> None:
    result = run("NSEG-K18", *MESH, AP, ALLOW_NOTHING)
    assert result.status is Status.PASS
    assert_object(finding(result, "namespace/a"), "AuthorizationPolicy", "allow-nothing")


def test_k18_allow_everything_neutralises_default_deny() -> None:
    """A policy that exists but matches every request is no default deny (``rules: [{}]``)."""
    result = run("NSEG-K18", *MESH, ALLOW_NOTHING, ALLOW_ALL_DB)
    f = failing(result)["namespace/b"]
    assert "every TCP connection" in f.message
    assert_object(f, "AuthorizationPolicy", "everyone")


def test_k18_policy_on_workloads_outside_the_mesh_fails() -> None:
    result = run("NSEG-K18", *CLUSTER, AP)  # namespace b is not injected
    f = failing(result)["policy/b/db-callers"]
    assert "outside the mesh" in f.message


def test_k18_not_applicable_or_unknown_without_mesh() -> None:
    assert run("NSEG-K18", *CLUSTER).status is Status.NOT_APPLICABLE
    assert (
        run("NSEG-K18", *CLUSTER, config={"enforcement": {"mesh": "istio"}}).status
        is Status.UNKNOWN
    )


def test_k19_identity_policies_without_peer_authentication_fail() -> None:
    result = run("NSEG-K19", *CLUSTER, AP)
    f = failing(result)["namespace/b"]
    assert f.observed == "PERMISSIVE"
    assert_object(f, "AuthorizationPolicy", "db-callers")


def test_k19_strict_namespace_wide_passes() -> None:
    result = run("NSEG-K19", *CLUSTER, AP, STRICT)
    assert result.status is Status.PASS
    assert_object(
        finding(result, "namespace/b"), "PeerAuthentication", "default", "/spec/mtls/mode"
    )


def test_k19_workload_permissive_exception_fails() -> None:
    result = run("NSEG-K19", *CLUSTER, AP, STRICT, PERMISSIVE_DB)
    f = failing(result)["namespace/b"]
    assert "exceptions" in f.message
    assert_object(f, "PeerAuthentication", "db-legacy", "/spec")


def test_k19_not_applicable_without_identity_rules() -> None:
    assert run("NSEG-K19", *CLUSTER, STRICT).status is Status.NOT_APPLICABLE


# ---------------------------------------------------------------- K22


def test_k22_map_produced_or_unknown() -> None:
    result = run("NSEG-K22", *CLUSTER)
    assert result.status is Status.PASS
    assert finding(result, "cluster").status is Status.PASS
    assert "2 namespaces" in result.detail
    assert run("NSEG-K22", NS).status is Status.UNKNOWN
