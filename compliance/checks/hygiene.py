"""Ineffective policies: selectors that match nothing, policies that govern nothing, and
policies whose removal changes no connection (computed by the engine)."""

from __future__ import annotations

from typing import Any

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
from polyfence.model.policy import Action, Governed, Layer, Policy
from polyfence.semantics import bdd
from polyfence.semantics.engine import Connectivity
from polyfence.semantics.universe import Undecided

REDUNDANCY_LIMIT = 150  # policies; above it, one engine run per policy costs too much
SYMBOLIC_SECONDS = 20.0  # the symbolic redundancy check's budget (one evaluation per candidate)
# Policy documents a reader turns into one IR policy or more whenever they govern a direction.
_READ_KINDS = frozenset(
    {
        ("networking.k8s.io", "NetworkPolicy"),
        ("projectcalico.org", "NetworkPolicy"),
        ("projectcalico.org", "GlobalNetworkPolicy"),
        ("cilium.io", "CiliumNetworkPolicy"),
        ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    }
)


def _prefixes(pointer: str) -> list[str]:
    """``/items/3/spec`` -> ``""``, ``/items``, ``/items/3``, ``/items/3/spec``."""
    parts = pointer.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _inert_documents(ctx: AuditContext) -> list[Finding]:
    """Policy documents that produced no policy at all and no read loss explaining why: they
    govern no direction (Cilium `ingress: []` or a rule-less section), so they change nothing."""
    info = k17_ineffective_policies.info
    # A document may be an item of a List (pointer ``/items/3``): what came from inside it
    # has a source pointer under that prefix.
    produced = {
        (p.source.file, p.source.document, prefix)
        for p in ctx.policies
        if p.source is not None
        for prefix in _prefixes(p.source.pointer)
    }
    explained = {
        (loss.source.file, loss.source.document, prefix)
        for loss in ctx.bundle.read_losses
        if loss.source is not None
        for prefix in _prefixes(loss.source.pointer)
    }
    out = []
    for doc in ctx.bundle.documents:
        group = (doc.api_version or "").split("/", 1)[0]
        group = "projectcalico.org" if group == "crd.projectcalico.org" else group
        if (group, doc.kind) not in _READ_KINDS or not isinstance(doc.data, dict):
            continue
        where = (doc.source.file, doc.source.document, doc.source.pointer)
        if where in produced or where in explained:
            continue
        meta = doc.data.get("metadata") or {}
        ns = meta.get("namespace") if doc.kind in ("NetworkPolicy", "CiliumNetworkPolicy") else None
        if doc.kind in ("NetworkPolicy", "CiliumNetworkPolicy"):
            ns = str(ns or "default")
            if not ctx.in_scope_ns(ns):
                continue
        name = str(meta.get("name") or "")
        src = doc.source
        ref = ObjectRef(str(doc.kind), ns, name, src.file, src.document, src.pointer)
        resource = f"{doc.kind}/{ns}/{name}" if ns else f"{doc.kind}/{name}"
        out.append(
            Finding(info.id, Status.FAIL, info.severity, resource,
                    f"{doc.kind} {resource.split('/', 1)[1]} governs neither ingress nor egress "
                    "(an empty section such as Cilium `ingress: []` applies to nothing): it "
                    "changes nothing",
                    (ref,), observed="no direction governed", key=resource)
        )  # fmt: skip
    return out


def _has_allow(policy: Policy) -> bool:
    return any(
        isinstance(rules, Governed) and any(r.action is Action.ALLOW for r in rules.rules)
        for rules in (policy.ingress, policy.egress)
    )


