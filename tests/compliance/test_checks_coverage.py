"""Scenario tests: enforcement (K01), coverage (K02, K05), effective default deny (K03, K04) and
ineffective policies (K17) — each check made to fail and made to pass."""

from __future__ import annotations

import pytest

from polyfence.compliance.model import Status
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

NS = namespace("a") + "\n---\n" + namespace("b")
WEB = deploy("a", "web", ports=[80])
API = deploy("b", "api", ports=[8080])
CLUSTER = (NS, WEB, API)

ALLOW_ALL_A = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: a}
spec:
  podSelector: {}
  ingress: [{}]
"""
FAKE_DEFAULT_DENY_A = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: a}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{}]
"""
CALICO_GNP_DENY = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default-deny}
spec:
  selector: all()
  types: [Ingress, Egress]
"""


def ccnp(body: str, name: str = "cluster-rule") -> str:
    return f"""
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {{name: {name}}}
spec:
  endpointSelector: {{}}
  {body}
"""


# ---------------------------------------------------------------- K01 enforcement


CALICO_NODE = deploy("kube-system", "calico-node", {"k8s-app": "calico-node"}, kind="DaemonSet")
FLANNEL = deploy("kube-system", "kube-flannel-ds", {"app": "flannel"}, kind="DaemonSet")


def test_k01_calico_node_enforces_network_policy() -> None:
    result = run("NSEG-K01", *CLUSTER, default_deny("a"), CALICO_NODE)
    assert result.status is Status.PASS
    f = finding(result, "kind/NetworkPolicy")
    assert f.status is Status.PASS and "calico" in f.message


def test_k01_flannel_only_is_false_assurance() -> None:
    result = run("NSEG-K01", *CLUSTER, default_deny("a"), FLANNEL)
    assert result.status is Status.FAIL
    f = finding(result, "kind/NetworkPolicy")
    assert f.status is Status.FAIL and "flannel" in f.message


def test_k01_no_dataplane_in_input_is_unknown_never_pass() -> None:
    result = run("NSEG-K01", *CLUSTER, default_deny("a"))
    assert result.status is Status.UNKNOWN
    assert finding(result, "kind/NetworkPolicy").status is Status.UNKNOWN


@pytest.mark.parametrize(("enabled", "status"), [(True, Status.PASS), (False, Status.FAIL)])
def test_k01_declared_vpc_cni(enabled: bool, status: Status) -> None:
    cfg = {"enforcement": {"cni": "aws-vpc-cni", "network_policy": enabled}}
    result = run("NSEG-K01", *CLUSTER, default_deny("a"), config=cfg)
    assert result.status is status
    assert finding(result, "kind/NetworkPolicy").status is status


def test_k01_calico_kinds_need_calico() -> None:
    cilium_agent = deploy("kube-system", "cilium", {"k8s-app": "cilium"}, kind="DaemonSet")
    result = run("NSEG-K01", *CLUSTER, CALICO_GNP_DENY, cilium_agent)
    assert result.status is Status.FAIL
    assert finding(result, "kind/Calico GlobalNetworkPolicy").status is Status.FAIL


# ---------------------------------------------------------------- K02 coverage


def test_k02_policy_in_one_namespace_does_not_cover_another() -> None:
    """checkov #7474: a podSelector {} policy governs its own namespace only."""
    result = run("NSEG-K02", *CLUSTER, default_deny("a"))
    assert result.status is Status.FAIL
    assert set(failing(result)) == {"namespace/b"}
    assert_object(finding(result, "namespace/a"), "NetworkPolicy", "default-deny")


