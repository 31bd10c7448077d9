"""The synthesised inventory exercises every selector term, named port and CIDR in play."""

from __future__ import annotations

from polyfence.inventory import NAMESPACE_NAME_LABEL
from polyfence.io.files import parse_text
from polyfence.semantics.synthesis import synthesise
from polyfence.translators.kubernetes import KubernetesTranslator

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchExpressions: [{key: role, operator: In, values: [x, y]}]}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: http}]
"""


def test_terms_names_ports_and_cidrs_are_covered() -> None:
    ps = KubernetesTranslator().to_canonical(parse_text(POLICY, "p.yaml")).value
    inv = synthesise([ps])
    names = {ns.name: dict(ns.labels) for ns in inv.namespaces}
    assert {"prod", "kube-system", "polyfence-decoy"} <= set(names)
    assert all(labels[NAMESPACE_NAME_LABEL] == name for name, labels in names.items())
    assert any(labels.get("team") == "a" for labels in names.values())
    pods = inv.pods
    assert any(p.labels == {"app": "web"} for p in pods)
    assert any(p.labels.get("role") == "x" for p in pods)
    assert any(p.labels == {} for p in pods)  # a decoy that matches no selector
    assert any(p.resolve_port("http", 6) for p in pods) and any(not p.named_ports for p in pods)
    addresses = {ip for p in pods for ip in p.ips}
    assert "10.0.0.1" in addresses and "10.1.0.1" in addresses  # inside the cidr and the except
