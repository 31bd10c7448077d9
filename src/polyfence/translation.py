"""The contract every translator implements, and the result type it returns.

A translator is a pure object over documents: ``to_canonical`` reads documents of its format
into a ``PolicySet``; ``from_canonical`` renders a ``PolicySet`` into documents. Both return a
``Translation`` whose ``report`` lists every construct that was not carried exactly. Rules:

1. No silent drift: if the output's meaning differs from the input's, a ``Loss`` says so.
2. Translators never refuse on their own; ``api.convert`` verifies the result with the engine
   and enforces fail-closed (widening refused unless allowed, ``exact`` refuses any loss).
3. Identity is an input, never a guess: inventory-dependent expansions use ``options.inventory``
   and are reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from polyfence.fidelity import FidelityReport
from polyfence.inventory import Inventory
from polyfence.model.document import Document
from polyfence.model.policy import Policy, PolicySet
from polyfence.model.provenance import SourceRef

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Translation(Generic[T]):
    """A translation's result and fidelity report. Writers also give ``origins``: for each
    output document, the sources of the policies it was made from (directory outputs annotate
    documents with them); a document no policy made (a Calico Tier) has none."""

    value: T
    report: FidelityReport
    origins: tuple[tuple[SourceRef, ...], ...] = ()


def origins_of(
    docs: Sequence[Any], made_by: Sequence[tuple[Any, Sequence[Policy]]]
) -> tuple[tuple[SourceRef, ...], ...]:
    """Per document in ``docs``, the sources of the policies that made it: ``made_by`` pairs a
    document (matched by identity: writers may rename or merge after rendering) with them."""
    by_doc: dict[int, list[SourceRef]] = {}
    for doc, policies in made_by:
        refs = by_doc.setdefault(id(doc), [])
        refs.extend(p.source for p in policies if p.source is not None and p.source not in refs)
    return tuple(tuple(by_doc.get(id(doc), ())) for doc in docs)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What a writer may use: the inventory for inventory-dependent expansions."""

    inventory: Inventory | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Translator(Protocol):
    """One policy format, both directions."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]]
    capabilities: ClassVar[dict[str, str]]  # feature -> "exact" | "lossy: …" | "unsupported"

    def accepts(self, doc: Document) -> bool:
        """Whether this format reads the document (by apiVersion/kind)."""
        ...

    def to_canonical(self, docs: Sequence[Document]) -> Translation[PolicySet]:
        """Read documents (only those ``accepts``) into the IR; raises ``InputError``."""
        ...

    def from_canonical(
        self,
        policies: PolicySet,
        options: RenderOptions = ...,
    ) -> Translation[list[dict[str, Any]]]:
        """Render the IR as documents of this format."""
        ...
