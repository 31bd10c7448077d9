"""CSV for spreadsheets: one row per (framework requirement x check x finding), Prowler style.

Rows, in report order:

- for every framework requirement and every check mapped to it, one row per finding of the
  check (any status); a mapped check with no findings still gets one row carrying the mapping
  status, so every requirement x check pair is visible;
- a requirement assessed by hand gets one row with status ``manual`` and the auditor's note as
  the message (check columns empty);
- findings of checks that no selected framework maps get rows with empty framework columns, so
  every finding appears at least once.

Cells that a spreadsheet would run as a formula (leading ``= + - @``, tab or CR) get a leading
``'`` (OWASP CSV injection guidance). Multi-valued cells (objects as ``file#pointer (Kind
ns/name)``, connections with their explanation) hold one value per line: the csv module quotes
them, and values containing ``|`` or ``;`` stay unambiguous.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from polyfence.compliance.renderers._common import (
    JSONDict,
    Report,
    checks_by_id,
    connection_label,
    object_label,
    requirements_by_check,
)

COLUMNS: tuple[str, ...] = (
    "framework",
    "framework_version",
    "requirement_id",
    "requirement_title",
    "requirement_status",
    "check_id",
    "check_title",
    "severity",
    "status",
    "waived",
    "waiver",
    "resource",
    "message",
    "objects",
    "connections",
    "observed",
    "expected",
    "finding_id",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """Text for one cell; formula-looking text is defused with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def render(report: Mapping[str, Any]) -> str:
    """The CSV text (RFC 4180 quoting, ``\\r\\n`` line ends as the csv module writes them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows([safe_cell(v) for v in row] for row in rows(report))
    return out.getvalue()


def rows(report: Report) -> Iterable[tuple[object, ...]]:
    """The data rows as raw values, in ``COLUMNS`` order."""
    checks = checks_by_id(report)
    finding_cells: dict[str, list[tuple[object, ...]]] = {}

    def cells(check: JSONDict) -> list[tuple[object, ...]]:
        # the finding part of a row is the same under every requirement: build it once
        if check["id"] not in finding_cells:
            finding_cells[check["id"]] = [_finding_cells(check, f) for f in check["findings"]]
        return finding_cells[check["id"]]

    for fw in report["frameworks"]:
        for req in fw["requirements"]:
            head = (fw["name"], fw["version"], req["id"], req["title"], req["status"])
            if req["manual"] is not None or not req["checks"]:
                yield (
                    *head,
                    "",
                    "",
                    "",
                    "manual",
                    False,
                    None,
                    "",
                    req["manual"] or "",
                    "",
                    "",
                    None,
                    None,
                    "",
                )
            for mapping in req["checks"]:
                check = checks.get(mapping["id"])
                if check is None:
                    yield (
                        *head,
                        mapping["id"],
                        "",
                        "",
                        mapping["status"],
                        False,
                        None,
                        "",
                        mapping["interpretation"],
                        "",
                        "",
                        None,
                        None,
                        "",
                    )
                    continue
                found = cells(check)
                if not found:
                    yield (
                        *head,
                        check["id"],
                        check["title"],
                        check["severity"],
                        mapping["status"],
                        False,
                        None,
                        "",
                        check["detail"],
                        "",
                        "",
                        None,
                        None,
                        "",
                    )
                for part in found:
                    yield (*head, *part)
    mapped = requirements_by_check(report)
    for check in report["checks"]:
        if check["id"] not in mapped:
            for part in cells(check):
                yield ("", "", "", "", "", *part)


def _finding_cells(check: JSONDict, finding: JSONDict) -> tuple[object, ...]:
    return (
        check["id"],
        check["title"],
        finding["severity"],
        finding["status"],
        finding["status"] == "fail" and finding.get("waiver") is not None,
        finding.get("waiver"),
        finding["resource"],
        finding["message"],
        "\n".join(object_label(o) for o in finding["objects"]),
        "\n".join(connection_label(c, True) for c in finding["connections"]),
        finding["observed"],
        finding["expected"],
        finding["id"],
    )
