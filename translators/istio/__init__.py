"""Istio security.istio.io AuthorizationPolicy ⇄ canonical model: the translator.

How each field reads is tabled in ``reader``; how the IR is written as ALLOW/DENY policies
(and what is reported) in ``writer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from polyfence.fidelity import Feature
from polyfence.inventory import MESH_ROOT_NAMESPACE
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.translation import RenderOptions, Translation
from polyfence.translators.istio import reader, writer

FORMAT = reader.FORMAT
_DEFAULT_OPTIONS = RenderOptions()


class IstioTranslator:
    """security.istio.io AuthorizationPolicy (v1, v1beta1)."""

    name: ClassVar[str] = FORMAT
    aliases: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[dict[str, str]] = {
        "read": "AuthorizationPolicy v1 / v1beta1; targetRef(s) policies reported, not read",
        Feature.DENY_ACTION.value: "exact (DENY before ALLOW); CUSTOM: external decision not "
        "evaluated (widened)",
        Feature.LOG_ACTION.value: "AUDIT: log rules",
        Feature.ALLOW_WITHOUT_ISOLATION.value: "exact (DENY-only workloads stay default-allow)",
        Feature.CLUSTER_SCOPE.value: "exact (root-namespace policies)",
        Feature.PRINCIPAL.value: "exact (principals, namespaces, serviceAccounts); trustDomains "
        "reported",
        Feature.IPBLOCK.value: "exact (ipBlocks); remoteIpBlocks read as the source IP (reported)",
        Feature.NOT_NETS.value: "exact (notIpBlocks)",
        Feature.NOT_PORTS.value: "exact (TCP)",
        Feature.PORT_RANGE.value: "unsupported: Istio ports are exact",
        Feature.L7_HTTP.value: "carried (methods, paths, hosts; not-forms, JWT and header "
        "conditions by name)",
        Feature.EGRESS.value: "unsupported: Istio is inbound-only",
        Feature.LAYER.value: "targetRef(s) (gateways, waypoints): reported, not read",
    }

    def __init__(self, root_namespace: str = MESH_ROOT_NAMESPACE) -> None:
        self.root_namespace = root_namespace

    def accepts(self, doc: Document) -> bool:
        return reader.accepts(doc)

    def to_canonical(self, docs: Sequence[Document]) -> Translation[PolicySet]:
        return reader.read(docs, self.root_namespace)

    def from_canonical(
        self,
        policies: PolicySet,
        options: RenderOptions = _DEFAULT_OPTIONS,
    ) -> Translation[list[dict[str, Any]]]:

        result: Translation[list[dict[str, Any]]] = writer.render(policies, options)
        return result
