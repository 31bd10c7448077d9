"""The connectivity map as evidence (PCI DSS 1.2.3/1.2.4 diagrams are drawn from it)."""

from __future__ import annotations

from polyfence.compliance.context import AuditContext
from polyfence.compliance.model import CheckOutcome, Finding, Level, Severity, Status, check


@check(
    "NSEG-K22",
    "Connectivity map and data-flow evidence produced",
    Severity.INFO,
    Level.SEMANTIC,
    "Auditors need an accurate picture of every connection between zones and to the internet; "
    "this report's connectivity section is computed from the policies, not drawn by hand.",
    "Provide workloads (a cluster snapshot or manifests with workloads) so the map can be computed.",
)
def k22_connectivity_map(ctx: AuditContext) -> CheckOutcome:
    info = k22_connectivity_map.info
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: no connectivity map can be computed"
        )
    scope = set(ctx.in_scope)
    matrix = {k: v for k, v in ctx.namespace_matrix().items() if k[0] in scope and k[1] in scope}
    populated = sorted({e.namespace or "" for e in ctx.workloads})
    detail = (
        f"connectivity computed for {len(populated)} namespaces with workloads "
        f"({len(matrix)} namespace pairs with allowed connections)"
    )
    return CheckOutcome(
        Status.PASS,
        detail,
        (Finding(info.id, Status.PASS, info.severity, "cluster", detail),),
    )