@pytest.mark.parametrize(
    "policy",
    [
        CALICO_GNP_DENY,
        ccnp("ingress: [{}]"),
        ccnp("ingress: [{}]").replace(
            "endpointSelector: {}", "endpointSelector: {matchLabels: {}}"
        ),
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny, namespace: a}
spec: {selector: all(), types: [Ingress]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny, namespace: b}
spec: {endpointSelector: {}, egress: [{}]}
""",
    ],
    ids=["calico-gnp", "ccnp-empty-selector", "ccnp-matchlabels-empty", "calico-np+cnp"],
)
def test_k02_calico_and_cilium_policies_count(policy: str) -> None:
    result = run("NSEG-K02", *CLUSTER, policy)
    assert result.status is Status.PASS, result.detail
    assert {f.resource for f in result.findings} == {"namespace/a", "namespace/b"}
    assert all(f.objects and f.objects[0].file == "cluster.yaml" for f in result.findings)


def test_k02_policy_selecting_no_pod_does_not_govern() -> None:
    dangling = default_deny("b").replace("podSelector: {}", "podSelector: {matchLabels: {x: y}}")
    result = run("NSEG-K02", *CLUSTER, default_deny("a"), dangling)
    f = finding(result, "namespace/b")
    assert f.status is Status.FAIL and "select none" in f.message
    assert_object(f, "NetworkPolicy", "default-deny")


def test_k02_kube_system_excluded_by_default() -> None:
    dns = deploy("kube-system", "coredns", {"k8s-app": "kube-dns"}, [53])
    result = run("NSEG-K02", *CLUSTER, namespace("kube-system"), dns, CALICO_GNP_DENY)
    assert result.status is Status.PASS
    assert "namespace/kube-system" not in {f.resource for f in result.findings}


# ---------------------------------------------------------------- K03 / K04 default deny


def test_k03_real_default_deny_passes() -> None:
    result = run("NSEG-K03", *CLUSTER, default_deny("a"), default_deny("b"))
    assert result.status is Status.PASS
    assert_object(finding(result, "namespace/a"), "NetworkPolicy", "default-deny")


def test_k03_missing_default_deny_fails_with_witness() -> None:
    result = run("NSEG-K03", *CLUSTER, default_deny("a", "Ingress"))
    assert result.status is Status.FAIL
    f = failing(result)["namespace/b"]
    assert "not ingress-isolated" in f.message
    assert_witness(f, "a/web[Deployment]", "b/api[Deployment]")
    assert "namespace/a" not in failing(result)


def test_k03_policy_named_default_deny_that_allows_everything_fails() -> None:
    result = run("NSEG-K03", *CLUSTER, FAKE_DEFAULT_DENY_A, default_deny("b", "Ingress"))
    f = failing(result)["namespace/a"]
    assert "neutralised" in f.message
    assert_witness(f, "b/api[Deployment]", "a/web[Deployment]")
    assert_object(f, "NetworkPolicy", "default-deny", "/spec/ingress/0")


def test_k03_default_deny_neutralised_by_allow_all_fails() -> None:
    result = run("NSEG-K03", *CLUSTER, default_deny("a"), ALLOW_ALL_A, default_deny("b", "Ingress"))
    assert result.status is Status.FAIL
    f = failing(result)["namespace/a"]
    assert "neutralised" in f.message
    assert_object(f, "NetworkPolicy", "allow-all", "/spec/ingress/0")
    assert_witness(f, "b/api[Deployment]", "a/web[Deployment]")
    assert set(failing(result)) == {"namespace/a"}


def test_k03_neutralised_even_when_peers_egress_is_denied_today() -> None:
    """The allow-all undoes the deny whatever other namespaces' egress happens to allow."""
    result = run("NSEG-K03", *CLUSTER, default_deny("a"), ALLOW_ALL_A, default_deny("b"))
    assert set(failing(result)) == {"namespace/a"}


def test_k03_calico_global_default_deny_passes() -> None:
    result = run("NSEG-K03", *CLUSTER, CALICO_GNP_DENY)
    assert result.status is Status.PASS
    assert_object(finding(result, "namespace/b"), "GlobalNetworkPolicy", "default-deny")


def test_k03_cilium_empty_rule_is_default_deny() -> None:
    """Cilium docs (semantics.md §3b): `ingress: [{}]` isolates without allowing anything;
    `endpointSelector: {}` selects every endpoint."""
    result = run("NSEG-K03", *CLUSTER, ccnp("ingress: [{}]"))
    assert result.status is Status.PASS
    assert_object(finding(result, "namespace/a"), "CiliumClusterwideNetworkPolicy", "cluster-rule")


def test_k03_cilium_ingress_deny_all_passes() -> None:
    result = run("NSEG-K03", *CLUSTER, ccnp("ingressDeny: [{fromEntities: [all]}]"))
    assert result.status is Status.PASS


def test_k03_cilium_empty_ingress_list_is_inert() -> None:
    result = run("NSEG-K03", *CLUSTER, ccnp("ingress: []"))
    assert result.status is Status.FAIL
    assert set(failing(result)) == {"namespace/a", "namespace/b"}
    assert "not ingress-isolated" in failing(result)["namespace/a"].message


@pytest.mark.parametrize("peer", ["fromEntities: [all]", "fromEndpoints: [{}]"])
def test_k03_cilium_allow_everything_neutralises(peer: str) -> None:
    result = run("NSEG-K03", *CLUSTER, ccnp(f"ingress: [{{{peer}}}]"))
    f = failing(result)["namespace/a"]
    assert "neutralised" in f.message
    assert_object(f, "CiliumClusterwideNetworkPolicy", "cluster-rule", "/spec/ingress/0")


def test_k03_cilium_default_deny_switched_off() -> None:
    body = "enableDefaultDeny: {ingress: false}\n  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]"
    result = run("NSEG-K03", *CLUSTER, ccnp(body))
    assert set(failing(result)) == {"namespace/a", "namespace/b"}


def test_k03_unknown_without_workloads() -> None:
    assert run("NSEG-K03", NS, default_deny("a")).status is Status.UNKNOWN


def test_k04_egress_default_deny() -> None:
    passed = run("NSEG-K04", *CLUSTER, default_deny("a", "Egress"), default_deny("b", "Egress"))
    assert passed.status is Status.PASS
    failed = run("NSEG-K04", *CLUSTER, default_deny("a", "Ingress"), default_deny("b", "Egress"))
    f = failing(failed)["namespace/a"]
    assert "not egress-isolated" in f.message
    assert_witness(f, "a/web[Deployment]", "b/api[Deployment]")
    assert set(failing(failed)) == {"namespace/a"}


def test_k04_egress_allow_all_neutralises_default_deny() -> None:
    allow_out = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-out, namespace: a}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{}]
