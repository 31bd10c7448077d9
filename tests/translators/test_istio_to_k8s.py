"""Istio AuthorizationPolicy → Kubernetes NetworkPolicy, judged by the engine on a mesh.

Identities become the pods that hold them (inventory-dependent), what the proxy never judges
(UDP, SCTP) stays open, and every other difference is a reported loss (semantics.md §7.4).
"""

from __future__ import annotations

from polyfence import api
from polyfence.fidelity import Effect, Feature
from polyfence.inventory import Inventory, inventory_from_documents
from polyfence.io.files import parse_text
from polyfence.semantics.engine import connectivity
from polyfence.semantics.matching import TCP_CONNS

MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
"""
PODS = [
    ("shop", "web", "web", "10.0.0.1"),
    ("shop", "api", "api", "10.0.0.2"),
    ("shop", "api-2", "api", "10.0.0.3"),
    ("ops", "agent", "agent", "10.0.1.1"),
    ("legacy", "old", "default", "10.0.2.1"),
]


def _inventory() -> Inventory:
    text = MESH + "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, "
        f"labels: {{app: {name.split('-')[0]}}}}}\nspec: {{serviceAccountName: {sa}}}\n"
        f"status: {{podIP: {ip}}}\n"
        for ns, name, sa, ip in PODS
    )
    return inventory_from_documents(parse_text(text, "mesh.yaml"))


def _convert(text: str, inv: Inventory | None) -> api.ConversionResult:
    bundle = api.load(parse_text(text, "ap.yaml"))
    return api.convert(bundle, "kubernetes", inventory=inv, allow_widening=True)


def _tcp_equal(source: str, result: api.ConversionResult, inv: Inventory) -> None:
    """TCP connectivity of the Istio source and the NetworkPolicies agree on every pod pair."""
    src_ps = api.load(parse_text(source, "ap.yaml")).policies
    a, b = connectivity(src_ps, inv), connectivity(result.policies, inv)
    for s in range(a.universe.size):
        for d in range(a.universe.size):
            assert (a.allowed(s, d) & TCP_CONNS) == (b.allowed(s, d) & TCP_CONNS), (
                a.universe.classes[s].representative,
                a.universe.classes[d].representative,
            )


def _features(result: api.ConversionResult) -> dict[Feature, Effect]:
    return {loss.feature: loss.effect for loss in result.report.losses}


PRINCIPALS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/shop/sa/api]}}]
    to: [{operation: {ports: ["8080"]}}]
  - from: [{source: {namespaces: [ops]}}]
"""


def test_principals_become_the_pods_holding_them() -> None:
    inv = _inventory()
    result = _convert(PRINCIPALS, inv)
    _tcp_equal(PRINCIPALS, result, inv)
    features = _features(result)
    assert features[Feature.PRINCIPAL] is Effect.INVENTORY_DEPENDENT
    assert features[Feature.PROTOCOL] is Effect.NARROWED  # ICMP: isolated by the NetworkPolicy
    spec = result.documents[0]["spec"]
    assert {"ports": [{"protocol": "UDP"}, {"protocol": "SCTP"}]} in spec["ingress"]
    assert result.report.verification is not None
    assert result.report.verification.relation == "narrower"
    assert all(w["protocol"] not in ("TCP", "UDP") for w in result.report.verification.witnesses)


def test_identities_without_inventory_are_dropped_narrowing() -> None:
    result = _convert(PRINCIPALS, None)
    assert _features(result)[Feature.PRINCIPAL] is Effect.NARROWED


def test_negated_identities_are_not_enumerated() -> None:
    text = PRINCIPALS.replace("namespaces: [ops]", "notNamespaces: [ops]")
    result = _convert(text, _inventory())
    messages = [loss.message for loss in result.report.losses]
    assert any("plain-text clients" in m for m in messages)


def test_deny_only_policy_is_dropped_and_widens() -> None:
    text = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-ops, namespace: shop}
spec:
  action: DENY
  rules: [{from: [{source: {namespaces: [ops]}}]}]
"""
    result = _convert(text, _inventory())
    assert result.documents == []
    assert _features(result)[Feature.DENY_ACTION] is Effect.WIDENED
    assert result.report.widens


def test_subject_outside_the_mesh_is_reported() -> None:
    text = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: old, namespace: legacy}
spec: {}
"""
    result = _convert(text, _inventory())
    layer = [loss for loss in result.report.losses if loss.feature is Feature.LAYER]
    assert layer and layer[0].effect is Effect.NARROWED and "legacy/old" in layer[0].message
