"""Vocabulary shared by the renderers: severity and status order, labels and evidence strings.

Every renderer reads the report's JSON form only (``schemas/report.schema.json``); keeping the
small formatting rules here means HTML, Markdown, CSV, JUnit and SARIF describe an object, a
connection or an allowed-port set in exactly the same words.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

Report = Mapping[str, Any]
JSONDict = dict[str, Any]

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

# compliance.md "Proposed control catalogue": critical/high -> error, medium -> warning, rest -> note
SARIF_LEVEL: dict[str, str] = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "info": "note",
}
# GitHub buckets security-severity: >=9 critical, 7-8.9 high, 4-6.9 medium, <4 low
SECURITY_SEVERITY: dict[str, str] = {
    "critical": "9.0",
    "high": "7.0",
    "medium": "4.0",
    "low": "2.0",
    "info": "0.0",
}

STATUSES: tuple[str, ...] = ("pass", "fail", "manual", "not_applicable", "unknown", "error")
# what an auditor reads first: failures, then what could not be decided, then the rest
STATUS_ATTENTION: dict[str, int] = {
    "fail": 0,
    "error": 1,
    "unknown": 2,
    "manual": 3,
    "pass": 4,
    "not_applicable": 5,
}
STATUS_LABEL: dict[str, str] = {
    "pass": "pass",
    "fail": "fail",
    "manual": "manual",
    "not_applicable": "n/a",
    "unknown": "unknown",
    "error": "error",
}


def is_failing(finding: Mapping[str, Any]) -> bool:
    """A finding that fails its check (waived or not)."""
    return bool(finding["status"] == "fail")


def is_waived(finding: Mapping[str, Any]) -> bool:
    """A failing finding covered by an active waiver: reported, but it does not fail the run."""
    return finding["status"] == "fail" and finding.get("waiver") is not None


def object_name(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` (``Kind name`` when cluster-scoped)."""
    ns = obj.get("namespace")
    return f"{obj['kind']} {ns}/{obj['name']}" if ns else f"{obj['kind']} {obj['name']}"


def object_place(obj: Mapping[str, Any]) -> str:
    """``file#pointer`` (``file[2]#…`` for the third document of a file), or ``live cluster``."""
    file = obj.get("file")
    pointer = obj.get("pointer") or ""
    if not file:
        return f"live cluster #{pointer}" if pointer else "live cluster"
    doc = obj.get("document")
    where = f"{file}[{doc}]" if doc else file
    return f"{where}#{pointer}" if pointer else where


def object_label(obj: Mapping[str, Any]) -> str:
    """One-line evidence for an object: ``file#pointer (Kind ns/name)``."""
    if not obj.get("file"):
        pointer = obj.get("pointer") or ""
        return f"{object_name(obj)} (live cluster{' #' + pointer if pointer else ''})"
    return f"{object_place(obj)} ({object_name(obj)})"


def connection_label(conn: Mapping[str, Any], with_explanation: bool = False) -> str:
    """``src -> dst TCP/5432 allowed``, optionally followed by the engine's decision steps."""
    port = conn.get("port")
    proto = f"{conn['protocol']}/{port}" if port is not None else f"{conn['protocol']}/*"
    text = f"{conn['src']} -> {conn['dst']} {proto} {conn['verdict']}"
    if with_explanation and conn.get("explanation"):
        text += " [" + " > ".join(conn["explanation"]) + "]"
    return text


def allowed_label(allowed: Mapping[str, str]) -> str:
    """``TCP 80,443; UDP 53; ICMP (all)``; ``nothing`` for an empty set."""
    if not allowed:
        return "nothing"
    return "; ".join(
        f"{proto} {ports}" if ports else f"{proto} (all)"
        for proto, ports in sorted(allowed.items())
    )


_ALL_PORTS = frozenset({"", "0-65535", "1-65535"})


def allowed_breadth(allowed: Mapping[str, str]) -> int:
    """0 nothing, 1 some ports, 2 every port of some protocol: the heat levels of the matrix."""
    if not allowed:
        return 0
    return 2 if any(ports in _ALL_PORTS for ports in allowed.values()) else 1


def workload_namespace(workload: str) -> str:
    """The namespace of ``ns/name[Kind]``; ``(cluster)`` for names without one."""
    ns, sep, _ = workload.partition("/")
    return ns if sep else "(cluster)"


def synthetic_uri(namespace: str | None, kind: str, name: str) -> str:
    """Stable path for an object with no file (live cluster): ``k8s/<ns>/<kind>/<name>.yaml``."""
    parts = [namespace or "_cluster", kind, f"{name}.yaml"]
    return "k8s/" + "/".join(quote(p, safe="") for p in parts)


def requirements_by_check(report: Report) -> dict[str, list[tuple[JSONDict, JSONDict, JSONDict]]]:
    """check id -> [(framework, requirement, mapping)], in report order."""
    index: dict[str, list[tuple[JSONDict, JSONDict, JSONDict]]] = {}
    for fw in report["frameworks"]:
        for req in fw["requirements"]:
            for mapping in req["checks"]:
                index.setdefault(mapping["id"], []).append((fw, req, mapping))
    return index


def checks_by_id(report: Report) -> dict[str, JSONDict]:
    return {check["id"]: check for check in report["checks"]}


def failing_first(findings: list[JSONDict]) -> Iterator[JSONDict]:
    """Unwaived failures by severity, then waived ones, then everything else (stable)."""

    def key(f: JSONDict) -> tuple[int, int]:
        if f["status"] == "fail":
            return (1 if f.get("waiver") else 0, SEVERITY_RANK.get(f["severity"], 9))
        return (2 + STATUS_ATTENTION.get(f["status"], 9), SEVERITY_RANK.get(f["severity"], 9))

    return iter(sorted(findings, key=key))


def findings_note(total: int, shown: int, where: str = "the JSON or CSV report") -> str:
    """The line that says a list was cut, and where the rest is."""
    return f"{total - shown} more finding(s) not listed here: see {where}."
