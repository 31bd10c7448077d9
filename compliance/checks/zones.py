"""Zone checks: forbidden flows proved absent, allowed flows matched to the approved inventory,
and drift against an approved baseline — all on the engine's computed connectivity."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from polyfence.compliance.checks._common import (
    MAX_EXPLAINED,
    MAX_WITNESSES,
    explained,
    party_matches_endpoint,
    public_address,
)
from polyfence.compliance.config import Flow
from polyfence.compliance.context import AuditContext, workload_matches
from polyfence.compliance.model import (
    CheckOutcome,
    ConnectionEvidence,
    Finding,
    Level,
    ObjectRef,
    Severity,
    Status,
    check,
    outcome,
)
from polyfence.inventory import Endpoint
from polyfence.semantics.connset import FULL, ConnSet
from polyfence.semantics.engine import Connectivity, EndpointClass, Universe, iter_bits

Side = Endpoint | str  # an endpoint, or an internet address


def _sides(ctx: AuditContext, cls: EndpointClass, party: str) -> list[Side]:
    """What a party names within a class: members, or the internet for public address atoms."""
    if cls.external is not None:
        if party in ("internet", "*") and cls in ctx.public_classes:
            return [public_address(cls)]
        return []
    return [m for m in cls.members if party_matches_endpoint(ctx, party, m)]


def _excepted(side: Side, patterns: tuple[str, ...]) -> bool:
    return isinstance(side, Endpoint) and workload_matches(side, patterns)


def _label(side: Side) -> str:
    return side.ref if isinstance(side, Endpoint) else side


def _flow_sensitive(ctx: AuditContext, flow: Flow) -> bool:
    zones = {z.name: z for z in ctx.config.zones}
    return any(
        p.startswith("zone:") and p[5:] in zones and zones[p[5:]].sensitive
        for p in (flow.src, flow.dst)
    )


def _flow_ref(flow: Flow, key: str) -> ObjectRef:
    src = flow.source
    return ObjectRef(
        "AuditConfig", None, key, src.file if src else None, src.document if src else None,
        src.pointer if src else "",
    )  # fmt: skip


@check(
    "NSEG-K07",
    "Forbidden zone-to-zone flows are denied",
    Severity.HIGH,
    Level.SEMANTIC,
    "Segmentation is proved, not assumed: for each declared forbidden pair (for example "
    "everything to the cardholder data environment except its front ends) no allowed "
    "connection may exist (PCI DSS 1.3.1/1.3.2, NIST SC-7(21), AC-4). Critical when a side is "
    "a sensitive zone.",
    "Tighten the policies named in the witnesses' explanations so the forbidden connections are "
    "denied, or correct the declared flow.",
)
def k07_forbidden_flows(ctx: AuditContext) -> CheckOutcome:
    info = k07_forbidden_flows.info
    if not ctx.config.forbidden_flows:
        return CheckOutcome(
            Status.NOT_APPLICABLE, "no forbidden flows declared in the audit config"
        )
    if not ctx.has_workloads:
        return CheckOutcome(Status.UNKNOWN, "the input has no workloads: flows cannot be computed")
    findings = forbidden_findings(ctx, ctx.matrix, info.id, info.severity)
    return outcome(
        info,
        findings,
        passed="all {total} forbidden flows are denied",
        failed="{fail} of {total} forbidden flows have allowed connections",
    )


def forbidden_findings(
    ctx: AuditContext,
    matrix: dict[tuple[int, int], ConnSet],
    check_id: str,
    base: Severity,
    *,
    explain: bool = True,
) -> list[Finding]:
    """One finding per declared forbidden flow, from a class matrix (all layers, or one)."""
    classes = ctx.universe.classes
    budget = [MAX_EXPLAINED if explain else 0]
    findings = []
    for i, flow in enumerate(ctx.config.forbidden_flows):
        severity = Severity.CRITICAL if _flow_sensitive(ctx, flow) else base
        hits: list[tuple[Side, Side, ConnSet]] = []
        count = 0
        for (s, d), conns in matrix.items():
            if flow.ports is not None:
                conns = conns & flow.ports
                if not conns:
                    continue
            srcs = [
                x for x in _sides(ctx, classes[s], flow.src) if not _excepted(x, flow.exceptions)
            ]
            if not srcs:
                continue
            dsts = _sides(ctx, classes[d], flow.dst)
            dsts = [
                x for x in dsts if not (s == d and len(classes[d].members) == 1 and x is srcs[0])
            ]
            if not dsts:
                continue
            count += len(srcs) * len(dsts)
            if len(hits) < MAX_WITNESSES:
                hits.append((srcs[0], dsts[0], conns))
        resource = f"flow/{flow.src}->{flow.dst}"
        ref = _flow_ref(flow, f"forbidden_flows[{i}]")
        if not hits:
            findings.append(
                Finding(check_id, Status.PASS, severity, resource,
                        f"no allowed connection from {flow.src} to {flow.dst}", (ref,), key=str(i))
            )  # fmt: skip
            continue
        evidence: list[ConnectionEvidence] = []
        for a, b, conns in hits:
            ev = explained(ctx, budget, a, b, conns)
            if ev is not None and not explain:
                # the engine's explanation covers every layer; this matrix may be one layer
                note = f"allowed by the one policy layer {check_id} evaluates alone"
                ev = replace(ev, explanation=(note,))
            if ev is not None:
                evidence.append(ev)
        objects = [ref]
        if explain:
            for ev in evidence:
                objects.extend(o for o in ctx.deciding_objects(ev) if o not in objects)
        findings.append(
            Finding(
                check_id, Status.FAIL, severity, resource,
                f"{count} endpoint pairs from {flow.src} to {flow.dst} may connect, e.g. "
                f"{_label(hits[0][0])} -> {_label(hits[0][1])}"
                + (f" ({flow.note})" if flow.note else ""),
                tuple(objects), tuple(evidence), observed=f"{count} allowed pairs",
                expected="no allowed connection", key=str(i),
            )
        )  # fmt: skip
    return findings


def _crossing(ctx: AuditContext, cls: EndpointClass) -> tuple[str, ...] | None:
    """The zones of a class (internet is its own zone); None for classes outside the model."""
    if cls.external is not None:
        return ("internet",) if cls in ctx.public_classes else None
    ep = cls.representative.endpoint
    if ep is None or not (ctx.universe.pod_bits >> cls.index & 1):
        return None  # nodes, and hostNetwork pods that act as their node
    return ctx.zones_of(ep.namespace)


def _approved(ctx: AuditContext, src: Side, dst: Side) -> ConnSet:
    """What the approved flows allow from src to dst."""
    out = ConnSet()
    for flow in ctx.config.approved_flows:
        if _side_matches(ctx, flow.src, src) and _side_matches(ctx, flow.dst, dst):
            out = out | (flow.ports if flow.ports is not None else FULL)
    return out


def _side_matches(ctx: AuditContext, party: str, side: Side) -> bool:
    if isinstance(side, str):
        return party in ("internet", "*")
    return party_matches_endpoint(ctx, party, side)


@check(
    "NSEG-K08",
    "Allowed flows match the approved flow inventory",
    Severity.MEDIUM,
    Level.SEMANTIC,
    "Every allowed service, protocol and port across a zone boundary needs an approval and a "
    "business need (PCI DSS 1.2.5, NIST CA-9, AC-4). Flows inside one zone are not checked; the "
    "internet counts as a zone of its own.",
    "Add the flow with its justification to `approved_flows`, or deny it.",
)
def k08_approved_flows(ctx: AuditContext) -> CheckOutcome:
    info = k08_approved_flows.info
    if not ctx.config.zones or not ctx.config.approved_flows:
        return CheckOutcome(
            Status.NOT_APPLICABLE,
            "no zones or no approved flow inventory declared in the audit config",
        )
    if not ctx.has_workloads:
        return CheckOutcome(Status.UNKNOWN, "the input has no workloads: flows cannot be computed")
    classes = ctx.universe.classes
    budget = [MAX_EXPLAINED]
    groups: dict[tuple[str, str], list[tuple[Side, Side, ConnSet]]] = defaultdict(list)
    used: set[int] = set()
    # Members of a class share namespace and zone; only workload patterns tell them apart.
    per_member = any("/" in p for f in ctx.config.approved_flows for p in (f.src, f.dst))
    limit = None if per_member else 1
    for (s, d), conns in ctx.matrix.items():
        zs, zd = _crossing(ctx, classes[s]), _crossing(ctx, classes[d])
        if zs is None or zd is None or set(zs) == set(zd):
            continue
        if not (set(zs) | set(zd)) - {"internet"}:
            continue  # touches no declared zone
        srcs = _sides(ctx, classes[s], "*")[:limit]
        dsts = _sides(ctx, classes[d], "*")[:limit]
        for a in srcs:
            for b in dsts:
                extra = conns - _approved(ctx, a, b)
                for i, flow in enumerate(ctx.config.approved_flows):
                    if _side_matches(ctx, flow.src, a) and _side_matches(ctx, flow.dst, b):
                        used.add(i)
                if extra:
                    key = (_group(a), _group(b))
                    if len(groups[key]) < MAX_WITNESSES:
                        groups[key].append((a, b, extra))
    findings = []
    for (gs, gd), hits in sorted(groups.items()):
        evidence = [ev for a, b, c in hits if (ev := explained(ctx, budget, a, b, c)) is not None]
        objects: list[ObjectRef] = []
        for ev in evidence:
            objects.extend(o for o in ctx.deciding_objects(ev) if o not in objects)
        findings.append(
            Finding(
                info.id, Status.FAIL, info.severity, f"flow/{gs}->{gd}",
                f"allowed but not approved: {gs} -> {gd}, e.g. {_label(hits[0][0])} -> "
                f"{_label(hits[0][1])}",
                tuple(objects), tuple(evidence), expected="only approved flows across zones",
            )
        )  # fmt: skip
    for i, flow in enumerate(ctx.config.approved_flows):
        if i not in used:
            findings.append(
                Finding(
                    info.id, Status.PASS, Severity.INFO, f"flow/{flow.src}->{flow.dst}",
                    f"approved flow {flow.src} -> {flow.dst} is not allowed by any policy "
                    "(approved but blocked)",
                    (_flow_ref(flow, f"approved_flows[{i}]"),), key=f"approved-{i}",
                )
            )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="every allowed flow across a zone boundary is approved",
        failed="{fail} namespace pairs have allowed flows across zones that are not approved",
        empty="no allowed flow crosses a zone boundary",
        empty_status=Status.PASS,
    )


def _group(side: Side) -> str:
    if isinstance(side, str):
        return "internet"
    return f"namespace:{side.namespace}"


@check(
    "NSEG-K21",
    "Segmentation drift against the approved baseline",
    Severity.MEDIUM,
    Level.SEMANTIC,
    "Changes to network connections must be approved (PCI DSS 1.2.2, SOC 2 CC8.1): the "
    "connectivity of the approved snapshot is compared with today's on today's workloads; new "
    "allowed flows fail until the baseline is updated, high when they enter a sensitive zone.",
    "Review the new flows; approve them by updating the baseline snapshot, or revert the policy "
    "change.",
)
def k21_drift(ctx: AuditContext) -> CheckOutcome:
    info = k21_drift.info
    if ctx.baseline is None:
        return CheckOutcome(Status.NOT_APPLICABLE, "no baseline snapshot configured (`baseline:`)")
    if not ctx.has_workloads:
        return CheckOutcome(Status.UNKNOWN, "the input has no workloads: drift cannot be computed")
    base = ctx.baseline.policies
    universe = Universe(ctx.inventory, [base, ctx.policies], ctx.profile)
    old, new = Connectivity(universe, base), Connectivity(universe, ctx.policies)
    added: dict[tuple[str, str], list[tuple[Side, Side, ConnSet]]] = defaultdict(list)
    removed: dict[tuple[str, str], int] = defaultdict(int)
    classes = universe.classes
    for s in range(universe.size):
        for d in iter_bits(old.candidates(s) | new.candidates(s)):
            a, b = old.allowed(s, d), new.allowed(s, d)
            if a == b or (s == d and len(classes[s].members) == 1 and classes[s].is_pod):
                continue
            src = classes[s].members[0] if classes[s].members else str(classes[s].representative)
            dst = classes[d].members[0] if classes[d].members else str(classes[d].representative)
            key = (_group(src or ""), _group(dst or ""))
            if b - a:
                added[key].append((src, dst, b - a))
            if a - b:
                removed[key] += 1
    findings = []
    budget = [MAX_EXPLAINED]
    for (gs, gd), hits in sorted(added.items()):
        dst_ns = gd.split(":", 1)[1] if gd.startswith("namespace:") else None
        severity = Severity.HIGH if ctx.sensitive(dst_ns) else info.severity
        evidence = [
            ev for a, b, c in hits[:MAX_WITNESSES] if (ev := explained(ctx, budget, a, b, c))
        ]
        findings.append(
            Finding(
                info.id, Status.FAIL, severity, f"flow/{gs}->{gd}",
                f"{len(hits)} class pairs {gs} -> {gd} gained connections since the baseline",
                tuple(o for ev in evidence for o in ctx.deciding_objects(ev)), tuple(evidence),
                observed="new allowed connections", expected="the baseline's connectivity",
            )
        )  # fmt: skip
    for (gs, gd), n in sorted(removed.items()):
        findings.append(
            Finding(info.id, Status.PASS, Severity.INFO, f"flow/{gs}->{gd}",
                    f"{n} class pairs {gs} -> {gd} lost connections since the baseline (narrowed)",
                    key="removed")
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="no new allowed flows since the baseline",
        failed="{fail} namespace pairs gained flows since the baseline",
        empty="connectivity is unchanged since the baseline",
        empty_status=Status.PASS,
    )
