"""Cilium (cilium.io/v2 CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy) ⇄ canonical model.

Capability table (feature → how it maps):

| feature | read (Cilium → IR) | write (IR → Cilium) |
|---|---|---|
| the CRD schema (Cilium 1.16.5) | refused where the CRD refuses | output validates |
| endpointSelector, fromEndpoints/toEndpoints with CNP namespace scoping, CCNP all-namespaces | exact | exact |
| `k8s:io.kubernetes.pod.namespace`, `io.cilium.k8s.namespace.labels.*`, `io.cilium.k8s.policy.serviceaccount` | exact | exact |
| ingressDeny / egressDeny (deny beats allow) | exact | order/Pass/tiers flattened (``polyfence.rules.deny_wins``); the rest reported |
| enableDefaultDeny, `ingress: []` vs `ingress: [{}]` | exact | exact |
| fromEntities/toEntities | exact (engine: world, cluster, host, remote-node, all) | exact |
| fromCIDR / fromCIDRSet with except (and to-) | exact | exact |
| toPorts (port, endPort, protocol incl. ANY, named ports), icmps (type) | exact | exact |
| L7 http / dns / kafka rules | carried as L7 matches (the engine decides at L4) | http methods/paths |
| toFQDNs | carried (resolved only with DNS answers) | exact |
| fromRequires/toRequires | expanded as Cilium ≤ 1.18 applies them (trap 16) | written expanded |
| toServices, toGroups, nodeSelector (host policies), authentication | reported | n/a |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from polyfence.fidelity import Feature, FidelityReport
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.translation import RenderOptions, Translation
from polyfence.translators.cilium import reader, writer

FORMAT = reader.FORMAT
_DEFAULT_OPTIONS = RenderOptions()


class CiliumTranslator:
    """cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy."""

    name: ClassVar[str] = FORMAT
    aliases: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[dict[str, str]] = {
        "read": "exact, except services/groups/host policies (reported)",
        Feature.DENY_ACTION.value: "exact (deny beats allow)",
        Feature.ENTITY.value: "exact",
        Feature.FQDN.value: "carried; inventory-dependent",
        Feature.L7_HTTP.value: "carried as L7 match",
        Feature.ORDER.value: "flattened into deny-wins form; pod/address subtractions reported",
        Feature.PASS_ACTION.value: "flattened (last tier, pass-through tiers); else reported",
    }

    def accepts(self, doc: Document) -> bool:
        return reader.accepts(doc)

    def to_canonical(self, docs: Sequence[Document]) -> Translation[PolicySet]:
        return reader.read(docs)

    def from_canonical(
        self,
        policies: PolicySet,
        options: RenderOptions = _DEFAULT_OPTIONS,
    ) -> Translation[list[dict[str, Any]]]:

        docs, losses, origins = writer.write(policies, options)
        return Translation(docs, FidelityReport("canonical", FORMAT, tuple(losses)), origins)
