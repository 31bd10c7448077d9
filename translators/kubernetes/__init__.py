"""Kubernetes NetworkPolicy (networking.k8s.io/v1) ⇄ canonical model: the translator.

Capability table (feature → how it maps):

| feature | read (k8s → IR) | write (IR → k8s) |
|---|---|---|
| podSelector / namespaceSelector / both in one peer | exact | exact; `||` split into several peers or policies (DNF) |
| matchExpressions In/NotIn/Exists/DoesNotExist | exact | exact (`!=`, `not in`, `!has` via NotIn/DoesNotExist) |
| policyTypes defaulting, empty vs absent from/to/ports | exact (made explicit) | explicit policyTypes always written |
| ipBlock with except | exact | exact (one ipBlock per CIDR, excepts inside it) |
| protocol default TCP, SCTP, numeric and named ports, endPort | exact | exact |
| namespaces by name | n/a | `kubernetes.io/metadata.name` |
| deny / pass / log actions, order, tiers | n/a | lossy: dropped, reported (widened / narrowed / none) |
| allow without isolating | n/a | lossy: narrowed (a k8s policy always isolates) |
| ICMP, other protocols, notPorts | n/a | lossy: dropped from allow rules, narrowed |
| L7 HTTP/DNS | n/a | lossy: widened to L4 |
| entities, FQDN, service accounts, principals, security groups, notSelector | n/a | lossy: peer dropped, narrowed |
| selector string operators (contains / starts with / ends with) | n/a | lossy: policy or peer dropped, reported |
| cluster-scoped subjects | n/a | expanded per namespace with an inventory (inventory-dependent), else dropped |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from polyfence.errors import Diagnostic
from polyfence.fidelity import Feature, FidelityReport
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.translation import RenderOptions, Translation
from polyfence.translators.kubernetes import reader, writer

FORMAT = reader.FORMAT
_DEFAULT_OPTIONS = RenderOptions()


class KubernetesTranslator:
    """networking.k8s.io/v1 NetworkPolicy."""

    name: ClassVar[str] = FORMAT
    aliases: ClassVar[tuple[str, ...]] = ("k8s",)
    capabilities: ClassVar[dict[str, str]] = {
        "read": "exact for every construct",
        Feature.DENY_ACTION.value: "exact when nothing after it could allow; else dropped (widened)",
        Feature.PASS_ACTION.value: "lossy: dropped (narrowed)",
        Feature.TIER.value: "exact across namespaces; else merged (widened)",
        Feature.ALLOW_WITHOUT_ISOLATION.value: "lossy: isolates (narrowed)",
        Feature.ICMP.value: "unsupported: dropped (narrowed)",
        Feature.L7_HTTP.value: "lossy: widened to L4",
        Feature.ENTITY.value: "world: ipBlock 0/0 (CNI-dependent, widened); others dropped",
        Feature.FQDN.value: "inventory-dependent: resolved DNS answers, else dropped",
        Feature.SERVICE_ACCOUNT.value: "unsupported: dropped",
        "network-set": "exact: the selected sets' CIDRs as ipBlocks",
        Feature.CLUSTER_SCOPE.value: "inventory-dependent: one policy per namespace",
    }

    def accepts(self, doc: Document) -> bool:
        return reader.accepts(doc)

    def lint(self, doc: Document) -> list[Diagnostic]:
        """Warnings on a policy this translator read (see the module's ``lint``)."""
        return reader.lint(doc)

    def to_canonical(self, docs: Sequence[Document]) -> Translation[PolicySet]:
        return reader.read(docs)

    def from_canonical(
        self, policies: PolicySet, options: RenderOptions = _DEFAULT_OPTIONS
    ) -> Translation[list[dict[str, Any]]]:

        docs, losses, origins = writer.write(policies, options)
        return Translation(docs, FidelityReport("canonical", FORMAT, tuple(losses)), origins)
