"""Verdicts on every cluster for the mesh and cloud layers and node-relative entities.

Adversarial pairs that differ only through a fact of the mesh (a proxy, an mTLS mode, an
identity, a port declared plain TCP), of the cloud (a group attached by a binding or not at all,
the enforcing mode) or of where pods run: each must be decided symbolically, found, and come
with a counterexample cluster that carries the fact and reproduces; reformulations that mean
the same must be equivalent on every cluster.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

import polyfence
from polyfence.api import load
from polyfence.io.files import parse_text
from polyfence.model.policy import PolicySet
from polyfence.semantics.compare import BasisKind, Comparison, Relation, compare_every_cluster
from polyfence.semantics.profile import PROFILES, EvaluationProfile


def _set(text: str) -> PolicySet:
    return load(parse_text(text, "in.yaml")).policies


def _docs(*docs: dict[str, Any]) -> str:
    return "---\n".join(yaml.safe_dump(d) for d in docs)


def _ap(name: str, spec: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


DB = {"matchLabels": {"app": "db"}}


def _allow_from(source: dict[str, Any] | None, to: dict[str, Any] | None = None) -> str:
    rule: dict[str, Any] = {}
    if source is not None:
        rule["from"] = [{"source": source}]
    if to is not None:
        rule["to"] = [{"operation": to}]
    return _docs(_ap("db", {"selector": DB, "rules": [rule]}))


def _decided(a: PolicySet, b: PolicySet, profile: EvaluationProfile) -> Comparison:
    result = compare_every_cluster(a, b, profile)
    assert result.basis is not None and result.basis.kind is BasisKind.EVERY_CLUSTER
    assert result.basis.method == "symbolic" and result.basis.fallback is None
    return result


def _reproduces(a: PolicySet, b: PolicySet, result: Comparison, profile: EvaluationProfile) -> None:
    """Each counterexample shows the difference on its own cluster, and so does the cluster
    its documents describe (read back as a user would apply them)."""
    assert result.counterexamples
    for cex in result.counterexamples:
        on_cluster = polyfence.compare(a, b, inventory=cex.inventory, profile=profile)
        assert cex.witness.allowed_by in {w.allowed_by for w in on_cluster.witnesses}, cex.yaml()
        read_back = load(parse_text(cex.yaml(), "cex.yaml"), skip_unknown=True).inventory
        again = polyfence.compare(a, b, inventory=read_back, profile=profile)
        assert cex.witness.allowed_by in {w.allowed_by for w in again.witnesses}, cex.yaml()


def _kinds(result: Comparison) -> dict[str, list[dict[str, Any]]]:
    cex = result.counterexample
    assert cex is not None
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in cex.documents:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def _pod(result: Comparison, name: str) -> dict[str, Any]:
    (pod,) = [p for p in _kinds(result)["Pod"] if p["metadata"]["name"] == name]
    return pod


KUBERNETES = PROFILES["kubernetes"]

# the mesh --------------------------------------------------------------------------------


def test_principal_wildcard_vs_exact_account() -> None:
    a = _set(_allow_from({"principals": ["cluster.local/ns/shop/sa/*"]}))
    b = _set(_allow_from({"principals": ["cluster.local/ns/shop/sa/web"]}))
    result = _decided(a, b, KUBERNETES)
    assert result.relation is Relation.NARROWER, result.to_dict()
    src = _pod(result, "polyfence-src")
    assert src["metadata"]["namespace"] == "shop"
    assert src["spec"].get("serviceAccountName", "default") != "web"
    assert src["metadata"]["annotations"] == {"sidecar.istio.io/inject": "true"}
    _reproduces(a, b, result, KUBERNETES)


def test_plain_text_client_tells_an_identity_test_from_allow_all() -> None:
    """PERMISSIVE (the default) lets a client without a proxy in, with no identity."""
    a = _set(_docs(_ap("db", {"selector": DB, "rules": [{}]})))
    b = _set(_allow_from({"principals": ["*"]}))
    result = _decided(a, b, KUBERNETES)
    assert result.relation is Relation.NARROWER, result.to_dict()
    assert _pod(result, "polyfence-src")["metadata"]["annotations"] == {
        "sidecar.istio.io/inject": "false"
    }
    assert "PeerAuthentication" not in _kinds(result)  # the default mode is the witness's
    _reproduces(a, b, result, KUBERNETES)


def test_strict_by_default_a_plain_text_client_needs_a_server_that_relaxes_it() -> None:
    """With STRICT as the mesh default a plain-text client is refused by both sides; only a
    server whose PeerAuthentication relaxes mTLS receives connections without identities."""
    strict = KUBERNETES.but(mtls_default="STRICT")
    a = _set(_docs(_ap("db", {"selector": DB, "rules": [{}]})))
    b = _set(_allow_from({"principals": ["*"]}))
    result = _decided(a, b, strict)
    assert result.relation is Relation.NARROWER, result.to_dict()
    (auth,) = _kinds(result)["PeerAuthentication"]
    assert auth["spec"]["mtls"]["mode"] in ("PERMISSIVE", "DISABLE")
    _reproduces(a, b, result, strict)


def test_http_fields_never_match_a_port_declared_plain_tcp() -> None:
    a = _set(_allow_from(None, {"ports": ["8080"], "methods": ["GET"]}))
    b = _set(_allow_from(None, {"ports": ["8080"]}))
    result = _decided(a, b, KUBERNETES)
    assert result.relation is Relation.WIDER, result.to_dict()
    cex = result.counterexample
    assert cex is not None and cex.witness.port == 8080 and cex.witness.allowed_by == "b"
    (service,) = _kinds(result)["Service"]
    assert service["spec"]["ports"][0]["name"].startswith("tcp")
    _reproduces(a, b, result, KUBERNETES)


def test_deny_comes_before_allow_and_audit_never_decides() -> None:
    allow_all = _ap("all", {"selector": DB, "rules": [{}]})
    deny = _ap(
        "no-b",
        {
            "selector": DB,
            "action": "DENY",
            "rules": [{"from": [{"source": {"namespaces": ["ns-b"]}}]}],
        },
    )
    audit = _ap("audit", {"selector": DB, "action": "AUDIT", "rules": [{}]})
    result = _decided(_set(_docs(allow_all)), _set(_docs(allow_all, deny)), KUBERNETES)
    assert result.relation is Relation.NARROWER, result.to_dict()
    assert _pod(result, "polyfence-src")["metadata"]["namespace"] == "ns-b"
    _reproduces(_set(_docs(allow_all)), _set(_docs(allow_all, deny)), result, KUBERNETES)
    same = _decided(_set(_docs(allow_all)), _set(_docs(allow_all, audit)), KUBERNETES)
    assert same.relation is Relation.EQUIVALENT


def test_root_namespace_policy_reaches_every_namespace() -> None:
    local = _docs(_ap("db", {"selector": DB}))
    root = _docs(_ap("db", {"selector": DB}, namespace="istio-system"))
    result = _decided(_set(local), _set(root), KUBERNETES)
    assert result.relation is Relation.NARROWER, result.to_dict()
    assert _pod(result, "polyfence-dst")["metadata"]["namespace"] != "shop"
    _reproduces(_set(local), _set(root), result, KUBERNETES)


MESH_SAME: dict[str, tuple[str, str]] = {
    "principal-prefix-is-the-certificate-namespace": (
        _allow_from({"principals": ["cluster.local/ns/shop/*"]}),
        _allow_from({"namespaces": ["shop"]}),
    ),
    "any-principal-is-any-namespace": (
        _allow_from({"principals": ["*"]}),
        _allow_from({"namespaces": ["*"]}),
    ),
    "suffix-on-the-account-vs-listed-namespaces-of-one-account": (
        _allow_from({"principals": ["*/sa/web"], "namespaces": ["shop", "pay"]}),
        _allow_from(
            {"principals": ["cluster.local/ns/shop/sa/web", "cluster.local/ns/pay/sa/web"]}
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(MESH_SAME))
def test_mesh_reformulations_are_equivalent_on_every_cluster(name: str) -> None:
    text_a, text_b = MESH_SAME[name]
    result = _decided(_set(text_a), _set(text_b), KUBERNETES)
    assert result.relation is Relation.EQUIVALENT, result.to_dict()
    assert result.headline() == "equivalent on every cluster"


def test_other_trust_domain_differs() -> None:
    a = _set(_allow_from({"principals": ["cluster.local/ns/shop/sa/web"]}))
    b = _set(_allow_from({"principals": ["other.domain/ns/shop/sa/web"]}))
    result = _decided(a, b, KUBERNETES)
    assert result.relation is Relation.NARROWER, result.to_dict()
    assert _pod(result, "polyfence-src")["spec"]["serviceAccountName"] == "web"
    _reproduces(a, b, result, KUBERNETES)


# the cloud -------------------------------------------------------------------------------

GROUP = "sg-0123456789abcdef0"


def _export(to_port: int = 443, source: dict[str, Any] | None = None) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": to_port}
    permission.update(source or {"IpRanges": [{"CidrIp": "0.0.0.0/0"}]})
    return {
        "SecurityGroups": [
            {
                "GroupId": GROUP,
                "GroupName": "web",
                "VpcId": "vpc-1",
                "IpPermissions": [permission],
                "IpPermissionsEgress": [
                    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                ],
            }
        ]
    }


BINDING = {
    "apiVersion": "vpcresources.k8s.aws/v1beta1",
    "kind": "SecurityGroupPolicy",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "securityGroups": {"groupIds": [GROUP]},
    },
}


def _aws(*docs: dict[str, Any]) -> PolicySet:
    return _set(_docs(*docs))


def _cloud_reproduces(
    a: PolicySet, b: PolicySet, result: Comparison, profile: EvaluationProfile
) -> None:
    """Group membership is no Kubernetes object polyfence reads back, so the counterexample's
    own inventory is what reproduces; its documents bind the group with a SecurityGroupPolicy."""
    for cex in result.counterexamples:
        on_cluster = polyfence.compare(a, b, inventory=cex.inventory, profile=profile)
        assert cex.witness.allowed_by in {w.allowed_by for w in on_cluster.witnesses}, cex.yaml()


@pytest.mark.parametrize("profile_name", ["aws", "aws-standard"])
def test_port_range_on_an_unbound_group_is_decided_symbolically(profile_name: str) -> None:
    profile = PROFILES[profile_name]
    a, b = _aws(_export(443)), _aws(_export(444))
    result = _decided(a, b, profile)
    assert result.relation is Relation.WIDER, result.to_dict()
    cex = result.counterexample
    assert cex is not None and cex.witness.port == 444
    (binding,) = _kinds(result)["SecurityGroupPolicy"]
    assert binding["spec"]["securityGroups"]["groupIds"] == [GROUP]
    dst = _pod(result, "polyfence-dst")
    assert (
        binding["spec"]["podSelector"]["matchLabels"].items() <= dst["metadata"]["labels"].items()
    )
    if profile_name == "aws-standard":  # same-node flows bypass groups: the witness's are apart
        assert any("nodes: " in note for note in cex.notes)
        assert _pod(result, "polyfence-src")["spec"]["nodeName"] != dst["spec"]["nodeName"]
    _cloud_reproduces(a, b, result, profile)


def test_a_group_bound_by_selector_is_not_the_group_unbound() -> None:
    """Bound, the group governs app=web pods of shop only; unbound, it governs whatever
    carries it, and app=web pods of shop need not carry it."""
    profile = PROFILES["aws"]
    a, b = _aws(_export(), BINDING), _aws(_export())
    result = _decided(a, b, profile)
    assert result.relation is Relation.INCOMPARABLE, result.to_dict()
    _cloud_reproduces(a, b, result, profile)


def test_group_reference_vs_the_cidr_its_members_use() -> None:
    profile = PROFILES["aws"]
    a = _aws(_export(source={"UserIdGroupPairs": [{"GroupId": "sg-0fedcba9876543210"}]}))
    b = _aws(_export(source={"IpRanges": [{"CidrIp": "10.0.0.0/8"}]}))
    result = _decided(a, b, profile)
    assert result.relation is Relation.INCOMPARABLE, result.to_dict()
    _cloud_reproduces(a, b, result, profile)


def test_standard_mode_egress_leaving_the_vpc_is_not_judged_by_the_pod_groups() -> None:
    closed = {
        "SecurityGroups": [
            {
                "GroupId": GROUP,
                "GroupName": "web",
                "VpcId": "vpc-1",
                "IpPermissions": [],
                "IpPermissionsEgress": [
                    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
                ],
            }
        ]
    }
    a, b = _aws(_export(), BINDING), _aws(closed, BINDING)
    strict = _decided(a, b, PROFILES["aws"])
    assert strict.relation is Relation.NARROWER
    standard = PROFILES["aws-standard"].but(vpc_cidrs=("10.0.0.0/8",))
    result = _decided(a, b, standard)
    # Inside the VPC the groups still judge egress (and ingress differs): still narrower, but
    # never through an address outside the VPC.
    assert result.relation is Relation.NARROWER, result.to_dict()
    cex = result.counterexample
    assert cex is not None and not cex.witness.dst.startswith("203.")
    _cloud_reproduces(a, b, result, standard)


# where pods run --------------------------------------------------------------------------


def _cnp(entities: list[str]) -> str:
    return _docs(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"endpointSelector": DB, "ingress": [{"fromEntities": entities}]},
        }
    )


def test_host_vs_remote_node_is_decided_with_a_node_counterexample() -> None:
    """A node always reaches its own pods (the profile says so), so allowing the host adds
    nothing and allowing remote nodes widens; without that rule they are incomparable."""
    a, b = _set(_cnp(["host"])), _set(_cnp(["remote-node"]))
    for profile, relation in (
        (PROFILES["cilium"], Relation.WIDER),
        (PROFILES["cilium"].but(node_to_local_pod=False), Relation.INCOMPARABLE),
    ):
        result = _decided(a, b, profile)
        assert result.relation is relation, result.to_dict()
        for cex in result.counterexamples:
            assert "Node" in {d["kind"] for d in cex.documents}
            nodes = {d["metadata"]["name"] for d in cex.documents if d["kind"] == "Node"}
            dst = [d for d in cex.documents if d["metadata"]["name"] == "polyfence-dst"]
            local = dst[0]["spec"]["nodeName"] in nodes
            assert local is (cex.witness.allowed_by == "a")  # host: the pod's own node
        _reproduces(a, b, result, profile)
    both = _set(_cnp(["host", "remote-node"]))
    wider = _decided(both, _set(_cnp(["cluster"])), PROFILES["cilium"])
    assert wider.relation is Relation.WIDER  # the cluster entity holds pods too
    assert wider.counterexample is not None and "[Pod]" in wider.counterexample.witness.src


# names -----------------------------------------------------------------------------------


def _to_fqdns(*selectors: dict[str, str], world: bool = False) -> str:
    rule: dict[str, Any] = {"toEntities": ["world"]} if world else {"toFQDNs": list(selectors)}
    return _docs(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "out", "namespace": "shop"},
            "spec": {"endpointSelector": {"matchLabels": {"app": "api"}}, "egress": [rule]},
        }
    )


def _answers(result: Comparison) -> list[list[dict[str, Any]]]:
    return [
        d["spec"]["records"]
        for cex in result.counterexamples
        for d in cex.documents
        if d["kind"] == "DNSRecords"
    ]


def test_exact_name_vs_pattern_differ_by_what_names_resolve_to() -> None:
    profile = PROFILES["cilium"]
    a = _set(_to_fqdns({"matchName": "example.com"}))
    b = _set(_to_fqdns({"matchPattern": "*.example.com"}))
    result = _decided(a, b, profile)
    assert result.relation is Relation.INCOMPARABLE, result.to_dict()
    names = sorted(r["name"] for records in _answers(result) for r in records)
    assert names[0] == "example.com" and names[1].endswith(".example.com")
    for cex in result.counterexamples:
        assert "[" not in cex.witness.dst  # cilium: names never select pods, only addresses
    _reproduces(a, b, result, profile)


def test_a_name_any_pattern_matches_still_needs_an_answer() -> None:
    """``*`` matches every name, not every address: an address nothing resolves to differs."""
    profile = PROFILES["cilium"]
    a = _set(_to_fqdns({"matchPattern": "*"}))
    b = _set(_to_fqdns(world=True))
    result = _decided(a, b, profile)
    assert result.relation is Relation.WIDER, result.to_dict()
    assert _answers(result) == []
    _reproduces(a, b, result, profile)


FQDN_PAIRS: dict[str, tuple[str, str, Relation]] = {
    "name-inside-its-pattern": (
        _to_fqdns({"matchPattern": "*.example.com"}),
        _to_fqdns({"matchPattern": "*.example.com"}, {"matchName": "api.example.com"}),
        Relation.EQUIVALENT,
    ),
    "pattern-inside-a-wider-pattern": (
        _to_fqdns({"matchPattern": "*.example.com"}),
        _to_fqdns({"matchPattern": "*.*.com"}),
        Relation.WIDER,
    ),
    "star-never-spans-a-dot": (
        _to_fqdns({"matchPattern": "*.com"}),
        _to_fqdns({"matchPattern": "*.com"}, {"matchPattern": "*.example.com"}),
        Relation.WIDER,
    ),
    "case-and-trailing-dot": (
        _to_fqdns({"matchName": "Example.COM."}),
        _to_fqdns({"matchName": "example.com"}),
        Relation.EQUIVALENT,
    ),
}


@pytest.mark.parametrize("name", sorted(FQDN_PAIRS))
def test_fqdn_pairs(name: str) -> None:
    text_a, text_b, relation = FQDN_PAIRS[name]
    a, b = _set(text_a), _set(text_b)
    result = _decided(a, b, KUBERNETES)
    assert result.relation is relation, result.to_dict()
    if relation is not Relation.EQUIVALENT:
        _reproduces(a, b, result, KUBERNETES)