def _redundant(ctx: AuditContext, candidates: list[Policy]) -> tuple[list[tuple[Policy, str]], str]:
    """The candidates whose removal changes nothing, with where that holds, and a detail.

    On every cluster when the symbolic procedure models the policies (a policy redundant
    only on today's pods may be the one that matters tomorrow); otherwise on this snapshot,
    saying why every cluster was not decided.
    """
    not_modelled = bdd.out_of_scope([ctx.policies])
    if not_modelled is None:
        try:
            found = bdd.redundant(ctx.policies, candidates, ctx.profile, SYMBOLIC_SECONDS)
        except Undecided as exc:
            not_modelled = str(exc)
        else:
            return [(p, "on any cluster") for p in found], ""
    if len(ctx.policies) > REDUNDANCY_LIMIT:
        return [], (
            f"; redundancy not computed ({len(ctx.policies)} policies > {REDUNDANCY_LIMIT}, "
            f"and not decided for every cluster: {not_modelled})"
        )
    where = f"in this snapshot (not decided for every cluster: {not_modelled})"
    # Judged within the policy's own layer: a mesh policy that repeats what the network layer
    # already enforces is defence in depth, not dead weight.
    layers = len(ctx.policies.layers()) > 1
    bases: dict[Layer, Any] = {}
    out: list[tuple[Policy, str]] = []
    for policy in candidates:
        own = [p for p in ctx.policies if p.layer is policy.layer] if layers else None
        base = bases.get(policy.layer)
        if base is None:
            base = (
                Connectivity(ctx.universe, ctx.policies.with_policies(own)).matrix()
                if own is not None
                else ctx.matrix
            )
            bases[policy.layer] = base
        rest = ctx.policies.with_policies(
            p for p in (own if own is not None else ctx.policies) if p is not policy
        )
        if Connectivity(ctx.universe, rest).matrix() == base:
            out.append((policy, f"of the {policy.layer.value} layer {where}" if layers else where))
    return out, ""


@check(
    "NSEG-K17",
    "Ineffective policies (dangling, vacuous, redundant)",
    Severity.LOW,
    Level.SEMANTIC,
    "A policy whose selector matches no workload, that governs no direction (Cilium's inert "
    "`ingress: []`), or whose removal changes no connection gives false assurance and hides "
    "mistakes during reviews (PCI DSS 1.2.7). Pure default-deny policies are not reported as "
    "redundant: they are the safety net when allow policies change.",
    "Fix the selector or delete the policy; review redundant policies during the six-monthly "
    "rule-set review.",
)
def k17_ineffective_policies(ctx: AuditContext) -> CheckOutcome:
    info = k17_ineffective_policies.info
    findings: list[Finding] = []
    candidates: list[Policy] = []
    pods = ctx.class_representatives if ctx.has_workloads else ()
    for policy in ctx.policies:
        ns = policy.id.namespace
        if ns is not None and not ctx.in_scope_ns(ns):
            continue
        governed = isinstance(policy.ingress, Governed) or isinstance(policy.egress, Governed)
        ref = ctx.policy_ref(policy)
        if not governed:
            findings.append(
                Finding(info.id, Status.FAIL, info.severity, ctx.policy_resource(policy),
                        f"{ref.kind} {policy.id} governs neither ingress nor egress (it changes nothing)",
                        (ref,), observed="no direction governed", key=str(policy.id))
            )  # fmt: skip
            continue
        dangling = not any(ctx.matcher.selects(policy.subject, e) for e in pods)
        # a security group no pod carries may still guard instances outside the cluster
        if ctx.has_workloads and dangling and policy.layer is not Layer.CLOUD:
            findings.append(
                Finding(info.id, Status.FAIL, info.severity, ctx.policy_resource(policy),
                        f"{ref.kind} {policy.id} selects no workload in the input (dangling)",
                        (ref,), observed="0 workloads selected", key=str(policy.id))
            )  # fmt: skip
            continue
        if _has_allow(policy) and not dangling:
            candidates.append(policy)
    findings.extend(_inert_documents(ctx))
    detail = ""
    if ctx.has_workloads and candidates:
        redundant, detail = _redundant(ctx, candidates)
        for policy, where in redundant:
            ref = ctx.policy_ref(policy)
            findings.append(
                Finding(info.id, Status.FAIL, info.severity, ctx.policy_resource(policy),
                        f"{ref.kind} {policy.id} is redundant: removing it changes no "
                        f"connection {where}",
                        (ref,), observed="no effect", key=str(policy.id))
            )  # fmt: skip
    result = outcome(
        info,
        findings,
        passed="",
        failed="{fail} ineffective policies",
        empty="no dangling, vacuous or redundant policy",
        empty_status=Status.PASS,
    )
    if not ctx.has_workloads and result.status is Status.PASS:
        return CheckOutcome(
            Status.UNKNOWN,
            "the input has no workloads: dangling and redundant policies cannot be found",
        )
    return CheckOutcome(result.status, result.detail + detail, result.findings)
