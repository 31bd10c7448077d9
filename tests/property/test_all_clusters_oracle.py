"""The every-cluster verdict against brute force over every small cluster.

Policies are random Kubernetes NetworkPolicy sets over a small label universe (pod keys
``a`` ∈ {x, y} and ``b`` ∈ {x}, namespace key ``a`` ∈ {x}, names n1/n2, port 80 and the named
port ``http``). The oracle builds every cluster that universe can tell apart — each labelling of
n1 and n2 (``a`` = x, another value, absent), fresh namespaces with each labelling, and in every
namespace two pods of every pod labelling (values x, y, another, absent) and every resolution
of ``http`` (none, 80, another number) — and compares A and B on each with the class engine.
The all-cluster answer (symbolic, by default) must be "equivalent" exactly when no such cluster
tells A from B, every counterexample it prints must, read back as Kubernetes objects, tell them
apart alone, and the universal inventory must reach the same relation.
"""

from __future__ import annotations

import itertools
import os
from functools import cache
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import polyfence
from polyfence.api import load
from polyfence.inventory import Endpoint, Inventory, NamedPort, Namespace, build_inventory
from polyfence.io.files import parse_text
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.model.provenance import SourceRef
from polyfence.semantics.compare import BasisKind, Relation, compare, compare_every_cluster
from polyfence.semantics.profile import PROFILES, EvaluationProfile

pytestmark = pytest.mark.property

NS_NAMES = ("n1", "n2")
POD_VALUES = {"a": ("x", "y"), "b": ("x",)}


def _expression(draw: Any) -> dict[str, Any]:
    key = draw(st.sampled_from(sorted(POD_VALUES)))
    op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
    expr: dict[str, Any] = {"key": key, "operator": op}
    if op in ("In", "NotIn"):
        expr["values"] = draw(
            st.lists(st.sampled_from(POD_VALUES[key]), min_size=1, max_size=2, unique=True)
        )
    return expr


@st.composite
def pod_selectors(draw: Any) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    labels: dict[str, str] = {}
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(POD_VALUES)))
        labels[key] = draw(st.sampled_from(POD_VALUES[key]))
    if labels:
        sel["matchLabels"] = labels
    exprs = draw(st.lists(st.builds(lambda: None), max_size=2))
    if exprs:
        sel["matchExpressions"] = [_expression(draw) for _ in exprs]
    return sel