"""
    result = run("NSEG-K04", *CLUSTER, default_deny("a"), allow_out, default_deny("b", "Egress"))
    f = failing(result)["namespace/a"]
    assert "neutralised" in f.message
    assert_object(f, "NetworkPolicy", "allow-out", "/spec/egress/0")


def test_k04_calico_gnp_and_cilium_egress() -> None:
    assert run("NSEG-K04", *CLUSTER, CALICO_GNP_DENY).status is Status.PASS
    assert run("NSEG-K04", *CLUSTER, ccnp("egress: [{}]")).status is Status.PASS
    assert run("NSEG-K04", *CLUSTER, ccnp("egress: []")).status is Status.FAIL


# ---------------------------------------------------------------- K05 isolation coverage


def test_k05_both_directions_needed() -> None:
    result = run("NSEG-K05", *CLUSTER, default_deny("a"), default_deny("b", "Ingress"))
    assert result.status is Status.FAIL
    assert "1/2" in result.detail
    f = failing(result)["namespace/b"]
    assert f.observed == "0.0%"
    assert_object(f, "Deployment", "api")
    assert finding(result, "namespace/a").status is Status.PASS


def test_k05_deny_only_policies_pass() -> None:
    """Polaris #1088: a deny-only policy (no allow rule at all) is full isolation, not a gap."""
    result = run("NSEG-K05", *CLUSTER, default_deny("a"), default_deny("b"))
    assert result.status is Status.PASS
    assert "100.0%" in result.detail


def test_k05_coverage_over_the_interval_with_a_baseline() -> None:
    """With a baseline snapshot, coverage is reported then and now, and how many workloads
    stayed isolated for the whole interval (Calico's "protected throughout")."""
    from tests.compliance.scenario import bundle

    before = bundle(*CLUSTER, default_deny("a"), default_deny("b"))
    result = run("NSEG-K05", *CLUSTER, default_deny("a"), baseline=before)
    assert "at the baseline 2/2 (100.0%)" in result.detail
    assert "whole interval (baseline and now): 1/2" in result.detail
    assert "whole interval" not in run("NSEG-K05", *CLUSTER, default_deny("a")).detail


# ---------------------------------------------------------------- K17 ineffective policies

DANGLING = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dangling, namespace: a}
spec:
  podSelector: {matchLabels: {app: nope}}
  policyTypes: [Ingress]
"""
ALLOW_WEB = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: %s, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {}}], ports: [{port: 80}]}]
"""


