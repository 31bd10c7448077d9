"""The self-contained HTML audit report (inline CSS and SVG, no script, nothing fetched).

Python prepares a view of the report (ordering, counts, caps, SVG) so the template stays
declarative and large reports stay fast: at most ``MAX_FINDINGS_PER_CHECK`` findings are listed
per check, with a note that the JSON/CSV report has the rest. Every report string reaches the
page through jinja2 autoescaping; only the SVG (escaped when drawn) is marked safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from polyfence.compliance.renderers import svg
from polyfence.compliance.renderers._common import (
    SEVERITIES,
    STATUS_ATTENTION,
    STATUS_LABEL,
    JSONDict,
    Report,
    allowed_breadth,
    allowed_label,
    failing_first,
    is_failing,
    object_name,
    object_place,
    requirements_by_check,
)
from polyfence.compliance.renderers._jinja import environment

MAX_FINDINGS_PER_CHECK = 200
MAX_MATRIX_ROWS = 400
MAX_EXPOSURE_ROWS = 500


@cache
def _env() -> Environment:
    env = environment(autoescape=True)
    env.filters.update(
        status_label=lambda s: STATUS_LABEL.get(s, s),
        anchor=anchor,
        object_name=object_name,
        object_place=object_place,
        allowed_label=allowed_label,
        short_hash=lambda h: f"{h[:12]}…" if h else "",
    )
    env.globals["anchor"] = anchor
    return env


_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")


def anchor(*parts: str) -> str:
    """A stable, valid HTML id from report ids (``5.3.1`` -> ``5-3-1``)."""
    return "-".join(_NOT_ID.sub("-", p).strip("-") or "x" for p in parts)


def render(report: Mapping[str, Any]) -> str:
    """The HTML page as one string."""
    return _env().get_template("report.html.j2").render(**context(report))


def context(report: Report) -> dict[str, Any]:
    """Everything the template reads; report strings stay raw (the template escapes them)."""
    mapped = requirements_by_check(report)
    checks = sorted(
        report["checks"],
        key=lambda c: (
            STATUS_ATTENTION.get(c["status"], 9),
            SEVERITIES.index(c["severity"]),
            c["id"],
        ),
    )
    check_views = [_check_view(c, mapped.get(c["id"], [])) for c in checks]
    titles = {c["id"]: c["title"] for c in report["checks"]}
    severities = {c["id"]: c["severity"] for c in report["checks"]}
    conn = report["connectivity"]
    matrix = [e for e in conn["matrix"] if e["allowed"]]
    matrix.sort(key=lambda e: (-allowed_breadth(e["allowed"]), e["src"], e["dst"]))
    summary = report["summary"]
    return {
        "report": report,
        "scope": report["scope"],
        "summary": summary,
        "statuses": svg.BAR_ORDER,
        "severities": SEVERITIES,
        "unwaived_failing": sum(summary["by_severity"].values()),
        "checks": check_views,
        "check_titles": titles,
        "check_severities": severities,
        "frameworks": [
            {"fw": fw, "bar": Markup(svg.status_bar(fw["summary"]))} for fw in report["frameworks"]
        ],
        "status_svg": Markup(svg.status_bars(report["frameworks"])) if report["frameworks"] else "",
        "check_bar": Markup(svg.status_bar(summary["checks"], "check", 640)),
        "matrix_svg": Markup(svg.connectivity_matrix(conn)),
        "matrix_rows": matrix[:MAX_MATRIX_ROWS],
        "matrix_more": max(0, len(matrix) - MAX_MATRIX_ROWS),
        "exposure_svg": Markup(svg.exposure_chart(conn)),
        "ingress": conn["internet_ingress"][:MAX_EXPOSURE_ROWS],
        "ingress_more": max(0, len(conn["internet_ingress"]) - MAX_EXPOSURE_ROWS),
        "egress": conn["internet_egress"][:MAX_EXPOSURE_ROWS],
        "egress_more": max(0, len(conn["internet_egress"]) - MAX_EXPOSURE_ROWS),
        "waiver_states": _count(w["state"] for w in report["waivers"]),
        "max_findings": MAX_FINDINGS_PER_CHECK,
    }


def _check_view(check: JSONDict, mapped: list[tuple[JSONDict, JSONDict, JSONDict]]) -> JSONDict:
    findings = check["findings"]
    failing = sum(1 for f in findings if is_failing(f))
    waived = sum(1 for f in findings if is_failing(f) and f.get("waiver") is not None)
    shown = list(failing_first(findings))[:MAX_FINDINGS_PER_CHECK] if findings else []
    return {
        "check": check,
        "id": anchor("check", check["id"]),
        "requirements": [
            {
                "framework": f"{fw['name']} {fw['version']}",
                "id": req["id"],
                "title": req["title"],
                "anchor": anchor("req", fw["id"], req["id"]),
                "interpretation": m["interpretation"],
            }
            for fw, req, m in mapped
        ],
        "findings": shown,
        "total": len(findings),
        "more": len(findings) - len(shown),
        "failing": failing,
        "waived": waived,
        "by_status": _count(f["status"] for f in findings),
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out
