"""Project Calico (projectcalico.org/v3; crd.projectcalico.org/v1 on input) ⇄ canonical model.

Capability table (feature → how it maps):

| feature | read (Calico → IR) | write (IR → Calico) |
|---|---|---|
| NetworkPolicy / GlobalNetworkPolicy, order, tier, Tier defaultAction | exact | exact |
| actions Allow / Deny / Pass / Log, first-match order | exact | exact |
| `types` with Calico's defaulting | exact (made explicit) | explicit `types` always written |
| selector grammar (all operators), `notSelector`, `namespaceSelector`, `global()` | exact | exact |
| automatic labels `projectcalico.org/namespace`, `/orchestrator`, `/serviceaccount` | exact (reserved IR keys) | exact |
| namespace label `projectcalico.org/name` | exact (`kubernetes.io/metadata.name`) | exact |
| NetworkSet / GlobalNetworkSet selected by labels | exact | exact |
| `nets` / `notNets`, `serviceAccounts` (names, selector), `serviceAccountSelector` | exact | exact (one rule per peer and address family) |
| protocol / notProtocol, ports / notPorts (numbers, ranges, named), icmp / notICMP | exact | exact (one rule per protocol) |
| destination side of ingress rules / source side of egress rules | exact (rule-local constraint) | exact |
| `http` methods and paths | exact (L7 match) | exact on ingress Allow rules, else dropped (reported) |
| source ports, `services`, `ipVersion` without nets | lossy: reported | n/a |
| HostEndpoint, preDNAT / doNotTrack (host endpoints only), applyOnForward | reported: host endpoints are not in the inventory | n/a |
| staged policies | reported: they do not enforce | n/a |
| entities, FQDN, principals, security groups | n/a | lossy: peer dropped (narrowed) |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from polyfence.fidelity import Feature, FidelityReport
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.translation import RenderOptions, Translation
from polyfence.translators.calico import reader, writer

FORMAT = reader.FORMAT
_DEFAULT_OPTIONS = RenderOptions()


class CalicoTranslator:
    """projectcalico.org/v3 policies, tiers and network sets."""

    name: ClassVar[str] = FORMAT
    aliases: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[dict[str, str]] = {
        "read": "exact, except source ports, services and host-endpoint-only constructs (reported)",
        Feature.DENY_ACTION.value: "exact",
        Feature.PASS_ACTION.value: "exact",
        Feature.TIER.value: "exact",
        Feature.ORDER.value: "exact",
        Feature.ICMP.value: "exact",
        Feature.L7_HTTP.value: "exact on ingress Allow rules",
        Feature.ALLOW_WITHOUT_ISOLATION.value: "lossy: emulated with a final Pass rule",
        Feature.ENTITY.value: "unsupported: dropped (narrowed)",
        Feature.FQDN.value: "unsupported: dropped (narrowed)",
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