@st.composite
def peers(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(("pod", "ns", "both")))
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(pod_selectors())
    if kind in ("ns", "both"):
        peer["namespaceSelector"] = draw(
            st.sampled_from(
                (
                    {},
                    {"matchLabels": {"a": "x"}},
                    {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
                    {"matchLabels": {"kubernetes.io/metadata.name": "n1"}},
                    {"matchLabels": {"kubernetes.io/metadata.name": "n2"}},
                )
            )
        )
    return peer


@st.composite
def rules(draw: Any, key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.integers(0, 3)):
        rule[key] = draw(st.lists(peers(), max_size=2))
    ports = draw(st.sampled_from((None, [{"port": 80}], [{"port": "http"}])))
    if ports is not None:
        rule["ports"] = ports
    return rule


@st.composite
def policies(draw: Any, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(pod_selectors())}
    spec["policyTypes"] = draw(st.sampled_from((["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    if "Ingress" in spec["policyTypes"]:
        spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
    if "Egress" in spec["policyTypes"]:
        spec["egress"] = draw(st.lists(rules("to"), max_size=2))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"p{index}", "namespace": draw(st.sampled_from(NS_NAMES))},
        "spec": spec,
    }


@st.composite
def policy_sets(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 2))
    return [draw(policies(i)) for i in range(n)]


def _ir(docs: list[dict[str, Any]]) -> PolicySet:
    return load([Document(d, SourceRef("gen", i)) for i, d in enumerate(docs)]).policies


NS_LABELLINGS: tuple[dict[str, str], ...] = ({"a": "x"}, {"a": "other"}, {})
POD_LABELLINGS = [
    {k: v for k, v in (("a", a), ("b", b)) if v is not None}
    for a, b in itertools.product(("x", "y", "other", None), ("x", "other", None))
]
HTTP = ((), (NamedPort("http", 6, 80),), (NamedPort("http", 6, 81),))


@cache
def _small_clusters() -> tuple[Inventory, ...]:
    """Every cluster the universe can tell apart, as one inventory per labelling of n1, n2."""
    fresh = [Namespace(f"f{i}", labels) for i, labels in enumerate(NS_LABELLINGS)]
    out = []
    for l1, l2 in itertools.product(NS_LABELLINGS, repeat=2):
        namespaces = [Namespace("n1", l1), Namespace("n2", l2), *fresh]
        pods = []
        counter = 0
        for ns in namespaces:
            for labels, ports in itertools.product(POD_LABELLINGS, HTTP):
                for _twin in range(2):
                    counter += 1
                    ip = f"10.244.{counter // 250}.{counter % 250 + 1}"
                    pods.append(
                        Endpoint("Pod", ns.name, f"p{counter}", labels, "default", (ip,), ports)
                    )
        out.append(build_inventory(namespaces, pods))
    return tuple(out)


def _brute_force_differs(a: PolicySet, b: PolicySet) -> bool:
    return any(
        compare(a, b, inv, max_witnesses=1).relation is not Relation.EQUIVALENT
        for inv in _small_clusters()
    )


@settings(max_examples=150, deadline=None)
@given(docs_a=policy_sets(), docs_b=policy_sets(), mutate=st.booleans())
def test_every_cluster_verdict_agrees_with_brute_force(
    docs_a: list[dict[str, Any]], docs_b: list[dict[str, Any]], mutate: bool
) -> None:
    # Half the time B is A with one policy replaced: near-misses are where completeness bites.
    if mutate:
        docs_b = [*docs_a[:-1], docs_b[0]]
    a, b = _ir(docs_a), _ir(docs_b)
    result = polyfence.compare(a, b)
    assert result.basis is not None and result.basis.kind is BasisKind.EVERY_CLUSTER
    assert result.basis.method == "symbolic"  # the default; the other method is checked below
    event(f"relation: {result.relation.value}")
    assert (result.relation is Relation.EQUIVALENT) is not _brute_force_differs(a, b), (
        docs_a,
        docs_b,
        result.to_dict(),
    )
    for cex in result.counterexamples:
        cluster = load(parse_text(cex.yaml(), "cex.yaml")).inventory
        on_cluster = polyfence.compare(a, b, inventory=cluster)
        assert on_cluster.relation is not Relation.EQUIVALENT, cex.yaml()
    enumerated = compare_every_cluster(a, b, symbolic=False)
    assert enumerated.relation is result.relation, (docs_a, docs_b, enumerated.to_dict())


# the mesh layer --------------------------------------------------------------------------
# Istio AuthorizationPolicies over a small universe: policy namespaces n1 and the root
# namespace, pod key ``a`` = x, accounts default and sa1, principal and namespace patterns
# that read both (exact, prefix, suffix, ``*``, negations), port 80 with and without HTTP
# fields. The oracle cluster holds, in namespaces n1, n2, n3, m1, m2 and istio-system (every
# combination of the name patterns: n1 exact, n2 both n* and *2, n3 only n*, m2 only *2, m1
# none), two pods of every labelling, account, mesh state (out; in with the default mode;
# STRICT, PERMISSIVE, DISABLE) and opaque declaration of port 80: verdicts are local, so one
# cluster is every cluster this universe can tell apart.

MESH_PRINCIPALS = (
    "cluster.local/ns/n1/sa/sa1",
    "cluster.local/ns/n1/*",
    "*/sa/sa1",
    "*",
    "cluster.local/ns/n*",
)
MESH_NAMESPACES = ("n1", "n*", "*", "*2")
MESH_STATES = (
    (False, None),
    (True, None),
    (True, "STRICT"),
    (True, "PERMISSIVE"),
    (True, "DISABLE"),
)


@st.composite
def mesh_sources(draw: Any) -> dict[str, Any]:
    source: dict[str, Any] = {}
    for key, values in (
        ("principals", MESH_PRINCIPALS),
        ("notPrincipals", MESH_PRINCIPALS),
        ("namespaces", MESH_NAMESPACES),
        ("notNamespaces", MESH_NAMESPACES),
    ):
        if draw(st.integers(0, 2)) == 0:
            source[key] = draw(
                st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)
            )
    return source or {"principals": [draw(st.sampled_from(MESH_PRINCIPALS))]}


@st.composite
def mesh_rules(draw: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["from"] = [{"source": draw(mesh_sources())}]
    operation = draw(
        st.sampled_from(
            (None, {"ports": ["80"]}, {"ports": ["80"], "methods": ["GET"]}, {"notPorts": ["80"]})
        )
    )
    if operation is not None:
        rule["to"] = [{"operation": operation}]
    return rule


@st.composite
def mesh_policies(draw: Any, index: int) -> dict[str, Any]:
    action = draw(st.sampled_from(("ALLOW", "ALLOW", "DENY", "AUDIT")))
    spec: dict[str, Any] = {"action": action}
    if draw(st.booleans()):
        spec["selector"] = {"matchLabels": {"a": "x"}}
    if action != "ALLOW" or draw(st.integers(0, 3)):
        spec["rules"] = draw(st.lists(mesh_rules(), min_size=1, max_size=2))
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {
            "name": f"ap{index}",
            "namespace": draw(st.sampled_from(("n1", "istio-system"))),
        },
        "spec": spec,
    }


@st.composite
def mesh_policy_sets(draw: Any) -> list[dict[str, Any]]:
    return [draw(mesh_policies(i)) for i in range(draw(st.integers(1, 2)))]


@cache
def _mesh_cluster() -> Inventory:
    namespaces = [Namespace(n, {}) for n in ("n1", "n2", "n3", "m1", "m2", "istio-system")]
    pods = []
    counter = 0
    for ns, labels, sa, (mesh, mtls), opaque in itertools.product(
        namespaces, ({"a": "x"}, {}), ("default", "sa1"), MESH_STATES, ((), (80,))
    ):
        for _twin in range(2):
            counter += 1
            pods.append(
                Endpoint(
                    "Pod",
                    ns.name,
                    f"p{counter}",
                    labels,
                    sa,
                    (f"10.244.{counter // 250}.{counter % 250 + 1}",),
                    mesh=mesh,
                    mtls=mtls,
                    opaque_ports=opaque,
                )
            )
    return build_inventory(namespaces, pods)


@settings(max_examples=int(os.environ.get("POLYFENCE_MESH_ORACLE_EXAMPLES", "60")), deadline=None)
@given(
    docs_a=mesh_policy_sets(),
    docs_b=mesh_policy_sets(),
    mutate=st.booleans(),
    default=st.sampled_from(("PERMISSIVE", "STRICT")),
)
def test_mesh_every_cluster_verdict_agrees_with_brute_force(
    docs_a: list[dict[str, Any]], docs_b: list[dict[str, Any]], mutate: bool, default: str
) -> None:
    if mutate:
        docs_b = [*docs_a[:-1], docs_b[0]]
    _agrees_with_oracle(
        _ir(docs_a), _ir(docs_b), EvaluationProfile(mtls_default=default), _mesh_cluster()
    )


def _agrees_with_oracle(
    a: PolicySet, b: PolicySet, profile: EvaluationProfile, oracle: Inventory
) -> None:
    """Decided symbolically with the oracle cluster's relation (each side's difference exists
    on every cluster iff on the oracle's), every counterexample reproducing from its YAML."""
    result = compare_every_cluster(a, b, profile)
    assert result.basis is not None and result.basis.method == "symbolic"
    event(f"relation: {result.relation.value}")
    on_oracle = compare(a, b, oracle, profile, max_witnesses=1)
    assert result.relation is on_oracle.relation, (result.to_dict(), on_oracle.to_dict())
    for cex in result.counterexamples:
        cluster = load(parse_text(cex.yaml(), "cex.yaml")).inventory
        on_cluster = polyfence.compare(a, b, inventory=cluster, profile=profile)
        assert cex.witness.allowed_by in {w.allowed_by for w in on_cluster.witnesses}, cex.yaml()


# FQDN peers ------------------------------------------------------------------------------
# Cilium egress to names and patterns over a small alphabet. With no inventory a name may
# resolve to any address, so the oracle cluster gives, for every subset of six names (one per
# way these names and patterns can match: exact, under a pattern, under two, under ``*`` only),
# one outside address and one pod the subset's names resolve to.

FQDN_SELECTORS = (
    {"matchName": "a.com"},
    {"matchName": "x.a.com"},
    {"matchPattern": "*.a.com"},
    {"matchPattern": "x.*"},
    {"matchPattern": "*"},
    {"matchPattern": "*.*.com"},
)
ORACLE_NAMES = ("a.com", "x.a.com", "y.a.com", "x.com", "y.b.com", "other.example")


@st.composite
def fqdn_policies(draw: Any, index: int) -> dict[str, Any]:
    rules = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(("fqdn", "fqdn", "world", "pods")))
        if kind == "fqdn":
            rule: dict[str, Any] = {
                "toFQDNs": draw(st.lists(st.sampled_from(FQDN_SELECTORS), min_size=1, max_size=2))
            }
        elif kind == "world":
            rule = {"toEntities": ["world"]}
        else:
            rule = {"toEndpoints": [{}]}
        if draw(st.booleans()):
            rule["toPorts"] = [{"ports": [{"port": "80", "protocol": "TCP"}]}]
        rules.append(rule)
    selector = draw(st.sampled_from(({}, {"matchLabels": {"a": "x"}})))
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": f"c{index}", "namespace": "n1"},
        "spec": {"endpointSelector": selector, "egress": rules},
    }


