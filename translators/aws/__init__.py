"""AWS EC2 security groups + EKS SecurityGroupPolicy ⇄ canonical model (format ``aws``).

Capability table (feature → read AWS → IR / write IR → AWS):

| feature | read | write |
|---|---|---|
| CIDR peers (IPv4, IPv6) | exact (canonicalised as AWS does) | exact |
| ipBlock except | n/a | exact by CIDR splitting (counts against the quota) |
| tcp / udp port ranges, all traffic (-1) | exact | exact |
| ICMP / ICMPv6 type and code | exact | exact |
| other protocol numbers | exact (all ports) | exact; with a port constraint widened |
| SCTP port constraints | n/a | widened: protocol 132 cannot filter ports |
| group references | via SGP bindings (exact); unbound: inventory-dependent | identity groups bound by SGPs |
| pod / namespace-name selectors | SGP podSelector (exact) | SGP per namespace |
| namespace label selectors | n/a | inventory-dependent: namespaces expanded |
| service-account label selectors | SGP serviceAccountSelector (exact) | exact |
| service-account names, entities, FQDN, notSelector, principals | n/a | dropped (narrowed) |
| named ports | n/a | inventory-dependent: resolved per destination pod |
| prefix lists | CIDRs from the input (`describe-prefix-lists`, `Entries`), else dropped | n/a |
| deny / pass / tiers / allow-without-isolation | n/a | as Kubernetes (allow-only union) |
| L7 | n/a | widened to L4 |
| rules per group (60 per direction per family) | n/a | split across groups (exact) |
| groups per interface (5) | n/a | reported when an inventory pod would exceed it |
| CloudFormation intrinsics | Ref/GetAtt to groups exact; parameter defaults inventory-dependent; others dropped | n/a (literal values) |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from polyfence.fidelity import Feature, FidelityReport
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.translation import RenderOptions, Translation
from polyfence.translators.aws import reader, writer

FORMAT = reader.FORMAT
_DEFAULT_OPTIONS = RenderOptions()


class AwsSecurityGroupTranslator:
    """EC2 security groups (describe JSON, CloudFormation) with EKS SecurityGroupPolicies."""

    name: ClassVar[str] = FORMAT
    aliases: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[dict[str, str]] = {
        "read": "exact for CIDR, port, protocol and SGP-bound group rules; prefix lists from the input",
        Feature.IPBLOCK_EXCEPT.value: "exact: CIDR splitting (quota-split across groups)",
        Feature.SECURITY_GROUP.value: "via SecurityGroupPolicy bindings; unbound: inventory-dependent",
        Feature.NAMED_PORT.value: "inventory-dependent: resolved per destination pod",
        Feature.PROTOCOL.value: "SCTP port constraints widened (protocol 132 has no ports)",
        Feature.NAMESPACE_SELECTOR.value: "inventory-dependent: one SGP per matching namespace",
        Feature.SERVICE_ACCOUNT.value: "label selectors exact (SGP); names dropped",
        Feature.DENY_ACTION.value: "exact when nothing after it could allow; else dropped (widened)",
        Feature.L7_HTTP.value: "lossy: widened to L4",
    }

    def accepts(self, doc: Document) -> bool:
        return reader.accepts(doc)

    def to_canonical(self, docs: Sequence[Document]) -> Translation[PolicySet]:
        return reader.read(docs)

    def from_canonical(
        self, policies: PolicySet, options: RenderOptions = _DEFAULT_OPTIONS
    ) -> Translation[list[dict[str, Any]]]:

        docs, losses, origins = writer.write(policies, options)
        return Translation(docs, FidelityReport("canonical", FORMAT, tuple(losses)), origins)
