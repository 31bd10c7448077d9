"""Coverage and isolation: which namespaces and workloads any policy governs, and whether the
default deny really denies (computed, never taken from a policy's name)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from polyfence.compliance.checks._common import MAX_EXPLAINED, explained, names
from polyfence.compliance.context import AuditContext
from polyfence.compliance.model import (
    CheckOutcome,
    Finding,
    Level,
    Severity,
    Status,
    check,
    outcome,
)
from polyfence.inventory import Endpoint
from polyfence.model.policy import NOT_GOVERNED, Direction, Governed, Policy
from polyfence.semantics.connset import FULL
from polyfence.semantics.engine import Connectivity
from polyfence.semantics.matching import Matcher, enforced_on


def _covers_namespace(ctx: AuditContext, policy: Policy, namespace: str) -> bool:
    sub = policy.subject
    if sub.namespace is not None:
        return sub.namespace == namespace
    if sub.security_group is not None and sub.namespace_selector is None:
        return False
    return sub.namespace_selector is None or sub.namespace_selector.matches(
        ctx.matcher.ns_labels(namespace)
    )


def _governs(policy: Policy) -> bool:
    return isinstance(policy.ingress, Governed) or isinstance(policy.egress, Governed)


@check(
    "NSEG-K02",
    "Every in-scope namespace is governed by a policy",
    Severity.MEDIUM,
    Level.SEMANTIC,
    "A namespace no policy applies to allows every connection in and out of its pods; the "
    "first policy that selects a pod makes traffic it does not allow denied. Policies of every "
    "format count (Kubernetes, Calico, Cilium, security groups bound to pods), cluster-wide ones "
    "included.",
    "Add a policy to the namespace, e.g. a default-deny NetworkPolicy with `podSelector: {}` and "
    "both policyTypes, then allow the flows the workloads need.",
)
def k02_namespace_governed(ctx: AuditContext) -> CheckOutcome:
    info = k02_namespace_governed.info
    findings = []
    by_ns: dict[str, list[Endpoint]] = defaultdict(list)
    for ep in ctx.workloads:
        by_ns[ep.namespace or ""].append(ep)
    for ns in ctx.in_scope:
        policies = [p for p in ctx.policies if _governs(p) and _covers_namespace(ctx, p, ns)]
        pods = by_ns.get(ns, [])
        selecting = (
            [p for p in policies if any(ctx.matcher.selects(p.subject, e) for e in pods)]
            if pods
            else policies
        )
        refs = tuple(ctx.policy_ref(p) for p in selecting[:20])
        if selecting:
            findings.append(
                Finding(
                    info.id, Status.PASS, info.severity, f"namespace/{ns}",
                    f"namespace {ns} is governed by {len(selecting)} "
                    f"polic{'y' if len(selecting) == 1 else 'ies'}",
                    refs,
                )
            )  # fmt: skip
        else:
            detail = (
                f"policies exist for namespace {ns} but select none of its {len(pods)} workloads"
                if policies
                else f"no policy of any format applies to namespace {ns}"
            )
            findings.append(
                Finding(
                    info.id, Status.FAIL, info.severity, f"namespace/{ns}", detail,
                    tuple(ctx.policy_ref(p) for p in policies[:20]),
                    observed=f"{len(pods)} workloads, 0 governed",
                    expected="at least one policy selecting pods of the namespace",
                )
            )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="all {total} in-scope namespaces are governed by a policy",
        failed="{fail} of {total} in-scope namespaces are governed by no policy",
        empty="no in-scope namespace in the input",
    )


def _isolated(ctx: AuditContext, ep: Endpoint, direction: Direction) -> list[Policy]:
    return [
        p
        for p in ctx.governing(ep, direction)
        if isinstance(rules := p.direction(direction), Governed) and rules.isolates
    ]


def _fully_open(ctx: AuditContext, direction: Direction) -> dict[int, int]:
    """Per pod class: how many other pod classes its own ``direction`` policies accept every
    connection with.

    Computed on that direction alone (the other direction's policies left out): an ingress
    allow-all neutralises a default deny whatever the peers' egress policies happen to allow
    today, so a deny-all egress elsewhere must not hide it.
    """
    one_way = ctx.policies.with_policies(
        replace(p, egress=NOT_GOVERNED)
        if direction is Direction.INGRESS
        else replace(p, ingress=NOT_GOVERNED)
        for p in ctx.policies
    )
    matrix = Connectivity(ctx.universe, one_way).matrix()
    counts: dict[int, int] = defaultdict(int)
    pods = ctx.universe.pod_bits
    for (s, d), conns in matrix.items():
        if s == d or conns != FULL or not (pods >> s & 1 and pods >> d & 1):
            continue
        counts[d if direction is Direction.INGRESS else s] += 1
    return counts


def _default_deny(ctx: AuditContext, direction: Direction) -> list[Finding]:
    info = (
        k03_default_deny_ingress if direction is Direction.INGRESS else k04_default_deny_egress
    ).info
    word = direction.value
    pod_classes = len(ctx.pod_class_indices)
    open_counts = _fully_open(ctx, direction)
    budget = [MAX_EXPLAINED]
    by_ns: dict[str, list[Endpoint]] = defaultdict(list)
    for ep in ctx.workloads:
        if not ep.host_network:  # hostNetwork pods are NSEG-K13's: policy does not select them
            by_ns[ep.namespace or ""].append(ep)
    findings: list[Finding] = []
    for ns in ctx.in_scope:
        pods = by_ns.get(ns)
        if not pods:
            continue
        not_isolated: list[Endpoint] = []
        neutralised: list[Endpoint] = []
        deciding: list[Policy] = []
        for ep in pods:
            isolating = _isolated(ctx, ep, direction)
            if not isolating:
                not_isolated.append(ep)
                continue
            deciding.extend(p for p in isolating if p not in deciding)
            if pod_classes > 1 and open_counts.get(ctx.class_of(ep).index, 0) >= pod_classes - 1:
                neutralised.append(ep)
        resource = f"namespace/{ns}"
        if not not_isolated and not neutralised:
            findings.append(
                Finding(
                    info.id, Status.PASS, info.severity, resource,
                    f"every workload of {ns} is {word}-isolated and not opened to the whole cluster",
                    tuple(ctx.policy_ref(p) for p in deciding[:20]),
                )
            )  # fmt: skip
            continue
        evidence = []
        sample = (not_isolated or neutralised)[0]
        other = _other_pod(ctx, sample, direction)
        if other is not None:
            src, dst = (other, sample) if direction is Direction.INGRESS else (sample, other)
            conns = ctx.allowed(ctx.class_of(src), ctx.class_of(dst))
            ev = explained(ctx, budget, src, dst, conns)
            if ev is not None:
                evidence.append(ev)
        parts = []
        if not_isolated:
            parts.append(f"not {word}-isolated by any policy: {names(not_isolated)}")
        if neutralised:
            parts.append(
                f"isolated, but another rule allows every connection with every pod in the "
                f"cluster (default deny neutralised): {names(neutralised)}"
            )
        objects = tuple(ctx.policy_ref(p) for p in deciding[:10])
        if evidence:
            objects += tuple(o for o in ctx.deciding_objects(evidence[0]) if o not in objects)
        findings.append(
            Finding(
                info.id, Status.FAIL, info.severity, resource,
                f"namespace {ns}: " + "; ".join(parts),
                objects, tuple(evidence),
                observed=f"{len(not_isolated)} not isolated, {len(neutralised)} neutralised, of {len(pods)}",
                expected=f"every workload denied {word} by default",
            )
        )  # fmt: skip
    return findings


def _other_pod(ctx: AuditContext, ep: Endpoint, direction: Direction) -> Endpoint | None:
    """A pod of another namespace if there is one (the witness of lateral movement), preferring
    one whose connection with ``ep`` the policies allow (so the witness shows the gap)."""
    others = [o for o in ctx.inventory.pods if o is not ep and not o.host_network]
    others.sort(key=lambda o: o.namespace == ep.namespace)  # stable: other namespaces first
    for other in others:
        src, dst = (other, ep) if direction is Direction.INGRESS else (ep, other)
        if ctx.allowed(ctx.class_of(src), ctx.class_of(dst)):
            return other
    return others[0] if others else None


@check(
    "NSEG-K03",
    "Default-deny ingress is effective",
    Severity.HIGH,
    Level.SEMANTIC,
    "Deny by default, allow by exception (NIST SC-7(5)): every workload must be ingress-isolated "
    "by some policy, and no other rule may reopen it to the whole cluster. A policy named "
    "default-deny that allows everything, or one neutralised by an allow-all, does not count.",
    "Add an ingress default-deny (NetworkPolicy `podSelector: {}`, `policyTypes: [Ingress]`, or a "
    "Calico/Cilium equivalent) and remove rules that allow every peer and port.",
)
def k03_default_deny_ingress(ctx: AuditContext) -> CheckOutcome:
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: isolation cannot be computed"
        )
    findings = _default_deny(ctx, Direction.INGRESS)
    return outcome(
        k03_default_deny_ingress.info,
        findings,
        passed="every in-scope workload is denied ingress by default ({total} namespaces)",
        failed="{fail} of {total} namespaces have workloads whose ingress is not denied by default",
        empty="no in-scope workloads",
    )


@check(
    "NSEG-K04",
    "Default-deny egress is effective",
    Severity.HIGH,
    Level.SEMANTIC,
    "Without egress isolation a compromised workload can reach anything (NIST 800-190 4.4.2, "
    "PCI DSS 1.3.2). Same computation as NSEG-K03 for egress.",
    "Add an egress default-deny per namespace and allow DNS and the destinations each workload "
    "needs.",
)
def k04_default_deny_egress(ctx: AuditContext) -> CheckOutcome:
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: isolation cannot be computed"
        )
    findings = _default_deny(ctx, Direction.EGRESS)
    return outcome(
        k04_default_deny_egress.info,
        findings,
        passed="every in-scope workload is denied egress by default ({total} namespaces)",
        failed="{fail} of {total} namespaces have workloads whose egress is not denied by default",
        empty="no in-scope workloads",
    )


@check(
    "NSEG-K05",
    "Workload isolation coverage (both directions)",
    Severity.MEDIUM,
    Level.SEMANTIC,
    "A workload is isolated only when policies govern both its ingress and its egress; coverage "
    "counts workloads, not policy objects.",
    "Give every namespace ingress and egress default-deny policies; see the per-namespace "
    "coverage for where isolation is missing.",
)
def k05_isolation_coverage(ctx: AuditContext) -> CheckOutcome:
    info = k05_isolation_coverage.info
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: coverage cannot be computed"
        )
    by_ns: dict[str, list[Endpoint]] = defaultdict(list)
    for ep in ctx.workloads:
        by_ns[ep.namespace or ""].append(ep)
    findings = []
    covered_total = total = throughout = 0
    before = _baseline_covered(ctx)
    for ns in ctx.in_scope:
        pods = by_ns.get(ns)
        if not pods:
            continue
        covered = [
            ep
            for ep in pods
            if not ep.host_network
            and _isolated(ctx, ep, Direction.INGRESS)
            and _isolated(ctx, ep, Direction.EGRESS)
        ]
        missing = [ep for ep in pods if ep not in covered]
        if before is not None:
            throughout += sum(1 for ep in covered if ep.ref in before)
        covered_total += len(covered)
        total += len(pods)
        pct = 100.0 * len(covered) / len(pods)
        status = Status.PASS if not missing else Status.FAIL
        message = (
            f"namespace {ns}: {len(covered)}/{len(pods)} workloads isolated both ways ({pct:.0f}%)"
        )
        if missing:
            message += f"; not isolated: {names(missing)}"
        findings.append(
            Finding(
                info.id, status, info.severity, f"namespace/{ns}", message,
                tuple(ctx.workload_ref(e) for e in missing[:20]),
                observed=f"{pct:.1f}%", expected="100%",
            )
        )  # fmt: skip
    result = outcome(
        info,
        findings,
        passed="{total} namespaces, every workload isolated in both directions",
        failed="{fail} of {total} namespaces have workloads not isolated in both directions",
        empty="no in-scope workloads",
    )
    if total:
        pct = 100.0 * covered_total / total
        detail = f"{result.detail}; cluster coverage {covered_total}/{total} ({pct:.1f}%)"
        if before is not None:
            detail += (
                f"; at the baseline {_before_pct(ctx, before)}; isolated for the whole interval "
                f"(baseline and now): {throughout}/{total}"
            )
        return CheckOutcome(result.status, detail, result.findings)
    return result


def _baseline_covered(ctx: AuditContext) -> set[str] | None:
    """Refs of the in-scope workloads the baseline snapshot isolated both ways (None without a
    baseline): with it, coverage is reported over the interval, as Calico's reports do."""
    if ctx.baseline is None:
        return None
    base = ctx.baseline
    inv = base.inventory if base.inventory.endpoints else ctx.inventory
    matcher = Matcher(inv, ctx.profile, base.policies.network_sets)
    covered: set[str] = set()
    for ep in inv.pods:
        if ep.host_network or not ctx.in_scope_ns(ep.namespace):
            continue
        both = all(
            any(
                isinstance(rules := p.direction(d), Governed)
                and rules.isolates
                and enforced_on(p.layer, ep)
                and matcher.selects(p.subject, ep)
                for p in base.policies
            )
            for d in (Direction.INGRESS, Direction.EGRESS)
        )
        if both:
            covered.add(ep.ref)
    return covered


def _before_pct(ctx: AuditContext, before: set[str]) -> str:
    base = ctx.baseline
    assert base is not None
    inv = base.inventory if base.inventory.endpoints else ctx.inventory
    total = sum(1 for ep in inv.pods if ctx.in_scope_ns(ep.namespace))
    if not total:
        return "no workloads"
    return f"{len(before)}/{total} ({100.0 * len(before) / total:.1f}%)"
