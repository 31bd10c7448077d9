"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Decisions (compliance.md Part 4, GitHub's SARIF support notes):

- one rule per check, ``ruleId`` = the check id (stable across runs and versions);
  ``properties.security-severity`` is the catalogue number as a string, ``tags`` carry the
  framework requirements (capped at 20, GitHub's limit);
- one result per *failing* finding; waived ones stay in the log with an external
  ``suppressions`` entry (GitHub shows them as dismissed instead of losing the record);
  passing, manual and n/a findings are not results; unknown/error *checks* become tool
  execution notifications so "could not decide" is never silent;
- ``partialFingerprints`` come from the finding id (a stable hash of check, resource and
  connection), so alerts survive re-runs;
- a result is located at its first object's file (relative, forward slashes, under
  ``%SRCROOT%``); objects from a live cluster get ``k8s/<ns>/<kind>/<name>.yaml``. SARIF cannot
  address a JSON pointer, so the pointer goes into the message, ``properties`` and a logical
  location ``Kind/ns/name#pointer``; the region is line 1 because GitHub needs a start line and
  the report has no line numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from polyfence.compliance.renderers._common import (
    SARIF_LEVEL,
    SECURITY_SEVERITY,
    JSONDict,
    Report,
    connection_label,
    object_name,
    requirements_by_check,
    synthetic_uri,
)

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "polyfenceFindingId/v1"
SRCROOT = "%SRCROOT%"
MAX_TAGS = 20  # GitHub keeps 20 tags per rule
MAX_LOCATIONS = 100  # GitHub shows 100 of at most 1,000 locations per result
MAX_CONNECTIONS = 20  # per result, in properties: the JSON/CSV report has them all

_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:/)")


def render(report: Mapping[str, Any]) -> str:
    """The SARIF log as one line of JSON plus a newline.

    Not indented: SARIF is read by tools, and ``indent`` switches ``json`` to its pure-Python
    encoder (5 s instead of 0.6 s and twice the bytes for 50,000 results; GitHub caps uploads
    at 10 MB gzipped).
    """
    return json.dumps(sarif_log(report), ensure_ascii=False) + "\n"


