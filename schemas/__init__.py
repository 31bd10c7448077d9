"""JSON Schemas: the project's own (reports, configs, the canonical model) and, under
``input/``, the upstream CRD/OpenAPI schemas the readers validate documents against."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any, Protocol


@functools.cache
def input_schema(filename: str) -> dict[str, Any]:
    """One upstream schema from ``input/`` (parsed once: some are hundreds of KiB)."""
    text = (resources.files(__name__) / "input" / filename).read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


class _Located(Protocol):
    @property
    def absolute_path(self) -> Iterable[Any]: ...


def path_key(path: Iterable[Any]) -> tuple[tuple[int, int, str], ...]:
    """Sort key for JSON paths mixing list indexes and field names (numeric index order):
    a plain list of them would compare a name with an index and raise."""
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path)


def in_document_order(errors: Iterable[_Located]) -> Iterator[Any]:
    """Schema validation errors ordered by where they are, for one located line each."""
    return iter(sorted(errors, key=lambda e: path_key(e.absolute_path)))
