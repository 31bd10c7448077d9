"""The canonical format (polyfence.dev/v1alpha1 PolicySet) ⇄ canonical model.

The canonical document is the IR written out field by field (see ``polyfence.canonical_io``
and ``schemas/canonical.schema.json``), so both directions are exact for every construct and
the fidelity report is always empty. It is the format to store, diff and hand-edit the IR in.

Capability table (feature → how it maps, both directions):

| feature | read / write |
|---|---|
| allow / deny / pass / log actions, order, tiers (order, default action) | exact |
| allow without isolation, not-governed directions, empty rule lists | exact |
| cluster scope, host endpoints, service-account and security-group subjects | exact |
| selector expressions (full Calico grammar), notSelector, namespace selectors / names | exact |
| service accounts, principals, security groups, entities, FQDNs | exact |
| ipBlock / except / not-nets (CIDRs kept as written) | exact |
| protocols, port ranges, named ports, notPorts, ICMP type/code | exact |
| L7 HTTP / DNS / other, layer, labels | exact |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from polyfence.canonical_io import is_canonical, policy_set_from_dict, policy_set_to_dict
from polyfence.errors import Diagnostic, InputError
from polyfence.fidelity import Feature, FidelityReport
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.translation import RenderOptions, Translation

FORMAT = "canonical"
_DEFAULT_OPTIONS = RenderOptions()


class CanonicalTranslator:
    """Reads and writes the canonical document; lossless by construction."""

    name: ClassVar[str] = FORMAT
    aliases: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[dict[str, str]] = {feature.value: "exact" for feature in Feature}

    def accepts(self, doc: Document) -> bool:
        return is_canonical(doc.data)

    def to_canonical(self, docs: Sequence[Document]) -> Translation[PolicySet]:
        """Merge every accepted document; problems of all documents are reported together.

        Tiers merge by name with the earlier document's definition winning
        (``PolicySet.merge``); no accepted document gives an empty set with the default tier.
        """
        problems: list[Diagnostic] = []
        merged: PolicySet | None = None
        for doc in docs:
            if not self.accepts(doc):
                continue
            try:
                ps = policy_set_from_dict(doc.data, doc.source)
            except InputError as exc:
                problems.extend(exc.diagnostics)
                continue
            merged = ps if merged is None else merged.merge(ps)
        if problems:
            raise InputError(problems)
        # not ``merged or ...``: a PolicySet without policies is falsy but still has tiers
        return Translation(
            PolicySet() if merged is None else merged, FidelityReport(FORMAT, FORMAT)
        )

    def from_canonical(
        self, policies: PolicySet, options: RenderOptions = _DEFAULT_OPTIONS
    ) -> Translation[list[dict[str, Any]]]:
        """One document holding the whole set; ``options`` are irrelevant (nothing to expand)."""
        sources = tuple(dict.fromkeys(p.source for p in policies if p.source is not None))
        return Translation(
            [policy_set_to_dict(policies)], FidelityReport(FORMAT, FORMAT), (sources,)
        )
