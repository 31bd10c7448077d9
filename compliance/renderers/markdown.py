"""The Markdown report, sized for pull-request comments and evidence kept in git.

GitHub-flavoured tables break on ``|`` and newlines in a cell, and raw ``<…>`` in report text
would be read as HTML; the ``cell`` filter escapes both (``\\|``, ``<br>``, ``&lt;``) and the
``text`` filter escapes HTML in running text. Failing findings are listed per check up to
``MAX_FINDINGS_PER_CHECK`` (GitHub comments stop at 65,536 characters); the rest is counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment

from polyfence.compliance.renderers._common import (
    SEVERITIES,
    STATUS_ATTENTION,
    STATUS_LABEL,
    allowed_label,
    connection_label,
    failing_first,
    is_failing,
    object_label,
    requirements_by_check,
)
from polyfence.compliance.renderers._jinja import environment

MAX_FINDINGS_PER_CHECK = 25
MAX_MATRIX_COLUMNS = 12  # a wider matrix is listed as pairs instead of drawn as a table
MAX_LIST_ROWS = 200

STATUS_ICON: dict[str, str] = {
    "pass": "✅",
    "fail": "❌",
    "manual": "✋",
    "not_applicable": "⚪",
    "unknown": "❓",
    "error": "⚠️",
}

_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_LINE = re.compile(r"\r\n|\r|\n")
_MARKUP = re.compile(r"[\\`*_\[\]~]")  # inline Markdown syntax a value must not trigger


def text(value: object) -> str:
    """Running text: Markdown syntax backslash-escaped, HTML escaped (GitHub renders tags)."""
    return "" if value is None else _MARKUP.sub(r"\\\g<0>", str(value)).translate(_HTML)


def cell(value: object) -> str:
    """One table cell: as ``text``, plus ``|`` escaped and newlines as ``<br>``; ``—`` if empty."""
    if value is None or value == "":
        return "—"
    return _LINE.sub("<br>", text(value).strip().replace("|", "\\|"))


def line(value: object) -> str:
    """Text for a heading or list item: as ``text``, on one line."""
    return _LINE.sub(" ", text(value)).strip()


def code(value: object) -> str:
    """Inline code that survives backticks in the value (CommonMark: longer fence)."""
    raw = _LINE.sub(" ", str(value))
    fence = "`" * (max((len(m) for m in re.findall(r"`+", raw)), default=0) + 1)
    pad = " " if raw.startswith("`") or raw.endswith("`") else ""
    return f"{fence}{pad}{raw}{pad}{fence}"


def status(value: str) -> str:
    return f"{STATUS_ICON.get(value, '')} {STATUS_LABEL.get(value, value)}".strip()


@cache
def _env() -> Environment:
    env = environment(autoescape=False)
    env.filters.update(
        cell=cell,
        text=text,
        line=line,
        status=status,
        allowed=allowed_label,
        object_label=object_label,
        connection_label=connection_label,
    )
    return env


def render(report: Mapping[str, Any]) -> str:
    """The Markdown document."""
    return _env().get_template("report.md.j2").render(**context(report))


def context(report: Mapping[str, Any]) -> dict[str, Any]:
    mapped = requirements_by_check(report)
    checks = sorted(
        report["checks"],
        key=lambda c: (
            STATUS_ATTENTION.get(c["status"], 9),
            SEVERITIES.index(c["severity"]),
            c["id"],
        ),
    )
    views = []
    for check in checks:
        failing = [f for f in failing_first(check["findings"]) if is_failing(f)]
        views.append(
            {
                "check": check,
                "requirements": [
                    f"{fw['name']} {fw['version']} {req['id']}"
                    for fw, req, _ in mapped.get(check["id"], [])
                ],
                "failing": failing[:MAX_FINDINGS_PER_CHECK],
                "failing_total": len(failing),
                "waived": sum(1 for f in failing if f.get("waiver") is not None),
            }
        )
    conn = report["connectivity"]
    names = list(dict.fromkeys(conn["namespaces"]))
    allowed = {(e["src"], e["dst"]): e["allowed"] for e in conn["matrix"] if e["allowed"]}
    return {
        "report": report,
        "scope": report["scope"],
        "summary": report["summary"],
        "severities": SEVERITIES,
        "statuses": ("pass", "fail", "manual", "unknown", "not_applicable", "error"),
        "checks": views,
        "titles": {c["id"]: c["title"] for c in report["checks"]},
        "matrix_table": len(names) <= MAX_MATRIX_COLUMNS and bool(names),
        "namespaces": names,
        "allowed": allowed,
        "pairs": sorted(allowed.items())[:MAX_LIST_ROWS],
        "pairs_more": max(0, len(allowed) - MAX_LIST_ROWS),
        "ingress": conn["internet_ingress"][:MAX_LIST_ROWS],
        "egress": conn["internet_egress"][:MAX_LIST_ROWS],
        "max_rows": MAX_LIST_ROWS,
        "code": code,
    }
