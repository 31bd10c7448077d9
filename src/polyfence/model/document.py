"""A parsed input document and where it came from; translators take these, never paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polyfence.model.provenance import SourceRef


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML/JSON document (a mapping for every kind we read)."""

    data: Any
    source: SourceRef

    @property
    def kind(self) -> str | None:
        return self.data.get("kind") if isinstance(self.data, dict) else None

    @property
    def api_version(self) -> str | None:
        return self.data.get("apiVersion") if isinstance(self.data, dict) else None
