"""JUnit XML for CI test dashboards (Jenkins, GitLab, Azure DevOps, GitHub test reporters).

Layout: one ``<testsuite>`` per framework with one ``<testcase>`` per (requirement x check)
mapping, named ``<requirement> <check>: <title>`` with classname ``<framework>.<requirement>``;
a requirement with no checks (manual only) is one skipped testcase. A last suite named
``checks`` has one testcase per check, so the run is readable without any framework.

Outcome by status (the per-mapping status in framework suites, the check status in ``checks``):
fail -> ``<failure>`` (message: counts; text: the evidence of the failing findings, unwaived
first, capped); manual / not_applicable -> ``<skipped>``; unknown / error -> ``<error>``;
pass -> nothing. Suite counters are computed from what is written.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from polyfence.compliance.renderers._common import (
    JSONDict,
    Report,
    checks_by_id,
    connection_label,
    failing_first,
    findings_note,
    is_failing,
    object_label,
)

MAX_EVIDENCE = 200  # failing findings spelled out per testcase; the JSON/CSV report has the rest

# characters XML 1.0 cannot carry at all (ElementTree would write them and break the file)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def render(report: Mapping[str, Any]) -> str:
    """The ``<testsuites>`` document, UTF-8 with an XML declaration."""
    root = junit_tree(report)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False).join(
        ('<?xml version="1.0" encoding="UTF-8"?>\n', "\n")
    )


def junit_tree(report: Report) -> ET.Element:
    checks = checks_by_id(report)
    evidence_cache: dict[str, str] = {}

    def evidence(check_id: str) -> str:
        if check_id not in evidence_cache:
            check = checks.get(check_id)
            evidence_cache[check_id] = _evidence(check) if check else ""
        return evidence_cache[check_id]

    root = ET.Element("testsuites", name=f"polyfence audit ({report['scope']['profile']})")
    timestamp = report["generated_at"]
    for fw in report["frameworks"]:
        suite = _suite(root, f"{fw['name']} {fw['version']}", fw["id"], timestamp)
        _props(suite, {"framework": fw["id"], "version": fw["version"], "title": fw["title"]})
        for req in fw["requirements"]:
            classname = f"{fw['id']}.{req['id']}"
            if not req["checks"]:
                case = _case(suite, f"{req['id']}: {req['title']}", classname)
                _outcome(
                    case,
                    req["status"] if req["status"] != "pass" else "manual",
                    req["manual"] or "assessed by hand",
                    "",
                )
                continue
            for mapping in req["checks"]:
                check = checks.get(mapping["id"])
                title = check["title"] if check else "(check not in report)"
                case = _case(suite, f"{req['id']} {mapping['id']}: {title}", classname)
                detail = check["detail"] if check else ""
                text = (
                    f"Requirement {req['id']}: {req['title']}\n"
                    f"Interpretation: {mapping['interpretation']}\n"
                )
                if req["manual"]:
                    text += f"Manual: {req['manual']}\n"
                if mapping["status"] == "fail":
                    text += evidence(mapping["id"])
                _outcome(case, mapping["status"], _summary(check, detail), text)
    suite = _suite(root, "checks", "checks", timestamp)
    for check in report["checks"]:
        case = _case(suite, f"{check['id']}: {check['title']}", f"checks.{check['id']}")
        text = evidence(check["id"]) if check["status"] == "fail" else check["detail"]
        _outcome(case, check["status"], _summary(check, check["detail"]), text)
    _count(root)
    return root


def _suite(root: ET.Element, name: str, ident: str, timestamp: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=_x(name), id=_x(ident), timestamp=timestamp)


def _case(suite: ET.Element, name: str, classname: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", name=_x(name), classname=_x(classname), time="0")


def _props(suite: ET.Element, values: Mapping[str, str]) -> None:
    props = ET.SubElement(suite, "properties")
    for key, value in values.items():
        ET.SubElement(props, "property", name=key, value=_x(value))


def _summary(check: JSONDict | None, detail: str) -> str:
    """The one-line ``message`` attribute: severity, counts of failing findings, detail."""
    if check is None:
        return detail
    failing = [f for f in check["findings"] if is_failing(f)]
    waived = sum(1 for f in failing if f.get("waiver") is not None)
    head = f"[{check['severity']}] {len(failing) - waived} failing finding(s)"
    if waived:
        head += f", {waived} waived"
    return f"{head}: {detail}" if detail else head


def _outcome(case: ET.Element, status: str, message: str, text: str) -> None:
    if status == "fail":
        el = ET.SubElement(case, "failure", message=_x(message), type="fail")
    elif status in ("manual", "not_applicable"):
        el = ET.SubElement(case, "skipped", message=_x(f"{status}: {message}"))
    elif status in ("unknown", "error"):
        el = ET.SubElement(case, "error", message=_x(f"{status}: {message}"), type=status)
    else:
        return
    if text:
        el.text = _x(text)


def _evidence(check: JSONDict) -> str:
    """Plain-text evidence of a check's failing findings, unwaived first, capped."""
    failing = [f for f in failing_first(check["findings"]) if is_failing(f)]
    lines: list[str] = []
    for finding in failing[:MAX_EVIDENCE]:
        waived = f" [waived: {finding['waiver']}]" if finding.get("waiver") is not None else ""
        lines.append(
            f"- [{finding['severity']}] {finding['resource']}{waived}: {finding['message']}"
        )
        lines.extend(f"    object: {object_label(o)}" for o in finding["objects"])
        lines.extend(f"    connection: {connection_label(c, True)}" for c in finding["connections"])
        if finding["observed"] is not None or finding["expected"] is not None:
            lines.append(f"    observed: {finding['observed']}; expected: {finding['expected']}")
        lines.append(f"    finding id: {finding['id']}")
    if len(failing) > MAX_EVIDENCE:
        lines.append(findings_note(len(failing), MAX_EVIDENCE))
    return "\n".join(lines) + ("\n" if lines else "")


def _count(root: ET.Element) -> None:
    """Set tests/failures/errors/skipped on every suite and on the root from the testcases."""
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root.iter("testsuite"):
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in suite.iter("testcase"):
            counts["tests"] += 1
            counts["failures"] += case.find("failure") is not None
            counts["errors"] += case.find("error") is not None
            counts["skipped"] += case.find("skipped") is not None
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", "0")
