"""The JSON report: the source every other format is rendered from.

Keys are sorted so the same report always serialises to the same bytes (diffable evidence,
stable hashes); array order is the engine's and is kept. Non-ASCII text is written as is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def render(report: Mapping[str, Any]) -> str:
    """Indent 2, sorted keys, UTF-8 text, one trailing newline."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
