"""The jinja2 environments for the template-based formats (HTML and Markdown).

Templates load from the ``polyfence.templates`` package (works from a wheel and from editable
installs alike); ``StrictUndefined`` makes a template typo fail the render instead of printing
an empty string into an audit report.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined


def environment(autoescape: bool) -> Environment:
    """A fresh environment; each renderer adds its filters and caches its own."""
    return Environment(
        loader=PackageLoader("polyfence.templates", "."),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
