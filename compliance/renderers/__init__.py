"""Report renderers: every one reads the report as its JSON form, so a saved report re-renders identically.

``render(report, fmt)`` takes the dict that ``schemas/report.schema.json`` describes (already
validated) and returns text. The registry is an explicit table resolved lazily, so importing
this package loads neither jinja2 nor any renderer module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FORMATS", "SUFFIXES", "render", "renderer"]

_MODULE = "polyfence.compliance.renderers"

# format -> "module:function"; format names are CLI values (--format), keep them stable
_REGISTRY: dict[str, str] = {
    "html": "html:render",
    "md": "markdown:render",
    "json": "json_report:render",
    "sarif": "sarif:render",
    "junit": "junit:render",
    "csv": "csv_report:render",
}

FORMATS: tuple[str, ...] = ("html", "md", "json", "sarif", "junit", "csv")

SUFFIXES: dict[str, str] = {
    "html": ".html",
    "md": ".md",
    "json": ".json",
    "sarif": ".sarif",
    "junit": ".xml",
    "csv": ".csv",
}

Renderer = Callable[[Mapping[str, Any]], str]


def renderer(fmt: str) -> Renderer:
    """The render function for a format name; ValueError names the known formats."""
    try:
        module, _, attr = _REGISTRY[fmt].partition(":")
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})") from None
    func: Renderer = getattr(importlib.import_module(f"{_MODULE}.{module}"), attr)
    return func


def render(report: Mapping[str, Any], fmt: str) -> str:
    """Render a (validated) report dict as ``fmt``, one of ``FORMATS``."""
    return renderer(fmt)(report)