def sarif_log(report: Report) -> JSONDict:
    """The SARIF log as a dict (one run)."""
    mappings = requirements_by_check(report)
    rules: list[JSONDict] = []
    rule_index: dict[str, int] = {}
    results: list[JSONDict] = []
    notifications: list[JSONDict] = []
    for check in report["checks"]:
        rule_index[check["id"]] = len(rules)
        rules.append(_rule(check, mappings.get(check["id"], [])))
        if check["status"] in ("unknown", "error"):
            notifications.append(_notification(check, rule_index[check["id"]]))
        for finding in check["findings"]:
            if finding["status"] == "fail":
                results.append(_result(finding, rule_index[check["id"]]))
    scope = report["scope"]
    run: JSONDict = {
        "tool": {
            "driver": {
                "name": report["tool"]["name"],
                "version": report["tool"]["version"],
                "semanticVersion": report["tool"]["version"],
                "rules": rules,
            }
        },
        "automationDetails": {"id": f"polyfence/{scope['profile'] or 'audit'}/"},
        "originalUriBaseIds": {
            SRCROOT: {"description": {"text": "The directory the audited inputs are relative to."}}
        },
        "invocations": [
            {
                "executionSuccessful": not any(c["status"] == "error" for c in report["checks"]),
                "endTimeUtc": report["generated_at"],
                "toolExecutionNotifications": notifications,
            }
        ],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {
            "schema_version": report["schema_version"],
            "profile": scope["profile"],
            "evidence_sha256": scope["evidence_sha256"],
            "summary": _sorted(report["summary"]),
        },
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _sorted(value: Any) -> Any:
    """Report data copied into the log with sorted keys: output must not depend on input order."""
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _rule(check: JSONDict, mapped: list[tuple[JSONDict, JSONDict, JSONDict]]) -> JSONDict:
    tags = ["security", "network-segmentation", f"level:{check['level']}"]
    for fw, req, _ in mapped:
        tag = f"{fw['id']}:{req['id']}"
        if tag not in tags:
            tags.append(tag)
    requirements = [f"{fw['name']} {fw['version']} {req['id']}" for fw, req, _ in mapped]
    help_md = f"**Why:** {check['rationale']}\n\n**Fix:** {check['remediation']}"
    if requirements:
        help_md += "\n\n**Requirements:** " + ", ".join(requirements)
    return {
        "id": check["id"],
        "name": _camel(check["title"]),
        "shortDescription": {"text": check["title"]},
        "fullDescription": {"text": check["rationale"] or check["title"]},
        "help": {
            "text": f"{check['rationale']}\nRemediation: {check['remediation']}",
            "markdown": help_md,
        },
        "defaultConfiguration": {"level": SARIF_LEVEL[check["severity"]]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[check["severity"]],
            "severity": check["severity"],
            "precision": "high" if check["level"] == "semantic" else "medium",
            "tags": tags[:MAX_TAGS],
            "requirements": requirements,
        },
    }


def _camel(title: str) -> str:
    """SARIF ``rule.name`` is an identifier-like name: ``NoAllowAllRuleOverridesIsolation``."""
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", title)) or "Check"


def _notification(check: JSONDict, index: int) -> JSONDict:
    return {
        "level": "error" if check["status"] == "error" else "warning",
        "message": {
            "text": f"{check['id']} {check['status']}: {check['detail'] or check['title']}"
        },
        "associatedRule": {"id": check["id"], "index": index},
    }


def _result(finding: JSONDict, rule_index: int) -> JSONDict:
    objects = finding["objects"]
    message = finding["message"]
    if objects:
        first = objects[0]
        where = object_name(first)
        if first.get("pointer"):
            where += f" at {first['pointer']}"
        message = f"{message} ({where})"
    if finding["connections"]:
        message += " Connection: " + connection_label(finding["connections"][0], True)
    if objects:
        locations = [_location(objects[0], 0)]
        related = [_location(obj, i) for i, obj in enumerate(objects[1:MAX_LOCATIONS], start=1)]
    else:
        locations = [_resource_location(finding["resource"])]
        related = []
    props: JSONDict = {
        "severity": finding["severity"],
        "resource": finding["resource"],
        "findingId": finding["id"],
        "pointers": [o["pointer"] for o in objects if o.get("pointer")],
        "observed": finding["observed"],
        "expected": finding["expected"],
        "connections": [_sorted(c) for c in finding["connections"][:MAX_CONNECTIONS]],
    }
    if len(finding["connections"]) > MAX_CONNECTIONS:
        props["connectionsOmitted"] = len(finding["connections"]) - MAX_CONNECTIONS
    result: JSONDict = {
        "ruleId": finding["check_id"],
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": SARIF_LEVEL[finding["severity"]],
        "message": {"text": message},
        "locations": locations,
        "partialFingerprints": {FINGERPRINT_KEY: finding["id"]},
        "properties": props,
    }
    if related:
        result["relatedLocations"] = related
    if finding.get("waiver") is not None:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"Waiver {finding['waiver']} (polyfence waiver register)",
                "properties": {"waiver": finding["waiver"]},
            }
        ]
    return result


def _artifact_uri(obj: Mapping[str, Any]) -> tuple[str, bool]:
    """(uri, relative): the object's file as a URI reference; synthetic when it has none."""
    file = obj.get("file")
    if not file or file == "-":
        return synthetic_uri(obj.get("namespace"), obj["kind"], obj["name"]), True
    path = file.replace("\\", "/")
    if _ABSOLUTE.match(path):
        return "file://" + ("" if path.startswith("/") else "/") + quote(path, safe="/:"), False
    while path.startswith("./"):
        path = path[2:]
    return quote(path, safe="/"), True


def _location(obj: Mapping[str, Any], index: int) -> JSONDict:
    uri, relative = _artifact_uri(obj)
    artifact: JSONDict = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = SRCROOT
    pointer = obj.get("pointer") or ""
    ns = obj.get("namespace")
    fqn = f"{obj['kind']}/{ns}/{obj['name']}" if ns else f"{obj['kind']}/{obj['name']}"
    if pointer:
        fqn += f"#{pointer}"
    props: JSONDict = {
        "pointer": pointer,
        "document": obj.get("document"),
        "live": not obj.get("file"),
    }
    return {
        "id": index,
        "physicalLocation": {"artifactLocation": artifact, "region": {"startLine": 1}},
        "logicalLocations": [{"name": obj["name"], "fullyQualifiedName": fqn, "kind": "resource"}],
        "message": {"text": object_name(obj) + (f" at {pointer}" if pointer else "")},
        "properties": props,
    }


def _resource_location(resource: str) -> JSONDict:
    """A finding with no object (e.g. ``cluster``): a stable synthetic file named after it."""
    return {
        "id": 0,
        "physicalLocation": {
            "artifactLocation": {
                "uri": synthetic_uri(None, "_resource", resource),
                "uriBaseId": SRCROOT,
            },
            "region": {"startLine": 1},
        },
        "logicalLocations": [
            {"name": resource, "fullyQualifiedName": resource, "kind": "resource"}
        ],
    }
