"""Run the checks a set of frameworks needs, apply waivers, map results to requirements and
build the serialisable report (``schemas/report.schema.json``) every renderer reads."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import metadata, resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from polyfence.compliance import checks as registry
from polyfence.compliance.catalog import Framework, load_frameworks
from polyfence.compliance.checks.exposure import internet_exposures
from polyfence.compliance.context import AuditContext
from polyfence.compliance.enforcement import enforcement
from polyfence.compliance.model import CheckOutcome, Finding, Severity, Status
from polyfence.errors import Diagnostic, InputError
from polyfence.model.provenance import SourceRef

SCHEMA_VERSION = "1.0"
WAIVER_CHECK = "NSEG-M01"
MAX_EXPOSURE_ROWS = 5000

Progress = Callable[[str, int, int], None]  # (check id, done, total)

_STATUS_ORDER = (Status.ERROR, Status.FAIL, Status.UNKNOWN, Status.PASS, Status.NOT_APPLICABLE)


@dataclass(frozen=True, slots=True)
class Report:
    """An audit report: its JSON form plus the questions CI asks of it."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def failing(self, threshold: Severity) -> list[dict[str, Any]]:
        """Unwaived failing findings at or above a severity."""
        return [
            f
            for c in self.data["checks"]
            for f in c["findings"]
            if f["status"] == "fail"
            and f["waiver"] is None
            and Severity(f["severity"]).rank >= threshold.rank
        ]

    def render(self, fmt: str) -> str:
        from polyfence.compliance.renderers import render

        return render(self.data, fmt)