def test_k17_dangling_selector() -> None:
    result = run("NSEG-K17", *CLUSTER, DANGLING)
    assert result.status is Status.FAIL
    f = finding(result, "NetworkPolicy/a/dangling")
    assert "dangling" in f.message
    assert_object(f, "NetworkPolicy", "dangling", "")


def test_k17_duplicate_allow_is_redundant_default_deny_is_not() -> None:
    client = deploy("a", "client")
    dup = (ALLOW_WEB % "allow-1", ALLOW_WEB % "allow-2")
    result = run("NSEG-K17", *CLUSTER, client, default_deny("a", "Ingress"), *dup)
    assert set(failing(result)) == {"NetworkPolicy/a/allow-1", "NetworkPolicy/a/allow-2"}
    message = failing(result)["NetworkPolicy/a/allow-1"].message
    assert message.endswith("is redundant: removing it changes no connection on any cluster")


ALLOW_WEB_FROM = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: %s, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {app: %s}}}], ports: [{port: 80}]}]
"""


def test_k17_a_policy_idle_today_but_not_on_every_cluster_is_not_redundant() -> None:
    """No pod is app=batch today, so removing allow-batch changes nothing in this snapshot;
    the first batch pod would need it, so deleting it is not a clean-up: not reported."""
    client = deploy("a", "client", {"app": "client"})
    result = run(
        "NSEG-K17",
        *CLUSTER,
        client,
        default_deny("a", "Ingress"),
        ALLOW_WEB_FROM % ("allow-client", "client"),
        ALLOW_WEB_FROM % ("allow-batch", "batch"),
    )
    assert "NetworkPolicy/a/allow-batch" not in failing(result), result.findings


def test_k17_past_the_symbolic_budget_redundancy_is_judged_on_the_snapshot_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from polyfence.compliance.checks import hygiene

    monkeypatch.setattr(hygiene, "SYMBOLIC_SECONDS", 0.0)
    client = deploy("a", "client")
    dup = (ALLOW_WEB % "allow-1", ALLOW_WEB % "allow-2")
    result = run("NSEG-K17", *CLUSTER, client, default_deny("a", "Ingress"), *dup)
    message = failing(result)["NetworkPolicy/a/allow-1"].message
    assert "in this snapshot (not decided for every cluster: over the time budget" in message


def test_k17_clean_policies_pass() -> None:
    client = deploy("a", "client")
    result = run(
        "NSEG-K17", *CLUSTER, client, default_deny("a", "Ingress"), ALLOW_WEB % "allow-web"
    )
    assert result.status is Status.PASS
    assert not result.findings


def test_k17_cilium_empty_ingress_list_is_inert() -> None:
    result = run("NSEG-K17", *CLUSTER, ccnp("ingress: []", name="inert"))
    f = finding(result, "CiliumClusterwideNetworkPolicy/inert")
    assert f.status is Status.FAIL and "governs neither" in f.message
    assert_object(f, "CiliumClusterwideNetworkPolicy", "inert", "")


def test_k17_cilium_empty_rule_default_deny_is_effective() -> None:
    result = run("NSEG-K17", *CLUSTER, ccnp("ingress: [{}]"))
    assert result.status is Status.PASS


def test_k17_unknown_without_workloads() -> None:
    assert run("NSEG-K17", NS, default_deny("a")).status is Status.UNKNOWN


def _as_list(*docs: str) -> str:
    """The documents as one ``kind: List`` (what ``kubectl get … -o yaml`` prints)."""
    import yaml

    items = [yaml.safe_load(d) for d in docs]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})


def test_k17_list_items_are_judged_one_by_one() -> None:
    """Items of a List snapshot are documents of their own: an inert item is found, an
    effective one beside it is not, and findings name the item's kind and pointer."""
    listing = _as_list(ccnp("ingress: [{}]", name="deny-all"), ccnp("ingress: []", name="inert"))
    result = run("NSEG-K17", *CLUSTER, listing)
    assert set(failing(result)) == {"CiliumClusterwideNetworkPolicy/inert"}
    f = failing(result)["CiliumClusterwideNetworkPolicy/inert"]
    assert_object(f, "CiliumClusterwideNetworkPolicy", "inert", "/items/1")
    deny = run("NSEG-K03", *CLUSTER, listing)
    kinds = {o.kind for f in deny.findings for o in f.objects}
    assert "CiliumClusterwideNetworkPolicy" in kinds and "cilium" not in kinds
