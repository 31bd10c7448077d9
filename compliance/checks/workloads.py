"""Workload settings that bypass or sidestep network policy, and namespace boundaries."""

from __future__ import annotations

from polyfence.compliance.context import AuditContext, workload_matches
from polyfence.compliance.model import (
    CheckOutcome,
    Finding,
    Level,
    Severity,
    Status,
    check,
    outcome,
)
from polyfence.model.ports import protocol_name


def _spec_pointer(kind: str) -> str:
    if kind == "Pod":
        return "/spec"
    if kind == "CronJob":
        return "/spec/jobTemplate/spec/template/spec"
    return "/spec/template/spec"


@check(
    "NSEG-K13",
    "No hostNetwork pods outside the allow-list",
    Severity.HIGH,
    Level.SOURCE,
    "A pod on the host network shares its node's addresses: pod selectors do not select it and "
    "it can reach what the node can (CIS Kubernetes 5.2.5).",
    "Remove `hostNetwork: true`, or add the workload to `host_network_allowlist` with a reason.",
)
def k13_host_network(ctx: AuditContext) -> CheckOutcome:
    info = k13_host_network.info
    findings = []
    for ep in ctx.workloads:
        if not ep.host_network:
            continue
        allowed = workload_matches(ep, ctx.config.host_network_allowlist)
        findings.append(
            Finding(
                info.id, Status.PASS if allowed else Status.FAIL, info.severity, ep.ref,
                f"{ep.ref} runs on the host network"
                + (" (allow-listed)" if allowed else ", outside pod-level policy"),
                (ctx.workload_ref(ep, _spec_pointer(ep.kind) + "/hostNetwork"),),
                observed="hostNetwork: true", expected="hostNetwork: false",
            )
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="hostNetwork only on allow-listed workloads",
        failed="{fail} workloads use hostNetwork outside the allow-list",
        empty="no in-scope workload uses hostNetwork",
        empty_status=Status.PASS,
    )


@check(
    "NSEG-K14",
    "No hostPort exposure outside the allow-list",
    Severity.MEDIUM,
    Level.SOURCE,
    "A hostPort publishes the container on every address of its node, a path that node-level "
    "traffic takes around NetworkPolicy (CIS Kubernetes 5.2.12).",
    "Publish through a Service instead, or add the workload to `host_port_allowlist`.",
)
def k14_host_port(ctx: AuditContext) -> CheckOutcome:
    info = k14_host_port.info
    findings = []
    for ep in ctx.workloads:
        if not ep.host_ports:
            continue
        allowed = workload_matches(ep, ctx.config.host_port_allowlist)
        ports = ", ".join(f"{protocol_name(p.protocol)}/{p.port}" for p in ep.host_ports)
        findings.append(
            Finding(
                info.id, Status.PASS if allowed else Status.FAIL, info.severity, ep.ref,
                f"{ep.ref} publishes hostPort {ports}" + (" (allow-listed)" if allowed else ""),
                (ctx.workload_ref(ep, _spec_pointer(ep.kind) + "/containers"),),
                observed=ports, expected="no hostPort",
            )
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="hostPorts only on allow-listed workloads",
        failed="{fail} workloads publish hostPorts outside the allow-list",
        empty="no in-scope workload publishes a hostPort",
        empty_status=Status.PASS,
    )


@check(
    "NSEG-K20",
    "Namespace administrative boundaries are used",
    Severity.LOW,
    Level.SOURCE,
    "Namespaces are the unit policies, zones and RBAC attach to (CIS Kubernetes 5.6.1, 5.6.4): "
    "workloads in `default` and namespaces outside every declared zone escape the segmentation "
    "model.",
    "Move workloads out of `default`; label each namespace so it falls in a zone.",
)
def k20_namespace_boundaries(ctx: AuditContext) -> CheckOutcome:
    info = k20_namespace_boundaries.info
    findings = []
    in_default = [ep for ep in ctx.workloads if ep.namespace == "default"]
    if ctx.in_scope_ns("default") or in_default:
        findings.append(
            Finding(
                info.id, Status.FAIL if in_default else Status.PASS, info.severity,
                "namespace/default",
                f"{len(in_default)} workloads run in the default namespace"
                if in_default else "no workload runs in the default namespace",
                tuple(ctx.workload_ref(e) for e in in_default[:20]),
            )
        )  # fmt: skip
    if ctx.config.zones:
        populated = {ep.namespace for ep in ctx.workloads}
        for ns in ctx.in_scope:
            if ns == "default" or ns not in populated:
                continue
            zones = ctx.zones_of(ns)
            findings.append(
                Finding(
                    info.id, Status.PASS if zones else Status.FAIL, info.severity,
                    f"namespace/{ns}",
                    f"namespace {ns} is in zone(s) {', '.join(zones)}" if zones
                    else f"namespace {ns} has workloads but is in no declared zone",
                    (ctx.object_ref("Namespace", None, ns),),
                )
            )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="workloads sit in dedicated namespaces"
        + (" inside declared zones" if ctx.config.zones else ""),
        failed="{fail} namespace boundary problems",
        empty="no workloads in scope",
    )
