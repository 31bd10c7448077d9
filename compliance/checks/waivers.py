"""The waiver register itself is audited: every exception justified, owned and unexpired."""

from __future__ import annotations

from polyfence.compliance.context import AuditContext
from polyfence.compliance.model import (
    CheckOutcome,
    Finding,
    Level,
    ObjectRef,
    Severity,
    Status,
    check,
    outcome,
)

BROAD = ("*", "*/*", "namespace/*", "flow/*")


@check(
    "NSEG-M01",
    "Waivers are justified, owned and unexpired",
    Severity.MEDIUM,
    Level.SOURCE,
    "Each exception to the flow policy needs a business need and a duration and must be reviewed "
    "and removed when no longer needed (NIST SC-7(4)(d)(e), PCI DSS 1.2.7). Expired, unused and "
    "over-broad waivers are findings.",
    "Give every waiver an owner, reason, ticket and expiry; delete waivers that match nothing; "
    "narrow `resource` patterns that match everything.",
)
def m01_waivers(ctx: AuditContext) -> CheckOutcome:
    info = m01_waivers.info
    findings = []
    matches: dict[str, int] = getattr(ctx, "waiver_matches", {})
    for i, w in enumerate(ctx.config.waivers):
        problems = []
        missing = [f for f in ("owner", "reason", "ticket", "expires") if not getattr(w, f)]
        if missing:
            problems.append("missing " + ", ".join(missing))
        if w.expires is not None and w.expires < ctx.today:
            problems.append(f"expired on {w.expires.isoformat()}")
        if matches.get(w.id, 0) == 0:
            problems.append("matches no finding (unused)")
        if w.resource in BROAD:
            problems.append(f"resource pattern {w.resource!r} covers everything")
        src = ctx.config.path
        ref = ObjectRef(
            "AuditConfig", None, f"waivers[{i}]", src, 0 if src else None, f"/waivers/{i}"
        )
        findings.append(
            Finding(
                info.id, Status.FAIL if problems else Status.PASS, info.severity, f"waiver/{w.id}",
                f"waiver {w.id} ({w.check} {w.resource}): " + ("; ".join(problems) if problems else "in order"),
                (ref,), observed="; ".join(problems) or None,
            )
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="all {total} waivers are justified, owned, used and unexpired",
        failed="{fail} of {total} waivers need attention",
        empty="no waivers declared",
        empty_status=Status.PASS,
    )