@cache
def _report_validator() -> Draft202012Validator:
    text = (resources.files("polyfence.schemas") / "report.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text), format_checker=FormatChecker())


def validate_report(data: Any, source: SourceRef) -> None:
    """Refuse a saved report that does not follow the schema (naming every bad field)."""
    errors = sorted(_report_validator().iter_errors(data), key=lambda e: [str(p) for p in e.path])
    if errors:
        raise InputError(Diagnostic(source.child(*e.absolute_path), e.message) for e in errors[:50])


def _tool_version() -> str:
    """The installed package's version: pyproject.toml is its one source."""
    return metadata.version("polyfence")


def _checks_for(frameworks: Sequence[Framework]) -> list[str]:
    wanted = {cid for fw in frameworks for cid in fw.check_ids}
    return [cid for cid in registry.CHECK_IDS if cid in wanted]


def _run(ctx: AuditContext, check_id: str) -> CheckOutcome:
    try:
        return registry.get(check_id)(ctx)
    except Exception as exc:  # a broken check must not hide the others' results
        return CheckOutcome(Status.ERROR, f"the check failed: {type(exc).__name__}: {exc}")


def _apply_waivers(
    ctx: AuditContext, check_id: str, result: CheckOutcome, matches: Counter[str]
) -> CheckOutcome:
    waived = 0
    findings = []
    for f in result.findings:
        if f.status is Status.FAIL:
            for w in ctx.config.waivers:
                if w.covers(check_id, f.resource):
                    matches[w.id] += 1
                    if w.active(ctx.today) and f.waiver is None:
                        f = replace(f, waiver=w.id)
                        waived += 1
        findings.append(f)
    if not waived:
        return result
    open_fail = any(f.status is Status.FAIL and f.waiver is None for f in findings)
    status = result.status
    if result.status is Status.FAIL and not open_fail:
        unknown = any(f.status is Status.UNKNOWN for f in findings)
        status = Status.UNKNOWN if unknown else Status.PASS
    return CheckOutcome(status, f"{result.detail} ({waived} waived)", tuple(findings))


def _requirement_status(statuses: list[Status]) -> Status:
    if not statuses:
        return Status.MANUAL
    for s in _STATUS_ORDER:
        if s is Status.PASS and any(x is Status.PASS for x in statuses):
            return Status.PASS
        if s in statuses and s is not Status.PASS:
            return s
    return Status.NOT_APPLICABLE


def _counts(statuses: Iterable[Status]) -> dict[str, int]:
    c = Counter(s.value for s in statuses)
    return {s.value: c.get(s.value, 0) for s in Status}


def _evidence_hash(ctx: AuditContext) -> str:
    h = hashlib.sha256()
    for doc in sorted(
        ctx.bundle.documents,
        key=lambda d: (d.source.file or "", d.source.document or 0, d.source.pointer),
    ):
        h.update(json.dumps(doc.data, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def _connectivity(ctx: AuditContext) -> dict[str, Any]:
    empty: dict[str, Any] = {
        "namespaces": list(ctx.in_scope),
        "matrix": [],
        "internet_ingress": [],
        "internet_egress": [],
    }
    if not ctx.has_workloads:
        return empty
    scope = set(ctx.in_scope)
    matrix = [
        {"src": s, "dst": d, "allowed": _allowed(conns)}
        for (s, d), conns in sorted(ctx.namespace_matrix().items())
        if s in scope and d in scope
    ]
    exposures = {e.endpoint.ref: e for e in internet_exposures(ctx)}
    inbound, outbound = ctx.internet_inbound, ctx.internet_outbound
    ingress: list[dict[str, Any]] = []
    egress: list[dict[str, Any]] = []
    for ep in ctx.workloads:
        if ep.host_network:
            continue
        idx = ctx.class_of(ep).index
        exp = exposures.get(ep.ref)
        if idx in inbound and len(ingress) < MAX_EXPOSURE_ROWS:
            allowed = exp.allowed if exp is not None else inbound[idx]
            ingress.append(
                {
                    "workload": ep.ref,
                    "allowed": _allowed(allowed),
                    "via": list(exp.via) if exp is not None else [],
                }
            )
        if idx in outbound and len(egress) < MAX_EXPOSURE_ROWS:
            egress.append({"workload": ep.ref, "allowed": _allowed(outbound[idx])})
    return {
        "namespaces": sorted(scope),
        "matrix": matrix,
        "internet_ingress": ingress,
        "internet_egress": egress,
    }


def _allowed(conns: Any) -> dict[str, str]:
    return {k: v for k, v in conns.by_protocol().items() if v}


def run_audit(
    ctx: AuditContext,
    framework_ids: Iterable[str] | None = None,
    *,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Evaluate the frameworks' checks on the context and build the report."""
    frameworks = load_frameworks(framework_ids)
    check_ids = _checks_for(frameworks)
    results: dict[str, CheckOutcome] = {}
    matches: Counter[str] = Counter()
    ordered = [c for c in check_ids if c != WAIVER_CHECK]
    total = len(check_ids)
    for i, check_id in enumerate(ordered):
        if progress:
            progress(check_id, i, total)
        results[check_id] = _apply_waivers(ctx, check_id, _run(ctx, check_id), matches)
    ctx.waiver_matches = dict(matches)  # type: ignore[attr-defined]
    if WAIVER_CHECK in check_ids:
        if progress:
            progress(WAIVER_CHECK, total - 1, total)
        results[WAIVER_CHECK] = _run(ctx, WAIVER_CHECK)
    if progress:
        progress("", total, total)
    checks_out = []
    all_findings: list[Finding] = []
    for check_id in check_ids:
        info = registry.get(check_id).info
        res = results[check_id]
        all_findings.extend(res.findings)
        checks_out.append(
            {
                "id": info.id,
                "title": info.title,
                "severity": info.severity.value,
                "level": info.level.value,
                "rationale": info.rationale,
                "remediation": info.remediation,
                "status": res.status.value,
                "detail": res.detail,
                "findings": [f.to_dict() for f in res.findings],
            }
        )
    frameworks_out = []
    for fw in frameworks:
        reqs = []
        for req in fw.requirements:
            mapped = [
                {
                    "id": m.check_id,
                    "status": results[m.check_id].status.value,
                    "interpretation": m.interpretation,
                }
                for m in req.checks
            ]
            status = _requirement_status([Status(m["status"]) for m in mapped])
            reqs.append(
                {
                    "id": req.id,
                    "title": req.title,
                    "section": req.section,
                    "status": status.value,
                    "checks": mapped,
                    "manual": req.manual,
                }
            )
        frameworks_out.append(
            {
                "id": fw.id,
                "name": fw.name,
                "version": fw.version,
                "title": fw.title,
                "summary": _counts(Status(r["status"]) for r in reqs),
                "requirements": reqs,
            }
        )
    waivers_out = []
    for w in ctx.config.waivers:
        if not w.complete:
            state = "incomplete"
        elif not w.active(ctx.today):
            state = "expired"
        elif matches.get(w.id, 0) == 0:
            state = "unused"
        else:
            state = "active"
        waivers_out.append(
            {
                "id": w.id,
                "check": w.check,
                "resource": w.resource,
                "owner": w.owner,
                "reason": w.reason,
                "ticket": w.ticket,
                "expires": w.expires.isoformat() if w.expires else None,
                "state": state,
                "matched": matches.get(w.id, 0),
            }
        )
    failing = [f for f in all_findings if f.status is Status.FAIL and f.waiver is None]
    by_sev = Counter(f.severity.value for f in failing)
    kinds, _ = enforcement(ctx.bundle.documents, ctx.config)
    inv = ctx.inventory
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "polyfence", "version": _tool_version()},
        "generated_at": (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scope": {
            "inputs": list(ctx.inputs),
            "formats": list(ctx.bundle.formats),
            "profile": ctx.profile_name,
            "config": ctx.config.path,
            "namespaces": list(ctx.in_scope),
            "excluded_namespaces": [{"namespace": n, "reason": r} for n, r in ctx.excluded],
            "counts": {
                "documents": len(ctx.bundle.documents),
                "namespaces": len(ctx.namespaces),
                "workloads": len(inv.pods),
                "nodes": len(inv.nodes),
                "services": len(inv.services),
                "policies": len(ctx.policies.policies),
            },
            "enforcement": [
                {"kind": k.kind, "enforcer": k.enforcer, "status": k.status} for k in kinds
            ],
            "evidence_sha256": _evidence_hash(ctx),
        },
        "summary": {
            "checks": _counts(results[c].status for c in check_ids),
            "findings": _counts(f.status for f in all_findings),
            "waived": sum(1 for f in all_findings if f.waiver is not None),
            "by_severity": {s.value: by_sev.get(s.value, 0) for s in Severity},
        },
        "checks": checks_out,
        "frameworks": frameworks_out,
        "waivers": waivers_out,
        "connectivity": _connectivity(ctx),
    }
    return Report(data)


__all__ = ["Report", "run_audit", "validate_report"]
