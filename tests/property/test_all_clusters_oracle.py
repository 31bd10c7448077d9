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
