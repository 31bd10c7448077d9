"""JSON Schemas: the project's own (reports, configs, the canonical model) and, under
``input/``, the upstream CRD/OpenAPI schemas the readers validate documents against."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def input_schema(filename: str) -> dict[str, Any]:
    """One upstream schema from ``input/`` (parsed once: some are hundreds of KiB)."""
    text = (resources.files(__name__) / "input" / filename).read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]