@st.composite
def fqdn_policy_sets(draw: Any) -> list[dict[str, Any]]:
    return [draw(fqdn_policies(i)) for i in range(draw(st.integers(1, 2)))]


@cache
def _dns_cluster() -> Inventory:
    namespaces = [Namespace("n1", {}), Namespace("n2", {})]
    pods = [
        Endpoint("Pod", "n1", "client-x", {"a": "x"}, "default", ("10.244.0.1",)),
        Endpoint("Pod", "n1", "client", {}, "default", ("10.244.0.2",)),
    ]
    records: dict[str, list[str]] = {name: [] for name in ORACLE_NAMES}
    for i, subset in enumerate(
        itertools.chain.from_iterable(
            itertools.combinations(ORACLE_NAMES, r) for r in range(len(ORACLE_NAMES) + 1)
        )
    ):
        pod_ip, outside = f"10.244.1.{2 * i + 1}", f"198.51.100.{2 * i + 1}"
        pods.append(Endpoint("Pod", "n2", f"answer-{i}", {}, "default", (pod_ip,)))
        for name in subset:
            records[name] += [pod_ip, outside]
        pods.append(Endpoint("Pod", "n2", f"other-{i}", {}, "default", (f"10.244.2.{i + 1}",)))
    dns = tuple((name, tuple(addresses)) for name, addresses in records.items())
    # No declared outside space: the class engine cuts it at the union of the answers (so never
    # at answers inside a declared block) and adjacent answers would merge (hence the gaps).
    return build_inventory(namespaces, pods, dns=dns)


@settings(max_examples=int(os.environ.get("POLYFENCE_FQDN_ORACLE_EXAMPLES", "60")), deadline=None)
@given(
    docs_a=fqdn_policy_sets(),
    docs_b=fqdn_policy_sets(),
    mutate=st.booleans(),
    profile_name=st.sampled_from(("kubernetes", "cilium")),
)
def test_fqdn_every_cluster_verdict_agrees_with_brute_force(
    docs_a: list[dict[str, Any]], docs_b: list[dict[str, Any]], mutate: bool, profile_name: str
) -> None:
    if mutate:
        docs_b = [*docs_a[:-1], docs_b[0]]
    _agrees_with_oracle(_ir(docs_a), _ir(docs_b), PROFILES[profile_name], _dns_cluster())
