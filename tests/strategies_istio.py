"""Hypothesis strategies for the mesh: inventories with proxies and mTLS modes, and Istio
AuthorizationPolicy documents over the same tiny alphabets as ``tests.strategies``.

Pods get service accounts from a small set so that accounts are shared across labels now and
then (semantics trap 21), some pods stay outside the mesh, and servers mix STRICT, PERMISSIVE
and DISABLE, so identities, plain-text clients and STRICT refusal all collide with policies.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from polyfence.inventory import Endpoint, Inventory, NamedPort, Namespace, build_inventory
from tests.strategies import (
    KEYS,
    NAMESPACES,
    PORT_NAMES,
    PORTS,
    VALUES,
    k8s_peers,
    k8s_ports,
    labels_st,
)

ROOT = "istio-system"
ACCOUNTS = ("default", "sa1", "sa2")
MODES = (None, "STRICT", "PERMISSIVE", "DISABLE")
MESH_IPS = (
    "10.1.2.3",
    "10.1.3.4",
    "10.2.0.5",
    "10.9.0.6",
    "192.168.1.7",
    "172.16.0.8",
    "fd00::9",
    "10.1.2.10",
)
PRINCIPALS = (
    "cluster.local/ns/ns-a/sa/default",
    "cluster.local/ns/ns-b/sa/sa1",
    "cluster.local/ns/ns-a/*",
    "*/sa/sa2",
    "*",
)
SOURCE_NAMESPACES = ("ns-a", "ns-b", "ns-*", "*")
ISTIO_CIDRS = ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "192.168.0.0/16", "fd00::/8")
PATHS = ("/a", "/b*", "*/c", "/d/{*}", "/e/{**}")


@st.composite
def mesh_inventories(draw: Any) -> Inventory:
    """Namespaces ns-a..c (plus the root namespace) and 2-7 pods, most of them in the mesh."""
    namespaces = [
        Namespace(ns, draw(st.dictionaries(st.just("team"), st.sampled_from(VALUES), max_size=1)))
        for ns in (*NAMESPACES, ROOT)
    ]
    pods = []
    for i in range(draw(st.integers(2, 7))):
        named = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(PORT_NAMES), st.sampled_from((6, 17)), st.sampled_from(PORTS)
                ),
                max_size=2,
                unique_by=lambda t: (t[0], t[1]),
            )
        )
        mesh = draw(st.sampled_from((True, True, True, False)))
        pods.append(
            Endpoint(
                "Pod",
                draw(st.sampled_from((*NAMESPACES, *NAMESPACES, ROOT))),
                f"p{i}",
                draw(labels_st),
                draw(st.sampled_from(ACCOUNTS)),
                (MESH_IPS[i % len(MESH_IPS)],),
                tuple(NamedPort(a, b, c) for a, b, c in named),
                "node-1",
                mesh=mesh,
                mtls=draw(st.sampled_from(MODES)) if mesh else None,
                opaque_ports=tuple(sorted(draw(st.sets(st.sampled_from(PORTS), max_size=1)))),
            )
        )
    return build_inventory(namespaces, pods)


def _some(values: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)


@st.composite
def istio_sources(draw: Any) -> dict[str, Any]:
    """A non-empty source (Istio refuses empty ones); serviceAccounts never beside identities."""
    source: dict[str, Any] = {}
    if draw(st.integers(0, 4)) == 0:
        source["serviceAccounts"] = draw(_some(("sa1", "ns-b/sa2", "default")))
    else:
        for key, values in (
            ("principals", PRINCIPALS),
            ("notPrincipals", PRINCIPALS),
            ("namespaces", SOURCE_NAMESPACES),
            ("notNamespaces", SOURCE_NAMESPACES),
        ):
            if draw(st.integers(0, 3)) == 0:
                source[key] = draw(_some(values))
    for key in ("ipBlocks", "notIpBlocks"):
        if draw(st.integers(0, 3)) == 0:
            source[key] = draw(_some(ISTIO_CIDRS))
    return source or {"namespaces": [draw(st.sampled_from(SOURCE_NAMESPACES))]}


@st.composite
def istio_operations(draw: Any) -> dict[str, Any]:
    """A non-empty operation: ports or notPorts, sometimes HTTP fields."""
    op: dict[str, Any] = {}
    key = draw(st.sampled_from(("ports", "notPorts", None)))
    if key:
        op[key] = [str(p) for p in draw(_some(tuple(str(p) for p in PORTS)))]
    if draw(st.integers(0, 3)) == 0:
        op["methods"] = draw(_some(("GET", "POST")))
    if draw(st.integers(0, 3)) == 0:
        op["paths"] = draw(_some(PATHS))
    if draw(st.integers(0, 5)) == 0:
        op["notMethods"] = ["DELETE"]
    return op or {"ports": [str(draw(st.sampled_from(PORTS)))]}


@st.composite
def istio_rules(draw: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["from"] = [
            {"source": s} for s in draw(st.lists(istio_sources(), min_size=1, max_size=2))
        ]
    if draw(st.booleans()):
        rule["to"] = [
            {"operation": o} for o in draw(st.lists(istio_operations(), min_size=1, max_size=2))
        ]
    if draw(st.integers(0, 4)) == 0:
        rule["when"] = [
            draw(
                st.sampled_from(
                    (
                        {"key": "source.ip", "values": ["10.1.0.0/16"]},
                        {"key": "destination.port", "values": ["80", "443"]},
                        {"key": "source.namespace", "notValues": ["ns-b"]},
                        {"key": "request.headers[x-user]", "values": ["admin"]},
                    )
                )
            )
        ]
    return rule


@st.composite
def istio_policies(draw: Any, index: int = 0) -> dict[str, Any]:
    """One AuthorizationPolicy: ALLOW (rules, [{}] or none), DENY (rules), AUDIT."""
    action = draw(st.sampled_from(("ALLOW", "ALLOW", "DENY", "AUDIT")))
    spec: dict[str, Any] = {}
    if action != "ALLOW" or draw(st.booleans()):
        spec["action"] = action
    selector = draw(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2))
    if selector:
        spec["selector"] = {"matchLabels": selector}
    shape = draw(st.sampled_from(("rules", "rules", "empty-rule", "none")))
    if action == "DENY" and shape == "none":
        shape = "rules"
    if shape == "rules":
        spec["rules"] = draw(st.lists(istio_rules(), min_size=1, max_size=3))
    elif shape == "empty-rule":
        spec["rules"] = [{}]
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {
            "name": f"ap-{index}",
            "namespace": draw(st.sampled_from(("ns-a", "ns-b", ROOT))),
        },
        "spec": spec,
    }


@st.composite
def istio_policy_lists(draw: Any, max_size: int = 3) -> list[dict[str, Any]]:
    return [draw(istio_policies(i)) for i in range(draw(st.integers(1, max_size)))]


@st.composite
def k8s_ingress_policies(draw: Any, index: int = 0) -> dict[str, Any]:
    """A NetworkPolicy that isolates ingress with peers and ports in almost every rule: the
    part of Kubernetes the mesh can enforce, so peer and port mappings are exercised often."""
    selector: dict[str, Any] = {}
    labels = draw(labels_st)
    if labels:
        selector["matchLabels"] = labels
    if draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
        expr: dict[str, Any] = {"key": draw(st.sampled_from(KEYS)), "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = draw(
                st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True)
            )
        selector["matchExpressions"] = [expr]
    rules = []
    for _ in range(draw(st.integers(0, 2))):
        rule: dict[str, Any] = {"from": draw(st.lists(k8s_peers(), min_size=1, max_size=2))}
        if draw(st.booleans()):
            rule["ports"] = draw(st.lists(k8s_ports(), min_size=1, max_size=2))
        rules.append(rule)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"np-{index}", "namespace": draw(st.sampled_from(NAMESPACES))},
        "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": rules},
    }


@st.composite
def k8s_ingress_lists(draw: Any, max_size: int = 3) -> list[dict[str, Any]]:
    return [draw(k8s_ingress_policies(i)) for i in range(draw(st.integers(1, max_size)))]
