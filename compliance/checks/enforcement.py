"""Is anything enforcing the policies the cluster has? Unknown is never reported as pass."""

from __future__ import annotations

from polyfence.compliance.context import AuditContext
from polyfence.compliance.enforcement import ENFORCES, enforcement
from polyfence.compliance.model import (
    CheckOutcome,
    Finding,
    Level,
    Severity,
    Status,
    check,
    outcome,
)


@check(
    "NSEG-K01",
    "Policy enforcement is present for each policy kind in use",
    Severity.HIGH,
    Level.SOURCE,
    "Policies without an enforcing dataplane give false assurance: Flannel or kindnet accept "
    "NetworkPolicy objects and enforce none; the VPC CNI enforces them only with its network "
    "policy agent enabled (CIS Kubernetes 5.3.1). Detection reads the agents in the snapshot or "
    "the `enforcement` block of the audit config; when neither shows an enforcer the result is "
    "unknown.",
    "Run a CNI that enforces every policy kind in use (Calico, Cilium, Antrea, VPC CNI with "
    "enableNetworkPolicy …) and declare it under `enforcement` when the snapshot does not "
    "contain its agents.",
)
def k01_enforcement_present(ctx: AuditContext) -> CheckOutcome:
    info = k01_enforcement_present.info
    kinds, enforcers = enforcement(ctx.bundle.documents, ctx.config)
    findings = []
    for k in kinds:
        status = {"enforced": Status.PASS, "not_enforced": Status.FAIL}.get(
            k.status, Status.UNKNOWN
        )
        message = {
            "enforced": f"{k.count} {k.kind} objects are enforced by {k.enforcer}",
            "not_enforced": f"{k.count} {k.kind} objects but nothing enforces them "
            f"(dataplane: {k.enforcer})",
        }.get(k.status, f"{k.count} {k.kind} objects; no enforcing dataplane in the input")
        findings.append(
            Finding(info.id, status, info.severity, f"kind/{k.kind}", message, key=k.kind)
        )
    if not kinds:
        supports = [e for e in enforcers if ENFORCES.get(e)]
        if supports:
            return CheckOutcome(
                Status.PASS,
                f"no policies in the input; the dataplane ({', '.join(sorted(supports))}) supports them",
            )
        return CheckOutcome(
            Status.UNKNOWN, "no policies and no policy-capable dataplane in the input"
        )
    result = outcome(
        info,
        findings,
        passed="every policy kind in use has an enforcing dataplane",
        failed="{fail} policy kinds have no enforcing dataplane",
    )
    if result.status is Status.UNKNOWN:
        unknown = [k.kind for k in kinds if k.status == "unknown"]
        return CheckOutcome(
            Status.UNKNOWN,
            f"no enforcing dataplane found for {', '.join(unknown)}: the snapshot has no CNI "
            "agents; declare `enforcement.cni` in the audit config",
            result.findings,
        )
    return result
